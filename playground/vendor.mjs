// Copies the pinned GraphiQL, React and ReactDOM builds from node_modules into assets/,
// which the Go package embeds. Run it through `npm --prefix playground run vendor`
// (from the repository root): that runs `npm ci` first, so the copies are exactly the
// versions in package-lock.json. assets/ is replaced wholesale; commit the result.
import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const modules = join(here, 'node_modules');
const out = join(here, 'assets');

// asset name -> file in node_modules. The UMD builds need no bundler: graphiql.min.js
// carries its own copy of graphql-js (and graphql-ws) and takes React and ReactDOM
// from the globals the two React scripts define.
const files = {
  'react.production.min.js': 'react/umd/react.production.min.js',
  'react-dom.production.min.js': 'react-dom/umd/react-dom.production.min.js',
  'graphiql.min.js': 'graphiql/graphiql.min.js',
  'graphiql.min.css': 'graphiql/graphiql.min.css',
  'LICENSE.react.txt': 'react/LICENSE',
  'LICENSE.react-dom.txt': 'react-dom/LICENSE',
  'LICENSE.graphiql.txt': 'graphiql/LICENSE',
};

const version = (pkg) => JSON.parse(readFileSync(join(modules, pkg, 'package.json'), 'utf8')).version;
const pinned = JSON.parse(readFileSync(join(here, 'package.json'), 'utf8')).dependencies;
const manifest = { packages: {}, files: {} };
for (const [pkg, want] of Object.entries(pinned)) {
  const got = version(pkg);
  if (got !== want) {
    throw new Error(`node_modules has ${pkg}@${got}, package.json pins ${want}: run npm ci first`);
  }
  manifest.packages[pkg] = got;
}

rmSync(out, { recursive: true, force: true });
mkdirSync(out);
for (const [name, from] of Object.entries(files)) {
  copyFileSync(join(modules, from), join(out, name));
  const sha256 = createHash('sha256').update(readFileSync(join(out, name))).digest('hex');
  manifest.files[name] = { from, sha256 };
}
writeFileSync(join(out, 'MANIFEST.json'), JSON.stringify(manifest, null, 2) + '\n');
console.log(`playground/assets: ${Object.keys(files).length} files from ` +
  Object.entries(manifest.packages).map(([p, v]) => `${p}@${v}`).join(', '));

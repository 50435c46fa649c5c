// The playground's browser test: headless Chromium (Debian's chromium package, no
// browser download) driven by playwright-core. browser_test.go starts the server and
// runs: node .ci/browser.mjs <page URL> <ada's token> [<ada's member id> <sender token>...]
//
// 1. The page loads with the Headers placeholder; the schema loads without a token and
//    a query answers "authentication required".
// 2. A token pasted into the Headers editor: { viewer { handle } } (run button) shows ada.
// 3. The page opened as /#token=<token>: the header is pre-filled, the fragment leaves
//    the address bar, and the query (Ctrl-Enter) shows ada.
// 4. With ada's id and senders' tokens: a subscription over WebSocket, authenticated by
//    the header, receives the invitation a sender then sends to ada (the next sender
//    tries again if the event does not arrive within 5 s: the subscription may not be
//    registered yet on a loaded machine).
// Throughout: every request goes to the page's origin, and no Content-Security-Policy
// violation, page error or console error occurs. Exits 1 on the first failure.
import { chromium } from 'playwright-core';

const [base, adaToken, adaID, ...senders] = process.argv.slice(2);
if (!base || !adaToken) {
  console.error('usage: node .ci/browser.mjs <page URL> <token> [<its member id> <sender token>...]');
  process.exit(2);
}
const origin = new URL(base).origin;
const deadline = 20_000; // per wait
const started = Date.now();
const log = (msg) => console.log(`${((Date.now() - started) / 1000).toFixed(1)}s ${msg}`);

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  // Playwright adds --headless, --no-sandbox (as root) and a fresh --user-data-dir;
  // the rest keep Chromium off the (closed) network.
  args: ['--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
});
const problems = [];
const context = await browser.newContext();
await context.addInitScript(() => {
  document.addEventListener('securitypolicyviolation', (e) => {
    console.error(`CSP violation: ${e.violatedDirective} blocked ${e.blockedURI || '(inline)'}`);
  });
});

// Editors are CodeMirror 5 instances; their DOM node carries the instance.
const QUERY = '.graphiql-query-editor .CodeMirror';
const HEADERS = '.graphiql-editor-tool .graphiql-editor:not(.hidden) .CodeMirror';
const RESULT = '.result-window .CodeMirror';

async function newPage() {
  const page = await context.newPage();
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console: ${m.text().replace(/data:[^']{60,}/g, (d) => d.slice(0, 60) + '…')}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('request', (r) => {
    if (!r.url().startsWith(origin + '/') && !r.url().startsWith('data:')) {
      problems.push(`request outside the origin: ${r.url()}`);
    }
  });
  page.on('websocket', (ws) => {
    const u = new URL(ws.url());
    if (u.host !== new URL(origin).host) problems.push(`WebSocket outside the origin: ${ws.url()}`);
  });
  return page;
}

const editorValue = (page, selector) =>
  page.$eval(selector, (el) => el.CodeMirror.getValue());

// replace selects everything in an editor and pastes text (no key-by-key typing, which
// would meet CodeMirror's bracket auto-closing), as a person would.
async function replace(page, selector, text) {
  await page.click(`${selector} .CodeMirror-lines`);
  await page.keyboard.press('ControlOrMeta+A');
  await page.keyboard.insertText(text);
  const got = await editorValue(page, selector);
  if (got !== text) throw new Error(`editor ${selector} holds ${JSON.stringify(got)}`);
  // GraphiQL parses the query a moment after an edit (debounced); running sooner would
  // use the previous document's AST to choose between HTTP and WebSocket.
  await page.waitForTimeout(500);
}

async function waitForResult(page, needle, timeout = deadline) {
  try {
    await page.waitForFunction(
      ([sel, want]) => document.querySelector(sel)?.CodeMirror.getValue().includes(want),
      [RESULT, needle], { timeout, polling: 100 });
  } catch (e) {
    throw new Error(`the result pane never showed ${needle}; it shows: ${await editorValue(page, RESULT).catch(() => '?')}`);
  }
  log(`result shows ${needle}`);
}

function check() {
  if (problems.length) throw new Error(problems.join('\n'));
}

try {
  // 1. No token yet.
  let page = await newPage();
  const introspection = page.waitForResponse((r) =>
    r.url() === `${origin}/query` && (r.request().postData() || '').includes('IntrospectionQuery'), { timeout: deadline });
  await page.goto(base);
  await page.waitForSelector(QUERY, { timeout: deadline });
  log('GraphiQL rendered');
  const schema = await (await introspection).json();
  if (!schema.data?.__schema?.queryType) throw new Error(`introspection failed: ${JSON.stringify(schema).slice(0, 300)}`);
  log('schema loaded without a token');
  const placeholder = await editorValue(page, HEADERS);
  if (!placeholder.includes('"Authorization": "Bearer <paste token>"')) {
    throw new Error(`the Headers editor holds ${JSON.stringify(placeholder)}`);
  }
  await replace(page, QUERY, '{ viewer { handle } }');
  await page.click('.graphiql-execute-button');
  await waitForResult(page, 'authentication required');

  // 2. The token pasted into the Headers editor; the run button.
  await replace(page, HEADERS, JSON.stringify({ Authorization: `Bearer ${adaToken}` }));
  await page.click('.graphiql-execute-button');
  await waitForResult(page, '"handle": "ada"');
  check();
  await page.close();

  // 3. The token in the fragment; Ctrl-Enter.
  page = await newPage();
  await page.goto(`${base}#token=${encodeURIComponent(adaToken)}`);
  await page.waitForSelector(QUERY, { timeout: deadline });
  if (page.url().includes('#') || page.url().includes(adaToken)) throw new Error(`the token stayed in the address bar: ${page.url()}`);
  const prefilled = await editorValue(page, HEADERS);
  if (!prefilled.includes(`"Bearer ${adaToken}"`)) throw new Error(`#token= did not fill the Headers editor: ${prefilled}`);
  log('#token= filled the Headers editor');
  await replace(page, QUERY, '{ viewer { handle } }');
  await page.keyboard.press('ControlOrMeta+Enter');
  await waitForResult(page, '"handle": "ada"');
  check();

  // 4. A subscription over WebSocket, authenticated by the header.
  if (adaID && senders.length) {
    const subscribed = new Promise((resolve) => {
      page.on('websocket', (ws) => ws.on('framesent', (f) => {
        if (String(f.payload).includes('"type":"subscribe"')) resolve();
      }));
    });
    await replace(page, QUERY, 'subscription { invitationReceived { message sender { handle } } }');
    await page.click('.graphiql-execute-button');
    await Promise.race([subscribed, page.waitForTimeout(deadline).then(() => { throw new Error('no subscribe message on a WebSocket'); })]);
    log('subscribed over WebSocket');
    let received = false;
    for (const [i, sender] of senders.entries()) {
      await page.waitForTimeout(500); // the server registers the subscription
      const message = `from the browser test, sender ${i + 1}`;
      const res = await fetch(`${origin}/query`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${sender}` },
        body: JSON.stringify({
          query: 'mutation($to: ID!, $m: String) { sendInvitation(input: {recipientId: $to, message: $m}) { userErrors { code } } }',
          variables: { to: adaID, m: message },
        }),
      });
      const sent = await res.json();
      if (res.status !== 200 || sent.errors || sent.data.sendInvitation.userErrors.length) {
        throw new Error(`sendInvitation: ${res.status} ${JSON.stringify(sent)}`);
      }
      log(`sender ${i + 1} sent an invitation`);
      try {
        await waitForResult(page, `"message": "${message}"`, i < senders.length - 1 ? 5_000 : deadline);
        received = true;
        break;
      } catch (e) {
        if (i === senders.length - 1) throw e;
        log('no event yet: the next sender tries');
      }
    }
    if (!received) throw new Error('no invitationReceived event');
    check();
  }
  log('ok');
} catch (e) {
  problems.push(String(e.stack || e));
  if (process.env.BROWSER_SCREENSHOT) {
    for (const p of context.pages()) await p.screenshot({ path: process.env.BROWSER_SCREENSHOT }).catch(() => {});
  }
  console.error(problems.join('\n'));
  process.exitCode = 1;
} finally {
  await browser.close();
}

// The GraphQL-over-HTTP audit (TESTPLAN S8): graphql-http's auditServer against a
// running server. Usage: node .ci/audit.mjs http://127.0.0.1:8080/query
//
// Prints one JSON object per audit on stdout:
//   {"id", "name", "status": "ok"|"notice"|"warn"|"error", "reason", "httpStatus", "contentType", "body"}
// and a summary on stderr. Exits 0 when no audit has status "error" (a MUST failure),
// 1 otherwise, 2 on a usage or fatal error. audit_test.go runs it and reads the output.
import { auditServer } from 'graphql-http';

const url = process.argv[2];
if (!url) {
  console.error('usage: node .ci/audit.mjs <url of the GraphQL endpoint>');
  process.exit(2);
}

const results = await auditServer({ url });
const counts = { ok: 0, notice: 0, warn: 0, error: 0 };
for (const r of results) {
  counts[r.status]++;
  const line = { id: r.id, name: r.name, status: r.status };
  if (r.status !== 'ok') {
    line.reason = r.reason;
    if (r.response) {
      line.httpStatus = r.response.status;
      line.contentType = r.response.headers.get('content-type');
      try {
        line.body = (await r.response.text()).slice(0, 500);
      } catch {
        // the audit already read the body
      }
    }
  }
  console.log(JSON.stringify(line));
}
console.error(`graphql-http audit of ${url}: ${counts.ok} ok, ${counts.notice} notice, ${counts.warn} warn, ${counts.error} error`);
process.exit(counts.error > 0 ? 1 : 0);

// Runs the graphql-http audit suite (GraphQL over HTTP, serverAudits) against a running
// hub: node audit.mjs URL TOKEN. Prints every audit with its result, then the score by
// level; exits 1 on any MUST or SHOULD that is not met.
import { auditServer } from 'graphql-http';

const [url, token] = process.argv.slice(2);
if (!url || !token) {
  console.error('usage: node audit.mjs URL TOKEN');
  process.exit(2);
}
// Every request carries the token, as a client of the hub must.
const fetchFn = (input, init = {}) => {
  const headers = new Headers(init.headers);
  headers.set('authorization', `Bearer ${token}`);
  return fetch(input, { ...init, headers });
};

const results = await auditServer({ url, fetchFn });
const score = {};
let failed = 0;
for (const result of results) {
  const level = result.name.split(' ')[0];
  score[level] ??= { ok: 0, total: 0 };
  score[level].total += 1;
  if (result.status === 'ok') {
    score[level].ok += 1;
  } else {
    const detail = result.reason ?? '';
    console.log(`${result.status.toUpperCase()} ${result.name}: ${detail}`);
    if (level === 'MUST' || level === 'SHOULD') failed += 1;
  }
}
for (const [level, { ok, total }] of Object.entries(score)) {
  console.log(`${level}: ${ok}/${total}`);
}
process.exit(failed > 0 ? 1 : 0);

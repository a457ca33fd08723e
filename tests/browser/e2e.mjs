// End-to-end test of the playground in headless Chromium against a running hub.
//
//   node tests/browser/e2e.mjs http://127.0.0.1:PORT
//
// Environment: E2E_C360_BIN and E2E_C360_CONFIG (to mint a token with `c360 token`, as
// an operator would; not C360_*, which the hub reads as its own configuration);
// CHROMIUM (default /usr/bin/chromium); E2E_README_SCREENSHOT=1 to renew
// playground/screenshot.png (or a path to write it to). run.sh sets up the first two.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
const base = (process.argv[2] ?? process.env.E2E_BASE_URL ?? '').replace(/\/$/, '');
if (!base) {
  console.error('usage: node e2e.mjs <base-url of a running hub>');
  process.exit(2);
}
const origin = new URL(base).origin;
const artifacts = join(here, 'artifacts');
// The README's screenshot is renewed only when asked (E2E_README_SCREENSHOT=1, or a path).
const readmeShotEnv = process.env.E2E_README_SCREENSHOT;
const readmeShot = readmeShotEnv
  ? resolve(readmeShotEnv === '1' ? join(here, '..', '..', 'playground', 'screenshot.png') : readmeShotEnv)
  : null;
rmSync(artifacts, { recursive: true, force: true });
mkdirSync(artifacts, { recursive: true });

const STEP_TIMEOUT = 30_000;
const results = [];
const failures = [];
const consoleErrors = [];
const foreignRequests = [];
let allowHttpErrors = null; // while set: the statuses whose "Failed to load resource" is expected

function log(message) {
  console.log(`[e2e ${((Date.now() - started) / 1000).toFixed(1)}s] ${message}`);
}

function check(condition, message) {
  if (!condition) throw new Error(message);
}

async function step(name, fn) {
  const t = Date.now();
  try {
    await fn();
    results.push({ name, ok: true, ms: Date.now() - t });
    log(`ok   ${name} (${Date.now() - t} ms)`);
  } catch (e) {
    results.push({ name, ok: false, ms: Date.now() - t });
    failures.push(`${name}: ${e.message}`);
    log(`FAIL ${name}: ${e.message}`);
    await page?.screenshot({ path: join(artifacts, `failed-${results.length}.png`) }).catch(() => {});
  }
}

async function devToken(role, extra = {}) {
  const res = await fetch(`${base}/dev/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ role, ...extra }),
  });
  const body = await res.json();
  if (!res.ok) throw new Error(`/dev/token answered ${res.status}: ${JSON.stringify(body)}`);
  return body.token;
}

function mintWithCli(args) {
  const bin = process.env.E2E_C360_BIN;
  const config = process.env.E2E_C360_CONFIG;
  if (!bin || !config) return null;
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('C360_')));
  return execFileSync(bin, ['--config', config, 'token', ...args], { encoding: 'utf8', timeout: 20_000, env }).trim();
}

/** RFC 4180 parser (quoted fields, doubled quotes, CRLF). */
function parseCsv(text) {
  const rows = [];
  let row = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      row.push(field);
      field = '';
    } else if (c === '\r' && text[i + 1] === '\n') {
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
      i++;
    } else field += c;
  }
  if (field !== '' || row.length) {
    row.push(field);
    rows.push(row);
  }
  return rows;
}

function csvValue(v) {
  return v === null || v === undefined ? '' : String(v);
}

const started = Date.now();
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-dev-shm-usage'],
  timeout: 60_000,
});
const context = await browser.newContext({
  viewport: { width: 1440, height: 900 },
  acceptDownloads: true,
  locale: 'en-GB',
  timezoneId: 'UTC',
});
context.setDefaultTimeout(STEP_TIMEOUT);
const page = await context.newPage();

function watchRequests(target) {
  target.on('request', (request) => {
    const url = request.url();
    if (url.startsWith('data:') || url.startsWith('blob:')) return;
    if (new URL(url).origin !== origin) foreignRequests.push(url);
  });
}
watchRequests(context);
page.on('worker', (worker) => log(`worker ${new URL(worker.url()).pathname}`));
page.on('console', (message) => {
  if (message.type() !== 'error') return;
  const text = message.text();
  const http = /^Failed to load resource: the server responded with a status of (\d{3})/.exec(text);
  const url = message.location()?.url ?? '';
  if (http && allowHttpErrors?.has(Number(http[1])) && url.startsWith(`${origin}/graphql`)) return;
  consoleErrors.push(`${text} (${url})`);
});
page.on('pageerror', (error) => consoleErrors.push(`page error: ${error.message}`));

const editorReady = () =>
  Promise.all([
    page.locator('.graphiql-query-editor .monaco-editor').first().waitFor({ state: 'visible' }),
    page.locator('[data-testid=schema-status]').first().waitFor({ state: 'attached' }),
  ]);

async function schemaStatus() {
  await page.waitForFunction(
    () => {
      const el = document.querySelector('[data-testid=schema-status]');
      return el && el.dataset.status !== 'loading';
    },
    null,
    { timeout: STEP_TIMEOUT },
  );
  return page.locator('[data-testid=schema-status]').getAttribute('data-status');
}

async function signOut() {
  if (await page.getByTestId('signin').isVisible()) return;
  await page.getByTestId('sign-out').click();
  await page.getByTestId('signin').waitFor();
}

async function pasteToken(token) {
  await page.getByTestId('signin').waitFor();
  if (await page.getByTestId('mode-paste').isVisible()) await page.getByTestId('mode-paste').click();
  await page.getByTestId('token-input').fill(token);
  await page.getByTestId('paste-signin').click();
}

async function editorValue() {
  return page.evaluate(() => {
    const model = globalThis.__MONACO?.editor.getModels().find((m) => m.getLanguageId() === 'graphql');
    return model?.getValue() ?? null;
  });
}

async function typeQuery(text) {
  const editor = page.locator('.graphiql-query-editor .monaco-editor').first();
  await editor.click();
  await page.keyboard.press('Control+A');
  await page.keyboard.press('Delete');
  // Monaco closes brackets itself and types over them, so the text goes in as written.
  await page.keyboard.type(text, { delay: 5 });
  await page.keyboard.press('Escape');
  const value = await editorValue();
  if (value?.replace(/\s+/g, ' ').trim() !== text.replace(/\s+/g, ' ').trim()) {
    // Autocompletion got in the way: set the text as a paste would.
    await page.evaluate((t) => {
      const model = globalThis.__MONACO.editor.getModels().find((m) => m.getLanguageId() === 'graphql');
      model.setValue(t);
    }, text);
  }
}

let firstLoad = null;
let segmentsJson = null;

await step('1a. page served by the hub with its CSP; dev sign-in as analyst', async () => {
  const t0 = Date.now();
  const response = await page.goto(`${base}/`, { waitUntil: 'domcontentloaded' });
  check(response.status() === 200, `GET / answered ${response.status()}`);
  const csp = response.headers()['content-security-policy'] ?? '';
  check(/script-src 'self'/.test(csp) && /default-src 'none'/.test(csp), `no strict CSP on /: "${csp}"`);
  await page.getByTestId('signin').waitFor();
  const signInVisible = Date.now() - t0;
  await page.getByTestId('dev-picker').waitFor();
  await page.getByTestId('role-analyst').check();
  await page.getByTestId('dev-signin').click();
  await page.locator('[data-testid=viewer-badge][data-role=analyst]').waitFor();
  await editorReady();
  const status = await schemaStatus();
  check(status === 'ready', `schema status ${status}`);
  firstLoad = { signInVisible, editorReady: Date.now() - t0 };
  const nav = await page.evaluate(() => {
    const [n] = performance.getEntriesByType('navigation');
    return { domContentLoaded: Math.round(n.domContentLoadedEventEnd), load: Math.round(n.loadEventEnd) };
  });
  Object.assign(firstLoad, nav);
  log(`first load: sign-in shown ${signInVisible} ms, editor and schema ready ${firstLoad.editorReady} ms (incl. sign-in click)`);
  const stored = await page.evaluate(() => ({
    session: Object.values(sessionStorage).join('\n'),
    local: Object.values(localStorage).join('\n'),
  }));
  check(/eyJ[\w-]+\.eyJ[\w-]+\./.test(stored.session), 'the token is not in sessionStorage');
  check(!/eyJ[\w-]+\.eyJ[\w-]+\./.test(stored.local), 'a token is in localStorage');
  await page.getByTestId('viewer-badge').click();
  const details = await page.getByTestId('viewer-details').innerText();
  check(/insights:read/.test(details) && /analyst/.test(details), `viewer details lack role/scopes: ${details}`);
  await page.getByTestId('viewer-badge').click();
  await page.screenshot({ path: join(artifacts, '01-signed-in-analyst.png') });
});

await step('2. saved query "Segment summary": table, sorting, CSV equals the JSON result', async () => {
  const [response] = await Promise.all([
    page.waitForResponse(
      (r) => r.url().endsWith('/graphql') && (r.request().postData() ?? '').includes('SegmentSummary'),
    ),
    page.getByTestId('run-02-segment-summary').click(),
  ]);
  check(response.status() === 200, `SegmentSummary answered ${response.status()}`);
  const body = await response.json();
  check(!body.errors, `SegmentSummary errors: ${JSON.stringify(body.errors)}`);
  segmentsJson = body.data.segments;
  check(segmentsJson.length > 0, 'no segments');
  const suppressed = segmentsJson.filter((s) => s.suppressed).length;
  check(suppressed > 0, 'the hub withheld no segment: start it with a large insights.min_group_size');

  const table = page.getByTestId('result-table');
  await table.waitFor();
  check((await table.locator('tbody tr').count()) === segmentsJson.length, 'table rows ≠ segments');
  check((await table.locator('tbody tr.suppressed').count()) === suppressed, 'suppressed rows not marked');
  await page.getByTestId('suppression-note').first().waitFor();

  // Sort by customers, descending (two clicks); nulls (suppressed) last.
  const header = table.locator('th', { hasText: /^customers/ }).locator('button');
  await header.click();
  await header.click();
  check((await table.locator('th[aria-sort=descending]').count()) === 1, 'no descending sort mark');
  const shown = (await table.locator('tbody tr td:nth-child(2)').allInnerTexts()).map((t) => t.trim());
  const expected = segmentsJson
    .map((s) => s.customers)
    .sort((a, b) => (a === null) - (b === null) || b - a)
    .map(csvValue);
  check(JSON.stringify(shown) === JSON.stringify(expected), `sorted column ${shown} ≠ ${expected}`);

  const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('download-csv').click()]);
  check(/\.csv$/.test(download.suggestedFilename()), `file name ${download.suggestedFilename()}`);
  const csvPath = join(artifacts, download.suggestedFilename());
  await download.saveAs(csvPath);
  const csv = readFileSync(csvPath, 'utf8');
  check(csv.includes('\r\n'), 'CSV lines do not end in CRLF');
  const [head, ...rows] = parseCsv(csv);
  const columns = Object.keys(segmentsJson[0]);
  check(JSON.stringify(head) === JSON.stringify(columns), `CSV header ${head} ≠ ${columns}`);
  check(rows.length === segmentsJson.length, `CSV has ${rows.length} rows, JSON ${segmentsJson.length}`);
  // The CSV is the table as shown (sorted by customers, descending): compare as sets of rows.
  const fromJson = segmentsJson.map((s) => columns.map((c) => csvValue(s[c])).join('\u0001')).sort();
  const fromCsv = rows.map((r) => r.join('\u0001')).sort();
  check(JSON.stringify(fromJson) === JSON.stringify(fromCsv), 'CSV values differ from the JSON result');
  check(rows[0][1] === expected[0], 'CSV is not in the table’s order');
  await page.screenshot({ path: join(artifacts, '02-segments-table.png') });
});

await step('3. chart of the segments (hatched suppressed bars) and of the Pareto curve', async () => {
  await page.getByTestId('tab-chart').click();
  const chart = page.locator('[data-testid=chart][data-ready=true]');
  await chart.waitFor();
  check((await chart.getAttribute('data-chart-type')) === 'bar', 'segments are not drawn as bars');
  const points = Number(await chart.getAttribute('data-points'));
  const suppressed = Number(await chart.getAttribute('data-suppressed'));
  check(points === segmentsJson.filter((s) => !s.suppressed).length, `chart has ${points} bars`);
  check(suppressed === segmentsJson.filter((s) => s.suppressed).length, `chart marks ${suppressed} suppressed`);
  const painted = await page.evaluate(() => {
    const canvas = document.querySelector('[data-testid=chart] canvas');
    const ctx = canvas.getContext('2d');
    const { data } = ctx.getImageData(0, 0, canvas.width, canvas.height);
    let blue = 0;
    for (let i = 0; i < data.length; i += 4) if (data[i + 2] > 200 && data[i] < 80 && data[i + 3] > 0) blue++;
    return { blue, width: canvas.width, height: canvas.height };
  });
  check(painted.blue > 2000, `the chart's canvas has hardly any bar pixels (${painted.blue})`);
  await page.getByTestId('suppression-note').waitFor();
  await page.waitForTimeout(200);
  await page.screenshot({ path: join(artifacts, '03-segments-chart.png') });
  if (readmeShot) {
    const shot = await page.screenshot({ type: 'png' });
    mkdirSync(dirname(readmeShot), { recursive: true });
    writeFileSync(readmeShot, shot);
    log(`README screenshot ${readmeShot} (${Math.round(shot.length / 1024)} KiB)`);
  }

  await page.getByTestId('run-04-pareto-curve').click();
  await page.waitForFunction(() => document.querySelector('[data-testid=chart]')?.dataset.chartType === 'line');
  const line = page.locator('[data-testid=chart][data-ready=true][data-chart-type=line]');
  await line.waitFor();
  check(Number(await line.getAttribute('data-points')) >= 2, 'the Pareto curve has fewer than 2 points');
  await page.screenshot({ path: join(artifacts, '04-pareto-chart.png') });
});

await step('4. partner token pasted (minted by `c360 token`): hidden field absent from docs, unknown in a query', async () => {
  await signOut();
  const token =
    mintWithCli(['--role', 'partner', '--partner', 'acme-insurance', '--ttl', '10m']) ??
    (await devToken('partner', { partner: 'acme-insurance', ttlSeconds: 600 }));
  await pasteToken(token);
  await page.locator('[data-testid=viewer-badge][data-role=partner][data-partner=acme-insurance]').waitFor();
  const status = await schemaStatus();
  check(status === 'ready', `partner schema status ${status} (is partner introspection on?)`);

  // The docs: Customer has `email` (masked for partners) but no `purchaseSummary` (financial: hidden).
  const docs = page.locator('.graphiql-sidebar button[aria-label="Show Documentation Explorer"]');
  if ((await page.locator('.graphiql-doc-explorer').count()) === 0) await docs.click();
  const search = page.locator('.graphiql-doc-explorer-search input');
  await search.fill('Customer');
  await page.locator('.graphiql-doc-explorer-search [role=option]', { hasText: /^Customer$/ }).first().click();
  const content = page.locator('.graphiql-doc-explorer-content');
  await content.getByText('email', { exact: true }).first().waitFor();
  const text = await content.innerText();
  check(!/purchaseSummary/.test(text), 'purchaseSummary is listed in the partner’s docs');
  check(!/\binsights\b/.test(text), 'insights is listed in the partner’s docs');
  await page.screenshot({ path: join(artifacts, '05-partner-docs.png') });

  allowHttpErrors = new Set([400]);
  await typeQuery('query PartnerProbe { customers(first: 1) { edges { node { id purchaseSummary { orderCount } } } } }');
  const [response] = await Promise.all([
    page.waitForResponse((r) => r.url().endsWith('/graphql') && (r.request().postData() ?? '').includes('PartnerProbe')),
    page.keyboard.press('Control+Enter'),
  ]);
  const body = await response.json();
  check(
    body.errors?.some((e) => e.extensions?.code === 'GRAPHQL_VALIDATION_FAILED' && /purchaseSummary/.test(e.message)),
    `expected an unknown-field error, got ${JSON.stringify(body)}`,
  );
  const error = page.locator('[data-testid=errors] li[data-code=GRAPHQL_VALIDATION_FAILED]');
  await error.first().waitFor();
  check(/purchaseSummary/.test(await error.first().innerText()), 'the page does not show the unknown field');
  // The editor flags it too: it validates against the partner's schema.
  await page.waitForFunction(
    () => globalThis.__MONACO.editor.getModelMarkers({}).some((m) => /purchaseSummary/.test(m.message)),
    null,
    { timeout: 10_000 },
  );
  await page.screenshot({ path: join(artifacts, '06-partner-unknown-field.png') });
  allowHttpErrors = null;
});

await step('5. an expired token (ttlSeconds 5) brings the sign-in back; a refused token too', async () => {
  await signOut();
  const token = await devToken('analyst', { ttlSeconds: 5 });
  await pasteToken(token);
  await page.locator('[data-testid=viewer-badge][data-role=analyst]').waitFor();
  await page.getByTestId('signin-reason').waitFor({ timeout: 15_000 });
  const reason = await page.getByTestId('signin-reason').innerText();
  check(/expired/i.test(reason), `sign-in reason: ${reason}`);
  const session = await page.evaluate(() => Object.values(sessionStorage).join(''));
  check(!/eyJ/.test(session), 'the expired token is still stored');
  await page.screenshot({ path: join(artifacts, '07-expired.png') });

  // A token the hub refuses (bad signature): the page hears 401 and asks again.
  allowHttpErrors = new Set([401]);
  const good = await devToken('analyst', { ttlSeconds: 600 });
  const forged = good.slice(0, -4) + (good.endsWith('AAAA') ? 'BBBB' : 'AAAA');
  await pasteToken(forged);
  await page.getByTestId('signin-reason').waitFor({ timeout: 15_000 });
  const refused = await page.getByTestId('signin-reason').innerText();
  check(/refused/i.test(refused), `sign-in reason after a 401: ${refused}`);
  allowHttpErrors = null;
});

await step('6. every request went to the hub; no console errors', async () => {
  check(foreignRequests.length === 0, `requests to other hosts: ${foreignRequests.join(', ')}`);
  check(consoleErrors.length === 0, `console errors:\n  ${consoleErrors.join('\n  ')}`);
  const local = await page.evaluate(() => Object.values(localStorage).join('\n'));
  check(!/eyJ[\w-]+\.eyJ[\w-]+\./.test(local), 'a token was written to localStorage');
});

await browser.close();

const passed = results.filter((r) => r.ok).length;
const failed = results.length - passed;
writeFileSync(
  join(artifacts, 'report.json'),
  JSON.stringify({ base, firstLoad, results, failures, consoleErrors, foreignRequests }, null, 2) + '\n',
);
if (firstLoad) {
  console.log(
    `first load: sign-in visible after ${firstLoad.signInVisible} ms; DOMContentLoaded ${firstLoad.domContentLoaded} ms; editor and schema ready ${firstLoad.editorReady} ms after navigation (dev sign-in included)`,
  );
}
for (const f of failures) console.log(`FAILED: ${f}`);
console.log(`e2e: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);

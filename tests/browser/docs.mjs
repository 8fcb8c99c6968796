// Swagger UI in a real browser: /docs loads /openapi.json and renders every operation;
// Authorize takes a tenant key; "Try it out" on POST /v1/sendText reaches the sandbox upstream
// and shows 201. A screenshot goes to tests/output/.
//
// Env: GATEWAY_URL (http://127.0.0.1:PORT), TENANT_KEY (a key with sessions:write and
// messages:send), CHROMIUM (default /usr/bin/chromium), OUTPUT_DIR (default ../output).
// Run through scripts/browser-test.sh, which starts a gateway and makes the key.
import { chromium } from 'playwright-core';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const base = process.env.GATEWAY_URL;
const key = process.env.TENANT_KEY;
const output = process.env.OUTPUT_DIR ?? join(here, '..', 'output');
if (!base || !key) {
  console.error('GATEWAY_URL and TENANT_KEY are required (run scripts/browser-test.sh)');
  process.exit(2);
}

function fail(message) {
  throw new Error(message);
}

async function api(method, path, body) {
  const response = await fetch(base + path, {
    method,
    headers: { 'X-Api-Key': key, ...(body ? { 'Content-Type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await response.text();
  return { status: response.status, text, json: () => JSON.parse(text) };
}

// The document's sendText example names the session `default`: make it WORKING first. The
// sandbox simulator scans a session's QR by itself a few seconds after it is first fetched.
async function workingDefaultSession() {
  const created = await api('POST', '/v1/sessions', { name: 'default', start: true });
  if (![201, 409].includes(created.status)) fail(`create session: ${created.status} ${created.text}`);
  const deadline = Date.now() + 90_000;
  while (Date.now() < deadline) {
    const session = await api('GET', '/v1/sessions/default');
    if (session.status !== 200) fail(`get session: ${session.status} ${session.text}`);
    const { status } = session.json();
    if (status === 'WORKING') return;
    if (status === 'STOPPED' || status === 'FAILED') {
      await api('POST', '/v1/sessions/start', { name: 'default' });
    }
    if (status === 'SCAN_QR_CODE') await api('GET', '/v1/default/auth/qr?format=raw');
    await new Promise((r) => setTimeout(r, 1000));
  }
  fail('the session "default" did not become WORKING within 90 s');
}

await workingDefaultSession();

mkdirSync(output, { recursive: true });
const profile = mkdtempSync(join(tmpdir(), 'wagw-chromium-'));
// A fresh profile directory (Playwright passes it as --user-data-dir).
const browser = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  viewport: { width: 1400, height: 1000 },
  args: [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
  ],
});
const page = browser.pages()[0] ?? (await browser.newPage());
const errors = [];
page.on('pageerror', (e) => errors.push(String(e)));
try {
  // /docs redirects to /docs/, which loads /openapi.json.
  const documentLoaded = page.waitForResponse((r) => r.url().endsWith('/openapi.json'));
  await page.goto(`${base}/docs`, { waitUntil: 'domcontentloaded' });
  const doc = await documentLoaded;
  if (doc.status() !== 200) fail(`/openapi.json answered ${doc.status()}`);
  const spec = await doc.json();
  const expected = Object.values(spec.paths).reduce((n, item) => n + Object.keys(item).length, 0);

  await page.waitForSelector('.opblock', { timeout: 30_000 });
  const rendered = await page.locator('.opblock').count();
  if (rendered !== expected) fail(`${rendered} operations rendered, the document has ${expected}`);
  console.log(`docs: ${rendered} operations rendered`);

  // Authorize with the tenant key in the X-Api-Key scheme.
  await page.click('.auth-wrapper .authorize');
  const scheme = page.locator('.auth-container', { hasText: 'tenantApiKey' });
  await scheme.locator('input').fill(key);
  await scheme.locator('button.authorize').click();
  await scheme.locator('button', { hasText: 'Logout' }).waitFor();
  await page.click('.modal-ux .close-modal');

  // Try it out: POST /v1/sendText with the document's example body.
  const op = page.locator('#operations-Messages-sendText');
  await op.locator('.opblock-summary').click();
  await op.locator('.try-out__btn').click();
  const body = await op.locator('textarea.body-param__text').inputValue();
  if (!JSON.parse(body).chatId) fail(`the example body has no chatId: ${body}`);
  const sent = page.waitForResponse((r) => r.url().endsWith('/v1/sendText'));
  const request = page.waitForRequest((r) => r.url().endsWith('/v1/sendText'));
  await op.locator('.execute').click();
  const answer = await sent;
  if ((await request).headers()['x-api-key'] !== key) fail('Try it out did not send the key in X-Api-Key');
  const status = await op.locator('.live-responses-table tr.response .response-col_status').first().innerText();
  await op.scrollIntoViewIfNeeded();
  await page.screenshot({ path: join(output, 'swagger-sendText.png'), fullPage: false });
  if (answer.status() !== 201 || status.trim() !== '201') {
    fail(`Try it out answered ${answer.status()} (shown: ${status}): ${await answer.text()}`);
  }
  const message = await answer.json();
  if (!message.id) fail(`the 201 carries no message id: ${JSON.stringify(message)}`);
  console.log(`docs: Try it out on POST /v1/sendText answered 201, message ${message.id}`);
  if (errors.length) fail(`page errors: ${errors.join('; ')}`);
} catch (e) {
  await page.screenshot({ path: join(output, 'swagger-failure.png'), fullPage: true }).catch(() => {});
  throw e;
} finally {
  await browser.close();
  rmSync(profile, { recursive: true, force: true });
}
console.log(`docs: screenshot in ${join(output, 'swagger-sendText.png')}`);

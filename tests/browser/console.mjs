// The console at /console in a real browser, against a gateway whose upstream is the
// simulator:
// - an admin signs in with the keyboard only (Tab, Enter), sees the tenants list, gets the
//   API's own error next to the form for a tenant without a name, creates a tenant and a key
//   (the key shown once, as text) and sees the tenant's usage charts;
// - the tenant signs in with that key on a phone-sized window, creates a session, sees its QR
//   code until the sandbox scans it, then WORKING; its usage and live events views; in its
//   webhooks view it adds two webhooks (hmac-sha512, and standard with its secret shown once)
//   to receivers run here, sees their deliveries (checking the signatures the receivers got),
//   redelivers one, enables the endpoint a 410 disabled and recovers its failed delivery;
// - the admin checks the organisation's figures against the API (a credential failure made
//   with a simulator fault included), searches the tenants, creates a throwaway tenant with
//   the keyboard only, adopts an upstream session no tenant owns into it, deletes it (a
//   cancelled confirmation keeps it); on the first tenant's page copies, rotates (with grace)
//   and revokes a key, edits its plan and quotas, sees a refusal in the refusals chart, tops
//   it up, resets its month, suspends and resumes it; redelivers a delivery across tenants;
//   filters the audit log by admin, target and time.
// Effects are checked through the UI and through the APIs (the tenant's key refused once
// suspended or revoked, a receiver getting an event again...). It also checks that no
// credential reaches storage or the URL, that the CSP is never violated, and measures the
// page weight and the first load. Screenshots go to OUTPUT_DIR.
//
// Env: GATEWAY_URL, ADMIN_USER, ADMIN_PASSWORD, SIM_URL, SIM_KEY, SIM_HOST (the upstream
// simulator and its key), CHROMIUM (default /usr/bin/chromium), OUTPUT_DIR (default
// ../output). Run through scripts/browser-test.sh.
import { chromium } from 'playwright-core';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { createHmac } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const base = process.env.GATEWAY_URL;
const adminUser = process.env.ADMIN_USER;
const adminPassword = process.env.ADMIN_PASSWORD;
const output = process.env.OUTPUT_DIR ?? join(here, '..', 'output');
const simUrl = process.env.SIM_URL;
const simKey = process.env.SIM_KEY;
const simHost = process.env.SIM_HOST;
if (!base || !adminUser || !adminPassword || !simUrl || !simKey || !simHost) {
  console.error('GATEWAY_URL, ADMIN_USER, ADMIN_PASSWORD, SIM_URL, SIM_KEY and SIM_HOST are required ' +
    '(run scripts/browser-test.sh)');
  process.exit(2);
}
const startedAt = Date.now();
const tenantName = `console-${Date.now().toString(36)}`;
const throwawayName = `throwaway-${Date.now().toString(36)}`;

function fail(message) {
  throw new Error(message);
}

function expect(condition, message) {
  if (!condition) fail(message);
}

/** Polls `check` until it answers something truthy (answered), for at most `timeout` ms. */
async function until(check, what, timeout = 15_000) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const got = await check();
    if (got) return got;
    if (Date.now() > deadline) fail(`waited ${timeout} ms for ${typeof what === 'function' ? what() : what}`);
    await new Promise((r) => setTimeout(r, 250)); // poll
  }
}

/** A call to the gateway from here (not through the console): `{status, json}`. */
async function api(method, path, { key, token, body } = {}) {
  const headers = {};
  if (key) headers['X-Api-Key'] = key;
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const r = await fetch(new URL(path, base), { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = text;
  }
  return { status: r.status, json };
}

/** A call to the upstream simulator, with the organisation's key. */
async function sim(method, path, body) {
  const r = await fetch(new URL(path, simUrl), {
    method,
    headers: { 'x-rapidapi-key': simKey, 'x-rapidapi-host': simHost, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: r.status, json: await r.json().catch(() => null) };
}

function send(key, text) {
  return api('POST', '/v1/sendText', { key, body: { session: 'phone', chatId: '1234567890', text } });
}

/** A `datetime-local` value for the instant `ms`, in the browser's time zone. */
function localInput(page, ms) {
  return page.evaluate((at) => {
    const d = new Date(at);
    const p = (n) => String(n).padStart(2, '0');
    return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
  }, ms);
}

// Webhook receivers on the loopback address: `/ok` answers 200; `/gone` answers 410 (which
// disables the endpoint) until `gone.heals`, then 200. Every request is kept, with its raw body.
const received = [];
const gone = { heals: false };
const receiver = createServer((req, res) => {
  let body = '';
  req.setEncoding('utf8');
  req.on('data', (chunk) => { body += chunk; });
  req.on('end', () => {
    received.push({ path: req.url, headers: req.headers, body });
    res.writeHead(req.url === '/gone' && !gone.heals ? 410 : 200, { 'Content-Type': 'text/plain' });
    res.end('thanks');
  });
});
await new Promise((resolve) => receiver.listen(0, '127.0.0.1', resolve));
const hook = (path) => `http://127.0.0.1:${receiver.address().port}${path}`;
const receipts = (path, text) => received.filter((r) => r.path === path && r.body.includes(text));

/** Standard Webhooks: `v1,` base64 HMAC-SHA256 of `id.timestamp.body` with the secret's bytes. */
function standardSigned(receipt, secret) {
  const { 'webhook-id': id, 'webhook-timestamp': ts, 'webhook-signature': signatures = '' } = receipt.headers;
  const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
  const expected = createHmac('sha256', key).update(`${id}.${ts}.${receipt.body}`).digest('base64');
  return Boolean(id && ts) && signatures.split(' ').includes(`v1,${expected}`);
}

function hmacSigned(receipt, key) {
  return receipt.headers['x-webhook-hmac'] === createHmac('sha512', key).update(receipt.body).digest('hex');
}

mkdirSync(output, { recursive: true });
const profile = mkdtempSync(join(tmpdir(), 'wagw-chromium-'));
const browser = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  viewport: { width: 1280, height: 900 },
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
// The key's Copy button is checked on the clipboard itself.
await browser.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: base });

const problems = [];
function watch(page, who) {
  page.on('pageerror', (e) => problems.push(`${who}: page error ${e}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && !/status of (4|5)\d\d/.test(m.text())) problems.push(`${who}: console error ${m.text()}`);
  });
  page.on('requestfailed', async (r) => {
    // The event stream, closed on purpose by leaving its view.
    if (r.url().includes('/v1/events/stream')) return;
    // Chromium ends a fetch answered 204 No Content as "failed" (net::ERR_ABORTED) although
    // the page's fetch resolves (microsoft/playwright#32752): not a problem of the page's.
    const answer = await r.response().catch(() => null);
    if (answer?.status() === 204) return;
    problems.push(`${who}: request failed ${r.url()} ${r.failure()?.errorText}`);
  });
  page.on('request', (r) => {
    const url = new URL(r.url());
    if (url.origin !== new URL(base).origin && !url.protocol.startsWith('data')) problems.push(`${who}: request to another origin ${r.url()}`);
  });
}

async function shot(page, name) {
  await page.screenshot({ path: join(output, `console-${name}.png`), fullPage: true });
}

/** No credential in storage, cookies or the URL. */
async function noCredentialLeft(page, secret, who) {
  const stored = await page.evaluate(() => JSON.stringify([{ ...localStorage }, { ...sessionStorage }, document.cookie]));
  expect(!stored.includes(secret), `${who}: the credential is in storage: ${stored}`);
  expect(stored === '[{},{},""]', `${who}: the console stored something: ${stored}`);
  expect(!page.url().includes(secret), `${who}: the credential is in the URL ${page.url()}`);
}

async function measureFirstLoad(page) {
  const started = Date.now();
  const response = await page.goto(`${base}/console`, { waitUntil: 'load' });
  expect(response.status() === 200, `/console answered ${response.status()}`);
  const csp = response.headers()['content-security-policy'] ?? '';
  expect(csp.includes("script-src 'self'") && !csp.includes('unsafe'), `weak CSP: ${csp}`);
  await page.getByRole('heading', { name: 'Sign in to the console' }).waitFor();
  const wall = Date.now() - started;
  const timing = await page.evaluate(() => {
    const [nav] = performance.getEntriesByType('navigation');
    const resources = performance.getEntriesByType('resource').filter((r) => r.name.includes('/console/'));
    return {
      domContentLoaded: Math.round(nav.domContentLoadedEventEnd - nav.startTime),
      load: Math.round(nav.loadEventEnd - nav.startTime),
      bytes: nav.decodedBodySize + resources.reduce((n, r) => n + r.decodedBodySize, 0),
      transferred: nav.transferSize + resources.reduce((n, r) => n + r.transferSize, 0),
      files: 1 + resources.length,
    };
  });
  return { ...timing, wall };
}

async function adminSignsIn(page) {
  // Keyboard only: the username field has the focus, Tab reaches the password, Enter submits.
  await page.waitForFunction(() => document.activeElement?.id && document.activeElement.tagName === 'INPUT' &&
    document.querySelector(`label[for="${document.activeElement.id}"]`)?.textContent === 'Username');
  await shot(page, 'sign-in');
  await page.keyboard.type(adminUser);
  await page.keyboard.press('Tab');
  const focused = await page.evaluate(() => document.querySelector(`label[for="${document.activeElement.id}"]`)?.textContent);
  expect(focused === 'Password', `Tab from Username went to ${focused}`);
  await page.keyboard.type(adminPassword);
  await page.keyboard.press('Enter');
  await page.getByRole('heading', { name: 'Tenants', level: 1 }).waitFor();
  expect(page.url().endsWith('#/tenants'), `the landing view is ${page.url()}`);
}

async function adminCreatesTenantAndKey(page) {
  await page.getByRole('button', { name: 'New tenant' }).click();
  const newTenant = page.getByRole('form', { name: 'New tenant' });
  expect(await newTenant.getByLabel('Plan').inputValue() === 'pro', 'the default plan is not pro');
  // An empty name: the API's own message, next to the form.
  await newTenant.getByRole('button', { name: 'Create' }).click();
  const error = newTenant.getByRole('alert');
  await error.waitFor();
  const message = await error.innerText();
  expect(/name/i.test(message) && /\b4\d\d\b/.test(message), `the error next to the form says: ${message}`);
  console.log(`console: an empty tenant name shows "${message}"`);
  await shot(page, 'tenant-error');

  await newTenant.getByLabel('Name').fill(tenantName);
  await newTenant.getByRole('button', { name: 'Create' }).click();
  await page.getByRole('link', { name: tenantName }).click();
  await page.getByRole('heading', { name: tenantName, level: 1 }).waitFor();

  await page.getByRole('button', { name: 'New key' }).click();
  const newKey = page.getByRole('form', { name: 'New key' });
  expect(await newKey.getByLabel('All scopes (*)').isChecked(), 'a new key does not have all scopes by default');
  await newKey.getByLabel('Name').fill('console-bot');
  await newKey.getByRole('button', { name: 'Create' }).click();
  const key = (await page.locator('code.key').innerText()).trim();
  expect(/^wagw_/.test(key), `the new key shown is ${key}`);
  await page.getByRole('button', { name: 'Copy' }).waitFor();
  await page.getByRole('img', { name: new RegExp(`^Calls per day of ${tenantName}`) }).waitFor();
  await shot(page, 'tenant-page');
  console.log(`console: admin created tenant ${tenantName} and key ${key.slice(0, 10)}…`);
  return key;
}

async function tenantOnboardsAPhone(page, key) {
  await page.goto(`${base}/console`);
  await page.getByLabel('Tenant', { exact: true }).check();
  await page.getByLabel('API key').fill(key);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'Sessions', level: 1 }).waitFor();
  await page.getByLabel('Session name').fill('phone');
  await page.getByRole('button', { name: 'Create and start' }).click();
  const qr = page.getByRole('img', { name: /QR/ });
  await qr.waitFor({ timeout: 30_000 });
  const drawn = await qr.evaluate((img) => img.complete && img.naturalWidth > 0 && img.src.startsWith('data:image/png'));
  expect(drawn, 'the QR code image did not load');
  await shot(page, 'phone-qr');
  // The sandbox scans a QR code by itself a few seconds after it is first fetched.
  await page.getByText('Session phone is WORKING').waitFor({ timeout: 60_000 });
  expect(!(await qr.isVisible()), 'the QR code is still shown once the session is WORKING');
  await page.locator('td', { hasText: 'WORKING' }).first().waitFor({ timeout: 10_000 });
  await shot(page, 'phone-working');
  console.log('console: the tenant saw the QR code, then WORKING');
  // Spend some of the month, so the usage charts have something to show.
  for (let i = 0; i < 3; i += 1) {
    const sent = await page.evaluate(async (k) => (await fetch('/v1/sendText', {
      method: 'POST', headers: { 'X-Api-Key': k, 'Content-Type': 'application/json' },
      body: JSON.stringify({ session: 'phone', chatId: '1234567890', text: 'hello from the console test' }),
    })).status, key);
    expect(sent === 201, `sendText answered ${sent}`);
  }
}

async function tenantViews(page, key) {
  await page.getByRole('link', { name: 'Usage', exact: true }).click();
  await page.getByRole('img', { name: /^Quota headroom/ }).waitFor();
  await page.getByRole('img', { name: /^Calls per day/ }).waitFor();
  await shot(page, 'phone-usage');
  await page.getByRole('link', { name: 'Live events', exact: true }).click();
  const state = page.locator('p', { hasText: /^Live: / });
  await state.waitFor({ timeout: 15_000 });
  console.log(`console: live events view says "${await state.innerText()}"`);
  // A message sent now comes back as `message.any` through the upstream's webhook, the log
  // and the stream, and appears in the tail.
  const started = Date.now();
  const sent = await page.evaluate(async (k) => (await fetch('/v1/sendText', {
    method: 'POST', headers: { 'X-Api-Key': k, 'Content-Type': 'application/json' },
    body: JSON.stringify({ session: 'phone', chatId: '1234567890', text: 'to the live tail' }),
  })).status, key);
  expect(sent === 201, `sendText answered ${sent}`);
  const tailed = page.getByRole('list', { name: 'Events, newest first' })
    .getByRole('listitem').filter({ hasText: 'message.any' }).filter({ hasText: 'on phone' });
  await tailed.first().waitFor({ timeout: 15_000 });
  await tailed.first().getByText('Envelope').click();
  const envelope = await tailed.first().locator('pre').innerText();
  expect(envelope.includes('to the live tail') && envelope.includes('"cursor"'), `the envelope shown: ${envelope}`);
  console.log(`console: a sent message reached the live tail in ${Date.now() - started} ms`);
  await shot(page, 'phone-events');
  await tenantWebhooks(page, key);
  await noCredentialLeft(page, key, 'tenant');
}

/** Clicks a console button and waits for its work to end (it is disabled meanwhile). */
async function press(button) {
  await button.click();
  await until(() => button.evaluate((b) => !b.disabled, null, { timeout: 200 }).catch(() => true),
    'the button to finish its work');
}

/** The text of the event the tenant's webhooks get (found in the receivers' bodies). */
const webhookText = `webhook check ${Date.now().toString(36)}`;

async function tenantWebhooks(page, key) {
  await page.getByRole('link', { name: 'Webhooks', exact: true }).click();
  await page.getByRole('heading', { name: 'Subscriptions' }).waitFor();
  await page.getByText('No webhooks on this session.').waitFor();
  const add = page.getByRole('form', { name: 'Add a webhook' });
  const subs = page.getByRole('region', { name: 'Webhooks of phone', exact: true });
  const subRow = (url) => subs.getByRole('row').filter({ hasText: url });
  expect(await add.getByLabel('Signing').inputValue() === 'hmac-sha512', 'the default signing is not hmac-sha512');

  // hmac-sha512 with a key, to the receiver that answers 410.
  const hmacKey = 'console-hmac-key';
  await add.getByLabel('Webhook URL').fill(hook('/gone'));
  await add.getByLabel('Events (comma-separated)').fill('message.any');
  await add.getByLabel('HMAC key (optional)').fill(hmacKey);
  await press(add.getByRole('button', { name: 'Add webhook' }));
  await subRow(hook('/gone')).waitFor();
  expect(await page.getByRole('group', { name: /^Signing secret/ }).count() === 0, 'an hmac-sha512 webhook showed a secret');

  // standard: no HMAC key asked for; the secret the gateway generated is shown once.
  await add.getByLabel('Webhook URL').fill(hook('/ok'));
  await add.getByLabel('Events (comma-separated)').fill('message.any');
  await add.getByLabel('Signing').selectOption('standard');
  expect(!(await add.getByLabel('HMAC key (optional)').isVisible()), 'an HMAC key is asked for a standard webhook');
  await press(add.getByRole('button', { name: 'Add webhook' }));
  const shown = page.getByRole('group', { name: `Signing secret for ${hook('/ok')}` });
  await shown.waitFor();
  const secret = (await shown.locator('code').innerText()).trim();
  expect(/^whsec_[A-Za-z0-9+/=]{32,}$/.test(secret), `the secret shown is ${secret}`);
  await subRow(hook('/ok')).waitFor();
  const okText = await subRow(hook('/ok')).innerText();
  const goneText = await subRow(hook('/gone')).innerText();
  expect(okText.includes('standard') && goneText.includes('hmac-sha512') && !goneText.includes('unsigned'),
    `the signing shown: ${okText} / ${goneText}`);
  const listed = (await api('GET', '/v1/sessions/phone/webhooks', { key })).json;
  const byUrl = Object.fromEntries(listed.map((w) => [w.webhookUrl, w]));
  expect(byUrl[hook('/ok')]?.signing === 'standard' && byUrl[hook('/gone')]?.signing === 'hmac-sha512' &&
    byUrl[hook('/gone')].signed, `the webhooks as the API lists them: ${JSON.stringify(listed)}`);
  expect(!JSON.stringify(listed).includes(secret), 'the listing shows the secret again');

  // An event: delivered to /ok, answered 410 by /gone, which disables that endpoint.
  const sent = await send(key, webhookText);
  expect(sent.status === 201, `sendText answered ${sent.status}`);
  await until(() => receipts('/ok', webhookText).length === 1 && receipts('/gone', webhookText).length === 1,
    'the event at both receivers');
  expect(standardSigned(receipts('/ok', webhookText)[0], secret), 'the Standard Webhooks signature does not verify with the secret shown');
  expect(hmacSigned(receipts('/gone', webhookText)[0], hmacKey), 'X-Webhook-Hmac does not verify with the HMAC key given');

  const show = page.getByRole('form', { name: 'Filter deliveries' }).getByRole('button', { name: 'Show' });
  const deliveries = page.getByRole('region', { name: 'Deliveries of phone', exact: true });
  const deliveryRow = (url) => deliveries.getByRole('row').filter({ hasText: url });
  await until(async () => {
    await press(show);
    return await deliveryRow(hook('/ok')).filter({ hasText: 'delivered' }).count() === 1 &&
      await deliveryRow(hook('/gone')).filter({ hasText: 'failed' }).count() === 1 &&
      await subRow(hook('/gone')).getByText('disabled', { exact: true }).count() === 1;
  }, 'a delivered and a failed delivery, and the endpoint disabled');
  const failedText = await deliveryRow(hook('/gone')).innerText();
  expect(failedText.includes('HTTP 410'), `the failed delivery says: ${failedText}`);
  expect((await subRow(hook('/gone')).innerText()).includes('410 Gone'), 'the disabled endpoint does not say why');
  expect(await subRow(hook('/ok')).getByRole('button', { name: /^Enable / }).count() === 0, 'an enabled endpoint offers Enable');
  // The table scrolls sideways on a phone: show its State and Actions columns in the screenshot.
  await subs.evaluate((el) => { el.scrollLeft = el.scrollWidth; });
  await shot(page, 'phone-webhooks');

  // Redeliver the delivered one: /ok gets the same event again.
  await press(deliveryRow(hook('/ok')).getByRole('button', { name: /^Redeliver message\.any / }));
  await until(() => receipts('/ok', webhookText).length === 2, 'the redelivered event at /ok');
  const [first, again] = receipts('/ok', webhookText);
  expect(JSON.parse(first.body).id === JSON.parse(again.body).id && standardSigned(again, secret),
    `the redelivery is not the same event, signed: ${again.body}`);

  // Enable the disabled endpoint.
  await press(subRow(hook('/gone')).getByRole('button', { name: `Enable ${hook('/gone')}` }));
  await subRow(hook('/gone')).getByText('enabled', { exact: true }).waitFor();
  const enabled = (await api('GET', '/v1/sessions/phone/webhooks', { key })).json.find((w) => w.webhookUrl === hook('/gone'));
  expect(enabled?.enabled === true, `after Enable the API says ${JSON.stringify(enabled)}`);

  // Recover failures since before the test: /gone, answering 200 now, gets the event again.
  gone.heals = true;
  const recover = page.getByRole('form', { name: 'Recover failed deliveries' });
  await recover.getByLabel('Redeliver failures since').fill(await localInput(page, startedAt - 60_000));
  await press(recover.getByRole('button', { name: 'Recover' }));
  await page.getByText(/^1 failed deliveries since .* queued again\.$/).waitFor();
  await until(() => receipts('/gone', webhookText).length === 2, 'the recovered event at /gone');
  await until(async () => {
    await press(show);
    return await deliveryRow(hook('/gone')).filter({ hasText: 'delivered' }).count() === 1;
  }, 'the recovered delivery listed as delivered');
  await shot(page, 'phone-webhooks-recovered');
  console.log('console: the tenant added two webhooks (signatures verified), redelivered, enabled and recovered');
}

async function adminViews(page, token, key) {
  await page.bringToFront(); // a background tab does not paint, so it could not be captured
  // Back to the tenant's page: the tenant's calls are in its charts now.
  await page.getByRole('link', { name: 'Tenants', exact: true }).click();
  await page.getByRole('link', { name: tenantName }).click();
  const perEndpoint = page.getByRole('img', { name: new RegExp(`^Calls per endpoint of ${tenantName}.*sendText`) });
  for (let i = 0; i < 20 && !(await perEndpoint.isVisible()); i += 1) {
    // Usage is flushed to the rollups every second: reload the page until the chart shows.
    await page.waitForTimeout(500); // poll
    await page.getByRole('link', { name: 'Tenants', exact: true }).click();
    await page.getByRole('link', { name: tenantName }).click();
  }
  await perEndpoint.waitFor({ timeout: 5_000 });
  await page.getByRole('heading', { name: tenantName, level: 1 }).scrollIntoViewIfNeeded();
  await shot(page, 'tenant-usage'); // docs/console.png, the README's screenshot, is a copy
  await organisation(page, token, key);
  const throwawayId = await tenantsAndThrowaway(page, token);
  await tenantPageActions(page, token, key);
  await adminDeliveries(page);
  await auditLog(page, throwawayId);
  await noCredentialLeft(page, token, 'admin');
}

async function organisation(page, token, key) {
  // One call whose credentials the upstream refuses (a fault in the simulator): 502 to the
  // tenant, one credential failure in the organisation's figures.
  const fault = await sim('POST', '/_sim/faults', { path: '/v1/sendText', method: 'POST', status: 401, count: 1 });
  expect(fault.status < 300, `the simulator refused the fault: ${fault.status} ${JSON.stringify(fault.json)}`);
  const refused = await send(key, 'refused upstream');
  expect(refused.status === 502, `sendText with the organisation's credentials refused answered ${refused.status}`);
  await page.getByRole('link', { name: 'Organisation', exact: true }).click();
  await page.getByRole('img', { name: /^Calls per day of all tenants/ }).waitFor();
  await page.getByText('Fair queue').waitFor();
  const card = async (term) => (await page.locator('.card')
    .filter({ has: page.locator('dt', { hasText: new RegExp(`^${term}$`) }) })
    .locator('dd').innerText()).split('\n')[0].trim();
  const n = (v) => Number(v).toLocaleString('en');
  let seen = '';
  await until(async () => {
    const u = (await api('GET', '/admin/v1/upstream', { token })).json;
    const shown = {
      used: await card('Month used'), left: await card('Month left'),
      rps: await card('Per-second budget'), failures: await card('Credential failures'),
    };
    const want = {
      used: `${n(u.used_this_month)} of ${n(u.monthly)}`, left: n(u.monthly - u.used_this_month),
      rps: `${u.rps} calls/s`, failures: `${u.upstream_credential_refusals} (since this replica started)`,
    };
    seen = JSON.stringify({ shown, want });
    return u.monthly === 100_000 && u.rps === 100 && u.upstream_credential_refusals === 1 && u.used_this_month > 0 &&
      JSON.stringify(shown) === JSON.stringify(want);
  }, () => `the organisation's figures to be the API's: ${seen}`, 12_000);
  await shot(page, 'organisation');
  console.log(`console: organisation figures as the API's: ${seen}`);
}

/** The tenants list's search; a tenant made with the keyboard only, given an upstream
 * session, then deleted. Answers the deleted tenant's id. */
async function tenantsAndThrowaway(page, token) {
  await page.getByRole('link', { name: 'Tenants', exact: true }).click();
  const list = page.getByRole('region', { name: 'Tenants', exact: true });
  const rows = list.locator('tbody tr');
  await list.getByRole('link', { name: tenantName }).waitFor();
  await list.getByRole('link', { name: 'browser', exact: true }).waitFor();
  const everyone = await rows.count();
  const search = page.getByLabel('Search tenants');
  await search.fill(tenantName);
  await until(async () => await rows.count() === 1, 'the search to leave one tenant');
  expect(await list.getByRole('link', { name: tenantName }).count() === 1, 'the search hid the tenant searched for');
  await search.fill('no-such-tenant');
  await page.getByText('No tenant matches the search.').waitFor();
  await search.fill('');
  await until(async () => await rows.count() === everyone, 'every tenant back after clearing the search');

  // Keyboard only: Tab from the search to "New tenant", Enter opens its form on Name, Enter creates.
  await search.focus();
  await page.keyboard.press('Tab');
  const focused = await page.evaluate(() => document.activeElement?.textContent);
  expect(focused === 'New tenant', `Tab from the search went to ${focused}`);
  await page.keyboard.press('Enter');
  await until(() => page.evaluate(() => document.querySelector(`label[for="${document.activeElement?.id}"]`)?.textContent === 'Name'),
    'the focus on Name once "New tenant" is pressed');
  await page.keyboard.type(throwawayName);
  await page.keyboard.press('Enter');
  await page.getByText(`Tenant ${throwawayName} created.`).waitFor();
  const row = list.getByRole('row').filter({ hasText: throwawayName });
  await row.waitFor();
  expect(/\bpro\b/.test(await row.innerText()) && /\bactive\b/.test(await row.innerText()), `the new row: ${await row.innerText()}`);
  const made = (await api('GET', '/admin/v1/tenants?per_page=200', { token })).json.items.find((t) => t.name === throwawayName);
  expect(made?.plan === 'pro' && made.status === 'active', `the tenant made with the keyboard: ${JSON.stringify(made)}`);

  // An upstream session no tenant owns (a phone paired before the gateway), adopted. Started:
  // the gateway lists the upstream's sessions without `all=true`, so a STOPPED one is not seen.
  const upstreamName = `legacy-${Date.now().toString(36)}`;
  const legacy = await sim('POST', '/v1/sessions', { name: upstreamName, start: true });
  expect(legacy.status === 201, `the simulator made no session: ${legacy.status} ${JSON.stringify(legacy.json)}`);
  await list.getByRole('link', { name: throwawayName }).click();
  await page.getByRole('heading', { name: throwawayName, level: 1 }).waitFor();
  const adopt = page.getByRole('form', { name: 'Adopt a session' });
  await adopt.getByLabel('Upstream session').selectOption(upstreamName);
  await adopt.getByLabel('Session name for the tenant').fill('legacy');
  await press(adopt.getByRole('button', { name: 'Adopt' }));
  const sessions = page.getByRole('region', { name: `Sessions of ${throwawayName}`, exact: true });
  await sessions.getByRole('row').filter({ hasText: upstreamName }).filter({ hasText: 'legacy' }).waitFor();
  await page.getByText('No upstream session without a tenant to adopt.').waitFor();
  const owned = (await api('GET', '/admin/v1/sessions', { token })).json.find((x) => x.upstream_name === upstreamName);
  expect(owned?.tenant_id === made.id && owned.name === 'legacy', `after Adopt the API says ${JSON.stringify(owned)}`);
  await shot(page, 'tenant-adopted');

  // Delete, with a confirmation naming the tenant: cancelled, it stays; confirmed, it goes.
  const dialog = page.getByRole('dialog');
  await page.getByRole('button', { name: 'Delete tenant' }).click();
  await dialog.waitFor();
  const question = await dialog.innerText();
  expect(question.includes(`Delete the tenant ${throwawayName}?`), `the confirmation says: ${question}`);
  await shot(page, 'tenant-delete-confirm');
  await dialog.getByRole('button', { name: 'Cancel' }).click();
  await dialog.waitFor({ state: 'detached' });
  expect((await api('GET', `/admin/v1/tenants/${made.id}`, { token })).status === 200, 'a cancelled deletion deleted the tenant');
  await page.getByRole('heading', { name: throwawayName, level: 1 }).waitFor();
  await page.getByRole('button', { name: 'Delete tenant' }).click();
  await dialog.getByRole('button', { name: `Delete ${throwawayName}` }).click();
  await page.getByRole('heading', { name: 'Tenants', level: 1 }).waitFor();
  await list.getByRole('link', { name: tenantName }).waitFor();
  expect(await list.getByRole('link', { name: throwawayName }).count() === 0, 'the deleted tenant is still listed');
  expect((await api('GET', `/admin/v1/tenants/${made.id}`, { token })).status === 404, 'the deleted tenant is still there');
  expect((await sim('GET', `/_sim/sessions/${upstreamName}`)).status === 404, 'the deleted tenant\'s upstream session is still there');
  console.log(`console: searched the tenants, made ${throwawayName} with the keyboard, adopted ${upstreamName}, deleted it`);
  return made.id;
}

/** The first tenant's page: sessions, keys (copy, rotate, revoke), plan, refusals, top-up,
 * reset, suspend and resume. */
async function tenantPageActions(page, token, key) {
  const open = async () => {
    await page.getByRole('link', { name: 'Tenants', exact: true }).click();
    await page.getByRole('region', { name: 'Tenants', exact: true }).getByRole('link', { name: tenantName }).click();
    await page.getByRole('heading', { name: tenantName, level: 1 }).waitFor();
  };
  await open();
  const id = page.url().match(/#\/tenants\/([0-9a-f-]{36})$/)[1];
  const sessions = page.getByRole('region', { name: `Sessions of ${tenantName}`, exact: true });
  await sessions.getByRole('row').filter({ hasText: 'phone' }).filter({ hasText: 'WORKING' }).waitFor();

  // A key: copied, rotated with a grace period (the new key shown once), the old one revoked.
  const keys = page.getByRole('region', { name: `Keys of ${tenantName}`, exact: true });
  const clipboard = () => page.evaluate(() => navigator.clipboard.readText());
  await page.getByRole('button', { name: 'New key' }).click();
  const newKey = page.getByRole('form', { name: 'New key' });
  await newKey.getByLabel('Name').fill('spare');
  await press(newKey.getByRole('button', { name: 'Create' }));
  const spareBox = page.getByRole('group', { name: 'New key spare' });
  const spare = (await spareBox.locator('code.key').innerText()).trim();
  await spareBox.getByRole('button', { name: 'Copy' }).click();
  await spareBox.getByText('Copied.').waitFor();
  expect(await clipboard() === spare, 'Copy did not put the key on the clipboard');
  expect((await api('GET', '/v1/me', { key: spare })).status === 200, 'the new key does not work');
  await page.getByLabel('Grace when rotating (seconds)').fill('600');
  await press(keys.getByRole('button', { name: 'Rotate key spare' }));
  const rotatedBox = page.getByRole('group', { name: 'New key for spare' });
  const rotated = (await rotatedBox.locator('code.key').innerText()).trim();
  expect(/^wagw_/.test(rotated) && rotated !== spare, `the rotated key shown is ${rotated}`);
  const graceText = await page.getByText(/^The old key works until /).innerText();
  const validUntil = Date.parse(`${graceText.match(/(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d) UTC/).slice(1).join('T')}Z`);
  expect(Math.abs(validUntil - (Date.now() + 600_000)) < 60_000, `600 s of grace, but: ${graceText}`);
  await rotatedBox.getByRole('button', { name: 'Copy' }).click();
  await rotatedBox.getByText('Copied.').waitFor();
  expect(await clipboard() === rotated, 'Copy did not put the rotated key on the clipboard');
  expect((await api('GET', '/v1/me', { key: rotated })).status === 200 && (await api('GET', '/v1/me', { key: spare })).status === 200,
    'during the grace period both keys should work');
  const oldRow = keys.getByRole('row').filter({ hasText: '(rotated)' });
  await oldRow.getByRole('button', { name: 'Revoke key spare' }).click();
  const dialog = page.getByRole('dialog');
  const question = await dialog.innerText();
  expect(question.includes(`Revoke the key spare of ${tenantName}?`), `the confirmation says: ${question}`);
  await dialog.getByRole('button', { name: 'Revoke spare' }).click();
  await keys.getByRole('row').filter({ hasText: /revoked \d{4}-/ }).waitFor();
  expect((await api('GET', '/v1/me', { key: spare })).status === 401, 'the revoked key still works');
  expect((await api('GET', '/v1/me', { key: rotated })).status === 200, 'revoking the old key stopped the new one');
  await shot(page, 'tenant-keys');

  // Plan and quotas: custom, 2 calls a month (fewer than used), so the next call is refused.
  const plan = page.getByRole('form', { name: 'Plan and quotas' });
  await plan.getByLabel('Plan').selectOption('custom');
  await plan.getByLabel('Monthly requests').fill('2');
  await plan.getByLabel('Requests per second').fill('50');
  await plan.getByLabel('Max sessions').fill('5');
  await press(plan.getByRole('button', { name: 'Save plan' }));
  await page.getByText('Monthly requests 2, 50 per second, 5 sessions.').waitFor();
  await page.getByText(/^Plan custom, active/).waitFor();
  const saved = (await api('GET', `/admin/v1/tenants/${id}`, { token })).json;
  expect(saved.plan === 'custom' && saved.quota.monthly_requests === 2 && saved.quota.requests_per_second === 50 &&
    saved.quota.max_sessions === 5, `after Save plan the API says ${JSON.stringify(saved)}`);
  const over = await send(key, 'over the quota');
  expect(over.status === 429, `a call over the monthly quota answered ${over.status}`);
  const refusals = page.getByRole('img', { name: new RegExp(`^Calls refused for ${tenantName} by reason, [0-9-]+: .*monthly quota [1-9]`) });
  await until(async () => {
    await open();
    return refusals.isVisible();
  }, 'the refusal in the refusals chart');

  // Top-up, then reset: the month's allowance and what is left change, as the API says.
  const usage = page.getByRole('region', { name: 'Usage this month', exact: true });
  const figures = async () => {
    const text = await usage.getByText(/ calls used of /).innerText();
    const m = text.match(/: ([\d,]+) calls used of ([\d,]+); ([\d,]+) left/);
    const num = (v) => Number(v.replaceAll(',', ''));
    return m && { used: num(m[1]), limit: num(m[2]), left: num(m[3]) };
  };
  const report = async () => {
    const r = (await api('GET', `/admin/v1/tenants/${id}/usage`, { token })).json;
    return { used: r.used, limit: r.limit, left: r.remaining };
  };
  const before = await figures();
  expect(before?.limit === 2 && before.left === 0 && before.used > 2, `before the top-up: ${JSON.stringify(before)}`);
  const topUp = page.getByRole('form', { name: 'Top up' });
  await topUp.getByLabel('Requests to add').fill('1000');
  await press(topUp.getByRole('button', { name: 'Top up' }));
  const toppedUp = await until(async () => {
    const f = await figures();
    return f?.limit === 1002 ? f : null;
  }, 'the top-up in the figures');
  expect(toppedUp.left > 0 && JSON.stringify(toppedUp) === JSON.stringify(await report()),
    `after the top-up: ${JSON.stringify(toppedUp)}, the API: ${JSON.stringify(await report())}`);
  expect((await send(key, 'after the top-up')).status === 201, 'the tenant is still refused after the top-up');
  await page.getByRole('button', { name: 'Reset the month' }).click();
  expect((await dialog.innerText()).includes(`Reset this month's usage of ${tenantName} to zero?`), 'the reset asks nothing');
  await dialog.getByRole('button', { name: `Reset ${tenantName}` }).click();
  const reset = await until(async () => {
    const f = await figures();
    return f && f.limit !== toppedUp.limit ? f : null;
  }, 'the reset in the figures');
  // What is left is the whole quota again (2), with what the replica holds of its lease.
  const afterReset = await report();
  expect(reset.left >= 2 && reset.left < toppedUp.left && reset.left === afterReset.left && reset.limit === afterReset.limit,
    `after the reset: ${JSON.stringify(reset)}, the API: ${JSON.stringify(afterReset)}`);
  console.log(`console: top-up ${JSON.stringify(before)} -> ${JSON.stringify(toppedUp)}, reset -> ${JSON.stringify(reset)}`);

  // Suspend: the status shows, the list finds it by status, its key is refused; Resume.
  await press(page.getByRole('button', { name: 'Suspend' }));
  await page.getByText(/^Plan custom, suspended/).waitFor();
  await page.getByRole('button', { name: 'Resume' }).waitFor();
  expect((await api('GET', '/v1/me', { key })).status === 403, 'the suspended tenant\'s key still works');
  await page.getByRole('link', { name: 'Tenants', exact: true }).click();
  const list = page.getByRole('region', { name: 'Tenants', exact: true });
  await page.getByLabel('Search tenants').fill('suspended');
  await until(async () => await list.locator('tbody tr').count() === 1 &&
    await list.getByRole('row').filter({ hasText: tenantName }).filter({ hasText: 'suspended' }).count() === 1,
  'the search by status to find the suspended tenant alone');
  await shot(page, 'tenants-suspended');
  await list.getByRole('link', { name: tenantName }).click();
  await press(page.getByRole('button', { name: 'Resume' }));
  await page.getByText(/^Plan custom, active/).waitFor();
  expect((await api('GET', '/v1/me', { key })).status === 200, 'the resumed tenant\'s key is refused');
  await shot(page, 'tenant-edited');
  console.log('console: copied, rotated and revoked a key; edited the plan, saw the refusal; topped up, reset, suspended, resumed');
}

async function adminDeliveries(page) {
  await page.getByRole('link', { name: 'Webhook deliveries', exact: true }).click();
  await page.getByRole('heading', { name: 'Webhook deliveries', level: 1 }).waitFor();
  const filters = page.getByRole('form', { name: 'Filter deliveries' });
  await filters.getByRole('option', { name: tenantName }).waitFor({ state: 'attached' });
  await filters.getByLabel('Tenant').selectOption({ label: tenantName });
  await filters.getByLabel('Status').selectOption('delivered');
  await press(filters.getByRole('button', { name: 'Show' }));
  const found = page.getByRole('region', { name: 'Webhook deliveries', exact: true });
  const okRows = found.getByRole('row').filter({ hasText: hook('/ok') });
  await okRows.first().waitFor();
  expect(await found.getByRole('row').filter({ hasText: hook('/gone') }).count() >= 1, 'the recovered delivery is not listed');
  for (const text of await found.locator('tbody tr').allInnerTexts()) {
    expect(text.includes(tenantName) && text.includes('phone') && text.includes('delivered') && text.includes('HTTP 200'),
      `a row the filters should have left out: ${text}`);
  }
  await shot(page, 'deliveries');
  const before = received.filter((r) => r.path === '/ok').length;
  await press(okRows.first().getByRole('button', { name: /^Redeliver message\.any / }));
  await until(() => received.filter((r) => r.path === '/ok').length === before + 1, 'the admin\'s redelivery at /ok');
  console.log('console: the admin redelivered a delivery');
}

async function auditLog(page, throwawayId) {
  await page.getByRole('link', { name: 'Audit log', exact: true }).click();
  const filters = page.getByRole('form', { name: 'Filter the audit log' });
  const log = page.getByRole('region', { name: 'Audit log', exact: true });
  const column = (n) => log.locator(`tbody tr td:nth-child(${n})`).allInnerTexts();
  const apply = () => press(filters.getByRole('button', { name: 'Filter' }));
  const none = page.getByText('No entries match.');
  await filters.getByLabel('Action').fill('tenant.create');
  await apply();
  await page.getByRole('cell', { name: 'tenant.create' }).first().waitFor();
  expect((await column(3)).every((a) => a === 'tenant.create'), 'the Action filter let other actions through');
  // Target: the deleted tenant's creation and deletion.
  await filters.getByLabel('Action').fill('');
  await filters.getByLabel('Target id').fill(throwawayId);
  await apply();
  expect((await column(3)).sort().join() === 'tenant.create,tenant.delete', `on the throwaway tenant: ${await column(3)}`);
  expect((await column(4)).every((t) => t.includes(throwawayId)), 'the Target filter let other targets through');
  // Admin.
  await filters.getByLabel('Target id').fill('');
  await filters.getByLabel('Admin').fill('nobody-at-all');
  await apply();
  await none.waitFor();
  await filters.getByLabel('Admin').fill(adminUser);
  await filters.getByLabel('Action').fill('key.revoke');
  await apply();
  expect((await column(3)).join() === 'key.revoke' && (await column(2)).join() === adminUser,
    `the admin's revocations: ${await column(2)} ${await column(3)}`);
  // Time: nothing of this admin's before the test; the revocation since it started.
  await filters.getByLabel('Until').fill(await localInput(page, startedAt - 120_000));
  await apply();
  await none.waitFor();
  await filters.getByLabel('Until').fill('');
  await filters.getByLabel('Since').fill(await localInput(page, startedAt - 120_000));
  await apply();
  expect((await column(3)).join() === 'key.revoke', `since the test started: ${await column(3)}`);
  await filters.getByLabel('Since').fill(await localInput(page, Date.now() + 120_000));
  await apply();
  await none.waitFor();
  await filters.getByLabel('Since').fill('');
  await filters.getByLabel('Admin').fill('');
  await filters.getByLabel('Target id').fill(throwawayId);
  await filters.getByLabel('Action').fill('');
  await apply();
  await shot(page, 'audit');
  console.log('console: the audit log filtered by action, target, admin and time');
}

const adminPage = browser.pages()[0] ?? (await browser.newPage());
watch(adminPage, 'admin');
try {
  const load = await measureFirstLoad(adminPage);
  console.log(`console: first load ${load.load} ms to the load event (DOMContentLoaded ${load.domContentLoaded} ms, ` +
    `${load.wall} ms to the sign-in form), ${load.files} files, ${load.bytes} bytes (${load.transferred} transferred)`);
  writeFileSync(join(output, 'console-load.json'), JSON.stringify(load, null, 2));
  let token = null;
  adminPage.on('response', async (r) => {
    if (r.url().endsWith('/admin/v1/login') && r.ok()) token = (await r.json()).access_token;
  });
  await adminSignsIn(adminPage);
  await shot(adminPage, 'tenants');
  const key = await adminCreatesTenantAndKey(adminPage);

  // A page of its own: the console keeps each sign-in in its page's memory.
  const phonePage = await browser.newPage();
  await phonePage.setViewportSize({ width: 390, height: 844 });
  await phonePage.bringToFront();
  watch(phonePage, 'tenant');
  await tenantOnboardsAPhone(phonePage, key);
  await tenantViews(phonePage, key);
  const width = await phonePage.evaluate(() => document.documentElement.scrollWidth);
  expect(width <= 390, `the phone view scrolls sideways (${width} px wide)`);

  await adminViews(adminPage, token, key);
  if (problems.length) fail(`problems in the page:\n${problems.join('\n')}`);
} catch (e) {
  for (const [i, page] of browser.pages().entries()) {
    await page.screenshot({ path: join(output, `console-failure-${i}.png`), fullPage: true }).catch(() => {});
    console.error(`page ${i} at ${page.url()}:\n${await page.locator('main').innerText().catch(() => '?')}`);
  }
  throw e;
} finally {
  await browser.close();
  receiver.close();
  rmSync(profile, { recursive: true, force: true });
}
console.log(`console: screenshots in ${output}`);

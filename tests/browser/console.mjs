// The console at /console in a real browser, against a sandbox gateway:
// - an admin signs in with the keyboard only (Tab, Enter), sees the tenants list, gets the
//   API's own error next to the form for a tenant without a name, creates a tenant and a key
//   (the key shown once, as text) and sees the tenant's usage charts;
// - the tenant signs in with that key on a phone-sized window, creates a session, sees its QR
//   code until the sandbox scans it, then WORKING; its usage, webhooks and live events views;
// - the admin's other views (organisation, deliveries, audit log) render.
// It also checks that no credential reaches storage or the URL, that the CSP is never
// violated, and measures the page weight and the first load. Screenshots go to OUTPUT_DIR.
//
// Env: GATEWAY_URL, ADMIN_USER, ADMIN_PASSWORD, CHROMIUM (default /usr/bin/chromium),
// OUTPUT_DIR (default ../output). Run through scripts/browser-test.sh.
import { chromium } from 'playwright-core';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const base = process.env.GATEWAY_URL;
const adminUser = process.env.ADMIN_USER;
const adminPassword = process.env.ADMIN_PASSWORD;
const output = process.env.OUTPUT_DIR ?? join(here, '..', 'output');
if (!base || !adminUser || !adminPassword) {
  console.error('GATEWAY_URL, ADMIN_USER and ADMIN_PASSWORD are required (run scripts/browser-test.sh)');
  process.exit(2);
}
const tenantName = `console-${Date.now().toString(36)}`;

function fail(message) {
  throw new Error(message);
}

function expect(condition, message) {
  if (!condition) fail(message);
}

mkdirSync(output, { recursive: true });
const profile = mkdtempSync(join(tmpdir(), 'wagw-chromium-'));
const browser = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  viewport: { width: 1280, height: 900 },
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});

const problems = [];
function watch(page, who) {
  page.on('pageerror', (e) => problems.push(`${who}: page error ${e}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && !/status of (4|5)\d\d/.test(m.text())) problems.push(`${who}: console error ${m.text()}`);
  });
  page.on('requestfailed', (r) => {
    // The event stream, closed on purpose by leaving its view.
    if (!r.url().includes('/v1/events/stream')) problems.push(`${who}: request failed ${r.url()} ${r.failure()?.errorText}`);
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
  await page.getByRole('link', { name: 'Webhooks', exact: true }).click();
  await page.getByRole('heading', { name: 'Subscriptions' }).waitFor();
  await shot(page, 'phone-webhooks');
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
  await noCredentialLeft(page, key, 'tenant');
}

async function adminViews(page, token) {
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
  await page.getByRole('link', { name: 'Organisation', exact: true }).click();
  await page.getByRole('img', { name: /^Calls per day of all tenants/ }).waitFor();
  await page.getByText('Fair queue').waitFor();
  await shot(page, 'organisation');
  await page.getByRole('link', { name: 'Webhook deliveries', exact: true }).click();
  await page.getByRole('heading', { name: 'Webhook deliveries', level: 1 }).waitFor();
  await shot(page, 'deliveries');
  await page.getByRole('link', { name: 'Audit log', exact: true }).click();
  await page.getByLabel('Action').fill('tenant.create');
  await page.getByRole('button', { name: 'Filter' }).click();
  await page.getByRole('cell', { name: 'tenant.create' }).first().waitFor();
  await shot(page, 'audit');
  await noCredentialLeft(page, token, 'admin');
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

  await adminViews(adminPage, token);
  if (problems.length) fail(`problems in the page:\n${problems.join('\n')}`);
} catch (e) {
  for (const [i, page] of browser.pages().entries()) {
    await page.screenshot({ path: join(output, `console-failure-${i}.png`), fullPage: true }).catch(() => {});
    console.error(`page ${i} at ${page.url()}:\n${await page.locator('main').innerText().catch(() => '?')}`);
  }
  throw e;
} finally {
  await browser.close();
  rmSync(profile, { recursive: true, force: true });
}
console.log(`console: screenshots in ${output}`);

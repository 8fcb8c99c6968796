// The console's entry: sign-in, the navigation and the views, routed by the URL's fragment
// (`#/tenants`, `#/sessions`...). The fragment never carries a credential.

import { signInAdmin, signInTenant, signedIn, signOut } from './api.js';
import { h, fill, field, form } from './dom.js';
import * as admin from './admin.js';
import * as tenant from './tenant.js';

const main = document.getElementById('main');
const nav = document.getElementById('nav');
const who = document.getElementById('who');

const ADMIN_VIEWS = [
  ['#/tenants', 'Tenants', admin.tenants],
  ['#/organisation', 'Organisation', admin.organisation],
  ['#/deliveries', 'Webhook deliveries', admin.deliveries],
  ['#/audit', 'Audit log', admin.audit],
];
const TENANT_VIEWS = [
  ['#/sessions', 'Sessions', tenant.sessions],
  ['#/usage', 'Usage', tenant.usage],
  ['#/webhooks', 'Webhooks', tenant.webhooks],
  ['#/events', 'Live events', tenant.events],
];

let cleanup = null;

function views() {
  const c = signedIn();
  if (!c) return [];
  return c.kind === 'admin' ? ADMIN_VIEWS : TENANT_VIEWS;
}

/** The view the fragment names: `[hash, title, render, argument]`. */
function resolve(hash) {
  const list = views();
  const tenantPage = hash.match(/^#\/tenants\/([0-9a-f-]{36})$/);
  if (signedIn()?.kind === 'admin' && tenantPage) {
    return ['#/tenants', 'Tenant', admin.tenantPage, tenantPage[1]];
  }
  return list.find(([path]) => path === hash) ?? list[0];
}

function renderNav(current) {
  const c = signedIn();
  nav.hidden = !c;
  who.replaceChildren();
  if (!c) {
    nav.replaceChildren();
    return;
  }
  fill(nav, h('ul', {}, views().map(([path, title]) =>
    h('li', {}, h('a', { href: path, 'aria-current': path === current ? 'page' : null }, title)))));
  const name = c.kind === 'admin' ? `admin ${c.username}` : `tenant ${c.me.tenant.name} (key ${c.me.key.name})`;
  fill(who, h('span', { class: 'muted' }, `Signed in as ${name}`), ' ',
    h('button', { type: 'button', onclick: () => { signOut(); history.pushState(null, '', '#'); route(); } }, 'Sign out'));
}

async function route() {
  if (cleanup) cleanup();
  cleanup = null;
  if (!signedIn()) {
    renderNav(null);
    signInView();
    return;
  }
  const [path, , render, arg] = resolve(location.hash);
  if (location.hash !== path && !location.hash.startsWith(`${path}/`)) {
    history.replaceState(null, '', path);
  }
  renderNav(path);
  const view = h('div', { class: 'view' });
  fill(main, view);
  cleanup = render(view, arg) ?? null;
  // Move focus to the new view's heading, so keyboard and screen-reader users follow along.
  requestAnimationFrame(() => main.querySelector('h1')?.focus());
}

function signInView() {
  const username = field('Username', { autocomplete: 'username', name: 'username' });
  const password = field('Password', { type: 'password', autocomplete: 'current-password', name: 'password' });
  const key = field('API key', { type: 'password', autocomplete: 'off', name: 'key', spellcheck: 'false' });
  const adminFields = h('div', {}, username.row, password.row);
  const tenantFields = h('div', { hidden: true }, key.row);
  const asAdmin = h('input', { type: 'radio', name: 'as', value: 'admin', id: 'as-admin', checked: true });
  const asTenant = h('input', { type: 'radio', name: 'as', value: 'tenant', id: 'as-tenant' });
  const choose = () => {
    adminFields.hidden = !asAdmin.checked;
    tenantFields.hidden = asAdmin.checked;
  };
  asAdmin.addEventListener('change', choose);
  asTenant.addEventListener('change', choose);
  const kind = h('fieldset', { class: 'choice' }, h('legend', {}, 'Sign in as'),
    h('label', { for: 'as-admin' }, asAdmin, ' Admin'),
    h('label', { for: 'as-tenant' }, asTenant, ' Tenant'));
  const { el } = form('Sign in', [kind, adminFields, tenantFields], 'Sign in', async () => {
    if (asAdmin.checked) await signInAdmin(username.input.value, password.input.value);
    else await signInTenant(key.input.value.trim());
    password.input.value = '';
    key.input.value = '';
    history.pushState(null, '', signedIn().kind === 'admin' ? '#/tenants' : '#/sessions');
    route();
  });
  fill(main, h('div', { class: 'view signin' },
    h('h1', { tabindex: -1 }, 'Sign in to the console'),
    h('p', { class: 'muted' }, 'Admins sign in with their username and password; a team with its tenant API key. ' +
      'The credential stays in this tab\u2019s memory only: reloading or closing the tab signs out.'),
    el));
  requestAnimationFrame(() => username.input.focus());
}

window.addEventListener('hashchange', route);
route();

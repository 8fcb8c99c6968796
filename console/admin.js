// The admin views: tenants (list, create, one tenant's page with keys, sessions and usage),
// the organisation's standing with the upstream, webhook deliveries, the audit log. Each is a
// client of `/admin/v1`; every error is shown next to the control that caused it.

import { call, seg, query } from './api.js';
import {
  h, fill, field, form, errorSlot, action, confirm, shownOnce, table, when, number, section, describe, disclosure,
} from './dom.js';
import { columns, rows, meter, monthDays } from './charts.js';

const PLANS = ['basic', 'pro', 'ultra', 'mega', 'custom'].map((p) => [p, p]);
const SCOPES = ['sessions:read', 'sessions:write', 'messages:send', 'groups:read', 'groups:write',
  'channels:read', 'channels:write', 'contacts:read', 'presence:read', 'presence:write',
  'webhooks:read', 'webhooks:write', 'usage:read', 'events:read'];

function heading(text) {
  return h('h1', { tabindex: -1 }, text);
}

/** Renders `load()` into `el` (with a loading line, and the error in words if it fails). */
async function loadInto(el, load) {
  fill(el, h('p', { class: 'muted' }, 'Loading…'));
  try {
    await load();
  } catch (e) {
    fill(el, h('p', { class: 'error', role: 'alert' }, describe(e)));
  }
}

async function allTenants() {
  const page = await call('GET', `/admin/v1/tenants${query({ per_page: 200 })}`);
  return page;
}

// ---- tenants -------------------------------------------------------------------------------

export function tenants(view) {
  const status = h('p', { role: 'status', class: 'muted' });
  const search = field('Search tenants', { type: 'search', placeholder: 'name, plan or status' });
  const list = h('div');
  const creator = h('div', { class: 'panel' });
  const toggle = disclosure('New tenant', creator);
  let loaded = [];
  const render = () => {
    const q = search.input.value.trim().toLowerCase();
    const shown = loaded.filter(({ t }) => !q || [t.name, t.plan, t.status].some((v) => v.includes(q)));
    fill(list, table('Tenants', ['Name', 'Plan', 'Status', 'Month used', 'Created'], shown.map(({ t, usage }) => [
      h('a', { href: `#/tenants/${t.id}` }, t.name),
      t.plan,
      h('span', { class: `badge ${t.status}` }, t.status),
      usage ? h('span', { class: 'used' }, meter(`${t.name} month used`, usage.used, usage.limit),
        ` ${number(usage.used)} / ${number(usage.limit)}`) : 'unknown',
      when(t.created_at),
    ]), q ? 'No tenant matches the search.' : 'No tenants yet: create one with "New tenant".'));
  };
  const refresh = () => loadInto(list, async () => {
    const page = await allTenants();
    const usages = await Promise.all(page.items.map((t) =>
      call('GET', `/admin/v1/tenants/${t.id}/usage`).catch(() => null)));
    loaded = page.items.map((t, i) => ({ t, usage: usages[i] }));
    render();
    if (page.total > page.items.length) {
      list.append(h('p', { class: 'muted' }, `Showing the first ${page.items.length} of ${page.total} tenants.`));
    }
  });
  search.input.addEventListener('input', render);
  creator.append(newTenantForm(async (t) => {
    status.textContent = `Tenant ${t.name} created.`;
    toggle.close();
    await refresh();
  }));
  fill(view, heading('Tenants'), h('div', { class: 'toolbar' }, search.row, toggle.button), creator, status, list);
  refresh();
}

function quotaFields() {
  const monthly = field('Monthly requests', { type: 'number', min: 0, inputmode: 'numeric', placeholder: 'unlimited' });
  const rps = field('Requests per second', { type: 'number', min: 0, inputmode: 'numeric', placeholder: 'unlimited' });
  const sessions = field('Max sessions', { type: 'number', min: 0, inputmode: 'numeric', placeholder: 'unlimited' });
  const value = (f) => (f.input.value.trim() === '' ? null : Number(f.input.value));
  return {
    rows: [monthly.row, rps.row, sessions.row],
    set(q) {
      monthly.input.value = q?.monthly_requests ?? '';
      rps.input.value = q?.requests_per_second ?? '';
      sessions.input.value = q?.max_sessions ?? '';
    },
    get: () => ({ monthly_requests: value(monthly), requests_per_second: value(rps), max_sessions: value(sessions) }),
  };
}

function newTenantForm(created) {
  const name = field('Name', { autocomplete: 'off', spellcheck: 'false' });
  const plan = field('Plan', { value: 'pro' }, PLANS);
  const quota = quotaFields();
  const custom = h('fieldset', { hidden: true }, h('legend', {}, 'Quota of the custom plan (empty: unlimited)'), quota.rows);
  plan.input.addEventListener('change', () => { custom.hidden = plan.input.value !== 'custom'; });
  const { el } = form('New tenant', [name.row, plan.row, custom], 'Create', async () => {
    const body = { name: name.input.value.trim(), plan: plan.input.value };
    if (body.plan === 'custom') body.quota = quota.get();
    const t = await call('POST', '/admin/v1/tenants', body);
    name.input.value = '';
    await created(t);
  });
  return el;
}

// ---- one tenant ----------------------------------------------------------------------------

export function tenantPage(view, id) {
  let stopped = false;
  const title = heading('Tenant');
  const summary = h('p', { class: 'muted' });
  const settings = h('div');
  const keys = h('div');
  const usage = h('div');
  const sessions = h('div');
  fill(view, h('p', {}, h('a', { href: '#/tenants' }, '← All tenants')), title, summary,
    section('Plan, quotas and status', settings), section('Keys', keys),
    section('Usage this month', usage), section('Sessions', sessions));
  const load = async () => {
    const t = await call('GET', `/admin/v1/tenants/${id}`);
    if (stopped) return;
    title.textContent = t.name;
    summary.textContent = `Plan ${t.plan}, ${t.status}, created ${when(t.created_at)}. Id ${t.id}.`;
    renderSettings(settings, t, load);
    tenantKeys(keys, t);
    tenantUsage(usage, t);
    tenantSessions(sessions, t);
  };
  loadInto(settings, load);
  return () => { stopped = true; };
}

function renderSettings(el, t, reload) {
  const plan = field('Plan', { value: t.plan }, PLANS);
  const quota = quotaFields();
  quota.set(t.quota);
  const custom = h('fieldset', { hidden: t.plan !== 'custom' }, h('legend', {}, 'Quota (empty: unlimited)'), quota.rows);
  plan.input.addEventListener('change', () => { custom.hidden = plan.input.value !== 'custom'; });
  const current = h('p', { class: 'muted' }, `Monthly requests ${number(t.quota.monthly_requests)}, ` +
    `${number(t.quota.requests_per_second)} per second, ${number(t.quota.max_sessions)} sessions.`);
  const { el: edit } = form('Plan and quotas', [plan.row, custom], 'Save plan', async () => {
    const body = { plan: plan.input.value };
    if (body.plan === 'custom') body.quota = quota.get();
    await call('PATCH', `/admin/v1/tenants/${t.id}`, body);
    await reload();
  });
  const slot = errorSlot();
  const suspended = t.status === 'suspended';
  const flip = action(suspended ? 'Resume' : 'Suspend', slot, async () => {
    await call('PATCH', `/admin/v1/tenants/${t.id}`, { status: suspended ? 'active' : 'suspended' });
    await reload();
  });
  const remove = action('Delete tenant', slot, async () => {
    const sure = await confirm(`Delete the tenant ${t.name}? Its keys are revoked and its sessions, ` +
      'usage and webhooks deleted. This cannot be undone.', `Delete ${t.name}`);
    if (!sure) return;
    await call('DELETE', `/admin/v1/tenants/${t.id}`);
    location.hash = '#/tenants';
  }, { class: 'danger' });
  fill(el, current, edit, h('div', { class: 'actions' }, flip, remove), slot.el);
}

function tenantKeys(el, t) {
  const shown = h('div');
  const creator = h('div', { class: 'panel' });
  const toggle = disclosure('New key', creator);
  const grace = field('Grace when rotating (seconds)', { type: 'number', min: 0, value: 3600, inputmode: 'numeric' });
  const list = h('div');
  const refresh = () => loadInto(list, async () => {
    const page = await call('GET', `/admin/v1/tenants/${t.id}/keys${query({ per_page: 200 })}`);
    const now = Date.now();
    fill(list, table(`Keys of ${t.name}`, ['Name', 'Prefix', 'Scopes', 'Sessions', 'Created', 'Last used', 'State', 'Actions'],
      page.items.map((k) => {
        const revoked = k.revoked_at && new Date(k.revoked_at).getTime() <= now;
        const slot = errorSlot();
        const state = revoked ? `revoked ${when(k.revoked_at)}`
          : k.revoked_at ? `valid until ${when(k.revoked_at)} (rotated)` : 'active';
        const actions = revoked ? '' : h('div', { class: 'actions' },
          action('Rotate', slot, async () => {
            const body = grace.input.value === '' ? {} : { grace_seconds: Number(grace.input.value) };
            const rotated = await call('POST', `/admin/v1/tenants/${t.id}/keys/${seg(k.id)}/rotate`, body);
            fill(shown, shownOnce(`New key for ${rotated.name}`, rotated.key),
              h('p', { class: 'muted' }, `The old key works until ${when(rotated.old_key_valid_until)}.`));
            await refresh();
          }, { 'aria-label': `Rotate key ${k.name}` }),
          action('Revoke', slot, async () => {
            if (!await confirm(`Revoke the key ${k.name} of ${t.name}? Calls with it stop at once.`, `Revoke ${k.name}`)) return;
            await call('DELETE', `/admin/v1/tenants/${t.id}/keys/${seg(k.id)}`);
            await refresh();
          }, { class: 'danger', 'aria-label': `Revoke key ${k.name}` }), slot.el);
        return [k.name, h('code', {}, k.prefix), k.scopes.join(', '), k.sessions ? k.sessions.join(', ') : 'all',
          when(k.created_at), when(k.last_used_at), state, actions];
      }), 'No keys yet: create one with "New key".'));
  });
  creator.append(newKeyForm(t, async (created) => {
    fill(shown, shownOnce(`New key ${created.name}`, created.key));
    toggle.close();
    await refresh();
  }));
  fill(el, h('div', { class: 'toolbar' }, toggle.button, grace.row), creator, shown, list);
  refresh();
}

function newKeyForm(t, created) {
  const name = field('Name', { autocomplete: 'off' });
  const all = h('input', { type: 'checkbox', id: `all-scopes-${t.id}`, checked: true });
  const boxes = SCOPES.map((scope) => {
    const box = h('input', { type: 'checkbox', value: scope, id: `scope-${t.id}-${scope}`, disabled: true, checked: true });
    return { box, row: h('label', { for: box.id, class: 'check' }, box, ` ${scope}`) };
  });
  all.addEventListener('change', () => boxes.forEach(({ box }) => {
    box.disabled = all.checked;
    box.checked = all.checked || box.checked;
  }));
  const scopes = h('fieldset', { class: 'scopes' }, h('legend', {}, 'Scopes'),
    h('label', { for: all.id, class: 'check' }, all, ' All scopes (*)'), h('div', { class: 'grid' }, boxes.map((b) => b.row)));
  const sessions = field('Limit to sessions (comma-separated; empty: all)', { autocomplete: 'off' });
  const { el } = form('New key', [name.row, scopes, sessions.row], 'Create', async () => {
    const body = {
      name: name.input.value.trim(),
      scopes: all.checked ? ['*'] : boxes.filter(({ box }) => box.checked).map(({ box }) => box.value),
    };
    const limited = sessions.input.value.split(',').map((s) => s.trim()).filter(Boolean);
    if (limited.length) body.sessions = limited;
    const key = await call('POST', `/admin/v1/tenants/${t.id}/keys`, body);
    name.input.value = '';
    await created(key);
  });
  return el;
}

/** The usage report's charts and figures (shared with the tenant's own view). */
export function usageFigures(report, who) {
  const days = monthDays(report.month, report.days);
  return [
    h('p', {}, `${report.month}: ${number(report.used)} calls used of ${number(report.limit)}; ` +
      `${number(report.remaining)} left; the month resets in ${Math.ceil(report.reset_seconds / 3600)} h.`),
    meter(`${who} month used`, report.used, report.limit),
    h('div', { class: 'charts' },
      h('figure', {}, h('figcaption', {}, 'Calls per day'),
        columns(`Calls per day of ${who}, ${report.month}`, days)),
      h('figure', {}, h('figcaption', {}, 'Calls per endpoint'),
        rows(`Calls per endpoint of ${who}, ${report.month}`,
          report.endpoints.map((e) => ({ label: e.endpoint, value: e.requests })))),
      h('figure', {}, h('figcaption', {}, 'Refusals by reason'),
        rows(`Calls refused for ${who} by reason, ${report.month}`,
          report.refusals.map((r) => ({ label: r.reason.replaceAll('_', ' '), value: r.refusals })), 'refusals'))),
  ];
}

function tenantUsage(el, t) {
  const figures = h('div');
  const show = (report) => fill(figures, usageFigures(report, t.name));
  const requests = field('Requests to add', { type: 'number', min: 1, inputmode: 'numeric' });
  const { el: topUp } = form('Top up', [requests.row], 'Top up', async () => {
    show(await call('POST', `/admin/v1/tenants/${t.id}/usage/top-up`, { requests: Number(requests.input.value) }));
    requests.input.value = '';
  });
  const slot = errorSlot();
  const reset = action('Reset the month', slot, async () => {
    if (!await confirm(`Reset this month's usage of ${t.name} to zero?`, `Reset ${t.name}`)) return;
    show(await call('POST', `/admin/v1/tenants/${t.id}/usage/reset`));
  });
  fill(el, figures, h('div', { class: 'toolbar' }, topUp, h('div', {}, reset, slot.el)));
  loadInto(figures, async () => show(await call('GET', `/admin/v1/tenants/${t.id}/usage`)));
}

function tenantSessions(el, t) {
  const list = h('div');
  const adopt = h('div');
  const refresh = () => loadInto(list, async () => {
    const all = await call('GET', '/admin/v1/sessions');
    const own = all.filter((s) => s.tenant_id === t.id);
    fill(list, table(`Sessions of ${t.name}`, ['Name', 'Upstream name', 'Status'],
      own.map((s) => [s.name, h('code', {}, s.upstream_name), s.status ?? 'gone upstream']), 'No sessions.'));
    const unowned = all.filter((s) => !s.tenant_id);
    if (!unowned.length) {
      fill(adopt, h('p', { class: 'muted' }, 'No upstream session without a tenant to adopt.'));
      return;
    }
    const upstream = field('Upstream session', {}, unowned.map((s) => [s.upstream_name, `${s.upstream_name} (${s.status ?? '?'})`]));
    const name = field('Session name for the tenant', { autocomplete: 'off' });
    fill(adopt, h('h3', {}, 'Adopt an upstream session'), form('Adopt a session', [upstream.row, name.row], 'Adopt', async () => {
      await call('POST', '/admin/v1/sessions/adopt', { upstream_name: upstream.input.value, tenant_id: t.id, name: name.input.value.trim() });
      await refresh();
    }).el);
  });
  fill(el, list, adopt);
  refresh();
}

// ---- the organisation ----------------------------------------------------------------------

export function organisation(view) {
  const standing = h('div');
  const chart = h('div');
  fill(view, heading('Organisation'),
    h('p', { class: 'muted' }, 'The organisation\u2019s one subscription to the hosted API, shared by every tenant.'),
    standing, section('Calls per day, all tenants', chart));
  const show = async () => {
    const u = await call('GET', '/admin/v1/upstream');
    const left = u.monthly === null ? null : Math.max(0, u.monthly - u.used_this_month);
    const q = u.queue;
    fill(standing, h('dl', { class: 'cards' },
      card('Month used', `${number(u.used_this_month)} of ${number(u.monthly)}`, meter('Organisation month used', u.used_this_month, u.monthly)),
      card('Month left', number(left)),
      card('Upstream says', u.upstream_remaining === null ? 'no figures yet'
        : `${number(u.upstream_remaining)} of ${number(u.upstream_limit)} left`),
      card('Per-second budget', u.rps === null ? 'unlimited' : `${u.rps} calls/s`),
      card('Fair queue', q ? `${q.waiting_calls} calls of ${q.waiting_tenants} tenants waiting (at most ${q.max_wait_ms} ms)` : 'none (no per-second budget)'),
      card('Credential failures', `${u.upstream_credential_refusals} (since this replica started)`),
      card('Upstream 429s', String(u.upstream_429s)),
      card('Sessions allowed', number(u.max_sessions))));
  };
  loadInto(standing, show);
  loadInto(chart, async () => {
    const page = await allTenants();
    const reports = await Promise.all(page.items.map((t) => call('GET', `/admin/v1/tenants/${t.id}/usage`)));
    const month = reports[0]?.month ?? new Date().toISOString().slice(0, 7);
    const sum = new Map();
    for (const r of reports) for (const d of r.days) sum.set(d.day, (sum.get(d.day) ?? 0) + d.requests);
    const days = [...sum].map(([day, requests]) => ({ day, requests }));
    fill(chart, columns(`Calls per day of all tenants, ${month}`, monthDays(month, days)));
  });
  const timer = setInterval(() => show().catch((e) => fill(standing, h('p', { class: 'error', role: 'alert' }, describe(e)))), 5000);
  return () => clearInterval(timer);
}

function card(term, value, extra) {
  return h('div', { class: 'card' }, h('dt', {}, term), h('dd', {}, value, extra ? h('br') : null, extra));
}

// ---- webhook deliveries --------------------------------------------------------------------

export function deliveries(view) {
  const list = h('div');
  const tenant = field('Tenant', {}, [['', 'all tenants']]);
  const status = field('Status', {}, [['', 'any'], ['pending', 'pending'], ['delivered', 'delivered'], ['failed', 'failed']]);
  const names = new Map();
  const refresh = () => loadInto(list, async () => {
    const found = await call('GET', `/admin/v1/webhooks/deliveries${query({ tenant: tenant.input.value, status: status.input.value, limit: 200 })}`);
    fill(list, table('Webhook deliveries', ['Created', 'Tenant', 'Session', 'Event', 'URL', 'Status', 'Attempts', 'Last answer', 'Actions'],
      found.map((d) => {
        const slot = errorSlot();
        const redeliver = d.status === 'pending' ? '' : h('div', {}, action('Redeliver', slot, async () => {
          await call('POST', `/admin/v1/tenants/${d.tenantId}/sessions/${seg(d.sessionName)}/webhooks/deliveries/${d.id}/redeliver`);
          await refresh();
        }, { 'aria-label': `Redeliver ${d.event} ${d.eventId} to ${d.webhookUrl}` }), slot.el);
        return [when(d.createdAt), names.get(d.tenantId) ?? d.tenantId, d.sessionName, d.event, h('code', {}, d.webhookUrl),
          h('span', { class: `badge ${d.status}` }, d.status), String(d.attempts),
          [d.lastStatusCode ? `HTTP ${d.lastStatusCode}` : '', d.lastError ? ` ${d.lastError}` : ''].join('') || '—', redeliver];
      }), 'No deliveries match.'));
  });
  const { el: filters } = form('Filter deliveries', [tenant.row, status.row], 'Show', refresh);
  fill(view, heading('Webhook deliveries'), h('p', { class: 'muted' }, 'Every tenant\u2019s recent deliveries, newest first.'), filters, list);
  allTenants().then((page) => {
    for (const t of page.items) {
      names.set(t.id, t.name);
      tenant.input.append(h('option', { value: t.id }, t.name));
    }
  }).catch(() => {}).finally(refresh);
}

// ---- audit log -----------------------------------------------------------------------------

export function audit(view) {
  const list = h('div');
  const adminName = field('Admin', { autocomplete: 'off' });
  const act = field('Action', { autocomplete: 'off', placeholder: 'e.g. tenant.create' });
  const target = field('Target id', { autocomplete: 'off' });
  const since = field('Since', { type: 'datetime-local' });
  const until = field('Until', { type: 'datetime-local' });
  let page = 1;
  const iso = (f) => (f.input.value ? new Date(f.input.value).toISOString() : '');
  const refresh = () => loadInto(list, async () => {
    const found = await call('GET', `/admin/v1/audit${query({
      page, per_page: 50, admin: adminName.input.value.trim(), action: act.input.value.trim(),
      target_id: target.input.value.trim(), since: iso(since), until: iso(until),
    })}`);
    const pages = Math.max(1, Math.ceil(found.total / found.per_page));
    const prev = h('button', { type: 'button', disabled: page <= 1, onclick: () => { page -= 1; refresh(); } }, 'Previous page');
    const next = h('button', { type: 'button', disabled: page >= pages, onclick: () => { page += 1; refresh(); } }, 'Next page');
    fill(list, table('Audit log', ['When', 'Admin', 'Action', 'Target', 'Client', 'Details'], found.items.map((e) => [
      when(e.at), e.admin_username, e.action, e.target_id ? `${e.target_type ?? ''} ${e.target_id}` : '—',
      e.client_addr ?? '—', h('code', {}, JSON.stringify(e.details)),
    ]), 'No entries match.'), h('div', { class: 'actions' }, prev, h('span', {}, `Page ${page} of ${pages} (${found.total} entries)`), next));
  });
  const { el: filters } = form('Filter the audit log', [adminName.row, act.row, target.row, since.row, until.row], 'Filter', async () => {
    page = 1;
    await refresh();
  });
  filters.classList.add('filters');
  fill(view, heading('Audit log'), filters, list);
  refresh();
}

// The tenant views (signed in with a key): sessions with their live status and the QR code
// to scan, usage and quota headroom, webhooks and their deliveries, the live event tail. Each
// is a client of the tenant API `/v1`, with the key's own scopes.

import { call, signedIn, seg, query } from './api.js';
import {
  h, fill, field, form, errorSlot, action, confirm, shownOnce, table, when, number, section, describe,
} from './dom.js';
import { meter, rows } from './charts.js';
import { usageFigures } from './admin.js';
import { follow } from './events.js';

const POLL_MS = 2000;
/** The engine rotates a QR code every 20 s or so; fetch a fresh one well before that. */
const QR_REFRESH_MS = 10_000;

function heading(text) {
  return h('h1', { tabindex: -1 }, text);
}

function tenantName() {
  return signedIn()?.me?.tenant?.name ?? 'this tenant';
}

// ---- sessions and the QR code --------------------------------------------------------------

export function sessions(view) {
  const timers = [];
  let stopped = false;
  const list = h('div');
  const listError = errorSlot();
  const qr = h('div');
  const name = field('Session name', { value: 'default', autocomplete: 'off', spellcheck: 'false' });
  const { el: creator } = form('New session', [name.row], 'Create and start', async () => {
    const session = name.input.value.trim();
    await call('POST', '/v1/sessions', { name: session, start: true });
    await refresh();
    showQr(session);
  });
  let scanning = null;
  const showQr = (session) => {
    if (scanning) scanning.stop();
    scanning = qrPanel(qr, session, refresh);
  };
  let asked = 0;
  const refresh = async () => {
    asked += 1;
    const mine = asked;
    try {
      const found = await call('GET', '/v1/sessions');
      // An older answer arriving late must not overwrite a newer one.
      if (stopped || mine !== asked) return;
      listError.clear();
      fill(list, table('Sessions', ['Name', 'Status', 'Actions'], found.map((s) => {
        const slot = errorSlot();
        const buttons = [];
        if (s.status === 'SCAN_QR_CODE') {
          buttons.push(h('button', { type: 'button', onclick: () => showQr(s.name), 'aria-label': `Show the QR code of ${s.name}` }, 'Show QR code'));
        }
        if (s.status === 'STOPPED' || s.status === 'FAILED') {
          buttons.push(action('Start', slot, async () => {
            await call('POST', '/v1/sessions/start', { name: s.name });
            await refresh();
            showQr(s.name);
          }, { 'aria-label': `Start ${s.name}` }));
        } else {
          buttons.push(action('Stop', slot, async () => {
            await call('POST', '/v1/sessions/stop', { name: s.name });
            await refresh();
          }, { 'aria-label': `Stop ${s.name}` }));
        }
        buttons.push(action('Delete', slot, async () => {
          if (!await confirm(`Delete the session ${s.name}? Its phone is logged out.`, `Delete ${s.name}`)) return;
          await call('DELETE', `/v1/sessions/${seg(s.name)}`);
          await refresh();
        }, { class: 'danger', 'aria-label': `Delete ${s.name}` }));
        return [s.name, h('span', { class: `badge ${s.status}` }, s.status), h('div', { class: 'actions' }, buttons, slot.el)];
      }), 'No sessions yet: create one below.'));
    } catch (e) {
      listError.show(e);
    }
  };
  fill(view, heading('Sessions'),
    h('p', { class: 'muted' }, 'Statuses refresh every few seconds. A new session shows its QR code until the phone has scanned it.'),
    listError.el, list, section('New session', creator), qr);
  refresh();
  timers.push(setInterval(refresh, POLL_MS * 2));
  return () => {
    stopped = true;
    timers.forEach(clearInterval);
    if (scanning) scanning.stop();
  };
}

/** Shows the session's QR code, refreshed, until the session is WORKING (or stops). */
function qrPanel(el, session, changed) {
  let stopped = false;
  let fetchedAt = 0;
  const status = h('p', { role: 'status', 'aria-live': 'polite' }, `Waiting for ${session}…`);
  const img = h('img', { class: 'qr', alt: `QR code for session ${session}: scan it with WhatsApp on the phone`, width: 264, height: 264, hidden: true });
  const slot = errorSlot();
  fill(el, section(`Link a phone to session ${session}`,
    h('p', {}, 'On the phone: WhatsApp → Settings → Linked devices → Link a device, then point the camera at the code.'),
    status, img, slot.el));
  el.scrollIntoView({ block: 'start', behavior: 'smooth' });
  const tick = async () => {
    if (stopped) return;
    try {
      const s = await call('GET', `/v1/sessions/${seg(session)}`);
      slot.clear();
      if (s.status === 'WORKING') {
        img.hidden = true;
        img.removeAttribute('src');
        status.textContent = `Session ${session} is WORKING: the phone is linked.`;
        status.className = 'ok';
        changed();
        return;
      }
      if (s.status === 'SCAN_QR_CODE') {
        if (Date.now() - fetchedAt > QR_REFRESH_MS) {
          const code = await call('GET', `/v1/${seg(session)}/auth/qr${query({ format: 'image' })}`, undefined,
            { headers: { Accept: 'application/json' } });
          img.src = `data:${code.mimetype};base64,${code.data}`;
          img.hidden = false;
          fetchedAt = Date.now();
          changed();
        }
        status.textContent = `Session ${session} is SCAN_QR_CODE: scan the code below.`;
      } else if (s.status === 'STOPPED' || s.status === 'FAILED') {
        img.hidden = true;
        status.textContent = `Session ${session} is ${s.status}: start it again to get a new code.`;
        changed();
        return;
      } else {
        status.textContent = `Session ${session} is ${s.status}…`;
      }
    } catch (e) {
      slot.show(e);
    }
    if (!stopped) setTimeout(tick, POLL_MS);
  };
  tick();
  return { stop() { stopped = true; } };
}

// ---- usage ---------------------------------------------------------------------------------

export function usage(view) {
  const figures = h('div');
  const headroom = h('div');
  fill(view, heading('Usage'), section('Quota headroom', headroom), section('This month', figures));
  const load = async () => {
    const [report, me] = await Promise.all([call('GET', '/v1/usage'), call('GET', '/v1/me')]);
    fill(figures, usageFigures(report, tenantName()));
    const sessionsNow = await call('GET', '/v1/sessions').then((s) => s.length).catch(() => null);
    const q = me.quota;
    const left = (used, limit) => (limit === null || limit === undefined ? 100 : Math.max(0, Math.round(100 * (1 - used / Math.max(limit, 1)))));
    const points = [{ label: 'month calls left %', value: left(report.used, report.limit) }];
    if (sessionsNow !== null) points.push({ label: 'sessions left %', value: left(sessionsNow, q.max_sessions) });
    fill(headroom,
      h('p', {}, `Plan ${me.tenant.plan}: ${number(q.monthly_requests)} calls a month, ${number(q.requests_per_second)} per second, ` +
        `${number(q.max_sessions)} sessions. This key: ${me.key.name} (${me.key.scopes.join(', ')}).`),
      rows(`Quota headroom of ${tenantName()} (percent left)`, points, 'percent'),
      h('div', { class: 'meters' },
        h('p', {}, 'Month: ', meter('Month used', report.used, report.limit), ` ${number(report.used)} / ${number(report.limit)}`),
        sessionsNow === null ? null
          : h('p', {}, 'Sessions: ', meter('Sessions used', sessionsNow, q.max_sessions), ` ${sessionsNow} / ${number(q.max_sessions)}`)));
  };
  (async () => {
    try {
      await load();
    } catch (e) {
      fill(figures, h('p', { class: 'error', role: 'alert' }, describe(e)));
    }
  })();
}

// ---- webhooks ------------------------------------------------------------------------------

export function webhooks(view) {
  const picker = h('div');
  const body = h('div');
  fill(view, heading('Webhooks'), picker, body);
  (async () => {
    try {
      const found = await call('GET', '/v1/sessions');
      if (!found.length) {
        fill(picker, h('p', { class: 'muted' }, 'No sessions yet: webhooks belong to a session. Create one under Sessions.'));
        return;
      }
      const session = field('Session', {}, found.map((s) => [s.name, s.name]));
      session.input.addEventListener('change', () => sessionWebhooks(body, session.input.value));
      fill(picker, session.row);
      sessionWebhooks(body, found[0].name);
    } catch (e) {
      fill(picker, h('p', { class: 'error', role: 'alert' }, describe(e)));
    }
  })();
}

function sessionWebhooks(el, session) {
  const subs = h('div');
  const deliveriesEl = h('div');
  const refreshSubs = async () => {
    try {
      const list = await call('GET', `/v1/sessions/${seg(session)}/webhooks`);
      fill(subs, table(`Webhooks of ${session}`, ['URL', 'Events', 'Signing', 'Retries', 'State', 'Actions'], list.map((w) => {
        const slot = errorSlot();
        // The gateway disables an endpoint that failed for too long, or that answered 410.
        const state = w.enabled
          ? h('div', {}, h('span', { class: 'badge enabled' }, 'enabled'),
            w.failingSince ? h('span', { class: 'muted' }, ` failing since ${when(w.failingSince)}`) : null)
          : h('div', {}, h('span', { class: 'badge disabled' }, 'disabled'),
            h('span', { class: 'muted' }, ` since ${when(w.disabledAt)}${w.disabledReason ? `: ${w.disabledReason}` : ''}`));
        const buttons = [];
        if (!w.enabled) {
          buttons.push(action('Enable', slot, async () => {
            await call('POST', `/v1/sessions/${seg(session)}/webhooks/${seg(w.id)}/enable`);
            await refreshSubs();
          }, { 'aria-label': `Enable ${w.webhookUrl}` }));
        }
        buttons.push(action('Remove', slot, async () => {
          if (!await confirm(`Remove the webhook ${w.webhookUrl} of ${session}?`, 'Remove')) return;
          await call('DELETE', `/v1/sessions/${seg(session)}/webhooks${query({ webhookUrl: w.webhookUrl })}`);
          await refreshSubs();
        }, { class: 'danger', 'aria-label': `Remove ${w.webhookUrl}` }));
        return [h('code', {}, w.webhookUrl), w.events.join(', '), w.signed ? w.signing : `${w.signing}, unsigned`,
          `${w.retries?.attempts ?? '?'} × ${w.retries?.delaySeconds ?? '?'} s (${w.retries?.policy ?? ''})`,
          state, h('div', {}, h('div', { class: 'actions' }, buttons), slot.el)];
      }), 'No webhooks on this session.'));
    } catch (e) {
      fill(subs, h('p', { class: 'error', role: 'alert' }, describe(e)));
    }
  };
  const status = field('Delivery status', {}, [['', 'any'], ['pending', 'pending'], ['delivered', 'delivered'], ['failed', 'failed']]);
  const refreshDeliveries = async () => {
    try {
      const list = await call('GET', `/v1/sessions/${seg(session)}/webhooks/deliveries${query({ status: status.input.value, limit: 100 })}`);
      fill(deliveriesEl, table(`Deliveries of ${session}`, ['Created', 'Event', 'URL', 'Status', 'Attempts', 'Last answer', 'Actions'], list.map((d) => {
        const slot = errorSlot();
        return [when(d.createdAt), d.event, h('code', {}, d.webhookUrl), h('span', { class: `badge ${d.status}` }, d.status),
          String(d.attempts), d.lastError ?? (d.lastStatusCode ? `HTTP ${d.lastStatusCode}` : '—'),
          d.status === 'pending' ? '' : h('div', {}, action('Redeliver', slot, async () => {
            await call('POST', `/v1/sessions/${seg(session)}/webhooks/deliveries/${seg(d.id)}/redeliver`);
            await refreshDeliveries();
          }, { 'aria-label': `Redeliver ${d.event} ${d.eventId} to ${d.webhookUrl}` }), slot.el)];
      }), 'No deliveries yet.'));
    } catch (e) {
      fill(deliveriesEl, h('p', { class: 'error', role: 'alert' }, describe(e)));
    }
  };
  const url = field('Webhook URL', { type: 'url', autocomplete: 'off', placeholder: 'your receiver, http or https' });
  const events = field('Events (comma-separated)', { value: 'message', autocomplete: 'off' });
  const signing = field('Signing', { value: 'hmac-sha512' }, [
    ['hmac-sha512', 'hmac-sha512: X-Webhook-Hmac with your HMAC key'],
    ['standard', 'standard: Standard Webhooks, with a secret the gateway generates'],
  ]);
  const hmac = field('HMAC key (optional)', { type: 'password', autocomplete: 'off' });
  // A standard webhook signs with a generated secret: the HMAC key is for hmac-sha512 only.
  signing.input.addEventListener('change', () => { hmac.row.hidden = signing.input.value !== 'hmac-sha512'; });
  const secret = h('div');
  const { el: add } = form('Add a webhook', [url.row, events.row, signing.row, hmac.row], 'Add webhook', async () => {
    fill(secret);
    const body = {
      webhookUrl: url.input.value.trim(),
      events: events.input.value.split(',').map((e) => e.trim()).filter(Boolean),
      signing: signing.input.value,
    };
    if (body.signing === 'hmac-sha512' && hmac.input.value) body.hmacKey = hmac.input.value;
    const added = await call('POST', `/v1/sessions/${seg(session)}/webhooks`, body);
    url.input.value = '';
    hmac.input.value = '';
    // The generated secret is in this answer only.
    if (added?.secret) fill(secret, shownOnce(`Signing secret for ${added.webhookUrl}`, added.secret));
    await refreshSubs();
  });
  const since = field('Redeliver failures since', { type: 'datetime-local' });
  const recovered = h('p', { role: 'status', class: 'muted' });
  const { el: recover } = form('Recover failed deliveries', [since.row], 'Recover', async () => {
    recovered.textContent = '';
    const when_ = since.input.value ? new Date(since.input.value).toISOString() : new Date(Date.now() - 86_400_000).toISOString();
    const answer = await call('POST', `/v1/sessions/${seg(session)}/webhooks/recover`, { since: when_ });
    recovered.textContent = typeof answer?.recovered === 'number'
      ? `${answer.recovered} failed deliveries since ${when(answer.since ?? when_)} queued again.`
      : 'Recovery queued.';
    await refreshDeliveries();
  });
  // Showing the deliveries refreshes the subscriptions too: failures are what disable one.
  const { el: filter } = form('Filter deliveries', [status.row], 'Show', () => Promise.all([refreshDeliveries(), refreshSubs()]));
  fill(el, section('Subscriptions', subs, h('h3', {}, 'Add a webhook'), add, secret),
    section('Deliveries', filter, deliveriesEl, h('h3', {}, 'Recover'), recover, recovered));
  refreshSubs();
  refreshDeliveries();
}

// ---- live events ---------------------------------------------------------------------------

const MAX_SHOWN = 200;

export function events(view) {
  const state = h('p', { role: 'status', class: 'muted' }, 'Connecting to the event stream…');
  const list = h('ol', { class: 'events', reversed: true, 'aria-label': 'Events, newest first' });
  let paused = false;
  const pause = h('button', { type: 'button', 'aria-pressed': 'false' }, 'Pause');
  pause.addEventListener('click', () => {
    paused = !paused;
    pause.setAttribute('aria-pressed', String(paused));
    pause.textContent = paused ? 'Resume' : 'Pause';
  });
  const clear = h('button', { type: 'button', onclick: () => list.replaceChildren() }, 'Clear');
  fill(view, heading('Live events'),
    h('p', { class: 'muted' }, `Events of ${tenantName()}'s sessions as the gateway relays them.`),
    state, h('div', { class: 'actions' }, pause, clear), list);
  const tail = follow({
    onState(text, kind) {
      state.textContent = text;
      state.className = kind === 'live' ? 'ok' : kind === 'retrying' ? 'muted' : 'error';
      state.setAttribute('role', kind === 'live' || kind === 'retrying' ? 'status' : 'alert');
    },
    onEvent(e) {
      if (paused) return;
      let envelope = null;
      try {
        envelope = JSON.parse(e.data);
      } catch {
        // shown raw below
      }
      const item = h('li', {},
        h('span', { class: 'when' }, when(envelope?.timestamp ? new Date(envelope.timestamp).toISOString() : new Date().toISOString())), ' ',
        h('strong', {}, e.event), envelope?.session ? ` on ${envelope.session}` : '',
        h('details', {}, h('summary', {}, 'Envelope'), h('pre', {}, envelope ? JSON.stringify(envelope, null, 2) : e.data)));
      list.prepend(item);
      while (list.children.length > MAX_SHOWN) list.lastChild.remove();
    },
  });
  return () => tail.stop();
}

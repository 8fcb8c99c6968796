// Small DOM helpers: elements built from data (text is always set as text, never parsed as
// HTML), forms with labelled fields, errors shown next to what caused them, confirmations.

/** `h('button', {type: 'button', onclick}, 'Text', child...)`. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on')) el.addEventListener(name.slice(2), value);
    else if (name === 'class') el.className = value;
    else if (name === 'dataset') Object.assign(el.dataset, value);
    else if (value === true) el.setAttribute(name, '');
    else el.setAttribute(name, String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replaces an element's content. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

let ids = 0;
export function uid(prefix = 'f') {
  ids += 1;
  return `${prefix}-${ids}`;
}

/** A labelled input (or select, via `options`): answers `{ row, input }`. */
export function field(label, attrs = {}, options = null) {
  const id = uid();
  let input;
  if (options) {
    input = h('select', { id, ...attrs }, options.map(([value, text]) => h('option', { value }, text)));
    if (attrs.value !== undefined) input.value = attrs.value;
  } else {
    input = h('input', { id, type: 'text', ...attrs });
  }
  const row = h('div', { class: 'field' }, h('label', { for: id }, label), input);
  return { row, input };
}

/** An area for an error next to a form or a control; `show(err)` puts plain words in it. */
export function errorSlot() {
  const el = h('p', { class: 'error', role: 'alert', hidden: true });
  return {
    el,
    show(err) {
      el.hidden = false;
      el.textContent = describe(err);
    },
    clear() {
      el.hidden = true;
      el.textContent = '';
    },
  };
}

/** An error in plain words: the API's message with its status, or what went wrong. */
export function describe(err) {
  if (err && typeof err.status === 'number') {
    return err.status ? `${err.message} (${err.status} ${err.error})` : err.message;
  }
  return `Something went wrong: ${err?.message ?? err}`;
}

/**
 * Runs `work` when the button is pressed, with the button disabled meanwhile; an error goes to
 * `slot` (shown next to the button), never to the console alone.
 */
export function action(label, slot, work, attrs = {}) {
  const button = h('button', { type: 'button', ...attrs }, label);
  button.addEventListener('click', () => guarded(button, slot, work));
  return button;
}

/** A form whose submit runs `work` (Enter submits); errors show in the form's own slot. */
export function form(name, fields, submitLabel, work) {
  const slot = errorSlot();
  const submit = h('button', { type: 'submit' }, submitLabel);
  const el = h('form', { 'aria-label': name, novalidate: true }, fields, submit, slot.el);
  el.addEventListener('submit', (event) => {
    event.preventDefault();
    guarded(submit, slot, work);
  });
  return { el, slot };
}

/** Runs `work` with `button` disabled; a failure is shown in `slot`. */
async function guarded(button, slot, work) {
  slot.clear();
  button.disabled = true;
  try {
    await work();
  } catch (e) {
    slot.show(e);
  } finally {
    button.disabled = false;
  }
}

/** A button that shows and hides `panel` (hidden at first), focusing its first input. */
export function disclosure(label, panel) {
  panel.hidden = true;
  const button = h('button', { type: 'button', 'aria-expanded': 'false' }, label);
  const set = (open) => {
    panel.hidden = !open;
    button.setAttribute('aria-expanded', String(open));
    if (open) panel.querySelector('input')?.focus();
  };
  button.addEventListener('click', () => set(panel.hidden));
  return { button, close: () => set(false) };
}

/** Asks to confirm an action in a modal dialog; answers whether the user confirmed. */
export function confirm(question, confirmLabel) {
  return new Promise((resolve) => {
    const yes = h('button', { type: 'button', class: 'danger' }, confirmLabel);
    const no = h('button', { type: 'button' }, 'Cancel');
    const dialog = h('dialog', { 'aria-labelledby': 'confirm-q' },
      h('p', { id: 'confirm-q' }, question), h('div', { class: 'actions' }, yes, no));
    const done = (answer) => {
      dialog.close();
      dialog.remove();
      resolve(answer);
    };
    yes.addEventListener('click', () => done(true));
    no.addEventListener('click', () => done(false));
    dialog.addEventListener('cancel', (event) => {
      event.preventDefault();
      done(false);
    });
    document.body.append(dialog);
    dialog.showModal();
    no.focus();
  });
}

/** A secret shown once, as text, with a copy button. */
export function shownOnce(label, secret) {
  const id = uid('secret');
  const status = h('span', { class: 'muted', role: 'status' });
  const copy = h('button', { type: 'button' }, 'Copy');
  copy.addEventListener('click', async () => {
    try {
      await navigator.clipboard.writeText(secret);
      status.textContent = 'Copied.';
    } catch {
      window.getSelection().selectAllChildren(document.getElementById(id));
      status.textContent = 'Selected: press Ctrl+C to copy.';
    }
  });
  return h('div', { class: 'secret', role: 'group', 'aria-label': label },
    h('p', {}, `${label} (shown once: keep it now):`),
    h('code', { id, class: 'key' }, secret), ' ', copy, ' ', status);
}

/** A table from column headings and rows of cells; `empty` when there are no rows. */
export function table(caption, headings, rows, empty = 'Nothing yet.') {
  if (!rows.length) return h('p', { class: 'muted' }, empty);
  return h('div', { class: 'scroll', tabindex: 0, role: 'region', 'aria-label': caption },
    h('table', {},
      h('caption', { class: 'sr-only' }, caption),
      h('thead', {}, h('tr', {}, headings.map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', {}, rows.map((cells) => h('tr', {}, cells.map((c) => h('td', {}, c)))))));
}

export function when(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toISOString().replace('T', ' ').slice(0, 19) + ' UTC';
}

export function number(n) {
  return n === null || n === undefined ? 'unlimited' : Number(n).toLocaleString('en');
}

/** A section with its heading. */
export function section(title, ...children) {
  const id = uid('s');
  return h('section', { 'aria-labelledby': id }, h('h2', { id }, title), children);
}

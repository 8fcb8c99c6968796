// Charts as inline SVG: `<svg role="img">` with an aria-label that says what it shows, and
// a `<title>` on each bar for pointer users. Drawn from data, no library.

const NS = 'http://www.w3.org/2000/svg';

function s(tag, attrs = {}, text) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

function frame(label, width, height) {
  return s('svg', {
    role: 'img',
    'aria-label': label,
    viewBox: `0 0 ${width} ${height}`,
    class: 'chart',
    preserveAspectRatio: 'xMidYMid meet',
  });
}

/** Vertical bars, one per point (`{label, value}`): calls per day. */
export function columns(label, points, unit = 'calls') {
  const width = 480;
  const height = 200;
  const pad = { left: 40, right: 8, top: 12, bottom: 26 };
  const total = points.reduce((n, p) => n + p.value, 0);
  const svg = frame(`${label}: ${total.toLocaleString('en')} ${unit} over ${points.length} days`, width, height);
  const max = Math.max(1, ...points.map((p) => p.value));
  const plotW = width - pad.left - pad.right;
  const plotH = height - pad.top - pad.bottom;
  svg.append(s('line', { x1: pad.left, y1: pad.top + plotH, x2: width - pad.right, y2: pad.top + plotH, class: 'axis' }));
  svg.append(s('text', { x: pad.left - 6, y: pad.top + 4, 'text-anchor': 'end', class: 'tick' }, max.toLocaleString('en')));
  svg.append(s('text', { x: pad.left - 6, y: pad.top + plotH, 'text-anchor': 'end', class: 'tick' }, '0'));
  if (!points.length) {
    svg.append(s('text', { x: width / 2, y: height / 2, 'text-anchor': 'middle', class: 'tick' }, `no ${unit} yet`));
    return svg;
  }
  const step = plotW / points.length;
  const barW = Math.max(2, Math.min(40, step * 0.7));
  const every = Math.ceil(points.length / 10);
  points.forEach((p, i) => {
    const barH = (p.value / max) * plotH;
    const x = pad.left + i * step + (step - barW) / 2;
    const bar = s('rect', { x, y: pad.top + plotH - barH, width: barW, height: Math.max(barH, 0.5), class: 'bar' });
    bar.append(s('title', {}, `${p.label}: ${p.value.toLocaleString('en')} ${unit}`));
    svg.append(bar);
    if (i % every === 0) {
      svg.append(s('text', { x: x + barW / 2, y: height - 10, 'text-anchor': 'middle', class: 'tick' }, p.label));
    }
  });
  return svg;
}

/** Horizontal bars, one per point: calls per endpoint, refusals per reason. */
export function rows(label, points, unit = 'calls') {
  const width = 420;
  const rowH = 26;
  const labelW = 150;
  const height = Math.max(1, points.length) * rowH + 8;
  const summary = points.map((p) => `${p.label} ${p.value}`).join(', ') || `no ${unit} yet`;
  const svg = frame(`${label}: ${summary}`, width, height);
  const max = Math.max(1, ...points.map((p) => p.value));
  if (!points.length) {
    svg.append(s('text', { x: 8, y: 20, class: 'tick' }, `no ${unit} yet`));
    return svg;
  }
  points.forEach((p, i) => {
    const y = 4 + i * rowH;
    const w = (p.value / max) * (width - labelW - 60);
    svg.append(s('text', { x: labelW - 8, y: y + 17, 'text-anchor': 'end', class: 'tick' }, p.label));
    const bar = s('rect', { x: labelW, y: y + 4, width: Math.max(w, 0.5), height: rowH - 8, class: 'bar' });
    bar.append(s('title', {}, `${p.label}: ${p.value.toLocaleString('en')} ${unit}`));
    svg.append(bar);
    svg.append(s('text', { x: labelW + w + 6, y: y + 17, class: 'tick' }, p.value.toLocaleString('en')));
  });
  return svg;
}

/** How much of an allowance is used, as one bar; `limit` null means unlimited. */
export function meter(label, used, limit) {
  const width = 240;
  const height = 16;
  const text = limit === null || limit === undefined
    ? `${label}: ${used.toLocaleString('en')} used, unlimited`
    : `${label}: ${used.toLocaleString('en')} of ${limit.toLocaleString('en')} used`;
  const svg = frame(text, width, height);
  svg.classList.add('meter');
  const fraction = limit ? Math.min(1, used / limit) : 0;
  svg.append(s('rect', { x: 0, y: 0, width, height, rx: 4, class: 'track' }));
  const level = fraction >= 0.9 ? 'bar high' : 'bar';
  svg.append(s('rect', { x: 0, y: 0, width: Math.max(fraction * width, limit ? 1 : 0), height, rx: 4, class: level }));
  svg.append(s('title', {}, text));
  return svg;
}

/** Every day of the month so far, with the report's counts (days without calls are 0). */
export function monthDays(month, days, today = new Date()) {
  const counts = new Map(days.map((d) => [d.day, d.requests]));
  const [year, mon] = month.split('-').map(Number);
  const last = year === today.getUTCFullYear() && mon === today.getUTCMonth() + 1
    ? today.getUTCDate()
    : new Date(Date.UTC(year, mon, 0)).getUTCDate();
  const points = [];
  for (let d = 1; d <= last; d += 1) {
    const day = `${month}-${String(d).padStart(2, '0')}`;
    points.push({ label: String(d), value: counts.get(day) ?? 0 });
  }
  return points;
}

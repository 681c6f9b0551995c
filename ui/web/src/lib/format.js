// Formatting for people: durations, times, devices.

/** 83000 → "1:23", 3723000 → "1:02:03". */
export function clock(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  const h = Math.floor(s / 3600), m = Math.floor(s / 60) % 60, sec = s % 60;
  const pad = (n) => String(n).padStart(2, '0');
  return h > 0 ? `${h}:${pad(m)}:${pad(sec)}` : `${m}:${pad(sec)}`;
}

/** 83000 → "1m 23s". */
export function duration(ms) {
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${s % 60}s`;
  return `${Math.floor(m / 60)}h ${m % 60}m`;
}

const dtf = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
/** An RFC 3339 time as the reader's local date and time. */
export const when = (iso) => dtf.format(new Date(iso));

const df = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium' });
const tf = new Intl.DateTimeFormat(undefined, { timeStyle: 'short' });
/** The date alone, and the time alone. */
export const day = (iso) => df.format(new Date(iso));
export const time = (iso) => tf.format(new Date(iso));

/** "3 min ago" for recent times, the date otherwise. */
export function ago(iso) {
  const d = (Date.now() - new Date(iso).getTime()) / 1000;
  if (d < 60) return 'just now';
  if (d < 3600) return `${Math.floor(d / 60)} min ago`;
  if (d < 86400) return `${Math.floor(d / 3600)} h ago`;
  return when(iso);
}

export const capital = (s) => (s ? s[0].toUpperCase() + s.slice(1) : '');

/** "Desktop · Chrome 120 · macOS" from a session. */
export function device(s) {
  return [capital(s.device) || 'Unknown device', [s.browser, (s.browser_version || '').split('.')[0]].filter(Boolean).join(' '), s.os]
    .filter(Boolean).join(' · ');
}

/** Tiny DOM builder: h('a', {href}, 'text', child...). */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

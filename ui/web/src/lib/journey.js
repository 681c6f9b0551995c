// Shared parts of the journey pages (people, funnels, paths, intent):
// the project picker, date ranges, and links to recordings.
import { get } from './api.js';
import { h } from './format.js';
import './journey.css';

/** The query string of the page, live. */
export const params = () => new URLSearchParams(location.search);

/** Replace the page's query string without reloading. */
export function setParams(p) {
  const s = p.toString();
  history.replaceState(null, '', location.pathname + (s ? '?' + s : ''));
}

/**
 * projectPicker fills a <select> with the projects the user may see and
 * resolves to the chosen project id (from ?project=, else the first). The
 * select is hidden when there is only one project.
 */
export async function projectPicker(select, onChange) {
  const { projects } = await get('/api/v1/projects');
  const want = params().get('project');
  for (const p of projects) select.append(h('option', { value: String(p.id) }, p.name));
  const chosen = projects.find((p) => String(p.id) === want || p.name === want) || projects[0];
  if (chosen) select.value = String(chosen.id);
  select.closest('.field')?.toggleAttribute('hidden', projects.length < 2);
  select.addEventListener('change', () => {
    const p = params();
    p.set('project', select.value);
    setParams(p);
    onChange?.(select.value);
  });
  return chosen ? String(chosen.id) : '';
}

/** A local yyyy-mm-dd for a Date. */
export function isoDay(d) {
  const pad = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

/** Fill from/to date inputs (default: the last 30 days). */
export function initRange(fromEl, toEl) {
  const p = params();
  const today = new Date();
  fromEl.value = p.get('from') || isoDay(new Date(today.getFullYear(), today.getMonth(), today.getDate() - 29));
  toEl.value = p.get('to') || isoDay(today);
}

/** RFC 3339 bounds for local days: to includes its whole day. */
export function rangeOf(fromEl, toEl) {
  const day = (v, plus) => { const [y, m, d] = v.split('-').map(Number); return new Date(y, m - 1, d + plus).toISOString(); };
  return { from: day(fromEl.value, 0), to: day(toEl.value, 1) };
}

/** The player's page for a session. */
export const recordingHref = (id) => `/sessions/${encodeURIComponent(id)}`;

/** A person's page. */
export const personHref = (id, project) => `/people/${encodeURIComponent(id)}?project=${encodeURIComponent(project)}`;

/** "42%" for a 0..1 share. */
export const pct = (x) => `${Math.round((x || 0) * 1000) / 10}%`;

/** Show an error in place of content. */
export function showError(el, e) {
  el.replaceChildren(h('div', { class: 'alert', role: 'alert' }, e.message || String(e)));
}

// Sessions list: filters from the URL (the form submits with GET, so every
// view is a link), newest first, "Load more" with the API's cursor, and an
// empty state that shows how to install the recorder.
import { get } from '../lib/api.js';
import { ago, day, device, duration, h, time, when } from '../lib/format.js';
import './sessions.css';

const form = document.getElementById('filters');
const list = document.getElementById('list');
const moreBtn = document.getElementById('more');
const summary = document.getElementById('summary');
const q = new URLSearchParams(location.search);

// Fill the form from the URL.
for (const el of form.elements) {
  if (!el.name) continue;
  if (el.type === 'checkbox') el.checked = q.getAll(el.name).includes(el.value);
  else if (q.has(el.name)) el.value = q.get(el.name);
}
const filtered = [...q.keys()].some((k) => q.get(k) !== '');
form.classList.toggle('open', filtered);
document.getElementById('toggle-filters')?.addEventListener('click', () => form.classList.toggle('open'));

function apiQuery(cursor) {
  const p = new URLSearchParams();
  for (const k of ['project', 'url', 'device', 'visitor', 'min_duration', 'playable']) if (q.get(k)) p.set(k, q.get(k));
  // Dates from the form are local days; "to" includes its whole day.
  const day = (v, plus) => { const [y, m, d] = v.split('-').map(Number); return new Date(y, m - 1, d + plus).toISOString(); };
  if (q.get('from')) p.set('from', day(q.get('from'), 0));
  if (q.get('to')) p.set('to', day(q.get('to'), 1));
  const has = q.getAll('has');
  if (has.length) p.set('has', has.join(','));
  p.set('limit', '50');
  if (cursor) p.set('cursor', cursor);
  return p.toString();
}

function pathOf(u) {
  try { const x = new URL(u); return x.pathname + x.search; } catch { return u || ''; }
}

function row(s) {
  const badges = [
    s.live && h('span', { class: 'badge live' }, 'Live'),
    s.rage_clicks > 0 && h('span', { class: 'badge rage' }, `${s.rage_clicks} rage`),
    s.dead_clicks > 0 && h('span', { class: 'badge dead' }, `${s.dead_clicks} dead`),
    s.errors > 0 && h('span', { class: 'badge error' }, `${s.errors} error${s.errors > 1 ? 's' : ''}`),
    s.conversions > 0 && h('span', { class: 'badge conversion' }, 'Converted'),
    s.playable === false && h('span', { class: 'badge gone', title: 'The recorder sent no full page snapshot for this visit: its pages, clicks and events are known, but it cannot be replayed.' }, 'No replay'),
  ];
  const who = s.user_id ? s.user_id : `Visitor ${s.visitor_id.slice(0, 12)}`;
  const recent = Date.now() - Date.parse(s.started_at) < 86400000;
  return h('a', { class: 'srow', href: `/sessions/${encodeURIComponent(s.id)}`, dataset: { session: s.id } },
    h('div', { class: 'srow-when', title: when(s.started_at) }, recent
      ? [h('strong', {}, ago(s.started_at)), h('span', { class: 'muted small' }, when(s.started_at))]
      : [h('strong', {}, day(s.started_at)), h('span', { class: 'muted small' }, time(s.started_at))]),
    h('div', { class: 'srow-dur' }, duration(s.duration_ms)),
    h('div', { class: 'srow-page' },
      h('span', { class: 'srow-url', title: s.entry_url }, pathOf(s.entry_url) || '—'),
      h('span', { class: 'muted small' }, `${s.page_count} page${s.page_count === 1 ? '' : 's'} · ${s.click_count} click${s.click_count === 1 ? '' : 's'} · ${who}`)),
    h('div', { class: 'srow-device muted small' }, device(s)),
    h('div', { class: 'srow-badges' }, badges));
}

async function installHelp() {
  const { projects } = await get('/api/v1/projects');
  const origin = location.origin;
  return h('div', { class: 'panel empty' },
    h('h2', {}, 'No recordings yet'),
    h('p', { class: 'muted' }, 'Add the recorder to every page of your site, just before </head>. Visits show up here a few seconds after they start.'),
    projects.map((p) => h('div', {},
      projects.length > 1 ? h('p', {}, h('strong', {}, p.name)) : null,
      h('pre', { class: 'snippet' }, `<script src="${origin}/recorder.js" data-key="${p.write_key}" async></script>`))),
    h('p', { class: 'muted small' }, 'The write key is public: it can only add recordings to its project.'));
}

let cursor = '';
let shown = 0;
async function load() {
  moreBtn.disabled = true;
  try {
    const res = await get('/api/v1/sessions?' + apiQuery(cursor));
    if (!cursor && res.sessions.length === 0) {
      list.replaceChildren(filtered
        ? h('div', { class: 'panel empty' }, h('h2', {}, 'No sessions match these filters'),
          h('p', { class: 'muted' }, 'Widen the date range or remove a filter.'), h('a', { class: 'btn', href: '/sessions' }, 'Clear filters'))
        : await installHelp());
      summary.textContent = '';
    } else {
      if (!cursor) list.replaceChildren(h('div', { class: 'srow shead' },
        h('div', {}, 'When'), h('div', {}, 'Duration'), h('div', {}, 'Pages'), h('div', {}, 'Device'), h('div', {}, 'Signals')));
      list.append(...res.sessions.map(row));
      shown += res.sessions.length;
      summary.textContent = `${shown}${res.next_cursor ? '+' : ''} session${shown === 1 ? '' : 's'}`;
    }
    cursor = res.next_cursor;
    moreBtn.hidden = !cursor;
  } catch (e) {
    list.replaceChildren(h('div', { class: 'alert' }, e.message));
  } finally {
    moreBtn.disabled = false;
  }
}
moreBtn.addEventListener('click', load);

// Projects filter: only when there is more than one.
get('/api/v1/projects').then(({ projects }) => {
  const sel = form.elements.project;
  if (!sel || projects.length < 2) return;
  sel.append(...projects.map((p) => h('option', { value: String(p.id) }, p.name)));
  sel.value = q.get('project') || '';
  sel.closest('.field').hidden = false;
}).catch(() => {});

load();

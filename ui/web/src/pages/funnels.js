// Funnel builder and results. Every count links to the sessions behind it
// (reached a step, or dropped after it), listed below with links to their
// recordings. Saved funnels live at ?id=N.
import { api, get } from '../lib/api.js';
import { duration, h, when, device } from '../lib/format.js';
import { initRange, params, pct, projectPicker, rangeOf, recordingHref, setParams, showError } from '../lib/journey.js';

const $ = (id) => document.getElementById(id);
const stepsEl = $('steps');
const results = $('results');
const sessionsEl = $('sessions');
let project = '';
let current = null; // saved funnel being edited, or null
let lastQuery = null; // body of the last run

function stepRow(st = { type: 'page', match: '' }) {
  const type = h('select', { 'aria-label': 'Step type' },
    h('option', { value: 'page' }, 'Page'), h('option', { value: 'event' }, 'Event'));
  type.value = st.type;
  const match = h('input', { value: st.match, required: true, 'aria-label': 'Page pattern or event name',
    placeholder: st.type === 'event' ? 'purchase' : '/product/*' });
  type.addEventListener('change', () => { match.placeholder = type.value === 'event' ? 'purchase' : '/product/*'; });
  const row = h('div', { class: 'step' }, h('span', { class: 'muted small step-n' }), type, match,
    h('button', { class: 'btn small', type: 'button', title: 'Remove step', onclick: () => { row.remove(); renumber(); } }, '×'));
  row.get = () => ({ type: type.value, match: match.value.trim() });
  return row;
}

function renumber() {
  [...stepsEl.children].forEach((r, i) => { r.querySelector('.step-n').textContent = `${i + 1}.`; });
}

function fill(def) {
  $('f-name').value = def.name || '';
  $('f-count').value = def.count_by || 'session';
  $('f-window').value = def.window && def.window !== '0s' ? def.window : '';
  stepsEl.replaceChildren(...(def.steps || []).map(stepRow));
  renumber();
  $('delete').hidden = !current;
}

function definition() {
  const d = { steps: [...stepsEl.children].map((r) => r.get()), count_by: $('f-count').value };
  if ($('f-window').value.trim()) d.window = $('f-window').value.trim();
  return d;
}

async function loadSaved() {
  const { funnels } = await get('/api/v1/funnels?project=' + encodeURIComponent(project));
  $('saved').replaceChildren(funnels.length
    ? h('ul', { style: 'padding-left:18px;margin:0 0 10px' }, funnels.map((f) => h('li', {},
      h('a', { href: `/funnels?project=${project}&id=${f.id}`, onclick: (e) => { e.preventDefault(); open(f); } }, f.name),
      h('span', { class: 'muted small' }, ` · ${f.steps.length} steps`))))
    : h('p', {}, 'None yet. Build one and save it.'));
  return funnels;
}

function open(f) {
  current = f;
  const p = params();
  p.set('id', f.id);
  setParams(p);
  fill(f);
  run();
}

const fmtMs = (ms) => (ms == null ? '—' : duration(ms));

function countLink(n, step, status, split) {
  if (!n) return h('span', { class: 'muted' }, '0');
  return h('a', { href: '#sessions', class: 'j-count', dataset: { step, status },
    onclick: (e) => { e.preventDefault(); listSessions(step, status, split); } }, n.toLocaleString());
}

function stepTable(steps, split) {
  const first = steps[0]?.count || 0;
  return h('div', { class: 'j-scroll' }, h('table', { class: 'j-table' },
    h('thead', {}, h('tr', {}, h('th', {}, 'Step'), h('th', { class: 'num' }, lastQuery.count_by === 'person' ? 'People' : 'Sessions'),
      h('th', {}), h('th', { class: 'num' }, 'From previous'), h('th', { class: 'num' }, 'From first'),
      h('th', { class: 'num' }, 'Dropped'), h('th', { class: 'num' }, 'Time to next'))),
    h('tbody', {}, steps.map((s) => h('tr', { dataset: { step: s.step } },
      h('td', {}, h('strong', {}, `${s.step}. `), s.label, h('div', { class: 'muted small' }, s.type)),
      h('td', { class: 'num' }, countLink(s.count, s.step, 'reached', split)),
      h('td', { class: 'j-barcell' }, h('div', { class: 'j-bar', style: `width:${first ? (100 * s.count) / first : 0}%` })),
      h('td', { class: 'num' }, pct(s.conversion_from_previous)),
      h('td', { class: 'num' }, pct(s.conversion_from_first)),
      h('td', { class: 'num dropped' }, s.step < steps.length ? [countLink(s.dropped, s.step, 'dropped', split), h('div', { class: 'muted small' }, pct(s.drop_off_rate))] : '—'),
      h('td', { class: 'num' }, s.step < steps.length ? fmtMs(s.median_ms_to_next) : '—'))))));
}

async function run() {
  const def = definition();
  if (!def.steps.length) return;
  lastQuery = { project, ...def, ...rangeOf($('f-from'), $('f-to')) };
  if ($('f-split').value) lastQuery.split = $('f-split').value;
  results.replaceChildren(h('div', { class: 'panel panel-body muted' }, 'Counting…'));
  sessionsEl.replaceChildren();
  try {
    const res = await api('POST', '/api/v1/funnels/query', lastQuery);
    const parts = [h('div', { class: 'panel j-section' }, h('div', { class: 'panel-body' },
      h('h2', {}, $('f-name').value || 'Funnel'),
      h('p', { class: 'muted small' }, `${res.count_by === 'person' ? 'People' : 'Sessions'} starting ${when(res.from)} – ${when(res.to)}` +
        (res.sessions != null ? ` · ${res.sessions.toLocaleString()} sessions looked at` : '') + (res.window && res.window !== '0s' ? ` · within ${res.window}` : '') + ` · ${res.took_ms} ms`)),
      stepTable(res.steps))];
    for (const sp of res.splits || []) {
      parts.push(h('div', { class: 'panel j-section' }, h('div', { class: 'panel-body' }, h('h2', {}, `${res.split}: ${sp.value}`)), stepTable(sp.steps, sp.value)));
    }
    results.replaceChildren(...parts);
  } catch (e) {
    showError(results, e);
  }
}

async function listSessions(step, status, split, cursor) {
  if (!cursor) sessionsEl.replaceChildren(h('div', { class: 'panel panel-body muted' }, 'Loading sessions…'));
  try {
    const body = { ...lastQuery, step, status, limit: 50 };
    if (split !== undefined) body.split_value = split;
    if (cursor) body.cursor = cursor;
    const page = await api('POST', '/api/v1/funnels/query/sessions', body);
    const what = status === 'dropped' ? `Dropped after step ${step}` : `Reached step ${step}`;
    const rows = page.sessions.map((s) => h('tr', { dataset: { session: s.id } },
      h('td', {}, h('a', { href: recordingHref(s.id) }, when(s.started_at))),
      h('td', {}, s.user_id || h('span', { class: 'muted' }, s.visitor_id.slice(0, 12))),
      h('td', { class: 'muted small' }, device(s)),
      h('td', { class: 'num' }, duration(s.duration_ms)),
      h('td', {}, h('a', { class: 'btn small', href: recordingHref(s.id) }, '▶ Recording'))));
    let tbody = sessionsEl.querySelector('tbody');
    if (!cursor || !tbody) {
      tbody = h('tbody', {}, rows);
      sessionsEl.replaceChildren(h('div', { class: 'panel', id: 'session-list' },
        h('div', { class: 'panel-body' }, h('h2', {}, `${what}${split !== undefined ? ` (${split})` : ''}: ${page.total.toLocaleString()} session${page.total === 1 ? '' : 's'}`)),
        h('div', { class: 'j-scroll' }, h('table', { class: 'j-table' },
          h('thead', {}, h('tr', {}, h('th', {}, 'Started'), h('th', {}, 'Who'), h('th', {}, 'Device'), h('th', { class: 'num' }, 'Length'), h('th', {}))), tbody))));
    } else {
      tbody.append(...rows);
    }
    sessionsEl.querySelector('.more')?.remove();
    if (page.next_cursor) {
      sessionsEl.append(h('div', { class: 'more' }, h('button', { class: 'btn', type: 'button', onclick: () => listSessions(step, status, split, page.next_cursor) }, 'Load more')));
    }
    sessionsEl.scrollIntoView({ block: 'nearest' });
  } catch (e) {
    showError(sessionsEl, e);
  }
}

$('builder').addEventListener('submit', (e) => { e.preventDefault(); run(); });
$('add-step').addEventListener('click', () => { stepsEl.append(stepRow()); renumber(); });
$('new').addEventListener('click', () => {
  current = null;
  const p = params();
  p.delete('id');
  setParams(p);
  fill({ steps: [{ type: 'page', match: '/' }, { type: 'event', match: 'purchase' }] });
  results.replaceChildren();
  sessionsEl.replaceChildren();
});
$('save').addEventListener('click', async () => {
  try {
    const body = { name: $('f-name').value.trim(), ...definition() };
    current = current
      ? await api('PUT', `/api/v1/funnels/${current.id}`, body)
      : await api('POST', '/api/v1/funnels', { project, ...body });
    const p = params();
    p.set('id', current.id);
    setParams(p);
    $('delete').hidden = false;
    await loadSaved();
  } catch (e) {
    showError(results, e);
  }
});
$('delete').addEventListener('click', async () => {
  if (!current || !confirm(`Delete the funnel “${current.name}”?`)) return;
  try {
    await api('DELETE', `/api/v1/funnels/${current.id}`);
    $('new').click();
    await loadSaved();
  } catch (e) {
    showError(results, e);
  }
});

async function main() {
  initRange($('f-from'), $('f-to'));
  project = await projectPicker($('f-project'), async (id) => { project = id; current = null; await loadSaved(); $('new').click(); });
  const { split_dimensions: dims } = await get('/api/v1/journey/segment-fields');
  for (const d of dims) $('f-split').append(h('option', { value: d }, d.replace(/_/g, ' ')));
  const funnels = await loadSaved();
  const want = params().get('id');
  const f = funnels.find((x) => String(x.id) === want);
  if (f) open(f);
  else fill({ steps: [{ type: 'page', match: '/' }, { type: 'page', match: '/product/*' }, { type: 'page', match: '/cart' }, { type: 'event', match: 'purchase' }] });
}
main().catch((e) => showError(results, e));

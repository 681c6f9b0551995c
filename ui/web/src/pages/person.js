// One person's timeline: who they are, then every visit in time order with
// its device, source, pages, events, searches and frustration signals, each
// opening its recording.
import { get } from '../lib/api.js';
import { device, duration, h, time, when } from '../lib/format.js';
import { params, recordingHref, showError } from '../lib/journey.js';

const root = document.getElementById('person-page');
const id = decodeURIComponent(root.dataset.person);
const project = params().get('project') || '';
const about = document.getElementById('p-about');
const visits = document.getElementById('p-visits');
const moreBtn = document.getElementById('more');
let cursor = '';

function aboutPanel(p) {
  document.getElementById('p-title').textContent = p.identified ? p.user_id : 'Anonymous visitor';
  document.title = `${p.identified ? p.user_id : 'Anonymous visitor'} · Trailmap`;
  const traits = Object.entries(p.traits || {});
  about.replaceChildren(
    h('dl', { class: 'j-kv' },
      h('dt', {}, 'Visits'), h('dd', {}, String(p.visits)),
      h('dt', {}, 'Conversions'), h('dd', {}, String(p.conversions)),
      h('dt', {}, 'First seen'), h('dd', {}, when(p.first_seen)),
      h('dt', {}, 'Last seen'), h('dd', {}, when(p.last_seen)),
      h('dt', {}, p.visitors.length > 1 ? 'Devices' : 'Visitor'), h('dd', {}, p.visitors.join(', ')),
      traits.flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, typeof v === 'object' ? JSON.stringify(v) : String(v))])));
}

function visitCard(v, n) {
  const badges = [
    v.conversions > 0 && h('span', { class: 'badge conversion' }, `${v.conversions} conversion${v.conversions > 1 ? 's' : ''}`),
    v.rage_clicks > 0 && h('span', { class: 'badge rage' }, `${v.rage_clicks} rage`),
    v.dead_clicks > 0 && h('span', { class: 'badge dead' }, `${v.dead_clicks} dead`),
    v.errors > 0 && h('span', { class: 'badge error' }, `${v.errors} error${v.errors > 1 ? 's' : ''}`),
    v.live && h('span', { class: 'badge live' }, 'Live'),
  ];
  // Pages and events in one time line.
  const items = [
    ...v.pages.map((p) => ({ t: p.time, el: h('li', {}, h('span', { class: 'muted small' }, time(p.time) + ' '), p.path, p.url.includes('?') ? h('span', { class: 'muted small' }, ' ' + p.url.slice(p.url.indexOf('?'))) : null) })),
    ...v.events.map((e) => ({ t: e.time, el: h('li', {}, h('span', { class: 'muted small' }, time(e.time) + ' '), h('span', { class: 'badge' }, e.name)) })),
  ].sort((a, b) => Date.parse(a.t) - Date.parse(b.t));
  return h('article', { class: 'j-visit', dataset: { session: v.id } },
    h('div', { class: 'j-visit-head' },
      h('div', {}, h('strong', {}, `Visit ${n} · ${when(v.started_at)}`), ' ', h('span', { class: 'muted small' }, duration(v.duration_ms))),
      h('a', { class: 'btn small primary', href: recordingHref(v.id) }, '▶ Watch recording')),
    h('div', { class: 'muted small' }, `${device(v)} · from ${v.source.label}` +
      (v.source.utm_campaign ? ` · campaign ${v.source.utm_campaign}` : '')),
    v.searches.length ? h('div', { class: 'small' }, 'Searched: ', v.searches.map((s, i) => [i ? ', ' : '', h('strong', {}, s)])) : null,
    h('div', {}, badges),
    h('ol', { class: 'j-pages' }, items.map((i) => i.el)));
}

let shown = 0;
async function load() {
  moreBtn.disabled = true;
  try {
    const q = new URLSearchParams({ project, limit: '100' });
    if (cursor) q.set('cursor', cursor);
    const p = await get(`/api/v1/people/${encodeURIComponent(id)}?${q}`);
    if (!shown) {
      aboutPanel(p);
      visits.replaceChildren();
    }
    for (const v of p.visit_list) visits.append(visitCard(v, ++shown));
    if (!shown) visits.append(h('div', { class: 'panel-body muted' }, 'No visits.'));
    cursor = p.next_cursor;
    moreBtn.hidden = !cursor;
  } catch (e) {
    showError(shown ? visits : about, e);
  } finally {
    moreBtn.disabled = false;
  }
}
moreBtn.addEventListener('click', load);
load();

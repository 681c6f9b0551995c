// People list: one row per person (identified users joined across their
// devices, or an anonymous visitor), latest first, with search.
import { get } from '../lib/api.js';
import { ago, h, when } from '../lib/format.js';
import { params, personHref, projectPicker, setParams, showError } from '../lib/journey.js';

const form = document.getElementById('people-form');
const list = document.getElementById('people');
const moreBtn = document.getElementById('more');
const summary = document.getElementById('summary');
const qInput = document.getElementById('p-q');
let project = '';
let cursor = '';
let table = null;

function row(p) {
  const name = p.identified ? p.user_id : `Anonymous ${p.visitors[0].slice(0, 12)}`;
  const email = p.traits && (p.traits.email || p.traits.name);
  return h('tr', { dataset: { person: p.id } },
    h('td', {}, h('a', { href: personHref(p.id, project) }, name),
      email && email !== name ? h('div', { class: 'muted small' }, String(email)) : null),
    h('td', {}, p.identified ? h('span', { class: 'badge' }, 'Identified') : h('span', { class: 'muted small' }, 'Anonymous')),
    h('td', { class: 'num' }, String(p.visits)),
    h('td', { class: 'num' }, String(p.visitors.length)),
    h('td', { title: when(p.first_seen) }, when(p.first_seen)),
    h('td', { title: when(p.last_seen) }, ago(p.last_seen)));
}

async function load(reset) {
  moreBtn.disabled = true;
  try {
    const q = new URLSearchParams({ project, limit: '50' });
    if (qInput.value.trim()) q.set('q', qInput.value.trim());
    if (!reset && cursor) q.set('cursor', cursor);
    const page = await get('/api/v1/people?' + q);
    if (reset) {
      table = h('tbody');
      list.replaceChildren(page.people.length
        ? h('div', { class: 'j-scroll' }, h('table', { class: 'j-table' },
          h('thead', {}, h('tr', {}, h('th', {}, 'Person'), h('th', {}, ''), h('th', { class: 'num' }, 'Visits'),
            h('th', { class: 'num' }, 'Devices'), h('th', {}, 'First seen'), h('th', {}, 'Last seen'))), table))
        : h('div', { class: 'panel-body empty muted' }, qInput.value ? 'Nobody matches this search.' : 'No visitors yet.'));
    }
    for (const p of page.people) table?.append(row(p));
    cursor = page.next_cursor;
    moreBtn.hidden = !cursor;
    summary.textContent = qInput.value ? `matching “${qInput.value}”` : '';
  } catch (e) {
    showError(list, e);
  } finally {
    moreBtn.disabled = false;
  }
}

form.addEventListener('submit', (e) => {
  e.preventDefault();
  const p = params();
  if (qInput.value.trim()) p.set('q', qInput.value.trim()); else p.delete('q');
  setParams(p);
  load(true);
});
moreBtn.addEventListener('click', () => load(false));

qInput.value = params().get('q') || '';
projectPicker(document.getElementById('p-project'), (id) => { project = id; load(true); })
  .then((id) => { project = id; return load(true); })
  .catch((e) => showError(list, e));

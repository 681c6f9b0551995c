// Audit log: who did what, when and from where, newest first, with an
// action filter and paging. Admins only: members get the API's 403 shown.
import { get } from '../lib/api.js';
import { ago, h, when } from '../lib/format.js';
import { params, setParams, showError } from '../lib/journey.js';

const form = document.getElementById('audit-form');
const list = document.getElementById('audit');
const moreBtn = document.getElementById('more');
const action = document.getElementById('a-action');
const actor = document.getElementById('a-actor');
let cursor = '';
let table = null;

const kinds = { user: 'User', token: 'API token', cli: 'Command line', system: 'Trailmap', anonymous: 'Anonymous' };

function who(e) {
  return h('td', {}, e.actor || h('span', { class: 'muted' }, kinds[e.actor_kind] || e.actor_kind),
    e.actor ? h('div', { class: 'muted small' }, kinds[e.actor_kind] || e.actor_kind) : null);
}

function row(e) {
  const detail = e.detail ? JSON.stringify(e.detail) : '';
  return h('tr', {},
    h('td', { title: when(e.at) }, ago(e.at)),
    who(e),
    h('td', {}, h('code', {}, e.action)),
    h('td', {}, e.target || '', detail ? h('div', { class: 'muted small' }, detail) : null),
    h('td', { class: 'muted' }, e.ip || ''));
}

async function load(reset) {
  moreBtn.disabled = true;
  try {
    const q = new URLSearchParams({ limit: '50' });
    if (action.value) q.set('action', action.value);
    if (actor.value.trim()) q.set('actor', actor.value.trim());
    if (!reset && cursor) q.set('cursor', cursor);
    const page = await get('/api/v1/audit?' + q);
    if (reset) {
      table = h('tbody');
      list.replaceChildren(page.entries.length
        ? h('div', { class: 'j-scroll' }, h('table', { class: 'j-table' },
          h('thead', {}, h('tr', {}, h('th', {}, 'When'), h('th', {}, 'Who'), h('th', {}, 'Action'),
            h('th', {}, 'What'), h('th', {}, 'Address'))), table))
        : h('div', { class: 'panel-body empty muted' }, 'Nothing recorded for this filter.'));
    }
    for (const e of page.entries) table?.append(row(e));
    cursor = page.next_cursor;
    moreBtn.hidden = !cursor;
  } catch (e) {
    showError(list, e);
  } finally {
    moreBtn.disabled = false;
  }
}

form.addEventListener('submit', (e) => {
  e.preventDefault();
  const p = params();
  for (const [k, el] of [['action', action], ['actor', actor]]) {
    if (el.value.trim()) p.set(k, el.value.trim()); else p.delete(k);
  }
  setParams(p);
  load(true);
});
moreBtn.addEventListener('click', () => load(false));

action.value = params().get('action') || '';
actor.value = params().get('actor') || '';
load(true);

// Intent and audiences: conversion stats (search before conversion, visits
// and time to convert), site-search terms, journey stages with the moves
// between them, and saved audiences with CSV export.
import { api, get } from '../lib/api.js';
import { duration, h } from '../lib/format.js';
import { initRange, pct, projectPicker, rangeOf, showError } from '../lib/journey.js';

const $ = (id) => document.getElementById(id);
let project = '';

function bars(buckets) {
  const max = Math.max(1, ...buckets.map((b) => b.count));
  return h('table', { class: 'j-table' }, h('tbody', {}, buckets.map((b) => h('tr', {},
    h('td', { style: 'white-space:nowrap' }, b.label),
    h('td', { class: 'j-barcell' }, h('div', { class: 'j-bar', style: `width:${(100 * b.count) / max}%` })),
    h('td', { class: 'num' }, b.count.toLocaleString())))));
}

async function conversions(range) {
  const el = $('conv');
  try {
    const s = await get('/api/v1/journey/conversion-stats?' + new URLSearchParams({ project, ...range }));
    el.replaceChildren(h('h2', {}, 'Conversions'),
      h('p', { class: 'muted small' }, `Counted: ${s.conversion || 'nothing (set conversion events or pages)'}`),
      h('dl', { class: 'j-kv' },
        h('dt', {}, 'People'), h('dd', {}, s.people.toLocaleString()),
        h('dt', {}, 'Converted'), h('dd', {}, `${s.converted.toLocaleString()} (${pct(s.conversion_rate)})`),
        h('dt', {}, 'Searchers converting'), h('dd', {}, `${pct(s.searcher_conversion_rate)} vs ${pct(s.non_searcher_conversion_rate)} of the others`),
        h('dt', {}, 'First-time converters'), h('dd', {}, s.new_converters.toLocaleString()),
        h('dt', {}, 'Searched before'), h('dd', {}, `${s.searched_before_converting.toLocaleString()} (${pct(s.search_before_share)})`),
        h('dt', {}, 'Median visits'), h('dd', {}, s.median_visits_to_convert ?? '—'),
        h('dt', {}, 'Median time'), h('dd', {}, s.median_time_to_convert_ms == null ? '—' : duration(s.median_time_to_convert_ms))),
      h('h3', { class: 'small' }, 'Visits to convert'), bars(s.visits_to_convert),
      h('h3', { class: 'small' }, 'Time to convert'), bars(s.time_to_convert));
  } catch (e) {
    showError(el, e);
  }
}

async function searchTerms(range) {
  const el = $('terms');
  try {
    const r = await get('/api/v1/journey/search-terms?' + new URLSearchParams({ project, limit: '25', ...range }));
    el.replaceChildren(h('h2', {}, 'Site search'),
      h('p', { class: 'muted small' }, `${r.searches.toLocaleString()} searches by ${r.people.toLocaleString()} people (parameter ${r.search_params.join(', ') || 'none'})`),
      r.terms.length ? h('div', { class: 'j-scroll' }, h('table', { class: 'j-table' },
        h('thead', {}, h('tr', {}, h('th', {}, 'Term'), h('th', { class: 'num' }, 'Searches'), h('th', { class: 'num' }, 'People'),
          h('th', { class: 'num' }, 'Converted in visit'), h('th', { class: 'num' }, 'Converted later'))),
        h('tbody', {}, r.terms.map((t) => h('tr', {}, h('td', {}, t.term), h('td', { class: 'num' }, t.searches), h('td', { class: 'num' }, t.people),
          h('td', { class: 'num' }, pct(t.session_conversion_rate)), h('td', { class: 'num' }, pct(t.people_conversion_rate)))))))
        : h('p', { class: 'muted' }, 'No searches in this range.'));
  } catch (e) {
    showError(el, e);
  }
}

function parseRules(text) {
  return text.split(',').map((s) => s.trim()).filter(Boolean).map((s) => {
    const [type, ...rest] = s.split(':');
    return rest.length ? { type: type.trim(), match: rest.join(':').trim() } : { type: 'page', match: s };
  });
}

async function stages(range) {
  const el = $('stages');
  try {
    const flow = await get('/api/v1/stages/flow?' + new URLSearchParams({ project, ...range }));
    const { stages: list } = await get('/api/v1/stages?project=' + encodeURIComponent(project));
    const name = h('input', { placeholder: 'research', required: true, 'aria-label': 'Stage name' });
    const rules = h('input', { placeholder: '/pricing, /product/*, event:compare', required: true, style: 'flex:1;min-width:200px', 'aria-label': 'Rules' });
    const form = h('form', { class: 'j-form', style: 'padding:0' }, name, rules, h('button', { class: 'btn small', type: 'submit' }, 'Add stage'));
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      try {
        await api('POST', '/api/v1/stages', { project, name: name.value.trim(), rules: parseRules(rules.value) });
        stages(range);
      } catch (err) { showError(el, err); }
    });
    el.replaceChildren(h('h2', {}, 'Journey stages'),
      list.length ? h('div', { class: 'j-scroll' }, h('table', { class: 'j-table' },
        h('thead', {}, h('tr', {}, h('th', {}, 'Stage'), h('th', {}, 'Pages and events'), h('th', { class: 'num' }, 'People'),
          h('th', { class: 'num' }, 'Started here'), h('th', { class: 'num' }, 'Are here now'), h('th', {}))),
        h('tbody', {}, list.map((st, i) => {
          const c = flow.stages.find((x) => x.id === st.id) || { people: 0, entered: 0, current: 0 };
          return h('tr', {}, h('td', {}, `${i + 1}. ${st.name}`), h('td', { class: 'small' }, st.rules.map((r) => (r.type === 'event' ? 'event ' : '') + r.match).join(', ')),
            h('td', { class: 'num' }, c.people), h('td', { class: 'num' }, c.entered), h('td', { class: 'num' }, c.current),
            h('td', {}, h('button', { class: 'btn small', type: 'button', onclick: async () => { await api('DELETE', `/api/v1/stages/${st.id}`); stages(range); } }, 'Remove')));
        }))))
        : h('p', { class: 'muted' }, 'Define stages such as awareness (/blog/*), research (/pricing), decision (/cart) to see how people move between them.'),
      flow.transitions.length ? [h('h3', { class: 'small' }, 'Moves between stages (people)'), h('table', { class: 'j-table' }, h('tbody', {},
        flow.transitions.map((t) => h('tr', {}, h('td', {}, `${t.from} → ${t.to}`), h('td', { class: 'muted small' }, t.forward ? '' : 'back'), h('td', { class: 'num' }, t.people)))))] : null,
      form);
  } catch (e) {
    showError(el, e);
  }
}

const exampleSegment = '{"and":[{"field":"visits","op":"gte","value":3},{"field":"search","op":"exists","value":true}]}';

async function audiences() {
  const el = $('audiences');
  try {
    const { audiences: list } = await get('/api/v1/audiences?project=' + encodeURIComponent(project));
    const name = h('input', { placeholder: 'Ready to buy', required: true, 'aria-label': 'Audience name' });
    const days = h('input', { type: 'number', min: '0', value: '14', style: 'width:80px', 'aria-label': 'Window (days)' });
    const seg = h('textarea', { rows: '3', style: 'width:100%;font-family:var(--mono);font-size:12.5px', 'aria-label': 'Segment (JSON)' }, exampleSegment);
    const form = h('form', {}, h('div', { class: 'j-form', style: 'padding:0' }, name, h('label', { class: 'small muted' }, 'in the last ', days, ' days (0: any time)')), seg,
      h('button', { class: 'btn small', type: 'submit' }, 'Save audience'));
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      try {
        await api('POST', '/api/v1/audiences', { project, name: name.value.trim(), window_days: Number(days.value), segment: JSON.parse(seg.value || '{}') });
        audiences();
      } catch (err) { showError(el, err); }
    });
    const rows = list.map((a) => {
      const count = h('span', { class: 'muted small' }, '…');
      get(`/api/v1/audiences/${a.id}/members?limit=1`).then((m) => { count.textContent = `${m.people.toLocaleString()} people, ${m.visitors.toLocaleString()} visitor ids`; })
        .catch((e) => { count.textContent = e.message; });
      return h('tr', {}, h('td', {}, a.name, h('div', { class: 'muted small' }, a.window_days ? `last ${a.window_days} days` : 'any time')), h('td', {}, count),
        h('td', {}, h('a', { class: 'btn small', href: `/api/v1/audiences/${a.id}/members.csv`, download: '' }, 'Export CSV'), ' ',
          h('button', { class: 'btn small', type: 'button', onclick: async () => { await api('DELETE', `/api/v1/audiences/${a.id}`); audiences(); } }, 'Delete')));
    });
    el.replaceChildren(h('h2', {}, 'Audiences'),
      rows.length ? h('table', { class: 'j-table' }, h('tbody', {}, rows)) : h('p', { class: 'muted' }, 'No audiences yet.'),
      h('h3', { class: 'small' }, 'New audience'),
      h('p', { class: 'muted small' }, 'A segment in JSON: fields such as visits, search, page, event, device, utm_source, identified; see the API notes.'),
      form);
  } catch (e) {
    showError(el, e);
  }
}

async function refresh() {
  const range = rangeOf($('i-from'), $('i-to'));
  const st = await get('/api/v1/journey/settings?project=' + encodeURIComponent(project));
  $('i-settings').textContent = `Conversion: ${[...st.conversion_events.map((e) => 'event ' + e), ...st.conversion_pages.map((p) => 'page ' + p)].join(', ') || 'none'}` + (st.rebuilding ? ' (recounting…)' : '');
  await Promise.all([conversions(range), searchTerms(range), stages(range), audiences()]);
}

$('i-form').addEventListener('submit', (e) => { e.preventDefault(); refresh(); });
async function main() {
  initRange($('i-from'), $('i-to'));
  project = await projectPicker($('i-project'), (id) => { project = id; refresh(); });
  await refresh();
}
main().catch((e) => showError($('conv'), e));

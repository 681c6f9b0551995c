// Paths as a Sankey flow (d3-sankey): the chosen page, the pages sessions
// went to next (or came from), "(other)" for the rest and exits as
// drop-off. Clicking a page follows it.
import { sankey, sankeyLeft, sankeyLinkHorizontal, sankeyRight } from 'd3-sankey';
import { get } from '../lib/api.js';
import { h } from '../lib/format.js';
import { initRange, params, projectPicker, rangeOf, setParams, showError } from '../lib/journey.js';

const $ = (id) => document.getElementById(id);
const flow = $('flow');
const SVG = 'http://www.w3.org/2000/svg';
const colors = { page: '#2456d6', other: '#8792a6', exit: '#c4302b', entrance: '#1d7a46' };
let project = '';

function svg(tag, attrs, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, v);
  for (const c of children) if (c) el.append(c);
  return el;
}

function draw(res) {
  if (!res.sessions) {
    flow.replaceChildren(h('div', { class: 'panel-body empty muted' }, `No session visited ${res.page} in this range.`));
    $('flow-table').replaceChildren();
    return;
  }
  const width = Math.max(640, flow.clientWidth || 900);
  const height = Math.max(320, 42 * Math.max(...[...new Set(res.nodes.map((n) => n.level))].map((l) => res.nodes.filter((n) => n.level === l).length)));
  const layout = sankey()
    .nodeId((d) => d.id)
    .nodeAlign(res.direction === 'previous' ? sankeyRight : sankeyLeft)
    .nodeWidth(12)
    .nodePadding(14)
    .nodeSort(null)
    .extent([[1, 8], [width - 1, height - 8]]);
  const graph = layout({ nodes: res.nodes.map((d) => ({ ...d })), links: res.links.map((d) => ({ ...d })) });
  const link = sankeyLinkHorizontal();
  const chart = svg('svg', { viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': `Paths ${res.direction === 'next' ? 'after' : 'before'} ${res.page}` });
  for (const l of graph.links) {
    chart.append(svg('path', { class: 'link', d: link(l), stroke: colors[l.target.kind === 'page' ? l.source.kind : l.target.kind] || colors.page, 'stroke-width': Math.max(1, l.width) },
      svg('title', {}, document.createTextNode(`${l.source.name} → ${l.target.name}: ${l.value.toLocaleString()} sessions`))));
  }
  for (const n of graph.nodes) {
    const g = svg('g', { class: 'node' });
    g.dataset.kind = n.kind;
    g.dataset.name = n.name;
    g.append(svg('rect', { x: n.x0, y: n.y0, width: n.x1 - n.x0, height: Math.max(1, n.y1 - n.y0), fill: colors[n.kind] },
      svg('title', {}, document.createTextNode(`${n.name}: ${n.sessions.toLocaleString()} sessions` + (n.exits ? `, ${n.exits.toLocaleString()} left here` : '')))));
    const left = n.x0 > width / 2;
    const label = svg('text', { x: left ? n.x0 - 6 : n.x1 + 6, y: (n.y0 + n.y1) / 2, dy: '0.35em', 'text-anchor': left ? 'end' : 'start' },
      document.createTextNode(`${n.name} (${n.sessions.toLocaleString()})`));
    g.append(label);
    if (n.kind === 'page' && n.level !== 0) {
      g.style.cursor = 'pointer';
      g.addEventListener('click', () => { $('x-page').value = n.name; run(); });
    }
    chart.append(g);
  }
  flow.replaceChildren(chart);
  const byId = new Map(res.nodes.map((n) => [n.id, n]));
  $('flow-table').replaceChildren(h('table', { class: 'j-table' },
    h('thead', {}, h('tr', {}, h('th', {}, 'From'), h('th', {}, 'To'), h('th', { class: 'num' }, 'Sessions'))),
    h('tbody', {}, res.links.map((l) => h('tr', {}, h('td', {}, byId.get(l.source).name), h('td', {}, byId.get(l.target).name), h('td', { class: 'num' }, l.value.toLocaleString()))))));
}

async function run() {
  const p = params();
  p.set('project', project);
  p.set('page', $('x-page').value.trim());
  p.set('direction', $('x-dir').value);
  p.set('depth', $('x-depth').value);
  p.set('top', $('x-top').value);
  p.set('from', $('x-from').value);
  p.set('to', $('x-to').value);
  setParams(p);
  const q = new URLSearchParams({ project, page: $('x-page').value.trim(), direction: $('x-dir').value, depth: $('x-depth').value, top: $('x-top').value, ...rangeOf($('x-from'), $('x-to')) });
  flow.replaceChildren(h('div', { class: 'panel-body muted' }, 'Counting…'));
  try {
    const res = await get('/api/v1/paths?' + q);
    $('summary').textContent = `${res.sessions.toLocaleString()} sessions · ${res.took_ms} ms`;
    draw(res);
  } catch (e) {
    showError(flow, e);
  }
}

$('paths-form').addEventListener('submit', (e) => { e.preventDefault(); run(); });

async function main() {
  const p = params();
  initRange($('x-from'), $('x-to'));
  for (const k of ['page', 'direction', 'depth', 'top']) if (p.get(k)) $({ page: 'x-page', direction: 'x-dir', depth: 'x-depth', top: 'x-top' }[k]).value = p.get(k);
  project = await projectPicker($('x-project'), (id) => { project = id; run(); });
  run();
}
main().catch((e) => showError(flow, e));

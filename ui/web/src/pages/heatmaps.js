// Heatmap viewer: pick a page, a device and a date range; the page is
// rebuilt from a recent full snapshot (an rrweb Replayer, paused) and the
// map is laid over it at the page's own scale. Clicks, rage, dead and error
// maps and the scroll map are the server's PNG overlays; the element map is
// drawn here, re-projecting each element's clicks onto the box the element
// has in this snapshot. "Compare" shows a second date range beside the
// first. The API is documented in heatmap/ and server/heatmaps.go.
import { Replayer } from '@rrweb/replay';
import '@rrweb/replay/dist/style.css';
import { get } from '../lib/api.js';
import { h } from '../lib/format.js';
import './heatmaps.css';

const root = document.getElementById('heatmaps');
const $ = (sel) => root.querySelector(sel);
const DAY = 86400000;
const isoDay = (t) => new Date(t).toISOString().slice(0, 10);
const enc = encodeURIComponent;

// ---- state, kept in the URL so a view can be shared ----------------------

const params = new URLSearchParams(location.search);
const today = Date.now();
const state = {
  project: params.get('project') || '',
  url: params.get('url') || '',
  device: params.get('device') || 'desktop',
  from: params.get('from') || isoDay(today - 29 * DAY),
  to: params.get('to') || isoDay(today),
  mode: params.get('mode') || 'grid',
  compare: params.get('compare') === '1',
  from2: params.get('from2') || isoDay(today - 59 * DAY),
  to2: params.get('to2') || isoDay(today - 30 * DAY),
  page: params.get('page') !== '0',
  // segment is a journey segment as JSON ('' for every session).
  segment: params.get('segment') || '',
};

function saveURL() {
  const p = new URLSearchParams();
  for (const k of ['project', 'url', 'device', 'from', 'to', 'mode', 'segment']) if (state[k]) p.set(k, state[k]);
  if (state.compare) { p.set('compare', '1'); p.set('from2', state.from2); p.set('to2', state.to2); }
  if (!state.page) p.set('page', '0');
  history.replaceState(null, '', `${location.pathname}?${p}`);
}

// query builds the API query of a range (dates inclusive; the API's to is exclusive).
function query(from, to, extra = {}) {
  const p = new URLSearchParams();
  if (state.project) p.set('project', state.project);
  if (state.url) p.set('url', state.url);
  p.set('device', state.device);
  p.set('from', from);
  p.set('to', isoDay(Date.parse(to) + DAY));
  if (state.segment) p.set('segment', state.segment);
  for (const [k, v] of Object.entries(extra)) if (v !== undefined && v !== null) p.set(k, v);
  return p.toString();
}

// ---- colours: the server's palette (heatmap.Palette) ---------------------

const STOPS = [[0, 0, 255], [0, 255, 255], [0, 255, 0], [255, 255, 0], [255, 0, 0]];
const PALETTE = (() => {
  const p = new Uint8ClampedArray(256 * 4);
  for (let i = 1; i < 256; i++) {
    const t = (i - 1) / 254, f = t * 4, k = Math.min(3, Math.floor(f)), u = f - k;
    for (let c = 0; c < 3; c++) p[i * 4 + c] = Math.round(STOPS[k][c] * (1 - u) + STOPS[k + 1][c] * u);
    p[i * 4 + 3] = Math.round(255 * Math.max(0.02, 0.85 * Math.sqrt(t)));
  }
  return p;
})();

// drawHeat renders weighted points as the server does (8 px cells, σ 12 px
// Gaussian, 99th-percentile cap, square-root scale) onto a canvas of w×h
// page pixels drawn at a quarter of the resolution.
function drawHeat(canvas, w, h, points) {
  const S = 4; // page px per canvas px
  const gw = Math.max(1, Math.ceil(w / S)), gh = Math.max(1, Math.ceil(h / S));
  canvas.width = gw;
  canvas.height = gh;
  canvas.style.width = `${w}px`;
  canvas.style.height = `${h}px`;
  const grid = new Float32Array(gw * gh);
  for (const [x, y, n] of points) {
    const cx = Math.floor(x / S), cy = Math.floor(y / S);
    if (cx >= 0 && cy >= 0 && cx < gw && cy < gh) grid[cy * gw + cx] += n;
  }
  // Separable Gaussian blur, σ = 12 px = 3 cells, truncated at 3σ.
  const sig = 12 / S, r = Math.ceil(3 * sig);
  const k = new Float32Array(2 * r + 1);
  for (let i = -r; i <= r; i++) k[i + r] = Math.exp(-(i * i) / (2 * sig * sig));
  const tmp = new Float32Array(gw * gh), out = new Float32Array(gw * gh);
  for (let y = 0; y < gh; y++) {
    for (let x = 0; x < gw; x++) {
      const v = grid[y * gw + x];
      if (!v) continue;
      for (let i = Math.max(0, x - r); i <= Math.min(gw - 1, x + r); i++) tmp[y * gw + i] += v * k[i - x + r];
    }
  }
  for (let y = 0; y < gh; y++) {
    for (let x = 0; x < gw; x++) {
      const v = tmp[y * gw + x];
      if (!v) continue;
      for (let j = Math.max(0, y - r); j <= Math.min(gh - 1, y + r); j++) out[j * gw + x] += v * k[j - y + r];
    }
  }
  const nz = [];
  for (const v of out) if (v > 0) nz.push(v);
  const ctx = canvas.getContext('2d');
  ctx.clearRect(0, 0, gw, gh);
  if (!nz.length) return;
  nz.sort((a, b) => a - b);
  const cap = nz[Math.min(nz.length - 1, Math.ceil(nz.length * 0.99) - 1)];
  const img = ctx.createImageData(gw, gh);
  for (let i = 0; i < out.length; i++) {
    const v = out[i];
    if (!v) continue;
    const idx = Math.min(255, Math.round(255 * Math.sqrt(Math.min(1, v / cap))));
    if (idx < 1) continue;
    img.data.set(PALETTE.subarray(idx * 4, idx * 4 + 4), i * 4);
  }
  ctx.putImageData(img, 0, 0);
}

// ---- a stage: the page with a map over it --------------------------------

class Stage {
  constructor(label) {
    this.el = h('section', { class: 'hm-stage-wrap' },
      this.labelEl = h('div', { class: 'hm-stage-label' }, label),
      this.box = h('div', { class: 'hm-stage', tabindex: '0', 'aria-label': 'Page with the heatmap; scroll to move through it' },
        this.inner = h('div', { class: 'hm-inner' },
          this.host = h('div', { class: 'hm-host' }),
          this.layer = h('div', { class: 'hm-layer' },
            this.img = h('img', { class: 'hm-img', alt: '' }),
            this.canvas = h('canvas', { class: 'hm-canvas', hidden: true }),
            this.fold = h('div', { class: 'hm-fold', hidden: true }, h('span', {}, 'Average fold')),
            this.outline = h('div', { class: 'hm-outline', hidden: true }))),
        this.msg = h('div', { class: 'hm-msg' }, 'Loading…')),
      this.stats = h('div', { class: 'hm-stats muted small' }));
    this.k = 1;
    this.scrollY = 0;
    this.box.addEventListener('wheel', (e) => { e.preventDefault(); this.scrollBy(e.deltaY / this.k); }, { passive: false });
    this.box.addEventListener('keydown', (e) => {
      const step = { ArrowDown: 60, ArrowUp: -60, PageDown: this.vh * 0.9, PageUp: -this.vh * 0.9, Home: -1e9, End: 1e9 }[e.key];
      if (step) { e.preventDefault(); this.scrollBy(step); }
    });
    this.box.addEventListener('mousemove', (e) => this.hover(e));
    this.box.addEventListener('mouseleave', () => { this.outline.hidden = true; showHover(null); });
  }

  message(text) {
    this.msg.textContent = text || '';
    this.msg.hidden = !text;
  }

  // page builds the replayed page at its first frame, or a blank page of
  // the given size when there is no snapshot.
  async page(events, atTS, blank) {
    if (this.r) { this.r.destroy(); this.r = null; }
    this.host.replaceChildren();
    this.doc = null;
    if (!events) {
      this.vw = blank.width; this.vh = Math.min(blank.height, 900);
      this.pageW = blank.width; this.pageH = blank.height;
      this.fit();
      return;
    }
    this.r = new Replayer(events, {
      root: this.host, mouseTail: false, showWarning: false, triggerFocus: false, pauseAnimation: true, skipInactive: false,
    });
    const meta = events.find((e) => e.type === 4);
    this.vw = meta?.data?.width || 1280;
    this.vh = meta?.data?.height || 800;
    this.r.on('resize', (d) => { this.vw = d.width; this.vh = d.height; });
    this.r.pause(Math.max(0, atTS - events[0].timestamp));
    await new Promise((res) => requestAnimationFrame(() => requestAnimationFrame(res)));
    this.doc = this.r.iframe.contentDocument;
    const win = this.r.iframe.contentWindow;
    win.scrollTo(0, 0);
    this.onScroll = () => this.moved();
    win.addEventListener('scroll', this.onScroll);
    const de = this.doc.documentElement, body = this.doc.body || de;
    this.pageW = de.clientWidth || this.vw;
    this.pageH = Math.max(de.scrollHeight, body.scrollHeight, this.vh);
    this.fit();
  }

  fit() {
    const avail = this.el.parentElement ? this.el.parentElement.clientWidth / (state.compare ? 2 : 1) - (state.compare ? 8 : 0) : this.vw;
    this.k = Math.min(1, Math.max(0.2, avail / this.vw));
    this.box.style.width = `${Math.round(this.vw * this.k)}px`;
    this.box.style.height = `${Math.round(this.vh * this.k)}px`;
    Object.assign(this.inner.style, { width: `${this.vw}px`, height: `${this.vh}px`, transform: `scale(${this.k})` });
    Object.assign(this.layer.style, { width: `${this.pageW}px`, height: `${this.pageH}px` });
    this.moved();
  }

  scrollBy(dy) {
    if (this.doc) this.r.iframe.contentWindow.scrollBy(0, dy);
    else { this.scrollY = Math.max(0, Math.min(this.pageH - this.vh, this.scrollY + dy)); this.moved(); }
    if (this.twin && !this.syncing) {
      this.twin.syncing = true;
      this.twin.scrollTo(this.currentY());
      this.twin.syncing = false;
    }
  }

  scrollTo(y) {
    if (this.doc) this.r.iframe.contentWindow.scrollTo(0, y);
    else { this.scrollY = Math.max(0, Math.min(this.pageH - this.vh, y)); this.moved(); }
  }

  currentY() { return this.doc ? this.r.iframe.contentWindow.scrollY : this.scrollY; }

  moved() { this.layer.style.transform = `translateY(${-this.currentY()}px)`; }

  pagePoint(e) {
    const r = this.box.getBoundingClientRect();
    return [(e.clientX - r.left) / this.k, (e.clientY - r.top) / this.k];
  }

  // hover finds the element under the pointer that the map knows.
  hover(e) {
    if (!this.doc || !this.byNode) return;
    const [x, y] = this.pagePoint(e);
    let n = this.doc.elementFromPoint(x, y);
    while (n && !this.byNode.has(n)) n = n.parentElement;
    if (!n) { this.outline.hidden = true; showHover(null); return; }
    this.highlight(n);
    showHover(this.byNode.get(n).selector);
  }

  // highlight outlines an element of the page (page coordinates).
  highlight(node) {
    if (!node) { this.outline.hidden = true; return; }
    const b = node.getBoundingClientRect(), y = this.currentY();
    Object.assign(this.outline.style, { left: `${b.left}px`, top: `${b.top + y}px`, width: `${b.width}px`, height: `${b.height}px` });
    this.outline.hidden = false;
  }

  reveal(selector) {
    const n = this.find(selector);
    if (!n) return;
    const b = n.getBoundingClientRect();
    if (b.top < 0 || b.bottom > this.vh) this.scrollTo(this.currentY() + b.top - this.vh / 3);
    this.highlight(n);
  }

  find(selector) {
    if (!this.doc) return null;
    try { return this.doc.querySelector(selector); } catch { return null; }
  }

  // map loads and draws the map of the current mode for a range.
  async map(from, to) {
    this.img.hidden = true;
    this.canvas.hidden = true;
    this.fold.hidden = true;
    this.img.removeAttribute('src');
    const size = { width: this.pageW, height: Math.min(this.pageH, 30000) };
    if (state.mode === 'scroll') {
      const m = await get(`/api/v1/heatmaps/scroll?${query(from, to, size)}`);
      this.data = { elements: [] };
      this.byNode = new Map();
      await this.image(`/api/v1/heatmaps/scroll.png?${query(from, to, size)}`);
      if (m.avg_fold_px > 0) {
        this.fold.style.top = `${m.avg_fold_px}px`;
        this.fold.hidden = false;
      }
      const at = (d) => `${Math.round((m.depths[d]?.reached || 0) * 100)}%`;
      this.stats.textContent = m.pageviews
        ? `${m.pageviews} page views · reached 25%: ${at(25)} · 50%: ${at(50)} · 75%: ${at(75)} · the end: ${at(100)} · average fold ${Math.round(m.avg_fold_px)} px`
        : 'No page views with a known page height in this range.';
      return m;
    }
    const mapMode = state.mode === 'element' ? 'element' : state.mode;
    const m = await get(`/api/v1/heatmaps/clicks?${query(from, to, { ...size, mode: mapMode, limit: 1000 })}`);
    this.data = m;
    this.byNode = new Map();
    for (const e of m.elements) {
      const n = this.find(e.selector);
      if (n && !this.byNode.has(n)) this.byNode.set(n, e);
    }
    if (state.mode === 'element') {
      // Each element's clicks at their place inside its box in this snapshot,
      // or in its reference box when the snapshot does not have it.
      const pts = [];
      const y0 = this.currentY();
      for (const e of m.elements) {
        const n = this.find(e.selector);
        let b = null;
        if (n) { const r = n.getBoundingClientRect(); if (r.width > 0 && r.height > 0) b = { x: r.left, y: r.top + y0, w: r.width, h: r.height }; }
        if (!b && e.box) b = e.box;
        if (!b) continue;
        for (const [rx, ry, c] of e.offsets) pts.push([b.x + ((rx + 0.5) / 16) * b.w, b.y + ((ry + 0.5) / 16) * b.h, c]);
      }
      drawHeat(this.canvas, this.pageW, this.pageH, pts);
      this.canvas.hidden = false;
    } else {
      await this.image(`/api/v1/heatmaps/clicks.png?${query(from, to, { ...size, mode: mapMode })}`);
    }
    const what = { grid: 'clicks', element: 'clicks on elements', rage: 'rage clicks', dead: 'dead clicks', error: 'error clicks' }[state.mode];
    const shown = state.mode === 'element' ? m.elements.reduce((a, e) => a + e.clicks - e.unplaced, 0) : m.drawn;
    this.stats.textContent = `${m.pageviews} page views · ${m.clicks} clicks · ${shown} ${what} shown · ${m.rage_clicks} rage · ${m.dead_clicks} dead · ${m.error_clicks} error clicks`;
    return m;
  }

  image(src) {
    return new Promise((resolve, reject) => {
      this.img.onload = () => { this.img.hidden = false; resolve(); };
      this.img.onerror = () => reject(new Error('The map image could not be loaded.'));
      this.img.src = src;
    });
  }

  // composite draws the page (best effort: a serialised copy of the DOM;
  // images of the site are left out by the browser) and the map.
  async composite() {
    const c = document.createElement('canvas');
    c.width = this.pageW;
    c.height = this.pageH;
    const ctx = c.getContext('2d');
    ctx.fillStyle = '#fff';
    ctx.fillRect(0, 0, c.width, c.height);
    let pageDrawn = false;
    if (this.doc && state.page) {
      try {
        const html = new XMLSerializer().serializeToString(this.doc.documentElement);
        const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${this.pageW}" height="${this.pageH}"><foreignObject x="0" y="0" width="100%" height="100%">${html}</foreignObject></svg>`;
        const im = new Image();
        await new Promise((res, rej) => { im.onload = res; im.onerror = rej; im.src = 'data:image/svg+xml;charset=utf-8,' + enc(svg); });
        ctx.drawImage(im, 0, 0);
        c.toDataURL(); // throws if the page made the canvas unreadable
        pageDrawn = true;
      } catch {
        ctx.fillStyle = '#fff';
        ctx.fillRect(0, 0, c.width, c.height);
      }
    }
    if (!this.img.hidden && this.img.complete) ctx.drawImage(this.img, 0, 0, this.pageW, this.pageH);
    if (!this.canvas.hidden) ctx.drawImage(this.canvas, 0, 0, this.pageW, this.pageH);
    return { canvas: c, pageDrawn };
  }
}

// ---- the page ----------------------------------------------------------

const stagesEl = $('#hm-stages');
const stages = [new Stage('')];
let loadSeq = 0;

function showHover(selector) {
  const box = $('#hm-hover');
  if (!selector) { box.hidden = true; return; }
  const rows = stages.filter((s) => s.data).map((s, i) => {
    const e = s.data.elements.find((x) => x.selector === selector);
    const label = stages.length > 1 ? (i === 0 ? 'A' : 'B') : '';
    if (!e) return h('div', {}, label ? `${label}: ` : '', 'no clicks');
    const extra = [e.rage_clicks && `${e.rage_clicks} rage`, e.dead_clicks && `${e.dead_clicks} dead`, e.error_clicks && `${e.error_clicks} error`].filter(Boolean).join(' · ');
    return h('div', {}, label ? h('strong', {}, `${label} `) : null, `${e.clicks} clicks · ${(e.share * 100).toFixed(1)}% of the page's clicks`, extra ? h('div', { class: 'error small' }, extra) : null);
  });
  box.replaceChildren(h('code', { class: 'hm-sel' }, selector), ...rows);
  box.hidden = false;
}

function shortSelector(sel) {
  const parts = sel.split(' > ');
  return parts.length > 2 ? '… > ' + parts.slice(-2).join(' > ') : sel;
}

function renderSide() {
  const a = stages[0].data, b = stages[1]?.data;
  const list = $('#hm-elements');
  if (!a || !a.elements.length) {
    list.replaceChildren(h('li', { class: 'muted' }, state.mode === 'scroll' ? 'Elements are listed on the click maps.' : 'No clicked elements in this range.'));
    return;
  }
  list.replaceChildren(...a.elements.slice(0, 20).map((e) => {
    const other = b?.elements.find((x) => x.selector === e.selector);
    const li = h('li', { tabindex: '0', title: e.selector },
      h('span', { class: 'hm-el-name' }, e.tag ? h('span', { class: 'badge' }, e.tag) : null, ' ', shortSelector(e.selector)),
      h('span', { class: 'hm-el-count' }, `${e.clicks}`, h('span', { class: 'muted small' }, ` ${(e.share * 100).toFixed(1)}%`),
        b ? h('span', { class: 'muted small' }, ` · B ${other ? other.clicks : 0}`) : null,
        e.rage_clicks ? h('span', { class: 'badge rage' }, `${e.rage_clicks} rage`) : null,
        e.dead_clicks ? h('span', { class: 'badge dead' }, `${e.dead_clicks} dead`) : null,
        e.error_clicks ? h('span', { class: 'badge error' }, `${e.error_clicks} error`) : null));
    const show = () => { for (const s of stages) s.reveal(e.selector); showHover(e.selector); };
    li.addEventListener('mouseenter', show);
    li.addEventListener('focus', show);
    li.addEventListener('click', show);
    return li;
  }));
}

async function load() {
  const seq = ++loadSeq;
  saveURL();
  $('#hm-download').disabled = true;
  root.dataset.state = 'loading';
  while (stages.length < (state.compare ? 2 : 1)) stages.push(new Stage(''));
  stages.length = state.compare ? 2 : 1;
  stages[0].twin = stages[1] || null;
  if (stages[1]) stages[1].twin = stages[0];
  stages[0].labelEl.textContent = state.compare ? `A · ${state.from} – ${state.to}` : '';
  if (stages[1]) stages[1].labelEl.textContent = `B · ${state.from2} – ${state.to2}`;
  stagesEl.replaceChildren(...stages.map((s) => s.el));
  stagesEl.classList.toggle('hm-compare', state.compare);
  stagesEl.classList.toggle('hm-nopage', !state.page);
  if (!state.url) {
    for (const s of stages) s.message('Pick a page.');
    root.dataset.state = 'empty';
    return;
  }
  for (const s of stages) { s.message('Loading the page…'); s.stats.textContent = ''; }
  try {
    // The page: a recent full snapshot of it on this device.
    let events = null, at = 0;
    try {
      const sn = await get(`/api/v1/heatmaps/snapshot?${query(state.from, state.to)}`);
      const evs = await get(`/api/v1/sessions/${enc(sn.session_id)}/events?assets=copies&from_ms=${sn.from_ms}&to_ms=${sn.to_ms}`);
      if (evs.length > 1) {
        events = evs;
        // A moment after the snapshot, for late content; before anyone scrolls.
        at = Math.min(Date.parse(sn.time) + 500, evs[evs.length - 1].timestamp);
      }
    } catch (e) {
      if (e.status !== 404) throw e;
    }
    if (seq !== loadSeq) return;
    const blank = { width: { desktop: 1280, tablet: 820, mobile: 390 }[state.device] || 1280, height: 2000 };
    await Promise.all(stages.map((s) => s.page(events, at, blank)));
    if (seq !== loadSeq) return;
    for (const s of stages) s.message(events ? '' : 'No recorded view of this page on this device in the range: the map is shown without the page.');
    const ranges = [[state.from, state.to], [state.from2, state.to2]];
    await Promise.all(stages.map((s, i) => s.map(...ranges[i])));
    if (seq !== loadSeq) return;
    renderSide();
    $('#hm-download').disabled = false;
    root.dataset.state = 'ready';
  } catch (e) {
    if (seq !== loadSeq) return;
    for (const s of stages) s.message(e.message || 'Could not load the map.');
    root.dataset.state = 'error';
  }
}

async function loadPages() {
  const sel = $('#hm-page');
  sel.replaceChildren(h('option', { value: '' }, 'Loading pages…'));
  let res;
  try {
    res = await get(`/api/v1/heatmaps/pages?${new URLSearchParams({ ...(state.project ? { project: state.project } : {}), device: state.device, from: state.from, to: isoDay(Date.parse(state.to) + DAY), limit: 500, ...(state.segment ? { segment: state.segment } : {}) })}`);
  } catch (e) {
    sel.replaceChildren(h('option', { value: '' }, e.message));
    return;
  }
  const pages = res.pages || [];
  $('#hm-summary').textContent = pages.length ? `${pages.length} pages` : '';
  const opts = pages.map((p) => h('option', { value: p.page }, `${p.page} — ${p.pageviews} views · ${p.clicks} clicks${p.rage_clicks ? ` · ${p.rage_clicks} rage` : ''}`));
  if (state.url && !pages.some((p) => p.page === state.url)) opts.unshift(h('option', { value: state.url }, `${state.url} — no views in this range`));
  if (!opts.length) opts.push(h('option', { value: '' }, 'No pages recorded on this device in this range'));
  sel.replaceChildren(...opts);
  if (!state.url && pages.length) state.url = pages[0].page;
  sel.value = state.url;
}

async function loadProjects() {
  const res = await get('/api/v1/projects');
  const ps = res.projects || [];
  if (!state.project && ps.length) state.project = String(ps[0].id);
  if (ps.length > 1) {
    const sel = $('#hm-project');
    sel.replaceChildren(...ps.map((p) => h('option', { value: String(p.id) }, p.name)));
    sel.value = state.project;
    $('#hm-project-field').hidden = false;
  }
}

// busy marks the view as loading at once, before any request goes out,
// and makes a load still in flight stale: a change that first reloads the
// page list (device, range, segment, project) calls load only after that
// list is back, and the older load, finishing in between with the old
// device's snapshot, must not mark the view ready.
const busy = () => { loadSeq++; root.dataset.state = 'loading'; };

function setSeg(groupSel, attr, value, aria) {
  for (const b of root.querySelectorAll(`${groupSel} [data-${attr}]`)) b.setAttribute(aria, String(b.dataset[attr] === value));
}

function controls() {
  $('#hm-from').value = state.from;
  $('#hm-to').value = state.to;
  $('#hm-from2').value = state.from2;
  $('#hm-to2').value = state.to2;
  $('#hm-compare').checked = state.compare;
  $('#hm-compare-range').hidden = !state.compare;
  $('#hm-page-visible').checked = state.page;
  setSeg('#hm-device', 'device', state.device, 'aria-selected');
  setSeg('#hm-mode', 'mode', state.mode, 'aria-checked');
}

// segmentField adds a text box for a journey segment (JSON) after the range.
function segmentField() {
  const input = h('input', { id: 'hm-segment', name: 'segment', type: 'text', spellcheck: 'false', placeholder: '{"field":"device","op":"eq","value":"mobile"}' });
  input.value = state.segment;
  $('#hm-to').closest('.field').after(h('div', { class: 'field field-wide' }, h('label', { for: 'hm-segment' }, 'Segment'), input));
  input.addEventListener('change', async (e) => { busy(); state.segment = e.target.value.trim(); await loadPages(); load(); });
}

async function main() {
  busy();
  segmentField();
  controls();
  await loadProjects();
  await loadPages();
  load();
  $('#hm-project').addEventListener('change', async (e) => { busy(); state.project = e.target.value; state.url = ''; await loadPages(); load(); });
  $('#hm-page').addEventListener('change', (e) => { busy(); state.url = e.target.value; load(); });
  for (const id of ['from', 'to']) {
    $(`#hm-${id}`).addEventListener('change', async (e) => { if (e.target.value) { busy(); state[id] = e.target.value; await loadPages(); load(); } });
  }
  for (const id of ['from2', 'to2']) {
    $(`#hm-${id}`).addEventListener('change', (e) => { if (e.target.value) { busy(); state[id] = e.target.value; load(); } });
  }
  $('#hm-device').addEventListener('click', async (e) => {
    const d = e.target.closest('[data-device]')?.dataset.device;
    if (!d || d === state.device) return;
    busy();
    state.device = d;
    controls();
    await loadPages();
    load();
  });
  $('#hm-mode').addEventListener('click', (e) => {
    const m = e.target.closest('[data-mode]')?.dataset.mode;
    if (!m || m === state.mode) return;
    busy();
    state.mode = m;
    controls();
    load();
  });
  $('#hm-compare').addEventListener('change', (e) => { busy(); state.compare = e.target.checked; controls(); load(); });
  $('#hm-page-visible').addEventListener('change', (e) => { state.page = e.target.checked; stagesEl.classList.toggle('hm-nopage', !state.page); saveURL(); });
  $('#hm-form').addEventListener('submit', (e) => e.preventDefault());
  $('#hm-download').addEventListener('click', download);
  window.addEventListener('resize', () => { for (const s of stages) s.fit(); });
}

// fileName is the downloaded image's name.
function fileName() {
  return `heatmap-${state.url.replace(/[^a-z0-9]+/gi, '-').replace(/^-|-$/g, '') || 'page'}-${state.device}-${state.mode}.png`;
}

function save(blob) {
  const a = h('a', { href: URL.createObjectURL(blob), download: fileName() });
  document.body.append(a);
  a.click();
  setTimeout(() => { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
}

// download saves the map with the page under it: drawn by the server (the
// page rendered from its stored snapshot, a caption and a legend; two
// side by side for a comparison; the click maps and the scroll map), or,
// when the server cannot render, drawn here from what the page shows.
async function download() {
  if (state.page) {
    const btn = $('#hm-download');
    btn.disabled = true;
    $('#hm-side-note').textContent = 'Rendering the image…';
    try {
      const extra = { mode: state.mode };
      if (state.compare) {
        extra.from2 = state.from2;
        extra.to2 = isoDay(Date.parse(state.to2) + DAY);
      }
      const res = await fetch('/api/v1/heatmaps/report.png?' + query(state.from, state.to, extra), { credentials: 'same-origin' });
      if (res.ok) {
        save(await res.blob());
        $('#hm-side-note').textContent = '';
        return;
      }
    } catch (e) {
      // drawn here instead
    } finally {
      btn.disabled = false;
    }
    $('#hm-side-note').textContent = '';
  }
  const parts = await Promise.all(stages.map((s) => s.composite()));
  const gap = 16;
  const out = document.createElement('canvas');
  out.width = parts.reduce((a, p) => a + p.canvas.width, 0) + gap * (parts.length - 1);
  out.height = Math.max(...parts.map((p) => p.canvas.height));
  const ctx = out.getContext('2d');
  ctx.fillStyle = '#fff';
  ctx.fillRect(0, 0, out.width, out.height);
  let x = 0;
  for (const p of parts) { ctx.drawImage(p.canvas, x, 0); x += p.canvas.width + gap; }
  out.toBlob(save, 'image/png');
  if (state.page && !parts.every((p) => p.pageDrawn)) {
    $('#hm-side-note').textContent = 'The download has the map only: this browser would not draw the page into an image.';
  }
}

// For tests and the console.
window.trailmapHeatmaps = { state, stages, load };

main().catch((e) => {
  stagesEl.replaceChildren(h('div', { class: 'panel panel-body error' }, e.message || 'Could not load heatmaps.'));
  root.dataset.state = 'error';
});

// The page the server's renderer plays a clip in (render package): no
// controls, the recording fitted into the frame, a cursor, click ripples
// with rage and dead clicks marked, and an optional caption bar. Nothing
// here runs on its own clock: the renderer calls trailmapRender.frame(t)
// for each frame's time and takes a screenshot, so a render is the same
// every time, whatever the machine's speed.
import { Replayer } from '@rrweb/replay';
import '@rrweb/replay/dist/style.css';
import './render.css';

const RIPPLE_MS = 700;   // a click's ripple
const LABEL_MS = 1600;   // a rage or dead click's label
const SIGNAL_LABEL = { rage_click: 'Rage click', dead_click: 'Dead click', error: 'Error click' };

const isClick = (e) => e.type === 3 && e.data && e.data.source === 2 && (e.data.type === 2 || e.data.type === 7);
// What counts as activity for skipping inactivity: what the player's
// "skip inactivity" counts (rrweb's user interactions), and page loads.
// Events that move only the pointer (and its click effects): a frame
// after them redraws around the pointer, not the whole page.
const isPointer = (e) => e.type === 3 && e.data && (e.data.source === 1 || e.data.source === 6 || e.data.source === 12 ||
  (e.data.source === 2 && e.data.type !== 5 && e.data.type !== 6));
// A mutation that only changes texts.
const isTextOnly = (e) => e.type === 3 && e.data && e.data.source === 0 && !(e.data.adds || []).length &&
  !(e.data.removes || []).length && !(e.data.attributes || []).length && (e.data.texts || []).length > 0;
const isActivity = (e) => e.type === 2 || e.type === 4 || (e.type === 3 && e.data && e.data.source >= 1 && e.data.source <= 5);

function el(tag, cls, text) {
  const n = document.createElement(tag);
  if (cls) n.className = cls;
  if (text) n.textContent = text;
  return n;
}

function clock(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

function when(ts) {
  return new Date(ts).toLocaleString('en-GB', {
    day: 'numeric', month: 'short', year: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit', timeZone: 'UTC',
  }) + ' UTC';
}

class Render {
  constructor(data) {
    this.data = data;
    this.events = (data.events || []).filter((e) => e && typeof e.timestamp === 'number').sort((a, b) => a.timestamp - b.timestamp);
    this.times = this.events.map((e) => e.timestamp);
    this.startTS = data.start_ts;
    this.duration = Math.max(1, data.duration_ms);
    this.prev = null;
    this.prevFx = '';
    this.prevCaption = '';
    const signals = data.signals || [];
    this.clicks = this.events.filter(isClick).map((e) => {
      const sig = signals.find((s) => Math.abs(s.ts - e.timestamp) <= 100 && (!s.x || (Math.abs(s.x - e.data.x) <= 4 && Math.abs(s.y - e.data.y) <= 4)));
      return { ts: e.timestamp, x: e.data.x, y: e.data.y, kind: sig ? sig.type : '' };
    });
    this.pages = this.events.filter((e) => e.type === 4 && e.data && e.data.href).map((e) => ({ ts: e.timestamp, href: e.data.href }));
    this.build();
  }

  build() {
    const cap = this.data.caption;
    document.body.classList.toggle('with-caption', !!cap);
    this.stage = el('div', 'stage');
    this.screen = el('div', 'screen');
    this.stage.append(this.screen);
    document.body.append(this.stage);
    if (cap) {
      this.capTitle = el('div', 'cap-title', cap.title || '');
      this.capPage = el('div', 'cap-page');
      this.capWhen = el('div', 'cap-when');
      this.capClock = el('div', 'cap-clock');
      const bar = el('div', 'caption');
      this.capBar = bar;
      const left = el('div', 'cap-left');
      left.append(this.capTitle, this.capPage);
      const right = el('div', 'cap-right');
      right.append(this.capWhen, this.capClock);
      bar.append(left, right);
      document.body.append(bar);
    }
  }

  async start() {
    const fi = this.events.findIndex((e) => e.type === 2);
    if (fi < 0) throw new Error('no full page snapshot in this part of the recording: there is no page to draw');
    const start = fi > 0 && this.events[fi - 1].type === 4 ? fi - 1 : fi;
    const events = this.events.slice(start);
    this.firstTS = events[0].timestamp;
    const r = new Replayer(events, {
      root: this.screen, speed: 1, skipInactive: false, mouseTail: false, showWarning: false,
      triggerFocus: false, pauseAnimation: true,
    });
    // Canvas frames are drawn by the replayer's own code; the recorded
    // page's scripts never run (see the player).
    r.setConfig({ UNSAFE_replayCanvas: true });
    this.r = r;
    const meta = events.find((e) => e.type === 4 && e.data && e.data.width);
    this.dims = meta ? { width: meta.data.width, height: meta.data.height } : { width: 1280, height: 720 };
    r.on('resize', (d) => { this.dims = d; this.fit(); });
    this.wrap = this.screen.querySelector('.replayer-wrapper');
    this.fx = el('div', 'fx');
    this.wrap.append(this.fx);
    this.frame(0);
    this.fit();
    await this.settle();
    this.prev = null; // the first frame counts as changed
    return {
      activity: this.events.filter(isActivity).map((e) => e.timestamp - this.startTS).filter((t) => t > 0 && t < this.duration),
    };
  }

  // settle waits (a bounded time) for the replayed page's images and fonts.
  async settle() {
    const doc = this.r.iframe && this.r.iframe.contentDocument;
    const waits = [];
    if (doc) {
      for (const img of doc.images) if (!img.complete) waits.push(img.decode().catch(() => {}));
      if (doc.fonts && doc.fonts.status !== 'loaded') waits.push(doc.fonts.ready);
    }
    if (document.fonts.status !== 'loaded') waits.push(document.fonts.ready);
    await Promise.race([Promise.all(waits), new Promise((res) => setTimeout(res, 1500))]);
  }

  fit() {
    const { width, height } = this.dims;
    if (!width || !height || !this.wrap) return;
    const sw = this.stage.clientWidth;
    const sh = this.stage.clientHeight;
    const scale = Math.min(sw / width, sh / height);
    this.wrap.style.transformOrigin = '0 0';
    this.wrap.style.transform = `scale(${scale})`;
    this.wrap.style.left = `${Math.round((sw - width * scale) / 2)}px`;
    this.wrap.style.top = `${Math.round((sh - height * scale) / 2)}px`;
    this.fx.style.width = `${width}px`;
    this.fx.style.height = `${height}px`;
    this.scale = scale;
  }

  // frame shows time t (ms from the clip start) and says what on screen
  // may differ from the last frame: '' nothing, 'full' anything, or the
  // rectangles "x,y,w,h;…" (viewport pixels) where only the cursor, click
  // effects, hover states or the caption changed.
  frame(t) {
    const abs = this.startTS + t;
    // What the events since the last frame may change: anything but the
    // pointer and text changes redraws all.
    let full = this.prev === null;
    let pointer = false;
    const texts = [];
    if (!full) {
      let lo = 0; let hi = this.times.length;
      while (lo < hi) { const m = (lo + hi) >> 1; if (this.times[m] <= this.prev) lo = m + 1; else hi = m; }
      for (let i = lo; i < this.times.length && this.times[i] <= abs && !full; i++) {
        const e = this.events[i];
        if (isPointer(e)) pointer = true;
        else if (isTextOnly(e)) for (const x of e.data.texts) texts.push(x.id);
        else full = true;
      }
    }
    // A text change that keeps its element's size redraws that element.
    const textEls = full ? [] : this.textElements(texts);
    const textBefore = textEls.map((el) => el.getBoundingClientRect());
    const before = full ? null : this.overlayRects();
    const hoverBefore = full ? [] : this.hovered();
    this.r.pause(Math.max(0, abs - this.firstTS));
    const fx = this.drawEffects(abs);
    const cap = this.drawCaption(t, abs);
    let out = full ? 'full' : '';
    if (!full) {
      // Up to four rectangles: around the pointer, the caption, the
      // elements whose hover state changed, the changed texts.
      const groups = [];
      if (pointer || fx !== this.prevFx) groups.push([...before, ...this.overlayRects()]);
      if (cap !== this.prevCaption) groups.push([this.capBar.getBoundingClientRect()]);
      const hoverAfter = this.hovered();
      if (hoverAfter.length !== hoverBefore.length || hoverAfter.some((e, i) => e !== hoverBefore[i])) {
        groups.push([...hoverBefore, ...hoverAfter].map((e) => this.inFrame(e)));
      }
      if (texts.length) {
        const after = textEls.map((el) => el.getBoundingClientRect());
        const same = textEls.length === texts.length && after.every((a, i) => a.width === textBefore[i].width && a.height === textBefore[i].height &&
          a.left === textBefore[i].left && a.top === textBefore[i].top);
        if (same) groups.push(textEls.map((el) => this.inFrame(el)));
        else out = 'full';
      }
      if (out !== 'full') {
        const boxes = groups.map((g) => this.union(g)).filter((b) => b);
        const area = boxes.reduce((a, b) => a + b[2] * b[3], 0);
        out = area > 0.4 * window.innerWidth * window.innerHeight ? 'full' : boxes.map((b) => b.join(',')).join(';');
      }
    }
    this.prev = abs;
    this.prevFx = fx;
    this.prevCaption = cap;
    return out;
  }

  // textElements are the elements holding the text nodes ids (as many as
  // were found).
  textElements(ids) {
    const mirror = this.r.getMirror();
    const out = [];
    for (const id of new Set(ids)) {
      const n = mirror.getNode(id);
      const el = n && (n.nodeType === 1 ? n : n.parentElement);
      if (el && el.getBoundingClientRect) out.push(el);
    }
    return out;
  }

  // overlayRects are where the cursor and the click effects are drawn.
  overlayRects() {
    const out = [];
    const mouse = this.screen.querySelector('.replayer-mouse');
    if (mouse) out.push(mouse.getBoundingClientRect());
    for (const n of this.fx.children) out.push(n.getBoundingClientRect());
    return out;
  }

  // hovered lists the replayed page's elements in the :hover state.
  hovered() {
    const doc = this.r.iframe && this.r.iframe.contentDocument;
    return doc ? [...doc.querySelectorAll('.\\:hover')] : [];
  }

  // inFrame is an element of the replayed page's box on screen.
  inFrame(e) {
    const f = this.r.iframe.getBoundingClientRect();
    const b = e.getBoundingClientRect();
    const s = this.scale || 1;
    return { left: f.left + b.left * s, top: f.top + b.top * s, right: f.left + b.right * s, bottom: f.top + b.bottom * s };
  }

  // union is the rectangles' bounding box as [x, y, w, h] (padded, inside
  // the viewport), null for none.
  union(rects) {
    const W = window.innerWidth; const H = window.innerHeight;
    let l = Infinity; let tp = Infinity; let r = -Infinity; let b = -Infinity;
    for (const x of rects) {
      if (!x || x.right <= x.left || x.bottom <= x.top) continue;
      l = Math.min(l, x.left); tp = Math.min(tp, x.top); r = Math.max(r, x.right); b = Math.max(b, x.bottom);
    }
    if (l === Infinity) return null;
    // Padded for the labels' shadows and anti-aliased edges.
    l = Math.max(0, Math.floor(l) - 12); tp = Math.max(0, Math.floor(tp) - 12);
    r = Math.min(W, Math.ceil(r) + 12); b = Math.min(H, Math.ceil(b) + 12);
    if (r <= l || b <= tp) return null;
    return [l, tp, r - l, b - tp];
  }

  drawEffects(abs) {
    const parts = [];
    const nodes = [];
    const labels = new Map(); // one label per place: the latest, a rage click over a dead one
    const rank = { rage_click: 3, error: 2, dead_click: 1 };
    for (const c of this.clicks) {
      const age = abs - c.ts;
      if (age < 0 || age > Math.max(RIPPLE_MS, c.kind ? LABEL_MS : 0)) continue;
      const k = c.kind ? c.kind.replace(/[^a-z_]/g, '') : 'click';
      if (age <= RIPPLE_MS) {
        const p = age / RIPPLE_MS;
        const d = 18 + 46 * p;
        const ring = el('div', `ripple ripple-${k}`);
        ring.style.cssText = `left:${c.x - d / 2}px;top:${c.y - d / 2}px;width:${d}px;height:${d}px;opacity:${(1 - p * 0.85).toFixed(2)}`;
        nodes.push(ring);
        parts.push(`r${c.ts}:${Math.round(p * 20)}`);
      }
      if (c.kind) {
        const place = `${Math.round(c.x / 80)},${Math.round(c.y / 80)}`;
        const had = labels.get(place);
        if (!had || (rank[c.kind] || 0) >= (rank[had.kind] || 0)) labels.set(place, c);
      }
    }
    for (const c of labels.values()) {
      const k = c.kind.replace(/[^a-z_]/g, '');
      const label = el('div', `signal signal-${k}`, SIGNAL_LABEL[c.kind] || c.kind);
      label.style.cssText = `left:${c.x + 16}px;top:${c.y - 38}px`;
      nodes.push(label);
      parts.push(`l${c.ts}`);
    }
    const key = parts.join(',');
    if (key !== this.prevFx) this.fx.replaceChildren(...nodes);
    return key;
  }

  drawCaption(t, abs) {
    if (!this.capTitle) return '';
    let href = '';
    for (const p of this.pages) { if (p.ts <= abs) href = p.href; else break; }
    const page = href.replace(/^https?:\/\//, '');
    const w = when(abs);
    const c = `${clock(t)} / ${clock(this.duration)}`;
    const key = page + '|' + w + '|' + c;
    if (key !== this.prevCaption) {
      this.capPage.textContent = page;
      this.capWhen.textContent = w;
      this.capClock.textContent = c;
    }
    return key;
  }
}

const data = JSON.parse(document.getElementById('clip-data').textContent);
const render = new Render(data);
const api = { state: 'loading', info: null, error: '', frame: (t) => render.frame(t) };
window.trailmapRender = api;
render.start().then((info) => { api.info = info; api.state = 'ready'; }, (e) => { api.error = String(e && e.message || e); api.state = 'error'; });

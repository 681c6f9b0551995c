// Player: an rrweb Replayer with our own controls (play/pause, speeds, skip
// inactivity, a timeline with markers, clip range) that loads a long
// recording a window at a time.
//
// Time on the timeline ("t") is in ms from the timeline's zero: the session
// start on the dashboard, the clip start on a share page. The Replayer counts
// from its first event, which is the full snapshot the server started the
// window from; off(t) converts.
import { Replayer } from '@rrweb/replay';
import '@rrweb/replay/dist/style.css';
import './player.css';
import { clock, h } from './format.js';

export const SPEEDS = [1, 2, 4, 8];

const KIND_LABEL = {
  page: 'Page', click: 'Click', custom: 'Event', note: 'Note',
  rage_click: 'Rage click', dead_click: 'Dead click', error: 'Error', conversion: 'Conversion',
};

const isClick = (e) => e.type === 3 && e.data && e.data.source === 2 && e.data.type === 2;

export class Player {
  /**
   * @param {HTMLElement} root where the player is built
   * @param {object} o
   *   durationMS: timeline length; startTS: absolute ms of t=0;
   *   load(fromMS, toMS|null) → Promise<event[]>: events from the full
   *     snapshot before fromMS up to toMS (null: to the end);
   *   chunkMS: window length (Infinity: load everything at once);
   *   fill: the stage fills its box (embeds) instead of sizing to the recording;
   *   keyboard: global shortcuts (space, ←/→, 1–4).
   */
  constructor(root, o) {
    this.o = Object.assign({ keyboard: true, skipInactive: true, fill: false, startAt: 0 }, o);
    this.o.chunkMS ||= 5 * 60 * 1000;
    this.duration = Math.max(1, o.durationMS);
    this.startTS = o.startTS;
    this.span = null;
    this.loadSeq = 0;
    this.speed = 1;
    this.skip = this.o.skipInactive;
    this.playing = false;
    this.ended = false;
    this.clip = null;
    this.markers = [];
    this.clickTimes = new Set();
    this.listeners = {};
    this.dims = { width: 1024, height: 768 };
    this.build(root);
    this.raf = 0;
    this.onResize = () => this.fit();
    window.addEventListener('resize', this.onResize);
    if (this.o.keyboard) {
      this.onKey = (e) => this.key(e);
      document.addEventListener('keydown', this.onKey);
    }
    this.loadSpan(this.o.startAt, false).catch((e) => this.fail(e));
  }

  build(root) {
    const speedSel = h('select', { class: 'tp-speed', 'aria-label': 'Speed', title: 'Speed (keys 1–4)' },
      SPEEDS.map((s) => h('option', { value: s }, `${s}×`)));
    speedSel.addEventListener('change', () => this.setSpeed(Number(speedSel.value)));
    const skip = h('input', { type: 'checkbox', class: 'tp-skip' });
    skip.checked = this.skip;
    skip.addEventListener('change', () => this.setSkip(skip.checked));
    this.el = h('div', { class: 'tp' + (this.o.fill ? ' tp-fill' : ''), 'data-state': 'loading' },
      this.stage = h('div', { class: 'tp-stage' },
        this.screen = h('div', { class: 'tp-screen' }),
        this.overlay = h('div', { class: 'tp-overlay' }, h('span', { class: 'tp-overlay-text' }, 'Loading…')),
        this.notice = h('div', { class: 'tp-notice', role: 'status', hidden: true }),
        this.bigPlay = h('button', { class: 'tp-bigplay', type: 'button', 'aria-label': 'Play', hidden: true, onclick: () => this.play() }, '▶')),
      h('div', { class: 'tp-controls' },
        this.timeline = h('div', { class: 'tp-timeline', role: 'slider', tabindex: '0', 'aria-label': 'Timeline', 'aria-valuemin': '0', 'aria-valuemax': String(this.duration) },
          h('div', { class: 'tp-track' },
            this.clipEl = h('div', { class: 'tp-cliprange', hidden: true }),
            this.progress = h('div', { class: 'tp-progress' })),
          this.markerEl = h('div', { class: 'tp-markers' }),
          this.handle = h('div', { class: 'tp-handle' }),
          this.hover = h('div', { class: 'tp-hover', hidden: true })),
        h('div', { class: 'tp-buttons' },
          this.playBtn = h('button', { class: 'tp-play btn small', type: 'button', title: 'Play / pause (space)', onclick: () => this.toggle() }, '▶ Play'),
          h('button', { class: 'btn small tp-back', type: 'button', title: 'Back 5 s (←)', 'aria-label': 'Back 5 seconds', onclick: () => this.seek(this.time() - 5000) }, '−5s'),
          h('button', { class: 'btn small tp-fwd', type: 'button', title: 'Forward 5 s (→)', 'aria-label': 'Forward 5 seconds', onclick: () => this.seek(this.time() + 5000) }, '+5s'),
          this.timeEl = h('span', { class: 'tp-time' }, `0:00 / ${clock(this.duration)}`),
          h('span', { class: 'tp-spacer' }),
          speedSel,
          h('label', { class: 'check tp-skiplabel', title: 'Skip periods without activity' }, skip, 'Skip inactivity'))));
    this.speedSel = speedSel;
    this.skipBox = skip;
    root.replaceChildren(this.el);

    const tFromX = (x) => {
      const r = this.timeline.getBoundingClientRect();
      return Math.round(Math.min(1, Math.max(0, (x - r.left) / r.width)) * this.duration);
    };
    this.timeline.addEventListener('pointermove', (e) => {
      const t = tFromX(e.clientX);
      this.hover.hidden = false;
      this.hover.textContent = clock(t);
      this.hover.style.left = `${(t / this.duration) * 100}%`;
    });
    this.timeline.addEventListener('pointerleave', () => { this.hover.hidden = true; });
    this.timeline.addEventListener('click', (e) => {
      if (e.target.closest('.tp-marker')) return;
      this.seek(tFromX(e.clientX));
    });
    this.timeline.addEventListener('keydown', (e) => {
      if (e.key === 'Home') { e.preventDefault(); this.seek(0); }
      if (e.key === 'End') { e.preventDefault(); this.seek(this.duration); }
    });
  }

  on(name, fn) { (this.listeners[name] ||= []).push(fn); }
  emit(name, v) { for (const fn of this.listeners[name] || []) fn(v); }

  /** The current time on the timeline (ms). */
  time() {
    if (!this.span) return this.pendingT || 0;
    const t = this.span.r.getCurrentTime() + this.span.firstTS - this.startTS;
    return Math.min(this.duration, Math.max(0, t));
  }

  off(t) { return Math.max(0, t + this.startTS - this.span.firstTS); }

  inSpan(t) {
    const s = this.span;
    return s && t >= s.firstTS - this.startTS && (t <= s.loadedTo || s.loadedTo === Infinity);
  }

  async loadSpan(t, play) {
    const seq = ++this.loadSeq;
    this.pendingT = t;
    this.setBusy('Loading…');
    const to = t + this.o.chunkMS >= this.duration ? null : t + this.o.chunkMS;
    let events = await this.o.load(t, to);
    if (seq !== this.loadSeq) return;
    if (!events || events.length < 2) {
      this.setBusy('Nothing was recorded in this part of the session.');
      this.setState('empty');
      return;
    }
    // A replay draws nothing until a full snapshot: say so rather than
    // show a white page. Events before the first one (a recorder that
    // started late, or lost it) cannot be shown; play from the snapshot.
    const fi = events.findIndex((e) => e.type === 2);
    if (fi < 0) {
      const later = to !== null && to < this.duration;
      this.setBusy(later
        ? `This part of the recording cannot be shown: no full page snapshot was recorded for it. Try a later moment.`
        : 'This recording cannot be shown: the recorder sent no full page snapshot, so there is no page to draw. Its pages, clicks and events are still listed.');
      this.setState('unplayable');
      return;
    }
    this.notice.hidden = true;
    const start = fi > 0 && events[fi - 1].type === 4 ? fi - 1 : fi;
    if (start > 0) {
      const from = events[fi].timestamp - this.startTS;
      events = events.slice(start);
      if (t < from) {
        this.notice.textContent = `${clock(t)}–${clock(from)} cannot be shown: the recording has no page snapshot before ${clock(from)}.`;
        this.notice.hidden = false;
        t = from;
      }
    }
    if (this.span) {
      this.span.r.destroy();
      this.screen.replaceChildren();
    }
    this.screen.style.visibility = 'hidden';
    const r = new Replayer(events, {
      root: this.screen,
      speed: this.speed,
      skipInactive: this.skip,
      mouseTail: false,
      showWarning: false,
      triggerFocus: false,
      pauseAnimation: true,
    });
    // Canvas and WebGL frames (recorded with data-canvas): rrweb applies
    // them only with UNSAFE_replayCanvas, which at construction would also
    // let the recorded page run scripts in an unsandboxed frame. Set after
    // construction, the frame stays sandboxed (no scripts) and the
    // replayer's own code draws the recorded frames into its canvases.
    r.setConfig({ UNSAFE_replayCanvas: true });
    this.span = { r, firstTS: events[0].timestamp, loadedTo: to === null ? Infinity : to, fetching: false };
    r.on('resize', (d) => { this.dims = d; this.fit(); });
    r.on('finish', () => this.finished());
    r.on('skip-start', () => this.el.classList.add('tp-skipping'));
    r.on('skip-end', () => this.el.classList.remove('tp-skipping'));
    this.addClicks(events);
    const meta = events.find((e) => e.type === 4);
    if (meta && meta.data && meta.data.width) this.dims = { width: meta.data.width, height: meta.data.height };
    this.fit();
    this.ended = false;
    if (play) this.startPlaying(t);
    else { r.pause(this.off(t)); this.setPlaying(false); }
    this.pendingT = null;
    // Show the stage only once the frame at t is built: what comes before it
    // (a clip's lead-in from its snapshot) is never shown.
    requestAnimationFrame(() => {
      if (seq !== this.loadSeq) return;
      this.screen.style.visibility = '';
      this.setBusy(null);
      this.el.dataset.firstFrame = '1';
      this.render();
      this.emit('ready', t);
    });
  }

  startPlaying(t) {
    if (t >= this.duration - 50) t = 0;
    this.span.r.play(this.off(t));
    this.ended = false;
    this.setPlaying(true);
  }

  /** Go to t (ms on the timeline), keeping the play state. */
  seek(t, play = this.playing) {
    t = Math.min(this.duration, Math.max(0, Math.round(t)));
    this.notice.hidden = true;
    if (this.inSpan(t)) {
      if (play) this.startPlaying(t);
      else { this.span.r.pause(this.off(t)); this.ended = false; this.render(); }
      this.emit('seek', t);
      return;
    }
    this.loadSpan(t, play).catch((e) => this.fail(e));
    this.emit('seek', t);
  }

  play() {
    if (!this.span) return;
    const t = this.ended ? 0 : this.time();
    if (!this.inSpan(t)) { this.seek(t, true); return; }
    this.startPlaying(t);
  }

  pause() {
    if (!this.span) return;
    this.span.r.pause();
    this.setPlaying(false);
  }

  toggle() { if (this.playing) this.pause(); else this.play(); }

  setSpeed(s) {
    this.speed = s;
    this.speedSel.value = String(s);
    if (this.span) this.span.r.setConfig({ speed: s });
  }

  setSkip(on) {
    this.skip = on;
    this.skipBox.checked = on;
    if (this.span) this.span.r.setConfig({ skipInactive: on });
  }

  finished() {
    const s = this.span;
    if (s.loadedTo !== Infinity && s.loadedTo < this.duration) {
      // Out of loaded events before the end: wait for the next window.
      this.stalled = true;
      this.setBusy('Loading…');
      this.more();
      return;
    }
    this.ended = true;
    this.setPlaying(false);
    this.render();
    this.emit('ended');
  }

  /** Loads the next window and appends it to the running Replayer. */
  async more() {
    const s = this.span;
    if (!s || s.fetching || s.loadedTo === Infinity) return;
    s.fetching = true;
    const from = s.loadedTo;
    const to = from + this.o.chunkMS >= this.duration ? null : from + this.o.chunkMS;
    try {
      const events = await this.o.load(from, to);
      if (this.span !== s) return;
      // The server starts a window at its snapshot; what we hold already is dropped.
      const cut = this.startTS + from;
      const fresh = events.filter((e) => e.timestamp > cut);
      for (const e of fresh) s.r.addEvent(e);
      this.addClicks(fresh);
      s.loadedTo = to === null ? Infinity : to;
    } catch (e) {
      this.fail(e);
    } finally {
      s.fetching = false;
    }
    if (this.stalled && this.span === s) {
      this.stalled = false;
      this.setBusy(null);
      // addEvent applies on a microtask; play after it.
      setTimeout(() => this.startPlaying(this.time()), 0);
    }
  }

  setPlaying(p) {
    this.playing = p;
    if (!p) this.el.classList.remove('tp-skipping');
    this.playBtn.textContent = p ? '❚❚ Pause' : '▶ Play';
    this.bigPlay.hidden = p || !this.span;
    this.setState(p ? 'playing' : this.ended ? 'ended' : 'paused');
    cancelAnimationFrame(this.raf);
    if (p) {
      const loop = () => {
        this.render();
        const s = this.span;
        if (s && s.loadedTo !== Infinity && this.time() > s.loadedTo - 30000 * this.speed) this.more();
        if (this.clip && this.o.stopAtClipEnd && this.time() >= this.clip.to) { this.pause(); return; }
        this.raf = requestAnimationFrame(loop);
      };
      this.raf = requestAnimationFrame(loop);
    }
    this.render();
  }

  setState(s) { this.el.dataset.state = s; this.emit('state', s); }

  render() {
    const t = this.time();
    const pct = (t / this.duration) * 100;
    this.progress.style.width = `${pct}%`;
    this.handle.style.left = `${pct}%`;
    this.timeline.setAttribute('aria-valuenow', String(t));
    this.timeline.setAttribute('aria-valuetext', clock(t));
    this.timeEl.textContent = `${clock(t)} / ${clock(this.duration)}`;
    this.emit('time', t);
  }

  setBusy(text) {
    this.overlay.hidden = !text;
    if (text) this.overlay.firstChild.textContent = text;
  }

  fail(e) {
    console.error(e);
    this.setBusy(`Could not load the recording: ${e.message || e}`);
    this.setState('error');
  }

  /** Scales the recorded viewport into the stage. */
  fit() {
    const { width, height } = this.dims;
    if (!width || !height) return;
    const sw = this.stage.clientWidth;
    if (!this.o.fill) {
      const maxH = Math.max(200, Math.min(window.innerHeight * 0.68, 760));
      this.stage.style.height = `${Math.round(Math.min(maxH, (sw * height) / width))}px`;
    }
    const sh = this.stage.clientHeight;
    const scale = Math.min(sw / width, sh / height);
    const wrap = this.screen.querySelector('.replayer-wrapper');
    if (wrap) {
      wrap.style.transform = `scale(${scale})`;
      wrap.style.left = `${Math.max(0, (sw - width * scale) / 2)}px`;
      wrap.style.top = `${Math.max(0, (sh - height * scale) / 2)}px`;
    }
  }

  /** Sets the timeline markers: [{offset_ms, kind, label}]. Clicks are added from the events. */
  setMarkers(list) {
    this.markers = list.slice();
    this.renderMarkers();
  }

  addClicks(events) {
    let added = false;
    for (const e of events) {
      if (!isClick(e)) continue;
      const t = e.timestamp - this.startTS;
      const key = Math.round(t / 250);
      if (t < 0 || t > this.duration || this.clickTimes.has(key)) continue;
      this.clickTimes.add(key);
      this.markers.push({ offset_ms: t, kind: 'click', label: 'Click' });
      added = true;
    }
    if (added) this.renderMarkers();
  }

  renderMarkers() {
    const order = { click: 0, custom: 1, page: 2, note: 3 };
    const list = this.markers.filter((m) => m.offset_ms >= 0 && m.offset_ms <= this.duration)
      .sort((a, b) => (order[a.kind] ?? 4) - (order[b.kind] ?? 4));
    this.markerEl.replaceChildren(...list.map((m) => {
      const label = `${KIND_LABEL[m.kind] || m.kind} at ${clock(m.offset_ms)}${m.label && m.label !== KIND_LABEL[m.kind] ? ': ' + m.label : ''}`;
      return h('button', {
        type: 'button', class: `tp-marker tp-${m.kind.replace(/[^a-z_]/g, '')}`, title: label, 'aria-label': label,
        style: `left:${(m.offset_ms / this.duration) * 100}%`,
        onclick: (e) => { e.stopPropagation(); this.seek(m.kind === 'page' ? m.offset_ms : m.offset_ms - 1000); },
      });
    }));
  }

  /** Highlights [from, to] on the timeline (null clears). */
  setClip(c) {
    this.clip = c;
    this.clipEl.hidden = !c;
    if (c) {
      this.clipEl.style.left = `${(c.from / this.duration) * 100}%`;
      this.clipEl.style.width = `${((c.to - c.from) / this.duration) * 100}%`;
    }
  }

  key(e) {
    const tag = (e.target.tagName || '').toLowerCase();
    if (['input', 'textarea', 'select'].includes(tag) || e.target.isContentEditable || e.metaKey || e.ctrlKey || e.altKey) return;
    if (e.key === ' ' || e.code === 'Space') {
      if (tag === 'button' && e.target !== this.playBtn) return;
      e.preventDefault();
      this.toggle();
    } else if (e.key === 'ArrowLeft') {
      e.preventDefault();
      this.seek(this.time() - (e.shiftKey ? 15000 : 5000));
    } else if (e.key === 'ArrowRight') {
      e.preventDefault();
      this.seek(this.time() + (e.shiftKey ? 15000 : 5000));
    } else if (/^[1-4]$/.test(e.key)) {
      this.setSpeed(SPEEDS[Number(e.key) - 1]);
    }
  }

  destroy() {
    cancelAnimationFrame(this.raf);
    window.removeEventListener('resize', this.onResize);
    if (this.onKey) document.removeEventListener('keydown', this.onKey);
    if (this.span) this.span.r.destroy();
  }
}

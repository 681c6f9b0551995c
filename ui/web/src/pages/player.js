// Player page: one recording with its pages, events, notes and share links.
import { api, get } from '../lib/api.js';
import { clock, device, duration, h, when } from '../lib/format.js';
import { Player } from '../lib/player.js';
import { shareItem } from '../lib/shares.js';
import { renderControls } from '../lib/renders.js';
import './player.css';

const page = document.getElementById('player-page');
const id = page.dataset.session;
const enc = encodeURIComponent(id);
const $ = (sel) => page.querySelector(sel);

// "1:23" or "83" → ms; null when unreadable.
function parseClock(v) {
  const parts = String(v).trim().split(':').map(Number);
  if (!parts.length || parts.some((n) => !Number.isFinite(n) || n < 0)) return null;
  return Math.round(parts.reduce((acc, n) => acc * 60 + n, 0) * 1000);
}

function pathOf(u) {
  try { const x = new URL(u); return x.pathname + x.search + x.hash; } catch { return u || ''; }
}

async function main() {
  let s;
  try {
    s = await get(`/api/v1/sessions/${enc}`);
  } catch (e) {
    page.replaceChildren(h('div', { class: 'panel empty' }, h('h2', {}, e.status === 404 ? 'Recording not found' : 'Could not load the recording'),
      h('p', { class: 'muted' }, e.message), h('a', { class: 'btn', href: '/sessions' }, 'Back to sessions')));
    return;
  }
  document.title = `${pathOf(s.entry_url) || 'Recording'} · Trailmap`;
  $('#s-title').textContent = pathOf(s.entry_url) || 'Recording';
  $('#s-meta').replaceChildren(
    h('span', {}, when(s.started_at)), h('span', {}, duration(s.duration_ms)), h('span', {}, device(s)),
    h('span', {}, s.user_id ? `User ${s.user_id}` : `Visitor ${s.visitor_id.slice(0, 12)}`),
    s.live ? h('span', { class: 'badge live' }, 'Live') : null);

  const q = new URLSearchParams(location.search);
  const startAt = Math.min(s.duration_ms, Math.max(0, Number(q.get('t')) || 0));
  const player = new Player($('#player'), {
    durationMS: s.duration_ms,
    startTS: Date.parse(s.started_at),
    startAt,
    chunkMS: Number(q.get('chunk_ms')) || undefined, // window size; tests use small ones
    load: (from, to) => get(`/api/v1/sessions/${enc}/events?assets=copies&from_ms=${from}${to === null ? '' : `&to_ms=${to}`}`),
  });
  window.trailmapPlayer = player; // for tests and the console

  // Markers: pages, custom events, frustration signals, notes.
  let signals = [];
  let notes = [];
  const pageMarkers = s.pages.map((p) => ({ offset_ms: p.offset_ms, kind: 'page', label: pathOf(p.url) }));
  const customMarkers = s.custom_events.map((c) => ({ offset_ms: c.offset_ms, kind: 'custom', label: c.name }));
  const refreshMarkers = () => player.setMarkers([
    ...player.markers.filter((m) => m.kind === 'click'),
    ...pageMarkers, ...customMarkers,
    ...signals.map((g) => ({ offset_ms: g.offset_ms, kind: g.type, label: g.label || g.selector || '' })),
    ...notes.map((n) => ({ offset_ms: n.offset_ms, kind: 'note', label: `${n.author}: ${n.body}` })),
  ]);
  refreshMarkers();

  // Tabs.
  const tabs = page.querySelectorAll('[role="tab"]');
  for (const t of tabs) {
    t.addEventListener('click', () => {
      for (const o of tabs) {
        o.setAttribute('aria-selected', String(o === t));
        document.getElementById(o.getAttribute('aria-controls')).hidden = o !== t;
      }
      // The clip range shows on the timeline while the Share tab is open.
      if (t.id === 't-share') { try { player.setClip(range()); } catch { /* fixed on submit */ } } else player.setClip(null);
    });
  }

  // Pages.
  $('#tab-pages-list').replaceChildren(...(s.pages.length ? s.pages.map((p) =>
    h('li', {}, h('button', { type: 'button', class: 'jump', onclick: () => player.seek(p.offset_ms, true) },
      h('span', { class: 'jump-time' }, clock(p.offset_ms)), h('span', { class: 'jump-label', title: p.url }, pathOf(p.url)))))
    : [h('li', { class: 'muted' }, 'No page views recorded.')]));

  // Events: custom events and signals, in time order.
  const renderEvents = () => {
    const items = [
      ...s.custom_events.map((c) => ({ t: c.offset_ms, kind: 'custom', label: c.name, detail: c.props && Object.keys(c.props).length ? JSON.stringify(c.props) : '' })),
      ...signals.map((g) => ({ t: g.offset_ms, kind: g.type, label: g.type.replace('_', ' '), detail: g.selector || g.message || '' })),
    ].sort((a, b) => a.t - b.t);
    $('#tab-events-list').replaceChildren(...(items.length ? items.map((it) =>
      h('li', {}, h('button', { type: 'button', class: 'jump', onclick: () => player.seek(it.t - 1000, true) },
        h('span', { class: 'jump-time' }, clock(it.t)),
        h('span', { class: 'jump-label' }, h('span', { class: `dot dot-${it.kind}` }), it.label, it.detail ? h('span', { class: 'muted small' }, ' ', it.detail) : null))))
      : [h('li', { class: 'muted' }, 'No custom events or frustration signals in this recording.')]));
  };
  renderEvents();
  get(`/api/v1/sessions/${enc}/signals`).then((res) => {
    signals = Array.isArray(res) ? res : (res.signals || []);
    renderEvents();
    refreshMarkers();
  }).catch(() => { /* signals arrive with the heatmap work; a 404 until then */ });

  // Notes.
  const noteTime = $('#note-time');
  player.on('time', (t) => { noteTime.textContent = clock(t); });
  const renderNotes = () => {
    $('#notes-list').replaceChildren(...(notes.length ? notes.map((n) =>
      h('li', { class: 'note' },
        h('button', { type: 'button', class: 'jump', onclick: () => player.seek(n.offset_ms, false) },
          h('span', { class: 'jump-time' }, clock(n.offset_ms)),
          h('span', { class: 'jump-label' }, h('strong', {}, n.author), h('span', { class: 'muted small' }, ' · ', when(n.created_at)))),
        h('p', { class: 'note-body' }, n.body),
        n.can_delete ? h('button', { type: 'button', class: 'btn small danger', onclick: async () => {
          await api('DELETE', `/api/v1/sessions/${enc}/notes/${n.id}`);
          loadNotes();
        } }, 'Delete') : null))
      : [h('li', { class: 'muted' }, 'No notes yet. Pause at a moment and write what you see.')]));
  };
  const loadNotes = async () => {
    notes = (await get(`/api/v1/sessions/${enc}/notes`)).notes;
    renderNotes();
    refreshMarkers();
  };
  loadNotes().catch((e) => $('#notes-error').replaceChildren(e.message));
  $('#note-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const body = e.target.elements.body.value;
    try {
      await api('POST', `/api/v1/sessions/${enc}/notes`, { offset_ms: Math.round(player.time()), body });
      e.target.reset();
      $('#notes-error').textContent = '';
      loadNotes();
    } catch (err) {
      $('#notes-error').textContent = err.message;
    }
  });

  // Share a clip.
  const f = $('#share-form');
  const setRange = (from, to) => {
    from = Math.max(0, Math.min(from, s.duration_ms - 1000));
    to = Math.min(s.duration_ms, Math.max(to, from + 1000));
    f.elements.start.value = clock(from);
    f.elements.end.value = clock(to);
    player.setClip({ from, to });
  };
  const range = () => {
    const from = parseClock(f.elements.start.value);
    const to = parseClock(f.elements.end.value);
    if (from === null || to === null || to <= from) throw new Error('Set a start before the end (m:ss).');
    return { from, to: Math.min(to, s.duration_ms) };
  };
  setRange(startAt, startAt + 30000);
  player.setClip(null);
  f.elements.start.addEventListener('change', () => { try { const r = range(); player.setClip(r); } catch { /* shown on submit */ } });
  f.elements.end.addEventListener('change', () => { try { const r = range(); player.setClip(r); } catch { /* shown on submit */ } });
  $('#set-start').addEventListener('click', () => { const t = player.time(); const r = (() => { try { return range(); } catch { return { to: t + 30000 }; } })(); setRange(t, r.to > t ? r.to : t + 30000); });
  $('#set-end').addEventListener('click', () => { const t = player.time(); let from = 0; try { from = range().from; } catch { /* keep 0 */ } setRange(Math.min(from, t - 1000), t); });
  $('#download').addEventListener('click', () => {
    try {
      const r = range();
      const title = f.elements.title.value || `Clip at ${clock(r.from)}`;
      location.href = `/api/v1/sessions/${enc}/export?from_ms=${r.from}&to_ms=${r.to}&title=${encodeURIComponent(title)}`;
      $('#share-error').textContent = '';
    } catch (err) { $('#share-error').textContent = err.message; }
  });
  // The clip as a video or GIF, rendered on the server.
  $('#render-box').replaceChildren(renderControls({
    full: true,
    submit: (o) => {
      const r = range();
      $('#share-error').textContent = '';
      return api('POST', '/api/v1/renders', { session_id: id, start_ms: r.from, end_ms: r.to, title: f.elements.title.value, ...o });
    },
    status: (j) => get(j.status_url),
    cancel: (j) => api('DELETE', j.status_url),
  }));
  f.addEventListener('submit', async (e) => {
    e.preventDefault();
    const out = $('#share-result');
    try {
      const r = range();
      const res = await api('POST', '/api/v1/shares', {
        session_id: id, start_ms: r.from, end_ms: r.to,
        title: f.elements.title.value, note: f.elements.note.value, expires_in_days: Number(f.elements.expires.value),
        allow_video: f.elements.allow_video.checked,
      });
      $('#share-error').textContent = '';
      const link = h('input', { type: 'text', readonly: true, value: res.url, class: 'share-url', 'aria-label': 'Share link' });
      const embed = `<iframe src="${res.embed_url}" width="960" height="600" style="border:0" allowfullscreen></iframe>`;
      out.replaceChildren(
        h('p', {}, h('strong', {}, 'Link created. '), h('span', { class: 'muted' }, 'Copy it now: only its first characters are kept for the list.')),
        h('div', { class: 'copyrow' }, link, h('button', { type: 'button', class: 'btn small', onclick: () => { link.select(); navigator.clipboard?.writeText(res.url); } }, 'Copy')),
        h('label', {}, 'Embed (slides, docs)'), h('pre', { class: 'embed-code' }, embed),
        h('p', {}, h('a', { href: res.url, target: '_blank', rel: 'noopener' }, 'Open the link ↗')));
      out.hidden = false;
      loadShares();
    } catch (err) {
      $('#share-error').textContent = err.message;
    }
  });
  const loadShares = async () => {
    const { shares } = await get(`/api/v1/shares?session=${enc}`);
    $('#shares-list').replaceChildren(...(shares.length ? shares.map((sh) => shareItem(sh, loadShares))
      : [h('li', { class: 'muted' }, 'No links for this recording yet.')]));
  };
  loadShares().catch(() => {});
}

main();

// Public share page and its embed form: plays one clip, nothing else. The
// clip's description comes inline; its events from /s/TOKEN/events.
import { Player } from './lib/player.js';
import { h } from './lib/format.js';
import { renderControls } from './lib/renders.js';
import './share.css';

const data = JSON.parse(document.getElementById('clip-data').textContent);
const player = new Player(document.getElementById('player'), {
  durationMS: data.duration_ms,
  startTS: data.start_ts,
  chunkMS: Infinity,
  fill: data.embed,
  stopAtClipEnd: true,
  load: async () => {
    const res = await fetch(data.events_url, { credentials: 'omit' });
    if (!res.ok) throw new Error(res.status === 410 ? 'This link is no longer available.' : `HTTP ${res.status}`);
    return res.json();
  },
});
window.trailmapPlayer = player;

// Whoever shared the clip let its viewers download it as a video.
if (data.renders_url && !data.embed) {
  const call = async (method, url, body) => {
    const res = await fetch(url, {
      method, credentials: 'omit',
      headers: body ? { 'Content-Type': 'application/json' } : {},
      body: body ? JSON.stringify(body) : undefined,
    });
    const out = await res.json().catch(() => null);
    if (!res.ok) throw new Error(out?.error?.message || `HTTP ${res.status}`);
    return out;
  };
  document.getElementById('player').after(h('section', { class: 'share-download' },
    h('h2', {}, 'Download this clip'),
    renderControls({ submit: (o) => call('POST', data.renders_url, o), status: (j) => call('GET', j.status_url) })));
}

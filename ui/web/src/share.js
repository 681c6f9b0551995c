// Public share page and its embed form: plays one clip, nothing else. The
// clip's description comes inline; its events from /s/TOKEN/events.
import { Player } from './lib/player.js';
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

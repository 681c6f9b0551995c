// The offline player of a downloaded clip: everything it needs is in the
// HTML file (this script, its styles and the clip's events).
import { Player } from './lib/player.js';
import './app.css';
import './share.css';

const data = JSON.parse(document.getElementById('clip-data').textContent);
const player = new Player(document.getElementById('player'), {
  durationMS: data.duration_ms,
  startTS: data.start_ts,
  chunkMS: Infinity,
  fill: true,
  load: async () => data.events,
});
window.trailmapPlayer = player;

// The offline player of a downloaded clip: everything it needs is in the
// HTML file (this script, its styles and the clip's events).
import { Player } from './lib/player.js';
import './app.css';
import './share.css';

// Start after "load": the replayed page may ask for its own images and
// styles, which cannot load offline and must not hold the file's load event.
function boot() {
  const data = JSON.parse(document.getElementById('clip-data').textContent);
  window.trailmapPlayer = new Player(document.getElementById('player'), {
    durationMS: data.duration_ms,
    startTS: data.start_ts,
    chunkMS: Infinity,
    fill: true,
    load: async () => data.events,
  });
}
if (document.readyState === 'complete') boot();
else window.addEventListener('load', boot);

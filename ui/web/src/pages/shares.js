// Shared links: every share link the user can see, with revoke.
import { get } from '../lib/api.js';
import { h } from '../lib/format.js';
import { shareItem } from '../lib/shares.js';
import './player.css';

const list = document.getElementById('shares');
const filter = document.getElementById('state');

async function load() {
  try {
    const { shares } = await get('/api/v1/shares');
    const want = filter.value;
    const shown = shares.filter((s) => !want || s.state === want);
    list.replaceChildren(...(shown.length ? shown.map((s) => shareItem(s, load))
      : [h('li', { class: 'muted' }, shares.length ? 'No links in this state.' : 'No links yet. Open a recording, pick a clip in the Share tab and create a link.')]));
  } catch (e) {
    list.replaceChildren(h('li', { class: 'alert' }, e.message));
  }
}
filter.addEventListener('change', load);
load();

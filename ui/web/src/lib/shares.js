// A share link as a list item, used by the player page and the links page.
import { api } from './api.js';
import { clock, h, when } from './format.js';

/** One share link in a list, with its state and a revoke button. */
export function shareItem(sh, reload) {
  return h('li', { class: 'share-item', dataset: { share: sh.id } },
    h('div', { class: 'share-line' },
      h('strong', { class: 'share-title' }, sh.title),
      h('span', { class: `badge ${sh.state === 'active' ? 'live' : 'gone'}` }, sh.state)),
    h('div', { class: 'muted small' },
      `${clock(sh.start_ms)}–${clock(sh.end_ms)} · /s/${sh.hint}… · ${sh.views} view${sh.views === 1 ? '' : 's'} · `,
      sh.state === 'revoked' ? `revoked ${when(sh.revoked_at)}` : `expires ${when(sh.expires_at)}`,
      ` · by ${sh.created_by} · `,
      h('a', { href: `/sessions/${encodeURIComponent(sh.session_id)}?t=${sh.start_ms}` }, 'open recording')),
    sh.state === 'active' ? h('button', { type: 'button', class: 'btn small danger revoke', onclick: async (e) => {
      if (!confirm(`Revoke “${sh.title}”? Anyone opening it will see that it is no longer available.`)) return;
      e.target.disabled = true;
      await api('DELETE', `/api/v1/shares/${sh.id}`);
      reload();
    } }, 'Revoke') : null);
}


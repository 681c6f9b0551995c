// A share link as a list item, used by the player page and the links page.
import { api, get } from './api.js';
import { clock, h, when } from './format.js';
import { renderControls } from './renders.js';

/** One share link in a list, with its state and a revoke button. */
export function shareItem(sh, reload) {
  const video = h('div', { class: 'share-video', hidden: true });
  const toggle = () => {
    if (!video.firstChild) {
      video.append(renderControls({
        full: true,
        submit: (o) => api('POST', '/api/v1/renders', { share: sh.id, ...o }),
        status: (j) => get(j.status_url),
        cancel: (j) => api('DELETE', j.status_url),
      }));
    }
    video.hidden = !video.hidden;
  };
  return h('li', { class: 'share-item', dataset: { share: sh.id } },
    h('div', { class: 'share-line' },
      h('strong', { class: 'share-title' }, sh.title),
      h('span', { class: `badge ${sh.state === 'active' ? 'live' : 'gone'}` }, sh.state)),
    h('div', { class: 'muted small' },
      `${clock(sh.start_ms)}–${clock(sh.end_ms)} · /s/${sh.hint}… · ${sh.views} view${sh.views === 1 ? '' : 's'} · `,
      sh.state === 'revoked' ? `revoked ${when(sh.revoked_at)}` : `expires ${when(sh.expires_at)}`,
      ` · by ${sh.created_by} · `,
      h('a', { href: `/sessions/${encodeURIComponent(sh.session_id)}?t=${sh.start_ms}` }, 'open recording'),
      sh.allow_video ? ' · viewers may download a video' : ''),
    sh.state === 'active' ? h('div', { class: 'row-buttons' },
      h('button', { type: 'button', class: 'btn small share-video-toggle', onclick: toggle }, 'Video / GIF'),
      h('button', { type: 'button', class: 'btn small danger revoke', onclick: async (e) => {
        if (!confirm(`Revoke “${sh.title}”? Anyone opening it will see that it is no longer available.`)) return;
        e.target.disabled = true;
        await api('DELETE', `/api/v1/shares/${sh.id}`);
        reload();
      } }, 'Revoke')) : null,
    video);
}


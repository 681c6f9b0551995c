// "Download video / GIF": asks the server to render a clip (render
// package), shows its progress and hands over the file. Used by the
// player's Share tab, the share list and public share pages.
import { h } from './format.js';

const FORMATS = [
  ['mp4', 'MP4 video — PowerPoint, Keynote, Google Slides'],
  ['webm', 'WebM video'],
  ['gif', 'GIF — loops, no player needed'],
];

const mb = (n) => (n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(1)} MB` : `${Math.max(1, Math.round(n / 1024))} KB`);
const secs = (ms) => (ms >= 60000 ? `${Math.round(ms / 60000)} min` : `${Math.max(1, Math.round(ms / 1000))} s`);

/**
 * renderControls builds the form and its progress.
 * @param {object} o
 *   submit(options) → Promise<job>: asks for a render (options: format,
 *     size, speed, skip_inactivity, caption);
 *   status(job) → Promise<job>: the job now;
 *   cancel(job) → Promise: stops it (optional);
 *   full: offer size, speed and caption too (dashboard); else format only.
 */
export function renderControls(o) {
  const format = h('select', { name: 'format', 'aria-label': 'Format' }, FORMATS.map(([v, l]) => h('option', { value: v }, l)));
  const size = h('select', { name: 'size', 'aria-label': 'Size' }, h('option', { value: '720p' }, '720p'), h('option', { value: '1080p' }, '1080p'));
  const speed = h('select', { name: 'speed', 'aria-label': 'Speed' }, [1, 2, 4, 8].map((s) => h('option', { value: s }, `${s}×`)));
  const skip = h('input', { type: 'checkbox', name: 'skip' });
  const caption = h('input', { type: 'checkbox', name: 'caption', checked: true });
  const go = h('button', { type: 'button', class: 'btn render-go' }, 'Download video / GIF');
  const bar = h('progress', { max: 100, value: 0, class: 'render-bar' });
  const text = h('span', { class: 'render-text small' });
  const stop = h('button', { type: 'button', class: 'btn small', hidden: true }, 'Cancel');
  const result = h('div', { class: 'render-result' });
  const state = h('div', { class: 'render-state', hidden: true, role: 'status' }, bar, text, stop);
  let job = null;
  let timer = 0;

  const done = (j) => {
    state.hidden = true;
    go.disabled = false;
    const link = h('a', { class: 'btn primary small render-file', href: j.file_url, download: j.file_name }, `Download ${j.options.format.toUpperCase()} (${mb(j.size_bytes)})`);
    result.replaceChildren(link);
    link.click();
  };
  const fail = (msg) => {
    state.hidden = true;
    go.disabled = false;
    result.replaceChildren(h('p', { class: 'error small' }, msg));
  };
  const poll = async () => {
    try {
      job = await o.status(job);
    } catch (e) { fail(e.message); return; }
    show(job);
  };
  const show = (j) => {
    clearTimeout(timer);
    if (j.status === 'done') { done(j); return; }
    if (j.status === 'failed') { fail(j.error || 'The render failed.'); return; }
    if (j.status === 'canceled') { fail('Canceled.'); return; }
    bar.value = j.progress || 0;
    text.textContent = j.status === 'queued' ? 'Waiting for a free renderer…'
      : `Rendering… ${j.progress || 0}%${j.eta_ms ? ` · about ${secs(j.eta_ms)} left` : ''}`;
    timer = setTimeout(poll, 700);
  };
  go.addEventListener('click', async () => {
    go.disabled = true;
    result.replaceChildren();
    state.hidden = false;
    bar.value = 0;
    text.textContent = 'Starting…';
    stop.hidden = !o.cancel;
    try {
      job = await o.submit({
        format: format.value, size: size.value, speed: Number(speed.value),
        skip_inactivity: skip.checked, caption: caption.checked,
      });
    } catch (e) { fail(e.message); return; }
    show(job);
  });
  stop.addEventListener('click', async () => {
    if (!job) return;
    stop.disabled = true;
    try { await o.cancel(job); } catch { /* the poll tells */ }
    stop.disabled = false;
    poll();
  });
  const opts = o.full
    ? h('div', { class: 'render-opts' },
      h('div', { class: 'render-format' }, h('label', {}, 'Format'), format),
      h('div', {}, h('label', {}, 'Size'), size),
      h('div', {}, h('label', {}, 'Speed'), speed),
      h('label', { class: 'check' }, skip, 'Skip inactivity'),
      h('label', { class: 'check' }, caption, 'Caption'))
    : h('div', { class: 'render-opts' }, h('div', { class: 'render-format' }, h('label', {}, 'Format'), format));
  return h('div', { class: 'render-box' }, opts, h('div', { class: 'row-buttons' }, go), state, result);
}

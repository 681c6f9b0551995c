// Settings → Recording rules: what the recorder keeps of a project's visits
// (sampling, minimum duration, interaction, URL allow/deny lists, a start
// trigger, bots). Reads and writes GET/PUT
// /api/v1/projects/:id/settings/recording; the server checks the rules as
// `trailmap project settings` does and names the wrong one in the error's
// "field", which is shown under that input. Admins only: members get the
// API's 403 shown.
import { api, get } from '../lib/api.js';
import { showError } from '../lib/journey.js';
import './recording.css';

const form = document.getElementById('rules-form');
const alertBox = document.getElementById('r-alert');
const status = document.getElementById('r-status');
const picker = document.getElementById('r-project');
const $ = (id) => document.getElementById(id);
const enc = encodeURIComponent;

let project = new URLSearchParams(location.search).get('project') || '';
let saved = {}; // the rules as stored, for "Undo changes"

// ---- form <-> rules ------------------------------------------------------

const lines = (s) => s.split('\n').map((l) => l.trim()).filter(Boolean);
// num reads a number input: null when empty, NaN when not a number.
const num = (el) => (el.value.trim() === '' ? null : Number(el.value));
const round = (x, digits) => Math.round(x * 10 ** digits) / 10 ** digits;

function startKind() {
  return form.querySelector('input[name="r-start"]:checked')?.value || '';
}

function showTrigger() {
  const kind = startKind();
  form.querySelector('.r-trigger').hidden = kind === '';
  for (const el of form.querySelectorAll('[data-start]')) el.hidden = el.dataset.start !== kind;
}

function fill(r) {
  $('r-sample').value = r.sample_rate === undefined ? '' : String(round(r.sample_rate * 100, 4));
  $('r-duration').value = r.min_duration_ms ? String(round(r.min_duration_ms / 1000, 3)) : '';
  $('r-interaction').checked = !!r.require_interaction;
  $('r-bots').checked = !!r.drop_bots;
  $('r-allow').value = (r.allow_urls || []).join('\n');
  $('r-deny').value = (r.deny_urls || []).join('\n');
  const t = r.start_after;
  const kind = t ? (t.event ? 'event' : 'url') : '';
  for (const el of form.querySelectorAll('input[name="r-start"]')) el.checked = el.value === kind;
  $('r-event').value = t?.event || '';
  $('r-url').value = t?.url || '';
  $('r-buffer').value = t?.buffer_ms ? String(round(t.buffer_ms / 1000, 3)) : '';
  showTrigger();
}

// read builds the rules from the form, or throws a FieldError for input
// the form can judge in its own units (percent, seconds).
class FieldError extends Error {
  constructor(field, message) { super(message); this.field = field; }
}

function read() {
  const r = {};
  const sample = num($('r-sample'));
  if (sample !== null) {
    if (!(sample >= 0 && sample <= 100)) throw new FieldError('sample_rate', 'Enter a share between 0 and 100 %, or leave it empty to record every session.');
    r.sample_rate = round(sample / 100, 6);
  }
  const dur = num($('r-duration'));
  if (dur !== null && dur !== 0) {
    if (!(dur > 0 && dur <= 3600)) throw new FieldError('min_duration_ms', 'Enter a duration between 0 and 3600 seconds (one hour).');
    r.min_duration_ms = Math.round(dur * 1000);
  }
  if ($('r-interaction').checked) r.require_interaction = true;
  if ($('r-bots').checked) r.drop_bots = true;
  const allow = lines($('r-allow').value);
  const deny = lines($('r-deny').value);
  if (allow.length) r.allow_urls = allow;
  if (deny.length) r.deny_urls = deny;
  const kind = startKind();
  if (kind) {
    const t = {};
    if (kind === 'event') {
      t.event = $('r-event').value.trim();
      if (!t.event) throw new FieldError('start_after.event', 'Enter the custom event that starts the recording.');
    } else {
      t.url = $('r-url').value.trim();
      if (!t.url) throw new FieldError('start_after.url', 'Enter the URL pattern of the page that starts the recording.');
    }
    const buf = num($('r-buffer'));
    if (buf !== null) {
      if (!(buf >= 1 && buf <= 120)) throw new FieldError('start_after.buffer_ms', 'Enter between 1 and 120 seconds, or leave it empty for 10 s.');
      t.buffer_ms = Math.round(buf * 1000);
    }
    r.start_after = t;
  }
  return r;
}

// ---- errors beside their input --------------------------------------------

function clearErrors() {
  alertBox.replaceChildren();
  for (const el of form.querySelectorAll('.r-error')) el.textContent = '';
  for (const el of form.querySelectorAll('[aria-invalid]')) el.removeAttribute('aria-invalid');
  for (const el of form.querySelectorAll('.r-invalid')) el.classList.remove('r-invalid');
}

// fieldError shows message under the input of field ("start_after.url"),
// or above the form when no input matches. It answers whether it found one.
function fieldError(field, message) {
  let box = field && form.querySelector(`[data-field="${CSS.escape(field)}"]`);
  if (!box && field.includes('.')) box = form.querySelector(`[data-field="${CSS.escape(field.split('.')[0])}"]`);
  if (!box) {
    showError(alertBox, new Error(message));
    return false;
  }
  box.classList.add('r-invalid');
  const err = [...box.querySelectorAll('.r-error')].pop();
  if (err) err.textContent = message;
  const input = box.querySelector('input:not([type=radio]), textarea') || box.querySelector('input');
  if (input) {
    input.setAttribute('aria-invalid', 'true');
    input.focus();
  }
  box.scrollIntoView({ block: 'nearest' });
  return true;
}

// ---- load and save ---------------------------------------------------------

async function load() {
  clearErrors();
  status.textContent = '';
  form.hidden = true;
  assetsForm.hidden = true;
  try {
    saved = await get(`/api/v1/projects/${enc(project)}/settings/recording`);
    fill(saved);
    form.hidden = false;
    fillAssets(await get(`/api/v1/projects/${enc(project)}/settings/assets`));
    assetsForm.hidden = false;
  } catch (e) {
    showError(alertBox, e);
  }
}

// ---- asset copies ("assets" in the project's settings) ---------------------

const assetsForm = document.getElementById('assets-form');

function fillAssets(a) {
  $('a-enabled').checked = a.enabled !== false;
  $('a-origins').value = (a.origins || []).join('\n');
  $('a-error').textContent = '';
  $('a-status').textContent = '';
}

assetsForm.addEventListener('submit', async (e) => {
  e.preventDefault();
  const body = {};
  if (!$('a-enabled').checked) body.enabled = false;
  const origins = lines($('a-origins').value).map((o) => o.replace(/\/+$/, '').toLowerCase());
  if (origins.length) body.origins = origins;
  $('a-error').textContent = '';
  $('a-save').disabled = true;
  $('a-status').textContent = 'Saving…';
  try {
    fillAssets(await api('PUT', `/api/v1/projects/${enc(project)}/settings/assets`, body));
    $('a-status').textContent = `Saved at ${new Date().toLocaleTimeString()}.`;
  } catch (err) {
    $('a-status').textContent = '';
    $('a-error').textContent = err.message;
  } finally {
    $('a-save').disabled = false;
  }
});

form.addEventListener('change', (e) => {
  if (e.target.name === 'r-start') showTrigger();
  status.textContent = '';
});

form.addEventListener('submit', async (e) => {
  e.preventDefault();
  clearErrors();
  let rules;
  try {
    rules = read();
  } catch (err) {
    fieldError(err.field, err.message);
    return;
  }
  const btn = $('r-save');
  btn.disabled = true;
  status.textContent = 'Saving…';
  try {
    saved = await api('PUT', `/api/v1/projects/${enc(project)}/settings/recording`, rules);
    fill(saved);
    status.textContent = `Saved at ${new Date().toLocaleTimeString()}.`;
  } catch (err) {
    status.textContent = '';
    if (err.code === 'invalid_rules') fieldError(err.field, err.message);
    else showError(alertBox, err);
  } finally {
    btn.disabled = false;
  }
});

$('r-reset').addEventListener('click', () => {
  clearErrors();
  fill(saved);
  status.textContent = '';
});

picker.addEventListener('change', () => {
  project = picker.value;
  const q = new URLSearchParams(location.search);
  q.set('project', project);
  history.replaceState(null, '', `${location.pathname}?${q}`);
  load();
});

(async () => {
  try {
    const { projects = [] } = await get('/api/v1/projects');
    if (!projects.length) {
      showError(alertBox, new Error('There is no project yet: create one with `trailmap project create NAME`.'));
      return;
    }
    const known = projects.find((p) => String(p.id) === project || p.name === project);
    project = String((known || projects[0]).id);
    if (projects.length > 1) {
      picker.replaceChildren(...projects.map((p) => new Option(p.name, String(p.id))));
      picker.value = project;
      picker.closest('.r-picker').hidden = false;
    } else {
      $('r-project-name').textContent = `· ${projects[0].name}`;
    }
  } catch (e) {
    showError(alertBox, e);
    return;
  }
  load();
})();

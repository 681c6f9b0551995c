// Trailmap browser recorder: rrweb record + batching + delivery.
//
//   <script src="https://trailmap.example.com/recorder.js" data-key="WRITE_KEY" async></script>
//
// Options on the tag: data-endpoint (Trailmap base URL; default: where the
// script was loaded from), data-mask="all" (mask all text), data-consent=
// "required" (record nothing, store nothing, until trailmap.consent(true)).
//
// Delivery: events are serialised as they come and buffered; a batch is cut
// when the previous one is acknowledged (every few seconds, or sooner when
// the buffer grows), gzipped with CompressionStream and POSTed with one
// request in flight. Failures back off and retry the same (session_id, seq),
// so the server's dedupe makes retries safe. On pagehide/hidden everything
// left goes out with sendBeacon; what does not fit is kept in sessionStorage
// and sent by the next page of the visit. Nothing here may throw into the
// page: every entry point is wrapped.
//
// Duplicated tabs: "Duplicate tab" (and window.open in some browsers) copies
// sessionStorage, so the copy would continue the original's session with the
// same next seq, and the server's (session_id, seq) dedupe would drop one
// tab's batches. A page that continues a session therefore asks the other
// tabs (BroadcastChannel) whether one of them holds it, and sends nothing
// until answered or ASK has passed: a live holder means this tab is a copy,
// which takes a session of its own (its buffered events, first snapshot
// included, go out under the new id) and leaves the copied unsent batches to
// the original. After a navigation nobody answers: the previous page of the
// tab is gone, or in the back-forward cache with its channel closed (a
// message to it would evict it from that cache).
//
// Recording rules: the project's rules ("recording" in its settings) come
// from GET /api/v1/ingest/config before rrweb starts (the browser caches
// them for a minute). A session outside the sample records nothing; a page
// whose URL is denied is not recorded (rrweb stops there and starts afresh,
// with a full snapshot, on the next allowed page of a single-page app);
// with start_after, events are kept in memory only (the last buffer_ms to
// 2 x buffer_ms, from a full snapshot taken every buffer_ms) until the
// trigger, then sent, marker first; with min_duration_ms or
// require_interaction, batches are held (and kept in sessionStorage across
// pages) until the session qualifies. The server checks sampling, URLs and
// the trigger again, and the duration and interaction when the session
// closes.
//
// Periodic full snapshots: one every checkout_every_ms (default 5 min) or
// checkout_every_events incremental events (default 10,000), taken at the
// next event, behind a trailmap/checkout marker that tells the server it is
// no page view; seeking and shared clips start from the latest one.
import { record } from '@rrweb/record';

var W = window;
var D = document;
var NS = 'trailmap';
var SS = 'sessionStorage';
var LS = 'localStorage';
var IDLE = 30 * 60e3; // a new session after this long without activity
var TICK = 5e3; // batch interval
var BATCH = 512e3; // max characters of events in one batch
var SOON = 200e3; // buffered characters that trigger a send before the tick
var BATCH_EVENTS = 2000;
var BEACON = 60e3; // sendBeacon/keepalive allow 64 KiB in flight per page
var BUF_MAX = 8e6; // characters buffered before dropping
var BUF_EVENTS = 20000;
var PERSIST_MAX = 1e6; // characters of unsent batches kept in sessionStorage
var CHECKOUT_MS = 300e3; // a full snapshot after this long (rules: checkout_every_ms)
var CHECKOUT_EVENTS = 10000; // or this many incremental events (rules: checkout_every_events)
var MAX_ERRORS = 100; // trailmap/error events per page
var ASK = 500; // ms to wait for a tab holding this session; sends wait, recording does not
var ID_RE = /^[A-Za-z0-9_-]{8,64}$/;
var ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-';

var nativeFetch = W.fetch;
// A tag manager may insert the tag: currentScript is still set then.
var script = D.currentScript || D.querySelector('script[data-key][src*="recorder"]');
var data = (script && script.dataset) || {};
var key = data.key;
var ingest = '';
try {
  // The base is the endpoint, or the directory the script came from.
  ingest = new URL('api/v1/ingest', new URL(data.endpoint ? data.endpoint.replace(/\/*$/, '/') : '.', (script && script.src) || location.href)).href;
} catch (e) {}
var maskAll = data.mask === 'all';
var consentRequired = data.consent === 'required';
// Opt-in, off by default: data-canvas="FPS" records canvas and WebGL
// (1–10 frames a second); data-iframes="cross-origin", on the tag of the
// page and on the tag inside a cross-origin frame of it, records the
// frame into the page's session (the frame's tag records and sends
// nothing itself).
var canvasFPS = Math.min(10, Math.max(0, Math.round(Number(data.canvas) || 0)));
var crossOriginFrames = data.iframes === 'cross-origin';
// data-assets="upload": same-origin images, fonts and style sheets the page
// loaded are offered to the server, which keeps copies of those it lacks
// (for pages behind a login, whose assets it cannot fetch itself).
var uploadAssets = data.assets === 'upload';
var uploaded = {}; // URLs offered from this page
var UPLOAD_MAX = 5e6;
var childFrame = false;
try {
  childFrame = crossOriginFrames && W.parent !== W;
} catch (e) {}

var sess = null; // {sid, seq, last, user}: the visit, in sessionStorage
var vid = ''; // visitor id, in localStorage
var started = false; // recording (or waiting for rrweb's first snapshot)
var recording = false; // rrweb accepts custom events
var stopRecord = null;
var pending = []; // custom events before rrweb runs
var pendingUser = null;
var buf = []; // {t: type, s: JSON}
var bufChars = 0;
var dropped = 0;
var needSnapshot = false;
var outbox = []; // batches cut and not acknowledged: {k, body, n, gz, p}
var persisted = 0;
var inflight = null;
var retryTimer = 0;
var soonTimer = 0;
var tickTimer = 0;
var attempt = 0;
var waiters = []; // flush() calls: {it: the last batch to wait for, f: resolve}
var errors = 0;
var docW = 0;
var docH = 0;
var docTimer = 0;
var resizeObserver = null;
var lastURL = ''; // the page URL without a plain #anchor, for SPA page views
var tabId = newId(); // this page, in the tab handshake
var chan = null; // BroadcastChannel shared by the pages of this write key
var asking = 0; // timer while asking whether a live tab holds sess.sid
var ready = Promise.resolve(); // resolved when no handshake is in progress
var readyDone = null;
var rules = {}; // the project's recording rules (Rules in recorder/rules.go)
var rulesLoad = null; // promise of rules: true when recording may start
var rulesKnown = false; // this page has the server's rules (until then nothing is sent)
var gen = 0; // start() calls, so a stale rules answer starts nothing
var denied = false; // this page's URL is not recorded
var marks = []; // buf positions where a checkout (Meta + full snapshot) starts, while waiting for the trigger
var qualifyTimer = 0;
var checkoutTimer = 0;
var lastFull = 0; // when rrweb last took a full snapshot
var sinceFull = 0; // incremental events since
var checkoutDue = false;

function guard(fn) {
  return function () {
    try {
      return fn.apply(this, arguments);
    } catch (e) {
      // The page must never see the recorder fail.
    }
  };
}

function sget(store, k) {
  try {
    return W[store].getItem(k);
  } catch (e) {
    return null;
  }
}

function sset(store, k, v) {
  try {
    W[store].setItem(k, v);
    return true;
  } catch (e) {
    return false;
  }
}

function sdel(store, k) {
  try {
    W[store].removeItem(k);
  } catch (e) {}
}

function newId() {
  var a = new Uint8Array(22);
  var s = '';
  try {
    crypto.getRandomValues(a);
  } catch (e) {
    for (var i = 0; i < a.length; i++) a[i] = Math.random() * 256;
  }
  for (var j = 0; j < a.length; j++) s += ALPHABET[a[j] & 63];
  return s;
}

function clip(s, n) {
  return String(s == null ? '' : s).slice(0, n || 1000);
}

// stored returns the session kept in sessionStorage, or null.
function stored() {
  try {
    var s = JSON.parse(sget(SS, NS));
    if (s && typeof s === 'object') return s;
  } catch (e) {}
  return null;
}

function alive(s) {
  return s && typeof s.sid === 'string' && ID_RE.test(s.sid) && Date.now() - s.last <= IDLE;
}

function seqOf(s) {
  return s.seq > 0 ? Math.floor(s.seq) : 0;
}

function saveSession() {
  sset(SS, NS, JSON.stringify(sess));
}

function newSession(user) {
  sess = { sid: newId(), seq: 0, last: Date.now(), start: Date.now(), user: user || null };
}

// ---- rules --------------------------------------------------------------

// loadRules fetches the project's recording rules once; a failure other
// than an unknown key records with none (the server applies its part).
function loadRules() {
  if (!rulesLoad) {
    rulesLoad = nativeFetch
      .call(W, ingest + '/config?key=' + encodeURIComponent(key), { credentials: 'omit' })
      .then(function (res) {
        if (res.status === 401) return false;
        return res.ok ? res.json().then(function (r) {
          if (r && typeof r === 'object') {
            rules = r;
            sset(SS, NS + '_rules', JSON.stringify(r));
          }
          return true;
        }) : true;
      })
      .catch(function () {
        return true;
      });
  }
  return rulesLoad;
}

// pattern compiles a URL pattern as the server does (recorder/rules.go):
// anchored at the start, "*" any characters, a trailing "$" anchors the end.
function pattern(p) {
  var end = /\$$/.test(p);
  if (end) p = p.slice(0, -1);
  var re = new RegExp('^' + p.split('*').map(function (s) {
    return s.replace(/[.*+?^${}()|[\]\\\/]/g, '\\$&');
  }).join('.*') + (end ? '$' : ''));
  re.path = p.charAt(0) === '/';
  return re;
}

function matches(list, href) {
  var rest = href.replace(/^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?#]*/, '');
  if (rest.charAt(0) !== '/') rest = '/' + rest;
  return (list || []).some(function (p) {
    try {
      var re = pattern(p);
      return re.test(re.path ? rest : href);
    } catch (e) {
      return false;
    }
  });
}

function allowed(href) {
  var a = rules.allow_urls;
  return !(a && a.length && !matches(a, href)) && !matches(rules.deny_urls, href);
}

// sampled: the FNV-1a hash of the session id below sample_rate x 2^32.
function sampled(sid) {
  var r = rules.sample_rate;
  if (r == null || r >= 1) return true;
  var h = 0x811c9dc5;
  for (var i = 0; i < sid.length; i++) {
    h ^= sid.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h < r * 4294967296;
}

// waiting: the session has not met its start trigger; nothing leaves.
function waiting() {
  return !!(rules.start_after && sess && !sess.trig);
}

// qualified: the session has lasted and done enough to be sent.
function qualified() {
  if (!sess || sess.ok) return true;
  if (!rulesKnown) return false;
  if (!(Date.now() - sess.start >= (rules.min_duration_ms || 0) && (!rules.require_interaction || sess.act))) return false;
  sess.ok = 1;
  saveSession();
  return true;
}

function qualifyCheck() {
  clearTimeout(qualifyTimer);
  qualifyTimer = 0;
  if (!sess || sess.ok) return;
  if (qualified()) return later(0);
  if (!rules.require_interaction || sess.act) {
    qualifyTimer = setTimeout(guard(qualifyCheck), Math.max(50, sess.start + (rules.min_duration_ms || 0) - Date.now()));
  }
}

// trigger starts sending a waiting session: the buffer from the checkout
// before the last buffer_ms, behind a marker the server accepts it by.
function trigger(what) {
  if (!waiting()) return;
  sess.trig = 1;
  saveSession();
  keepLast(Date.now());
  marks = [];
  if (buf.length && buf[0].ck) {
    // What is kept starts at a checkout: its Meta is the page view the
    // server knows of this page (the page's start was dropped).
    bufChars -= buf[0].s.length;
    buf.shift();
  }
  var first = buf.length ? buf[0].ts : Date.now();
  buf.unshift({ t: 5, s: JSON.stringify({ type: 5, timestamp: first, data: { tag: NS + '/trigger', payload: what } }) });
  bufChars += buf[0].s.length;
  later(0);
}

// keepLast drops what came before the latest checkout that started at
// least buffer_ms before now.
function keepLast(now) {
  var from = 0;
  for (var i = 0; i < marks.length; i++) {
    if (marks[i] < buf.length && buf[marks[i]].ts <= now - rules.start_after.buffer_ms) from = marks[i];
  }
  if (!from) return;
  for (var j = 0; j < from; j++) bufChars -= buf[j].s.length;
  buf.splice(0, from);
  marks = marks.map(function (m) {
    return m - from;
  }).filter(function (m) {
    return m >= 0;
  });
}

function urlTrigger() {
  var t = rules.start_after;
  if (t && t.url && matches([t.url], location.href)) trigger({ url: location.href });
}


// ---- buffer -------------------------------------------------------------

// User-driven events keep a session alive; the page's own mutations do not.
function isActivity(ev) {
  if (ev.type === 3) return [1, 2, 3, 4, 5, 6, 7, 12, 14].indexOf(ev.data.source) >= 0;
  if (ev.type === 5) return String(ev.data.tag).indexOf(NS + '/') !== 0;
  return ev.type === 2 || ev.type === 4;
}

// An interaction for require_interaction: click, scroll, input, touch, media, drag.
function isInteraction(ev) {
  return ev.type === 3 && [2, 3, 5, 6, 7, 12].indexOf(ev.data.source) >= 0;
}

function onEvent(ev, isCheckout) {
  var now = Date.now();
  if (isCheckout && ev.type === 4) {
    // A periodic (or trigger-wait) full snapshot: a replay point, not a
    // page view, which the marker tells the server.
    push(JSON.stringify({ type: 5, timestamp: ev.timestamp, data: { tag: NS + '/checkout', payload: {} } }), 5);
    buf[buf.length - 1].ck = 1;
  }
  if (!isCheckout && isActivity(ev)) {
    if (now - sess.last > IDLE) rotate();
    sess.last = now;
    if (!started) return; // rotate left the sample
  }
  if (!sess.act && isInteraction(ev)) {
    sess.act = 1;
    qualifyCheck();
  }
  if (ev.type === 2) {
    lastFull = now;
    sinceFull = 0;
  } else if (ev.type === 3) {
    sinceFull++;
    if (!checkoutDue && recording && (now - lastFull >= (rules.checkout_every_ms || CHECKOUT_MS) || sinceFull >= (rules.checkout_every_events || CHECKOUT_EVENTS))) {
      // A periodic full snapshot (rrweb's checkoutEvery* options would fix
      // the rules at the start, before this page has the server's).
      checkoutDue = true;
      Promise.resolve().then(guard(function () {
        checkoutDue = false;
        if (recording) record.takeFullSnapshot(true);
      }));
    }
  }
  if (waiting() && ev.type === 2) {
    // A checkout: keep from its Meta event on, and forget what is too old.
    var m = buf.length && buf[buf.length - 1].t === 4 ? buf.length - 1 : buf.length;
    if (m > 0 && buf[m - 1].ck) m--; // with its checkout marker
    marks.push(m);
    keepLast(now);
  }
  if (ev.type === 2 && !recording) {
    // rrweb accepts custom events only once its start returns.
    Promise.resolve().then(guard(onRecording));
    later(1000); // get the snapshot out early: a quick navigation would not fit it in a beacon
  }
  push(JSON.stringify(ev), ev.type);
}

function push(s, type) {
  buf.push({ t: type, s: s, ts: Date.now() });
  bufChars += s.length;
  if (bufChars > BUF_MAX || buf.length > BUF_EVENTS) trim();
  if (bufChars > SOON) later(0);
}

// trim drops the oldest events until the buffer is at 80% of its bounds:
// first anything but snapshots and meta, then (rarely) those too, always
// keeping the newest event.
function trim() {
  for (var pass = 0; pass < 2; pass++) {
    var out = [];
    for (var i = 0; i < buf.length; i++) {
      var e = buf[i];
      var over = bufChars > BUF_MAX * 0.8 || out.length + buf.length - i > BUF_EVENTS * 0.8;
      if (over && i < buf.length - 1 && (pass || (e.t !== 2 && e.t !== 4))) {
        bufChars -= e.s.length;
        dropped++;
      } else {
        out.push(e);
      }
    }
    buf = out;
  }
  marks = [];
  needSnapshot = true;
}

// cut moves up to limit characters of buffered events into a new batch at
// the end of the outbox, and returns it (null when there is nothing).
function cut(limit, held) {
  if (asking || waiting() || (!held && !(rulesKnown && qualified())) || (!buf.length && !dropped)) return null;
  var parts = [];
  var size = 0;
  var k = 0;
  if (dropped) {
    parts.push(JSON.stringify({ type: 5, timestamp: Date.now(), data: { tag: NS + '/dropped', payload: { count: dropped } } }));
    dropped = 0;
  }
  while (k < buf.length && k < BATCH_EVENTS && (!parts.length || size + buf[k].s.length <= limit)) {
    parts.push(buf[k].s);
    size += buf[k].s.length;
    k++;
  }
  buf.splice(0, k);
  bufChars -= size;
  var body =
    '{"session_id":"' + sess.sid + '","visitor_id":"' + vid + '","seq":' + sess.seq +
    ',"events":[' + parts.join(',') + ']' + (sess.user ? ',"user":' + JSON.stringify(sess.user) : '') + '}';
  var item = { k: NS + '_b:' + sess.sid + ':' + sess.seq, body: body, n: parts.length };
  sess.seq++;
  saveSession();
  outbox.push(item);
  return item;
}

// rotate starts a new session after idleness: what is buffered belongs to
// the old one; the new one starts with a fresh full snapshot.
function rotate() {
  while (cut(BATCH)) {}
  newSession(sess.user);
  saveSession();
  if (!sampled(sess.sid)) return halt();
  qualifyCheck();
  if (recording) {
    // Inside rrweb's emit, as its own checkouts are: the snapshot lands
    // before the event that woke the session up.
    record.takeFullSnapshot();
    docW = docH = 0;
    pageFacts();
  }
}

// ---- transport ----------------------------------------------------------

function later(ms) {
  if (soonTimer) return;
  soonTimer = setTimeout(guard(function () {
    soonTimer = 0;
    pump();
  }), ms);
}

function pump() {
  if (asking || inflight || retryTimer || !ingest || !key) return;
  if (sess && !(rulesKnown && qualified())) return settle(false);
  if (!outbox.length && !cut(BATCH)) return settle(true);
  var item = (inflight = outbox[0]);
  gzip(item)
    .then(function (gz) {
      var headers = { 'Content-Type': 'application/json', 'X-Trailmap-Key': key };
      if (gz) headers['Content-Encoding'] = 'gzip';
      return nativeFetch.call(W, ingest + '?session=' + encodeURIComponent(sidOf(item)), { method: 'POST', headers: headers, body: gz || item.body, credentials: 'omit' });
    })
    .then(
      function (res) {
        answered(item, res);
      },
      function () {
        answered(item, null);
      }
    )
    .catch(function () {});
}

function gzip(item) {
  if (item.gz || !W.CompressionStream || item.body.length < 1024) return Promise.resolve(item.gz);
  return new Response(new Blob([item.body]).stream().pipeThrough(new CompressionStream('gzip')))
    .arrayBuffer()
    .then(
      function (b) {
        return (item.gz = new Uint8Array(b));
      },
      function () {}
    );
}

function answered(item, res) {
  inflight = null;
  if (!sess) return settle(false); // consent withdrawn meanwhile
  var st = res ? res.status : 0;
  if (st === 401) {
    // Unknown write key: nothing will ever be accepted.
    halt();
    buf = [];
    outbox.slice().forEach(remove);
    return settle(false);
  }
  if ((st >= 200 && st < 300) || (st >= 400 && st < 500 && st !== 429 && st !== 408)) {
    // Accepted, or refused for good (a 4xx other than 429): never retried.
    if (st >= 300) dropped += item.n;
    remove(item);
    attempt = 0;
    if (needSnapshot && st < 300 && recording) {
      needSnapshot = false;
      record.takeFullSnapshot(); // the drops broke the replay; start it afresh
    }
    settle(true);
    if (outbox.length || bufChars > SOON) pump();
    return;
  }
  // Network error, 5xx, 408 or 429: back off and retry the same batch.
  attempt++;
  var delay = retryAfter(res) || Math.min(30e3, 1000 * Math.pow(2, attempt - 1)) * (0.5 + Math.random() / 2);
  persist(item); // a navigation during the wait loses nothing
  retryTimer = setTimeout(guard(function () {
    retryTimer = 0;
    pump();
  }), delay);
  settle(false);
}

function retryAfter(res) {
  var v = res && res.headers.get('Retry-After');
  if (!v) return 0;
  var ms = isNaN(+v) ? Date.parse(v) - Date.now() : +v * 1000;
  return ms > 0 ? Math.min(ms, 600e3) : 0;
}

// settle resolves the flush() calls whose batches are all acknowledged, or
// every one of them (with false) after a failure.
function settle(ok) {
  waiters = waiters.filter(function (w) {
    if (ok && outbox.indexOf(w.it) >= 0) return true;
    w.f(ok);
  });
}

function remove(item) {
  var i = outbox.indexOf(item);
  if (i >= 0) outbox.splice(i, 1);
  if (item.p) {
    sdel(SS, item.k);
    persisted -= item.body.length;
    item.p = 0;
  }
}

function persist(item) {
  if (item.p || persisted + item.body.length > PERSIST_MAX) return;
  if (sset(SS, item.k, item.body)) {
    item.p = 1;
    persisted += item.body.length;
  }
}

// restore takes over the batches an earlier page of this tab could not send,
// or with drop, deletes them from this tab's storage.
function restore(drop) {
  var items = [];
  try {
    var st = W[SS];
    for (var i = 0; i < st.length; i++) {
      var k = st.key(i);
      if (k && k.indexOf(NS + '_b:') === 0 && !outbox.some(function (o) {
        return o.k === k;
      })) items.push({ k: k, body: st.getItem(k), n: 0, p: 1, seq: +k.split(':')[2] });
    }
  } catch (e) {}
  items.sort(function (a, b) {
    return a.seq - b.seq;
  });
  items.forEach(function (it) {
    if (drop) return sdel(SS, it.k);
    persisted += it.body.length;
    outbox.push(it);
  });
}

// ---- tabs ---------------------------------------------------------------

function openChan() {
  try {
    chan = chan || new BroadcastChannel(NS + ':' + key);
    chan.onmessage = guard(onTab);
  } catch (e) {}
}

function closeChan() {
  try {
    chan.close();
  } catch (e) {}
  chan = null;
}

// ask starts the handshake: is there a live tab holding sess.sid?
function ask() {
  ready = new Promise(function (r) {
    readyDone = r;
  });
  asking = setTimeout(guard(function () {
    asked(false);
    pump();
  }), ASK);
  try {
    chan.postMessage({ q: sess.sid, id: tabId });
  } catch (e) {
    asked(false);
  }
}

// onTab answers a page asking for this page's session, and takes the answer
// to its own question. Two pages asking at once for one session (both
// copies, or one racing a navigation) settle it by id: the higher keeps it.
function onTab(e) {
  var m = e.data || {};
  if (!sess) return;
  if (m.q === sess.sid && !(asking && tabId < m.id)) chan.postMessage({ a: m.q, to: m.id });
  if (asking && m.to === tabId && m.a === sess.sid) {
    asked(true);
    pump();
  }
}

// asked ends the handshake. A copy starts a session of its own (same
// visitor and user); the unsent batches copied with the storage belong to
// the original tab, which sends them, so the copy deletes them.
function asked(copy) {
  if (!asking) return;
  clearTimeout(asking);
  asking = 0;
  if (sess) {
    if (copy) {
      newSession(sess.user);
      saveSession();
    }
    restore(copy);
  }
  if (!started) closeChan();
  readyDone();
}

// hide sends everything left synchronously, as the page may be going away.
// While asking it sends nothing: a hidden tab still gets the answer.
function hide() {
  if (sess && !(rulesKnown && qualified())) {
    // Held until the session qualifies: kept for the next page of the visit.
    while (cut(BEACON, true)) {}
    saveSession();
    outbox.forEach(persist);
    return;
  }
  while (cut(BEACON)) {}
  saveSession();
  outbox.slice().forEach(function (item) {
    // A queued beacon is trusted while the server answers; after a failure
    // it is kept for the next page too (a resend is deduplicated).
    if (beacon(item) && !attempt) remove(item);
    else persist(item);
  });
}

// sidOf is the session of a batch, from its storage key: it goes in the
// ingest URL too, so a load balancer in front of several nodes can send a
// session's batches to one node (caches like it; correctness does not
// depend on it).
function sidOf(item) {
  return String(item.k).split(':')[1] || '';
}

function beacon(item) {
  var blob = new Blob([item.gz || item.body], { type: 'text/plain' });
  if (blob.size > BEACON) return false;
  var url = ingest + '?key=' + encodeURIComponent(key) + '&session=' + encodeURIComponent(sidOf(item)) + (item.gz ? '&encoding=gzip' : '');
  try {
    if (navigator.sendBeacon && navigator.sendBeacon(url, blob)) return true;
  } catch (e) {}
  try {
    // Not known to arrive: the batch stays persisted for the next page too.
    nativeFetch.call(W, url, { method: 'POST', body: blob, keepalive: true, mode: 'no-cors', credentials: 'omit' }).catch(function () {});
  } catch (e) {}
  return false;
}

// ---- page facts ---------------------------------------------------------

function custom(tag, payload) {
  if (denied) return; // nothing of a page that is not recorded
  if (recording) {
    try {
      record.addCustomEvent(tag, payload);
      return;
    } catch (e) {}
  }
  if (pending.length < 1000) pending.push([tag, payload]);
}

function onRecording() {
  if (!started || recording || !stopRecord) return;
  recording = true;
  // After rrweb's own listeners (added anew whenever rrweb starts), so
  // trailmap/click follows rrweb's click.
  D.removeEventListener('click', clickListener, true);
  D.addEventListener('click', clickListener, true);
  pageFacts();
  var p = pending;
  pending = [];
  p.forEach(function (c) {
    custom(c[0], c[1]);
  });
  // A trigger tracked before the rules were known.
  var t = rules.start_after;
  if (t && t.event && p.some(function (c) {
    return c[0] === t.event;
  })) trigger({ event: t.event });
  try {
    resizeObserver = new ResizeObserver(guard(docLater));
    resizeObserver.observe(D.documentElement);
    if (D.body) resizeObserver.observe(D.body);
  } catch (e) {}
}

function pageFacts() {
  lastURL = pageURL();
  custom(NS + '/page', { referrer: D.referrer, title: D.title });
  docSize();
  if (uploadAssets) setTimeout(guard(offerAssets), 2000);
}

// ---- browser-side asset capture (data-assets="upload") ------------------

// assetCandidates lists the same-origin images, style sheets and
// CSS-loaded resources (fonts, background images) this page loaded, none
// inside a blocked or masked element, at most 50.
function assetCandidates() {
  var out = [];
  var seen = {};
  function add(u, el) {
    if (!u || out.length >= 50) return;
    var x;
    try {
      x = new URL(u, location.href);
    } catch (e) {
      return;
    }
    if (x.origin !== location.origin || seen[x.href] || uploaded[x.href]) return;
    if (el && el.closest && el.closest('[data-trailmap-block],[data-trailmap-mask]')) return;
    seen[x.href] = 1;
    out.push(x.href);
  }
  var imgs = D.images;
  for (var i = 0; i < imgs.length; i++) if (imgs[i].complete && imgs[i].naturalWidth) add(imgs[i].currentSrc || imgs[i].src, imgs[i]);
  var links = D.querySelectorAll('link[rel~="stylesheet"][href]');
  for (var j = 0; j < links.length; j++) add(links[j].href, links[j]);
  try {
    var res = W.performance.getEntriesByType('resource');
    for (var k = 0; k < res.length; k++) if (res[k].initiatorType === 'css') add(res[k].name, null);
  } catch (e) {}
  return out;
}

function hex(buf) {
  var b = new Uint8Array(buf);
  var h = '';
  for (var i = 0; i < b.length; i++) h += (b[i] < 16 ? '0' : '') + b[i].toString(16);
  return h;
}

// offerAssets reads the candidates from the browser's cache (with the
// page's cookies: that is why the server could not fetch them), offers
// their hashes and uploads the ones the server lacks, one at a time.
function offerAssets(tries) {
  tries = tries || 0;
  if (!recording || denied || !sess || !W.crypto || !W.crypto.subtle) return;
  if (!(rulesKnown && qualified())) {
    if (tries < 12) setTimeout(guard(function () { offerAssets(tries + 1); }), 5000);
    return;
  }
  var base = ingest.replace(/ingest$/, 'assets');
  var headers = { 'X-Trailmap-Key': key };
  var items = [];
  Promise.all(assetCandidates().map(function (u) {
    return nativeFetch.call(W, u, { credentials: 'same-origin', cache: 'force-cache' }).then(function (res) {
      if (!res.ok) return;
      var type = res.headers.get('Content-Type') || '';
      return res.arrayBuffer().then(function (buf) {
        if (!buf.byteLength || buf.byteLength > UPLOAD_MAX) return;
        return W.crypto.subtle.digest('SHA-256', buf).then(function (d) {
          items.push({ url: u, sha256: hex(d), size: buf.byteLength, type: type, buf: buf });
        });
      });
    }).catch(function () {});
  })).then(function () {
    if (!items.length) return;
    return nativeFetch.call(W, base + '/offer', {
      method: 'POST', credentials: 'omit', headers: { 'X-Trailmap-Key': key, 'Content-Type': 'application/json' },
      body: JSON.stringify({ assets: items.map(function (it) { return { url: it.url, sha256: it.sha256, size: it.size }; }) }),
    }).then(function (res) {
      return res.ok ? res.json() : { need: [] };
    }).then(function (ans) {
      var need = {};
      (ans.need || []).forEach(function (h) { need[h] = 1; });
      var chain = Promise.resolve();
      items.forEach(function (it) {
        uploaded[it.url] = 1;
        if (!need[it.sha256]) return;
        need[it.sha256] = 0;
        chain = chain.then(function () {
          headers['Content-Type'] = it.type || 'application/octet-stream';
          return nativeFetch.call(W, base + '?url=' + encodeURIComponent(it.url), { method: 'POST', credentials: 'omit', headers: headers, body: it.buf })
            .catch(function () {});
        });
      });
      return chain;
    });
  }).catch(function () {});
}

// pageURL is location.href without a plain #anchor; hash routes (#/, #!)
// stay, as they are pages of a single-page app.
function pageURL() {
  var h = location.href;
  return /#[!/]/.test(location.hash) ? h : h.split('#')[0];
}

// checkURL records a single-page app's navigation (pushState, popstate,
// hash routes) as a page view: a Meta event, as rrweb starts pages with,
// and trailmap/page. It runs after clicks, on history events and each tick,
// so the page's History API is left alone.
function checkURL() {
  if (!started) return;
  var u = pageURL();
  if (u === lastURL) return;
  var from = lastURL;
  lastURL = u;
  if (!allowed(location.href)) return pause();
  if (denied) return resumePage();
  if (!recording) return;
  push(JSON.stringify({ type: 4, timestamp: Date.now(), data: { href: location.href, width: W.innerWidth, height: W.innerHeight } }), 4);
  custom(NS + '/page', { referrer: from, title: D.title });
  docLater();
  urlTrigger();
}

// pause stops recording on a page whose URL is denied; what was recorded
// before it is sent as usual.
function pause() {
  denied = true;
  recording = false;
  try {
    if (stopRecord) stopRecord();
  } catch (e) {}
  stopRecord = null;
  pending = [];
}

// resumePage starts recording again, with a full snapshot, on an allowed
// page after a denied one.
function resumePage() {
  denied = false;
  recordPage();
  urlTrigger();
}

function docSize() {
  docTimer = 0;
  var de = D.documentElement;
  var b = D.body || de;
  var w = Math.max(de.scrollWidth, b.scrollWidth);
  var h = Math.max(de.scrollHeight, b.scrollHeight);
  if (w !== docW || h !== docH) {
    docW = w;
    docH = h;
    custom(NS + '/doc', { width: w, height: h });
  }
}

function docLater() {
  if (!docTimer) docTimer = setTimeout(guard(docSize), 500);
}

function onClick(e) {
  setTimeout(guard(checkURL), 100);
  if (!recording) return;
  var el = e.composedPath ? e.composedPath()[0] : e.target;
  if (!el || el.nodeType !== 1) el = e.target;
  if (el && el.nodeType === 3) el = el.parentElement;
  if (!el || !el.getBoundingClientRect) return;
  var r = el.getBoundingClientRect();
  custom(NS + '/click', {
    id: record.mirror.getId(el),
    x: e.clientX,
    y: e.clientY,
    box: { x: Math.round(r.left), y: Math.round(r.top), w: Math.round(r.width), h: Math.round(r.height) },
  });
}

function onError(e) {
  if (errors++ < MAX_ERRORS) {
    custom(NS + '/error', { message: clip(e.message), source: clip(e.filename), line: e.lineno || 0, column: e.colno || 0 });
  }
}

function onRejection(e) {
  var r = e.reason;
  if (errors++ < MAX_ERRORS) {
    custom(NS + '/error', { message: clip((r && r.message) || r), source: '', line: 0, column: 0 });
  }
}

function onVisibility() {
  if (D.visibilityState === 'hidden') hide();
}

function tick() {
  checkURL();
  docSize();
  pump();
}

var clickListener = guard(onClick);
var listeners = [
  [W, 'error', guard(onError)],
  [W, 'unhandledrejection', guard(onRejection)],
  [W, 'pagehide', guard(function () {
    // Leaving before an answer: most likely a quick navigation (a live
    // holder answers within milliseconds), so the session continues.
    asked(false);
    hide();
    closeChan();
  })],
  [W, 'pageshow', guard(resume)],
  [D, 'visibilitychange', guard(onVisibility)],
  [W, 'online', guard(pump)],
  [W, 'popstate', guard(checkURL)],
  [W, 'hashchange', guard(checkURL)],
  [W, 'resize', guard(docLater)],
];

function listen(on) {
  listeners.forEach(function (l) {
    l[0][on ? 'addEventListener' : 'removeEventListener'](l[1], l[2], !!l[3]);
  });
}

// ---- lifecycle ----------------------------------------------------------

// start records at once, with the rules an earlier page of the visit
// cached; until this page has the server's, nothing is sent (a page left
// before keeps its batches for the next one), so a quick navigation loses
// nothing.
function start() {
  if (started || childFrame || !key || !ingest) return;
  started = true;
  var g = ++gen;
  try {
    var c = JSON.parse(sget(SS, NS + '_rules'));
    if (c && typeof c === 'object') rules = c;
  } catch (e) {}
  begin();
  loadRules().then(guard(function (ok) {
    if (g !== gen || !started) return; // stopped meanwhile
    rulesKnown = true;
    if (!ok) return halt(); // unknown write key
    applyRules();
    pump();
  }));
}

// applyRules applies the server's rules to what was recorded before they came.
function applyRules() {
  if (!sess) return;
  if (!sampled(sess.sid)) {
    halt();
    buf = [];
    bufChars = dropped = 0;
    outbox.slice().forEach(remove);
    restore(true);
    return;
  }
  if (!denied && !allowed(location.href)) {
    pause();
    buf = [];
    bufChars = 0;
  }
  if (waiting()) {
    outbox.slice().forEach(remove); // held from pages before the trigger
    restore(true);
    if (!marks.length && buf.length) marks = [0];
    checkouts();
    urlTrigger();
  }
  qualifyCheck();
}

// checkouts takes a full snapshot every buffer_ms while waiting for the
// trigger, so what precedes it can start at a full snapshot.
function checkouts() {
  if (checkoutTimer || !waiting()) return;
  checkoutTimer = setInterval(guard(function () {
    if (!waiting()) {
      clearInterval(checkoutTimer);
      checkoutTimer = 0;
      return;
    }
    if (recording) record.takeFullSnapshot(true);
  }), Math.max(1000, rules.start_after.buffer_ms || 10e3));
}

function begin() {
  var now = Date.now();
  vid = sget(LS, NS + '_vid');
  if (!ID_RE.test(vid || '')) {
    vid = newId();
    sset(LS, NS + '_vid', vid);
  }
  sess = stored();
  var fresh = !alive(sess);
  if (fresh) newSession(sess && typeof sess.user === 'object' ? sess.user : null);
  sess.seq = seqOf(sess);
  sess.last = now;
  if (!sess.start) sess.ok = 1; // a session from before the rules
  if (!sampled(sess.sid)) {
    // Outside the sample: nothing is recorded or sent for this session.
    saveSession();
    started = false;
    return;
  }
  if (pendingUser) identifyNow(pendingUser);
  saveSession();
  openChan();
  // A continued session: this tab may be a copy of a live one. Without
  // BroadcastChannel it continues, as it always did.
  if (fresh || !chan) restore();
  else ask();
  listen(true);
  D.addEventListener('click', clickListener, true); // for URL changes; again in onRecording
  tickTimer = setInterval(guard(tick), TICK);
  lastURL = pageURL();
  qualifyCheck();
  checkouts();
  if (allowed(location.href)) recordPage();
  else denied = true;
  urlTrigger();
  pump();
}

// recordPage starts rrweb on this page; it emits a Meta event and a full
// snapshot first.
function recordPage() {
  stopRecord = record(recordOptions(guard(onEvent)));
}

// recordOptions are rrweb's options for this page (and for a child frame,
// whose events rrweb posts to the parent's recorder).
function recordOptions(emit) {
  var o = {
    emit: emit,
    maskAllInputs: true,
    maskTextSelector: maskAll ? '*' : '[data-trailmap-mask]',
    blockSelector: '[data-trailmap-block]',
    slimDOMOptions: true,
    recordAfter: 'DOMContentLoaded',
    sampling: { scroll: 150, input: 'last' },
    recordCrossOriginIframes: crossOriginFrames,
    errorHandler: function () {
      return true;
    },
  };
  if (canvasFPS) {
    // Canvas and WebGL as images, canvasFPS a second (rrweb's sampled
    // canvas recording); their content is in every full snapshot too.
    o.recordCanvas = true;
    o.sampling.canvas = canvasFPS;
    o.dataURLOptions = { type: 'image/webp', quality: 0.6 };
  }
  return o;
}

// resume takes up a page restored from the back-forward cache. Later pages
// of the tab went on with the session (seq) or began another: continue from
// what they stored, send what they left, and start this page's replay
// afresh, as their DOM came in between.
function resume(e) {
  if (!e.persisted || !sess) return;
  openChan();
  buf = []; // only what came after pagehide, which sent the rest
  bufChars = 0;
  var s = stored();
  if (alive(s)) {
    s.seq = Math.max(seqOf(s), s.sid === sess.sid ? sess.seq : 0);
    sess = s;
  } else if (Date.now() - sess.last > IDLE) {
    newSession(sess.user);
  }
  sess.last = Date.now();
  saveSession();
  restore();
  if (recording) {
    record.takeFullSnapshot();
    docW = docH = 0;
    pageFacts();
  }
  pump();
}

function halt() {
  if (!started) return;
  started = recording = denied = false;
  clearTimeout(qualifyTimer);
  clearInterval(checkoutTimer);
  checkoutTimer = 0;
  if (!asking) closeChan(); // else once answered: stop() may come before that
  try {
    if (stopRecord) stopRecord();
  } catch (e) {}
  stopRecord = null;
  listen(false);
  D.removeEventListener('click', clickListener, true);
  clearInterval(tickTimer);
  try {
    if (resizeObserver) resizeObserver.disconnect();
  } catch (e) {}
}

function identifyNow(user) {
  sess.user = user;
  saveSession();
  // An event of its own, so the user goes out even on a quiet page.
  custom(NS + '/identify', { id: user.id });
}

function plain(v) {
  try {
    v = JSON.parse(JSON.stringify(v));
    return v && typeof v === 'object' && !Array.isArray(v) ? v : null;
  } catch (e) {
    return null;
  }
}

var api = {
  version: 1,
  // identify joins the visitor to a person. opts.signature (or a string
  // third argument) is the hex HMAC-SHA256 of the id under the project's
  // identity secret, computed by the site's backend; projects that require
  // verified identities ignore an identify without it.
  identify: guard(function (id, traits, opts) {
    if (id == null || id === '') return;
    var user = { id: clip(id, 256) };
    var t = plain(traits);
    if (t) user.traits = t;
    var sig = typeof opts === 'string' ? opts : opts && opts.signature;
    if (typeof sig === 'string' && sig) user.signature = clip(sig, 128);
    if (started && sess) identifyNow(user);
    else pendingUser = user; // taken up when the session starts
  }),
  track: guard(function (name, props) {
    name = clip(name, 200);
    if (!name || name.indexOf(NS + '/') === 0) return;
    if (started || pending.length < 100) custom(name, plain(props) || {});
    var t = rules.start_after;
    if (started && sess && t && t.event === name && !denied) trigger({ event: name });
  }),
  consent: guard(function (yes) {
    if (yes) {
      sset(LS, NS + '_consent', '1');
      start();
      return;
    }
    halt();
    buf = [];
    bufChars = dropped = 0;
    asked(false);
    outbox.slice().forEach(remove);
    restore(true);
    pending = [];
    pendingUser = null;
    sdel(LS, NS + '_vid');
    sdel(SS, NS);
    sdel(SS, NS + '_rules');
    sess = null;
    sset(LS, NS + '_consent', '0'); // the refusal is remembered, nothing else is kept
  }),
  // flush sends what is recorded so far; the promise resolves true once
  // all of it is acknowledged, false when a send fails (retries go on).
  flush: function () {
    return (rulesLoad || Promise.resolve()).then(function () {
      return ready;
    }).then(function () {
      return new Promise(function (resolve) {
        try {
          if (!sess) return resolve(!started);
          if (waiting() || !qualified()) return resolve(false); // held back by the rules
          while (cut(BATCH)) {}
          if (!outbox.length) return resolve(true);
          waiters.push({ it: outbox[outbox.length - 1], f: resolve });
          if (retryTimer) {
            clearTimeout(retryTimer);
            retryTimer = 0;
          }
          pump();
        } catch (e) {
          resolve(false);
        }
      });
    });
  },
  // stop ends the recording on this page and sends what is left.
  stop: guard(function () {
    halt();
    ready.then(guard(function () {
      if (sess) while (cut(BATCH)) {}
      pump();
    }));
  }),
};

guard(function () {
  var prev = W.trailmap;
  if (prev && prev.version) return; // loaded twice
  var queue = (prev && prev.q) || [];
  W.trailmap = api;
  queue.forEach(function (c) {
    try {
      api[c[0]].apply(api, [].slice.call(c, 1));
    } catch (e) {}
  });
  if (childFrame) {
    // rrweb posts this frame's events to the recorder of the page.
    record(recordOptions(function () {}));
    return;
  }
  var c = sget(LS, NS + '_consent');
  if (c !== '0' && (!consentRequired || c === '1')) start();
})();

package recorder_test

// End-to-end tests of the browser recorder (recorder/js): real headless
// Chromium, the real trailmap binary, and test pages served from another
// origin than the server, as on a customer's site.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/trailmap/trailmap/internal/browsertest"
	"github.com/trailmap/trailmap/internal/servertest"
	"github.com/trailmap/trailmap/storage/fs"
	"github.com/trailmap/trailmap/storage/zdict"
)

// Strings that must never reach the server.
const (
	typedText    = "Typed-Secret-Value"
	typedPass    = "hunter2-PASSWORD"
	maskedText   = "SECRET-CARD-4111"
	blockedText  = "BLOCKED-CONTENT-XYZ"
	headingText  = "Welcome-Heading-Text"
	identifiedAs = "user-42_identified"
)

// pages of the test site; {{NEXT}} links keep the query (and so the script
// options) of the current page.
var pages = map[string]string{
	"a": `<h1>` + headingText + `</h1>
<button id="btn" onclick="document.getElementById('out').textContent = 'clicked ' + (window.n = (window.n || 0) + 1)">Click me</button>
<p id="out"></p>
<input id="name" type="text" placeholder="name">
<input id="pw" type="password">
<textarea id="notes"></textarea>
<div id="secret" data-trailmap-mask><span>` + maskedText + `</span></div>
<div id="blocked" data-trailmap-block>` + blockedText + `</div>
<div style="height:3000px;background:linear-gradient(#fff,#ccc)">tall</div>
<a id="next" href="/b.html{{QUERY}}">next page</a>
<a id="away" href="/plain.html">leave</a>`,
	"b": `<h2>Page B</h2>
<button id="btn" onclick="this.textContent = 'pressed'">Press</button>
<button id="next" onclick="location.href = '/c.html{{QUERY}}'">Go to C</button>`,
	"c": `<h2>Page C</h2><button id="btn">Done</button>`,
	"flood": `<div id="box"></div>
<script>
// Big mutations: n text nodes of 100,000 characters, keeping the last 3.
window.flood = function (n) {
  var box = document.getElementById('box');
  for (var i = 0; i < n; i++) {
    var d = document.createElement('div');
    d.textContent = i + 'x'.repeat(100000);
    box.appendChild(d);
    if (box.childNodes.length > 3) box.removeChild(box.firstChild);
  }
};
</script>`,
	"spa": `<h2 id="h">Home</h2>
<button id="go" onclick="history.pushState({}, '', '/app/settings'); document.getElementById('h').textContent = document.title = 'Settings'">Settings</button>
<a id="anchor" href="#details">details</a>
<button id="back" onclick="history.go(-2)">Back</button>`,
	"bench": `<div id="box"></div>
<script>
// 1,000 DOM mutations a second: every 10 ms, 10 changes (add, edit, remove).
window.runMutations = function (seconds) {
  return new Promise(function (resolve) {
    var box = document.getElementById('box'), i = 0, end = performance.now() + seconds * 1000, work = 0;
    var t = setInterval(function () {
      var t0 = performance.now();
      for (var k = 0; k < 10; k++, i++) {
        var d = document.createElement('div');
        d.className = 'row r' + (i % 7);
        d.textContent = 'row ' + i + ' ' + Math.random().toString(36).slice(2);
        box.appendChild(d);
        if (box.childNodes.length > 200) box.removeChild(box.firstChild);
        if (k % 3 === 0) box.lastChild.setAttribute('data-i', String(i));
      }
      work += performance.now() - t0;
      if (performance.now() >= end) { clearInterval(t); resolve({mutations: i, work: work}); }
    }, 10);
  });
};
</script>`,
}

// site serves the test pages. Query options: consent=required, mask=all,
// norec=1 (no recorder tag), stub=1 (the pre-load queue stub with calls),
// nostorage=1 (localStorage and sessionStorage throw).
type site struct {
	*httptest.Server
	srv *servertest.Server
}

func newSite(t testing.TB, srv *servertest.Server) *site {
	s := &site{srv: srv}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

func (s *site) serve(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/"), ".html")
	if name == "favicon.ico" {
		http.NotFound(w, r)
		return
	}
	body, ok := pages[name]
	q := r.URL.Query()
	if !ok {
		body, q = `<p>A page without the recorder.</p>`, url.Values{"norec": {"1"}}
	}
	query := ""
	if r.URL.RawQuery != "" {
		query = "?" + r.URL.RawQuery
	}
	body = strings.ReplaceAll(body, "{{QUERY}}", query)
	var head strings.Builder
	// The page's own error log: the recorder must never add to it.
	head.WriteString(`<script>window.pageErrors = [];
addEventListener('error', function (e) { pageErrors.push('error: ' + e.message) });
addEventListener('unhandledrejection', function (e) { pageErrors.push('rejection: ' + e.reason) });</script>`)
	if q.Get("nostorage") != "" {
		// Storage that throws, as in some privacy modes and sandboxed frames.
		head.WriteString(`<script>['getItem', 'setItem', 'removeItem', 'key'].forEach(function (m) {
  Storage.prototype[m] = function () { throw new DOMException('denied', 'SecurityError') };
});</script>`)
	}
	if q.Get("stub") != "" {
		head.WriteString(`<script>window.trailmap = window.trailmap || {q: []};
['identify', 'track', 'consent', 'flush', 'stop'].forEach(function (m) {
  trailmap[m] = trailmap[m] || function () { trailmap.q.push([m].concat([].slice.call(arguments))) };
});
trailmap.track('early', {queued: true});</script>`)
	}
	if q.Get("norec") == "" {
		fmt.Fprintf(&head, `<script src="%s/recorder.js" data-key="%s"`, s.srv.URL, s.srv.WriteKey)
		if v := q.Get("consent"); v != "" {
			fmt.Fprintf(&head, ` data-consent="%s"`, v)
		}
		if v := q.Get("mask"); v != "" {
			fmt.Fprintf(&head, ` data-mask="%s"`, v)
		}
		head.WriteString(` async></script>`)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	fmt.Fprintf(w, "<!doctype html><html><head><meta charset=utf-8><title>Test %s</title>%s</head><body>%s</body></html>", name, head.String(), body)
}

// ingestWatch counts the ingest requests a browser context makes.
type ingestWatch struct {
	mu   sync.Mutex
	urls []string
}

func watchIngest(ctx context.Context) *ingestWatch {
	w := &ingestWatch{}
	reqs := chromedp.Events(ctx, network.RequestWillBeSent)
	go func() {
		for ev, err := range reqs {
			if err != nil {
				return
			}
			if strings.Contains(ev.Request.URL, "/api/v1/ingest") && ev.Request.Method == http.MethodPost {
				w.mu.Lock()
				w.urls = append(w.urls, ev.Request.URL)
				w.mu.Unlock()
			}
		}
	}()
	return w
}

func (w *ingestWatch) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.urls)
}

// event is the part of an rrweb event the tests look at.
type event struct {
	Type      int             `json:"type"`
	Timestamp float64         `json:"timestamp"`
	Data      json.RawMessage `json:"data"`
}

type eventData struct {
	Source  int             `json:"source"`
	Type    int             `json:"type"`
	ID      int             `json:"id"`
	Href    string          `json:"href"`
	Tag     string          `json:"tag"`
	Payload json.RawMessage `json:"payload"`
}

func (e event) data() eventData {
	var d eventData
	json.Unmarshal(e.Data, &d)
	return d
}

func (e event) isClick() bool {
	d := e.data()
	return e.Type == 3 && d.Source == 2 && d.Type == 2
}

type sessionInfo struct {
	ID        string `json:"id"`
	VisitorID string `json:"visitor_id"`
	UserID    string `json:"user_id"`
	Pages     int    `json:"page_count"`
	Clicks    int    `json:"click_count"`
	Events    int    `json:"event_count"`
	Errors    int    `json:"errors"`
	Dropped   int    `json:"dropped_events"`
	PageList  []struct {
		Path string `json:"path"`
	} `json:"pages"`
	Custom []struct {
		Name  string          `json:"name"`
		Props json.RawMessage `json:"props"`
	} `json:"custom_events"`
}

func sessions(t *testing.T, srv *servertest.Server, query string) []sessionInfo {
	t.Helper()
	var out struct {
		Sessions []sessionInfo `json:"sessions"`
	}
	srv.GetJSON(t, "/api/v1/sessions?project=test"+query, &out)
	return out.Sessions
}

func sessionDetail(t *testing.T, srv *servertest.Server, id string) sessionInfo {
	t.Helper()
	var s sessionInfo
	srv.GetJSON(t, "/api/v1/sessions/"+id, &s)
	return s
}

// rawEvents returns the body of a session's event stream and its events.
func rawEvents(t *testing.T, srv *servertest.Server, id string) ([]byte, []event) {
	t.Helper()
	resp := srv.Request(t, http.MethodGet, "/api/v1/sessions/"+id+"/events", nil)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("events of %s: %d %v %s", id, resp.StatusCode, err, body)
	}
	var evs []event
	if err := json.Unmarshal(body, &evs); err != nil {
		t.Fatalf("events of %s: %v", id, err)
	}
	return body, evs
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s; last state: %s", what, d, state)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func do(t *testing.T, ctx context.Context, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatal(err)
	}
}

func eval[T any](t *testing.T, ctx context.Context, js string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("%s: %v", js, err)
	}
	return v
}

// navigate clicks sel and waits for the next page to load.
func clickAndLoad(t *testing.T, ctx context.Context, sel string) {
	t.Helper()
	if _, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(sel))); err != nil {
		t.Fatalf("click %s: %v", sel, err)
	}
}

func waitRecorder(t *testing.T, ctx context.Context) {
	t.Helper()
	// The full snapshot is taken at DOMContentLoaded; the load event (which
	// Navigate waits for) comes after the async script ran.
	if !eval[bool](t, ctx, `!!(window.trailmap && window.trailmap.version)`) {
		t.Fatal("window.trailmap is not the recorder")
	}
}

func noPageErrors(t *testing.T, ctx context.Context, con *browsertest.Console) {
	t.Helper()
	if errs := eval[[]string](t, ctx, `window.pageErrors || []`); len(errs) > 0 {
		t.Errorf("the page saw errors: %q", errs)
	}
	if errs := con.Errors(); len(errs) > 0 {
		t.Errorf("console errors: %q", errs)
	}
}

// trace summarises a session's events: pages, full snapshots and clicks.
func trace(evs []event) string {
	var out []string
	for _, e := range evs {
		switch {
		case e.Type == 4:
			u, _ := url.Parse(e.data().Href)
			out = append(out, "page"+u.Path)
		case e.Type == 2:
			out = append(out, "snapshot")
		case e.isClick():
			out = append(out, "click")
		}
	}
	return strings.Join(out, " ")
}

func TestRecorder_MultiPageVisit(t *testing.T) {
	srv := servertest.Start(t)
	st := newSite(t, srv)
	ctx := browsertest.Start(t, browsertest.LoopbackOnly()).NewContext(t)
	con := browsertest.WatchConsole(t, ctx)

	do(t, ctx, chromedp.Navigate(st.URL+"/a.html"))
	waitRecorder(t, ctx)
	do(t, ctx,
		chromedp.Click(chromedp.CSS("#btn")),
		chromedp.SendKeys(chromedp.CSS("#name"), typedText),
		chromedp.SendKeys(chromedp.CSS("#pw"), typedPass),
		chromedp.SendKeys(chromedp.CSS("#notes"), typedText+" in notes"),
		chromedp.Evaluate[chromedp.Void](`window.scrollTo(0, 1500)`),
		chromedp.Sleep(300),
	)
	clickAndLoad(t, ctx, "#next") // a link
	do(t, ctx, chromedp.Click(chromedp.CSS("#btn")))
	clickAndLoad(t, ctx, "#next") // a button that navigates in its click handler, at once
	do(t, ctx, chromedp.Click(chromedp.CSS("#btn")))
	flushOK(t, ctx, "page")
	noPageErrors(t, ctx, con)

	const want = "page/a.html snapshot click click page/b.html snapshot click click page/c.html snapshot click"
	var id string
	var evs []event
	var body []byte
	eventually(t, 60*time.Second, "one session with every page and click", func() (bool, string) {
		list := sessions(t, srv, "")
		if len(list) != 1 {
			return false, fmt.Sprintf("%d sessions", len(list))
		}
		id = list[0].ID
		body, evs = rawEvents(t, srv, id)
		got := trace(evs)
		return got == want, got
	})

	// Each click is followed by the recorder's trailmap/click naming the same node.
	var clicks, page, docs int
	for i, e := range evs {
		d := e.data()
		switch d.Tag {
		case "trailmap/click":
			clicks++
			var p struct {
				ID  int     `json:"id"`
				X   float64 `json:"x"`
				Y   float64 `json:"y"`
				Box *struct{ X, Y, W, H int }
			}
			json.Unmarshal(d.Payload, &p)
			prev := -1
			for j := i - 1; j >= 0; j-- {
				if evs[j].isClick() {
					prev = evs[j].data().ID
					break
				}
			}
			if p.ID <= 0 || p.ID != prev || p.Box == nil || p.Box.W <= 0 || p.Box.H <= 0 {
				t.Errorf("trailmap/click %s does not match the click before it (node %d)", d.Payload, prev)
			}
		case "trailmap/page":
			page++
		case "trailmap/doc":
			docs++
			var p struct{ Width, Height int }
			json.Unmarshal(d.Payload, &p)
			if p.Width <= 0 || p.Height <= 0 {
				t.Errorf("trailmap/doc %s", d.Payload)
			}
		}
	}
	if clicks != 5 || page != 3 || docs < 3 {
		t.Errorf("trailmap/click ×%d (want 5), trailmap/page ×%d (want 3), trailmap/doc ×%d (want ≥3)", clicks, page, docs)
	}
	if !bytes.Contains(body, []byte(`"trailmap/doc","payload":{"width":`)) || !bytes.Contains(body, []byte(`"height":3`)) {
		t.Errorf("no trailmap/doc with page A's 3000px+ height")
	}

	s := sessionDetail(t, srv, id)
	if s.Pages != 3 || len(s.PageList) != 3 {
		t.Errorf("session pages %d %+v, want 3", s.Pages, s.PageList)
	}
	t.Run("privacy", func(t *testing.T) {
		// The typing was recorded, as asterisks.
		if stars := `"text":"` + strings.Repeat("*", len(typedText)) + `"`; !bytes.Contains(body, []byte(stars)) {
			t.Errorf("no masked input event %s", stars)
		}
		srv.Stop(t) // flushes the session's segment to the blob store
		assertNowhere(t, srv, body, typedText, typedPass, maskedText, blockedText)
	})
}

// assertNowhere checks that none of secrets is in the event stream or in any
// file under the server's data dir (zstd frames decompressed).
func assertNowhere(t *testing.T, srv *servertest.Server, stream []byte, secrets ...string) {
	t.Helper()
	store, err := fs.New(filepath.Join(srv.DataDir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	dec := zdict.New(store, zdict.DefaultConfig(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	blobs := map[string][]byte{"events stream": stream}
	var zstdFiles int
	err = filepath.WalkDir(srv.DataDir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		blobs[path] = b
		if bytes.HasPrefix(b, []byte{0x28, 0xb5, 0x2f, 0xfd}) {
			plain, err := dec.DecodeAll(context.Background(), b)
			if err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
			blobs[path+" (decompressed)"] = plain
			zstdFiles++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("checked %d files (%d zstd) and the event stream", len(blobs)-1-zstdFiles, zstdFiles)
	for name, b := range blobs {
		for _, s := range secrets {
			if bytes.Contains(b, []byte(s)) {
				t.Errorf("%q found in %s", s, name)
			}
		}
	}
}

func TestRecorder_ClickThenLeave(t *testing.T) {
	srv := servertest.Start(t)
	st := newSite(t, srv)
	ctx := browsertest.Start(t, browsertest.LoopbackOnly()).NewContext(t)

	do(t, ctx, chromedp.Navigate(st.URL+"/a.html"))
	waitRecorder(t, ctx)
	do(t, ctx, chromedp.Click(chromedp.CSS("#btn")))
	flushOK(t, ctx, "page")
	// Click a link to a page without the recorder: only the pagehide beacon
	// can carry that last click.
	clickAndLoad(t, ctx, "#away")
	eventually(t, 60*time.Second, "both clicks stored", func() (bool, string) {
		list := sessions(t, srv, "")
		if len(list) != 1 {
			return false, fmt.Sprintf("%d sessions", len(list))
		}
		_, evs := rawEvents(t, srv, list[0].ID)
		got := trace(evs)
		return got == "page/a.html snapshot click click", got
	})
}

func TestRecorder_MaskAll(t *testing.T) {
	srv := servertest.Start(t)
	st := newSite(t, srv)
	ctx := browsertest.Start(t, browsertest.LoopbackOnly()).NewContext(t)
	do(t, ctx, chromedp.Navigate(st.URL+"/a.html?mask=all"))
	waitRecorder(t, ctx)
	do(t, ctx, chromedp.Click(chromedp.CSS("#btn")), chromedp.SendKeys(chromedp.CSS("#name"), typedText))
	flushOK(t, ctx, "page")
	var body []byte
	eventually(t, 60*time.Second, "session stored", func() (bool, string) {
		list := sessions(t, srv, "")
		if len(list) != 1 {
			return false, fmt.Sprintf("%d sessions", len(list))
		}
		var evs []event
		body, evs = rawEvents(t, srv, list[0].ID)
		got := trace(evs)
		return strings.HasPrefix(got, "page/a.html snapshot click"), got
	})
	assertNowhere(t, srv, body, headingText, "Click me", "clicked 1", typedText, maskedText, blockedText)
}

func TestRecorder_Consent(t *testing.T) {
	srv := servertest.Start(t)
	st := newSite(t, srv)
	ctx := browsertest.Start(t, browsertest.LoopbackOnly()).NewContext(t)
	con := browsertest.WatchConsole(t, ctx)
	ingests := watchIngest(ctx)
	storage := `JSON.stringify([Object.keys(localStorage), Object.keys(sessionStorage)])`

	do(t, ctx, chromedp.Navigate(st.URL+"/a.html?consent=required"))
	waitRecorder(t, ctx)
	do(t, ctx,
		chromedp.Click(chromedp.CSS("#btn")),
		chromedp.SendKeys(chromedp.CSS("#name"), "before consent"),
		chromedp.Evaluate[chromedp.Void](`trailmap.identify("someone"); trailmap.track("early", {a: 1})`),
	)
	clickAndLoad(t, ctx, "#next") // a pagehide without consent
	flushOK(t, ctx, "page")
	time.Sleep(1500 * time.Millisecond) // past the recorder's first send
	if n := ingests.count(); n != 0 {
		t.Fatalf("%d ingest requests before consent", n)
	}
	if got := eval[string](t, ctx, storage); got != `[[],[]]` {
		t.Fatalf("storage before consent: %s", got)
	}
	if n := len(sessions(t, srv, "")); n != 0 {
		t.Fatalf("%d sessions before consent", n)
	}

	do(t, ctx, chromedp.Evaluate[chromedp.Void](`trailmap.consent(true)`), chromedp.Sleep(200),
		chromedp.Click(chromedp.CSS("#btn")))
	flushOK(t, ctx, "page")
	eventually(t, 60*time.Second, "session after consent", func() (bool, string) {
		list := sessions(t, srv, "")
		if len(list) != 1 {
			return false, fmt.Sprintf("%d sessions", len(list))
		}
		_, evs := rawEvents(t, srv, list[0].ID)
		got := trace(evs)
		return got == "page/b.html snapshot click", got
	})
	if got := eval[string](t, ctx, storage); !strings.Contains(got, "trailmap_vid") {
		t.Fatalf("storage after consent: %s", got)
	}

	// Consent withdrawn: recording stops and the ids are gone.
	do(t, ctx, chromedp.Evaluate[chromedp.Void](`trailmap.consent(false)`))
	if got := eval[string](t, ctx, storage); got != `[["trailmap_consent"],[]]` {
		t.Fatalf("storage after consent(false): %s", got)
	}
	n := ingests.count()
	clickAndLoad(t, ctx, "#next")
	do(t, ctx, chromedp.Click(chromedp.CSS("#btn")))
	time.Sleep(1500 * time.Millisecond)
	if got := ingests.count(); got != n {
		t.Fatalf("%d ingest requests after consent(false)", got-n)
	}
	noPageErrors(t, ctx, con)
}

func TestRecorder_IdentifyAndTrack(t *testing.T) {
	srv := servertest.Start(t)
	st := newSite(t, srv)
	b := browsertest.Start(t, browsertest.LoopbackOnly())
	visitors := map[string]bool{}
	for i, path := range []string{"/a.html?stub=1", "/c.html"} { // two devices
		ctx := b.NewContext(t)
		do(t, ctx, chromedp.Navigate(st.URL+path))
		waitRecorder(t, ctx)
		do(t, ctx, chromedp.Evaluate[chromedp.Void](fmt.Sprintf(
			`trailmap.identify(%q, {plan: "pro", device: %d}); trailmap.track("signup", {plan: "pro", n: %d})`, identifiedAs, i, i)))
		flushOK(t, ctx, "page")
		visitors[eval[string](t, ctx, `localStorage.getItem("trailmap_vid")`)] = true
	}
	if len(visitors) != 2 {
		t.Fatalf("visitor ids %v: want two", visitors)
	}
	var list []sessionInfo
	eventually(t, 60*time.Second, "two sessions of one person", func() (bool, string) {
		list = sessions(t, srv, "&visitor="+identifiedAs)
		return len(list) == 2, fmt.Sprintf("%+v", list)
	})
	for _, s := range list {
		if s.UserID != identifiedAs || !visitors[s.VisitorID] {
			t.Errorf("session %s: user %q visitor %q", s.ID, s.UserID, s.VisitorID)
		}
		var names []string
		eventually(t, 10*time.Second, "custom events", func() (bool, string) {
			d := sessionDetail(t, srv, s.ID)
			names = names[:0]
			for _, c := range d.Custom {
				names = append(names, c.Name+string(c.Props))
			}
			return strings.Contains(strings.Join(names, " "), `signup{"plan":"pro"`), strings.Join(names, " ")
		})
		for _, n := range names {
			if strings.HasPrefix(n, "trailmap/") {
				t.Errorf("internal event %s listed as a custom event", n)
			}
		}
	}
	// The queued call made before the script loaded (device 1) is stored too.
	var early bool
	for _, s := range list {
		for _, c := range sessionDetail(t, srv, s.ID).Custom {
			early = early || c.Name == "early"
		}
	}
	if !early {
		t.Error("track() queued before the script loaded is missing")
	}
}

func TestRecorder_ServerDown(t *testing.T) {
	srv := servertest.Start(t)
	st := newSite(t, srv)
	ctx := browsertest.Start(t, browsertest.LoopbackOnly()).NewContext(t)
	con := browsertest.WatchConsole(t, ctx)

	do(t, ctx, chromedp.Navigate(st.URL+"/a.html"))
	waitRecorder(t, ctx)
	do(t, ctx, chromedp.Click(chromedp.CSS("#btn")))
	flushOK(t, ctx, "page")
	var id string
	eventually(t, 10*time.Second, "first click stored", func() (bool, string) {
		list := sessions(t, srv, "")
		if len(list) != 1 {
			return false, fmt.Sprintf("%d sessions", len(list))
		}
		id = list[0].ID
		_, evs := rawEvents(t, srv, id)
		return trace(evs) == "page/a.html snapshot click", trace(evs)
	})

	srv.Stop(t)
	const down = 10
	for i := 0; i < down; i++ {
		do(t, ctx, chromedp.Click(chromedp.CSS("#btn")), chromedp.Sleep(300*time.Millisecond))
	}
	if eval[bool](t, ctx, `trailmap.flush()`) {
		t.Fatal("flush() resolved true with the server down")
	}
	// A navigation while the server is down: the next page takes over what
	// the first could not send.
	clickAndLoad(t, ctx, "#next")
	do(t, ctx, chromedp.Click(chromedp.CSS("#btn")), chromedp.Sleep(2*time.Second))
	srv.Restart(t)

	// No flush: the recorder's own retries must deliver.
	want := "page/a.html snapshot click" + strings.Repeat(" click", down+1) + " page/b.html snapshot click"
	eventually(t, 45*time.Second, "every click after the restart", func() (bool, string) {
		_, evs := rawEvents(t, srv, id)
		got := trace(evs)
		return got == want, got
	})
	if n := len(sessions(t, srv, "")); n != 1 {
		t.Errorf("%d sessions, want 1", n)
	}
	noPageErrors(t, ctx, con)
}

func TestRecorder_IdleStartsNewSession(t *testing.T) {
	srv := servertest.Start(t)
	st := newSite(t, srv)
	ctx := browsertest.Start(t, browsertest.LoopbackOnly()).NewContext(t)
	con := browsertest.WatchConsole(t, ctx)

	do(t, ctx, chromedp.Navigate(st.URL+"/a.html"))
	waitRecorder(t, ctx)
	do(t, ctx, chromedp.Click(chromedp.CSS("#btn")))
	flushOK(t, ctx, "page")
	// 31 minutes pass without activity (the recorder reads Date.now).
	do(t, ctx, chromedp.Evaluate[chromedp.Void](`(function () {
  var real = Date.now.bind(Date);
  Date.now = function () { return real() + 31 * 60e3 };
})()`), chromedp.Click(chromedp.CSS("#btn")))
	flushOK(t, ctx, "page")
	eventually(t, 60*time.Second, "a second session that starts with a snapshot", func() (bool, string) {
		list := sessions(t, srv, "")
		var traces []string
		for _, s := range list {
			_, evs := rawEvents(t, srv, s.ID)
			traces = append(traces, trace(evs))
		}
		got := strings.Join(traces, " | ")
		return len(list) == 2 && list[0].VisitorID == list[1].VisitorID &&
			got == "page/a.html snapshot click | page/a.html snapshot click", got
	})
	noPageErrors(t, ctx, con)
}

func TestRecorder_SinglePageApp(t *testing.T) {
	srv := servertest.Start(t)
	st := newSite(t, srv)
	ctx := browsertest.Start(t, browsertest.LoopbackOnly()).NewContext(t)
	con := browsertest.WatchConsole(t, ctx)

	do(t, ctx, chromedp.Navigate(st.URL+"/spa.html"))
	waitRecorder(t, ctx)
	do(t, ctx,
		chromedp.Click(chromedp.CSS("#go")), chromedp.Sleep(300*time.Millisecond),
		chromedp.Click(chromedp.CSS("#anchor")), chromedp.Sleep(300*time.Millisecond), // an anchor is no page
		chromedp.Click(chromedp.CSS("#back")), chromedp.Sleep(300*time.Millisecond),
	)
	flushOK(t, ctx, "page")
	const want = "page/spa.html snapshot click page/app/settings click click page/spa.html"
	eventually(t, 60*time.Second, "pushState and popstate recorded as pages", func() (bool, string) {
		list := sessions(t, srv, "")
		if len(list) != 1 {
			return false, fmt.Sprintf("%d sessions", len(list))
		}
		_, evs := rawEvents(t, srv, list[0].ID)
		got := trace(evs)
		return got == want, got
	})
	noPageErrors(t, ctx, con)
}

func TestRecorder_RateLimited(t *testing.T) {
	// A burst of 3 batches, then one every 2 s and 429 with Retry-After:
	// slow enough that a slow machine's clicks cannot keep under it (at 2
	// per second, 15 clicks taking 20 s on a loaded CI machine met no 429).
	srv := servertest.Start(t, "--rate-per-ip", "0.5")
	st := newSite(t, srv)
	ctx := browsertest.Start(t, browsertest.LoopbackOnly()).NewContext(t)
	con := browsertest.WatchConsole(t, ctx)

	do(t, ctx, chromedp.Navigate(st.URL+"/a.html"))
	waitRecorder(t, ctx)
	const clicks = 15
	refused := 0
	for i := 0; i < clicks; i++ {
		do(t, ctx, chromedp.Click(chromedp.CSS("#btn")))
		if !eval[bool](t, ctx, `trailmap.flush()`) {
			refused++
		}
	}
	if refused == 0 {
		t.Fatal("no flush was refused: the rate limit did not apply")
	}
	want := "page/a.html snapshot" + strings.Repeat(" click", clicks)
	eventually(t, time.Minute, "every click despite 429s", func() (bool, string) {
		list := sessions(t, srv, "")
		if len(list) != 1 {
			return false, fmt.Sprintf("%d sessions", len(list))
		}
		_, evs := rawEvents(t, srv, list[0].ID)
		got := trace(evs)
		return got == want, got
	})
	t.Logf("%d of %d flushes met a 429", refused, clicks)
	noPageErrors(t, ctx, con)
}

func TestRecorder_BufferBound(t *testing.T) {
	srv := servertest.Start(t)
	st := newSite(t, srv)
	ctx := browsertest.Start(t, browsertest.LoopbackOnly()).NewContext(t)
	con := browsertest.WatchConsole(t, ctx)

	do(t, ctx, chromedp.Navigate(st.URL+"/flood.html"))
	waitRecorder(t, ctx)
	flushOK(t, ctx, "page")
	srv.Stop(t)
	// About 12 MB of events with the server down: over the 8 MB buffer.
	// (rrweb leaves out nodes added and removed within one mutation batch,
	// so each call adds no more than the box keeps.)
	for i := 0; i < 40; i++ {
		do(t, ctx, chromedp.Evaluate[chromedp.Void](`flood(3)`), chromedp.Sleep(20*time.Millisecond))
	}
	srv.Restart(t)
	eval[bool](t, ctx, `trailmap.flush()`) // retry now rather than after the backoff
	eventually(t, 30*time.Second, "drops reported and a fresh snapshot", func() (bool, string) {
		list := sessions(t, srv, "")
		if len(list) != 1 {
			return false, fmt.Sprintf("%d sessions", len(list))
		}
		_, evs := rawEvents(t, srv, list[0].ID)
		var dropped int
		for _, e := range evs {
			if d := e.data(); d.Tag == "trailmap/dropped" {
				var p struct{ Count int }
				json.Unmarshal(d.Payload, &p)
				dropped += p.Count
			}
		}
		got := trace(evs)
		// rrweb's full snapshot starts with a Meta event, hence the second "page".
		return dropped > 0 && got == "page/flood.html snapshot page/flood.html snapshot",
			fmt.Sprintf("%s; %d dropped", got, dropped)
	})
	noPageErrors(t, ctx, con)
}

func TestRecorder_StorageDenied(t *testing.T) {
	srv := servertest.Start(t)
	st := newSite(t, srv)
	ctx := browsertest.Start(t, browsertest.LoopbackOnly()).NewContext(t)
	con := browsertest.WatchConsole(t, ctx)

	do(t, ctx, chromedp.Navigate(st.URL+"/a.html?nostorage=1"))
	waitRecorder(t, ctx)
	do(t, ctx, chromedp.Click(chromedp.CSS("#btn")))
	flushOK(t, ctx, "page")
	eventually(t, 60*time.Second, "recorded without storage", func() (bool, string) {
		list := sessions(t, srv, "")
		if len(list) != 1 {
			return false, fmt.Sprintf("%d sessions", len(list))
		}
		_, evs := rawEvents(t, srv, list[0].ID)
		got := trace(evs)
		return got == "page/a.html snapshot click", got
	})
	noPageErrors(t, ctx, con)
}

// No blank replays: recording stopped by the page and started again
// (stop(), then consent(true)) goes on with a full snapshot, so the part
// after the restart can be drawn.
func TestRecorder_StopThenRestart(t *testing.T) {
	srv := servertest.Start(t)
	st := newSite(t, srv)
	ctx := browsertest.Start(t, browsertest.LoopbackOnly()).NewContext(t)
	con := browsertest.WatchConsole(t, ctx)

	do(t, ctx, chromedp.Navigate(st.URL+"/a.html"))
	waitRecorder(t, ctx)
	do(t, ctx, chromedp.Click(chromedp.CSS("#btn")),
		chromedp.Evaluate[chromedp.Void](`trailmap.stop()`), chromedp.Sleep(200*time.Millisecond),
		chromedp.Click(chromedp.CSS("#btn")), // not recorded
		chromedp.Evaluate[chromedp.Void](`trailmap.consent(true)`), chromedp.Sleep(300*time.Millisecond),
		chromedp.Click(chromedp.CSS("#btn")))
	flushOK(t, ctx, "after the restart")
	eventually(t, 30*time.Second, "the restart begins with a snapshot", func() (bool, string) {
		list := sessions(t, srv, "")
		var traces []string
		for _, s := range list {
			_, evs := rawEvents(t, srv, s.ID)
			traces = append(traces, trace(evs))
		}
		got := strings.Join(traces, " | ")
		return got == "page/a.html snapshot click page/a.html snapshot click", got
	})
	noPageErrors(t, ctx, con)
}

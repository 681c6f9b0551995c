package recorder_test

// The recording rules as the browser script applies them: real Chromium,
// the real binary, rules set with `trailmap project settings`.

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/trailmap/trailmap/internal/browsertest"
	"github.com/trailmap/trailmap/internal/servertest"
)

func setRules(t *testing.T, srv *servertest.Server, recording string) {
	t.Helper()
	srv.Admin(t, nil, "project", "settings", "test", `{"recording": `+recording+`}`)
}

func TestRecorder_StartTrigger(t *testing.T) {
	srv := servertest.Start(t)
	setRules(t, srv, `{"start_after": {"event": "signup", "buffer_ms": 2000}}`)
	st := newSite(t, srv)
	ctx := browsertest.Start(t, browsertest.LoopbackOnly()).NewContext(t)
	con := browsertest.WatchConsole(t, ctx)
	sent := watchIngest(ctx)

	do(t, ctx, chromedp.Navigate(st.URL+"/a.html"))
	waitRecorder(t, ctx)
	// An early click, then more than two buffers of time: the early click
	// is older than the checkout the buffer starts at.
	do(t, ctx, chromedp.Click(chromedp.CSS("#btn")), chromedp.Sleep(4500*time.Millisecond),
		chromedp.Click(chromedp.CSS("#btn")), chromedp.Sleep(200*time.Millisecond))
	if eval[bool](t, ctx, `trailmap.flush()`) {
		t.Fatal("flush() resolved true before the trigger")
	}
	if n := sent.count(); n != 0 {
		t.Fatalf("%d ingest requests before the trigger", n)
	}
	if list := sessions(t, srv, ""); len(list) != 0 {
		t.Fatalf("%d sessions before the trigger", len(list))
	}
	do(t, ctx, chromedp.Evaluate[chromedp.Void](`trailmap.track('signup', {plan: 'pro'})`))
	flushOK(t, ctx, "after the trigger")
	var evs []event
	eventually(t, 15*time.Second, "the buffer and the trigger stored", func() (bool, string) {
		list := sessions(t, srv, "")
		if len(list) != 1 {
			return false, fmt.Sprintf("%d sessions", len(list))
		}
		_, evs = rawEvents(t, srv, list[0].ID)
		return len(evs) > 0 && evs[len(evs)-1].Type == 5, trace(evs)
	})
	if d := evs[0].data(); evs[0].Type != 5 || d.Tag != "trailmap/trigger" || !strings.Contains(string(d.Payload), "signup") {
		t.Fatalf("first event %+v, want the trigger marker", evs[0])
	}
	if evs[1].Type != 4 || evs[2].Type != 2 {
		t.Fatalf("the buffer does not start at a full snapshot: %s", trace(evs))
	}
	var signup float64
	clickN := 0
	for _, e := range evs {
		if e.Type == 5 && e.data().Tag == "signup" {
			signup = e.Timestamp
		}
		if e.isClick() {
			clickN++
		}
	}
	if signup == 0 || clickN != 1 {
		t.Fatalf("signup at %v, %d clicks (want the late one only): %s", signup, clickN, trace(evs))
	}
	if span := signup - evs[2].Timestamp; span < 2000 || span > 4500 {
		t.Fatalf("the buffer spans %v ms before the trigger, want 2000–4000", span)
	}
	// Later events go out as usual.
	do(t, ctx, chromedp.Click(chromedp.CSS("#btn")))
	flushOK(t, ctx, "after the trigger")
	noPageErrors(t, ctx, con)
}

func TestRecorder_DeniedURLs(t *testing.T) {
	srv := servertest.Start(t)
	setRules(t, srv, `{"deny_urls": ["/app/settings", "/c.html"]}`)
	st := newSite(t, srv)
	ctx := browsertest.Start(t, browsertest.LoopbackOnly()).NewContext(t)
	con := browsertest.WatchConsole(t, ctx)
	sent := watchIngest(ctx)

	// A denied page loaded directly sends nothing.
	do(t, ctx, chromedp.Navigate(st.URL+"/c.html"))
	waitRecorder(t, ctx)
	do(t, ctx, chromedp.Click(chromedp.CSS("#btn")))
	flushOK(t, ctx, "denied page")
	if n := sent.count(); n != 0 {
		t.Fatalf("%d ingest requests from a denied page", n)
	}

	// A single-page app pauses on a denied route and starts afresh after it.
	do(t, ctx, chromedp.Navigate(st.URL+"/spa.html"))
	waitRecorder(t, ctx)
	do(t, ctx,
		chromedp.Click(chromedp.CSS("#go")), chromedp.Sleep(300*time.Millisecond), // → /app/settings, denied
		chromedp.Click(chromedp.CSS("#anchor")), chromedp.Sleep(300*time.Millisecond),
		chromedp.Click(chromedp.CSS("#back")), chromedp.Sleep(500*time.Millisecond), // ← /spa.html
	)
	flushOK(t, ctx, "spa")
	const want = "page/spa.html snapshot click page/spa.html snapshot"
	var raw []byte
	eventually(t, 15*time.Second, "the denied route left out", func() (bool, string) {
		list := sessions(t, srv, "")
		if len(list) != 1 {
			return false, fmt.Sprintf("%d sessions", len(list))
		}
		var evs []event
		raw, evs = rawEvents(t, srv, list[0].ID)
		got := trace(evs)
		return got == want, got
	})
	for _, s := range []string{`"href":"` + st.URL + `/app/settings`, "c.html"} {
		if strings.Contains(string(raw), s) {
			t.Errorf("the stored events mention %s", s)
		}
	}
	noPageErrors(t, ctx, con)
}

func TestRecorder_RequireInteraction(t *testing.T) {
	srv := servertest.Start(t)
	setRules(t, srv, `{"require_interaction": true, "min_duration_ms": 1000}`)
	st := newSite(t, srv)
	ctx := browsertest.Start(t, browsertest.LoopbackOnly()).NewContext(t)
	con := browsertest.WatchConsole(t, ctx)
	sent := watchIngest(ctx)

	do(t, ctx, chromedp.Navigate(st.URL+"/a.html"))
	waitRecorder(t, ctx)
	do(t, ctx, chromedp.Sleep(1500*time.Millisecond))
	if eval[bool](t, ctx, `trailmap.flush()`) || sent.count() != 0 {
		t.Fatalf("a session without interaction was sent (%d requests)", sent.count())
	}
	// A page view without interaction is kept for the next page of the visit.
	do(t, ctx, chromedp.Navigate(st.URL+"/b.html")) // a click on a link would be an interaction
	waitRecorder(t, ctx)
	do(t, ctx, chromedp.Sleep(300*time.Millisecond))
	if sent.count() != 0 {
		t.Fatalf("%d requests before any interaction", sent.count())
	}
	do(t, ctx, chromedp.Click(chromedp.CSS("#btn")))
	flushOK(t, ctx, "after a click")
	eventually(t, 15*time.Second, "both pages stored once qualified", func() (bool, string) {
		list := sessions(t, srv, "")
		if len(list) != 1 {
			return false, fmt.Sprintf("%d sessions", len(list))
		}
		_, evs := rawEvents(t, srv, list[0].ID)
		got := trace(evs)
		return got == "page/a.html snapshot page/b.html snapshot click", got
	})
	noPageErrors(t, ctx, con)
}

func TestRecorder_Sampling(t *testing.T) {
	srv := servertest.Start(t)
	setRules(t, srv, `{"sample_rate": 0.5}`)
	st := newSite(t, srv)
	b := browsertest.Start(t, browsertest.LoopbackOnly())
	in, out := 0, 0
	for i := 0; i < 6 && (in == 0 || out == 0); i++ {
		ctx := b.NewContext(t)
		sent := watchIngest(ctx)
		do(t, ctx, chromedp.Navigate(st.URL+"/a.html"))
		waitRecorder(t, ctx)
		do(t, ctx, chromedp.Click(chromedp.CSS("#btn")))
		eval[bool](t, ctx, `trailmap.flush()`)
		sid := eval[string](t, ctx, `JSON.parse(sessionStorage.getItem('trailmap')).sid`)
		h := fnv.New32a()
		h.Write([]byte(sid))
		if float64(h.Sum32()) < 0.5*(1<<32) {
			in++
			eventually(t, 15*time.Second, "a sampled session stored", func() (bool, string) {
				s := sessions(t, srv, "&visitor=")
				for _, x := range s {
					if x.ID == sid {
						return true, ""
					}
				}
				return false, fmt.Sprintf("%d sessions", len(s))
			})
		} else {
			out++
			if n := sent.count(); n != 0 {
				t.Fatalf("session %s is outside the sample and sent %d batches", sid, n)
			}
		}
	}
	t.Logf("%d sessions in the sample, %d out", in, out)
}

// TestRecorder_PeriodicCheckouts: the script takes a full snapshot every
// checkout_every_ms of a page that keeps changing; each is a replay point
// (the events API seeks to the latest one before from_ms), not a page
// view, and keeps an idle visit no more alive than the page's own
// mutations do.
func TestRecorder_PeriodicCheckouts(t *testing.T) {
	srv := servertest.Start(t)
	setRules(t, srv, `{"checkout_every_ms": 5000}`)
	st := newSite(t, srv)
	ctx := browsertest.Start(t, browsertest.LoopbackOnly()).NewContext(t)
	con := browsertest.WatchConsole(t, ctx)
	sent := watchIngest(ctx)

	do(t, ctx, chromedp.Navigate(st.URL+"/a.html"))
	waitRecorder(t, ctx)
	// A ticking page (a clock, a carousel): mutations and nothing else.
	do(t, ctx, chromedp.Evaluate[chromedp.Void](`setInterval(function () { document.body.dataset.tick = Date.now() }, 250)`),
		chromedp.Sleep(11500*time.Millisecond))
	flushOK(t, ctx, "after two checkouts")
	var id string
	var evs []event
	eventually(t, 15*time.Second, "three full snapshots stored", func() (bool, string) {
		list := sessions(t, srv, "")
		if len(list) != 1 {
			return false, fmt.Sprintf("%d sessions", len(list))
		}
		id = list[0].ID
		_, evs = rawEvents(t, srv, id)
		got := trace(evs)
		var types []string
		for _, e := range evs {
			types = append(types, fmt.Sprintf("%d/%d@%.0f", e.Type, e.data().Source, e.Timestamp))
		}
		return got == "page/a.html snapshot page/a.html snapshot page/a.html snapshot", got + " " + strings.Join(types, ",")
	})
	var snaps []float64
	for i, e := range evs {
		if e.Type != 2 {
			continue
		}
		snaps = append(snaps, e.Timestamp)
		if len(snaps) > 1 {
			// rrweb writes Meta then the snapshot; the script puts its
			// marker before them.
			if i < 2 || evs[i-2].Type != 5 || evs[i-2].data().Tag != "trailmap/checkout" {
				t.Errorf("checkout %d lacks its trailmap/checkout marker: %s", len(snaps), string(evs[i-2].Data))
			}
		}
	}
	if gap := snaps[1] - snaps[0]; gap < 5000 || gap > 7000 {
		t.Errorf("first checkout %v ms after the page's snapshot, want 5–7 s", gap)
	}
	// Every batch names its session in the URL, for load balancers.
	sent.mu.Lock()
	for _, u := range sent.urls {
		if !strings.Contains(u, "session="+id) {
			t.Errorf("ingest URL %s lacks session=%s", u, id)
		}
	}
	sent.mu.Unlock()
	if s := sessionDetail(t, srv, id); s.Pages != 1 {
		t.Errorf("page_count %d, want 1: checkouts are no page views", s.Pages)
	}
	// Seeking past the second checkout starts there, not at the page load.
	start := evs[0].Timestamp
	for _, e := range evs {
		start = min(start, e.Timestamp)
	}
	resp := srv.Request(t, "GET", fmt.Sprintf("/api/v1/sessions/%s/events?from_ms=%d", id, int64(snaps[2]-start)+100), nil)
	defer resp.Body.Close()
	var seek []event
	if err := json.NewDecoder(resp.Body).Decode(&seek); err != nil {
		t.Fatal(err)
	}
	if len(seek) < 2 || seek[0].Type != 4 || seek[1].Type != 2 || seek[1].Timestamp != snaps[2] {
		t.Errorf("a seek past the last checkout starts with %s, want that checkout", trace(seek))
	}
	noPageErrors(t, ctx, con)
}

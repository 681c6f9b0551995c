package recorder_test

// Browser tests of pages that share a session's storage: a tab duplicated by
// the browser gets a copy of the original's sessionStorage and must not
// continue the original's session (see recorder.js, "Duplicated tabs"); a
// page restored from the back-forward cache must continue it.

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/trailmap/trailmap/internal/browsertest"
	"github.com/trailmap/trailmap/internal/servertest"
)

// sentBatch is one ingest request as a tab sent it.
type sentBatch struct {
	Session string `json:"session_id"`
	Visitor string `json:"visitor_id"`
	Seq     int    `json:"seq"`
	Events  []event
}

func (b sentBatch) String() string {
	return fmt.Sprintf("%s:%d(%d events)", b.Session, b.Seq, len(b.Events))
}

// batchWatch keeps the bodies of the ingest requests (fetch and beacon) of
// one tab.
type batchWatch struct {
	mu     sync.Mutex
	bodies [][]byte
	empty  int // requests whose body the browser did not report
}

func watchBatches(ctx context.Context) *batchWatch {
	w := &batchWatch{}
	reqs := chromedp.Events(ctx, network.RequestWillBeSent)
	go func() {
		for ev, err := range reqs {
			if err != nil {
				return
			}
			r := ev.Request
			if r.Method != http.MethodPost || !strings.Contains(r.URL, "/api/v1/ingest") {
				continue
			}
			var body []byte
			for _, e := range r.PostDataEntries {
				body = append(body, e.Bytes...)
			}
			w.mu.Lock()
			if len(body) == 0 {
				w.empty++
			} else {
				w.bodies = append(w.bodies, body)
			}
			w.mu.Unlock()
		}
	}()
	return w
}

// batches decodes every body seen so far (gzip or plain JSON).
func (w *batchWatch) batches(t *testing.T) []sentBatch {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.empty > 0 {
		t.Fatalf("%d ingest requests without a body in the DevTools event", w.empty)
	}
	var out []sentBatch
	for _, body := range w.bodies {
		if bytes.HasPrefix(body, []byte{0x1f, 0x8b}) {
			zr, err := gzip.NewReader(bytes.NewReader(body))
			if err != nil {
				t.Fatalf("gzip batch: %v", err)
			}
			if body, err = io.ReadAll(zr); err != nil {
				t.Fatalf("gzip batch: %v", err)
			}
		}
		var b sentBatch
		if err := json.Unmarshal(body, &b); err != nil {
			t.Fatalf("batch %.200s: %v", body, err)
		}
		out = append(out, b)
	}
	return out
}

// sessionsOf returns the distinct session ids of batches, in order of
// first use, and the seqs sent for each.
func sessionsOf(batches []sentBatch) ([]string, map[string][]int) {
	var ids []string
	seqs := map[string][]int{}
	for _, b := range batches {
		if _, ok := seqs[b.Session]; !ok {
			ids = append(ids, b.Session)
		}
		seqs[b.Session] = append(seqs[b.Session], b.Seq)
	}
	return ids, seqs
}

// storageEntries is a tab's sessionStorage.
func storageEntries(t *testing.T, ctx context.Context) map[string]string {
	t.Helper()
	return eval[map[string]string](t, ctx, `Object.fromEntries(Object.entries(sessionStorage))`)
}

func batchKeys(storage map[string]string) []string {
	var keys []string
	for k := range storage {
		if strings.HasPrefix(k, "trailmap_b:") {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return keys
}

// duplicateTab opens a tab in the browser context of ctx whose documents
// start with storage in their sessionStorage, as the browser's "Duplicate
// tab" makes it: the copy is there before any script of the page runs.
func duplicateTab(t *testing.T, ctx context.Context, storage map[string]string) context.Context {
	t.Helper()
	tab, cancel := chromedp.NewContext(ctx) // a new tab, same browser context
	t.Cleanup(cancel)
	entries, err := json.Marshal(storage)
	if err != nil {
		t.Fatal(err)
	}
	src := fmt.Sprintf(`(function (entries) {
  if (sessionStorage.getItem('test_duplicated')) return;
  sessionStorage.setItem('test_duplicated', '1');
  for (var k in entries) sessionStorage.setItem(k, entries[k]);
})(%s)`, entries)
	if _, err := chromedp.Call(tab, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: src}); err != nil {
		t.Fatalf("duplicate tab: %v", err)
	}
	return tab
}

func flushOK(t *testing.T, ctx context.Context, who string) {
	t.Helper()
	if !eval[bool](t, ctx, `trailmap.flush()`) {
		t.Fatalf("%s: flush() resolved false", who)
	}
}

func clicks(t *testing.T, ctx context.Context, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		do(t, ctx, chromedp.Click(chromedp.CSS("#btn")), chromedp.Sleep(100*time.Millisecond))
	}
}

func TestRecorder_DuplicateTab(t *testing.T) {
	srv := servertest.Start(t)
	st := newSite(t, srv)
	tabA := browsertest.Start(t, browsertest.LoopbackOnly()).NewContext(t)
	conA := browsertest.WatchConsole(t, tabA)
	sentA := watchBatches(tabA)

	// Tab A records a page and sends a batch.
	do(t, tabA, chromedp.Navigate(st.URL+"/a.html"))
	waitRecorder(t, tabA)
	clicks(t, tabA, 1)
	flushOK(t, tabA, "A")
	var sidA string
	eventually(t, 60*time.Second, "tab A's session", func() (bool, string) {
		list := sessions(t, srv, "")
		if len(list) != 1 {
			return false, fmt.Sprintf("%d sessions", len(list))
		}
		sidA = list[0].ID
		_, evs := rawEvents(t, srv, sidA)
		return trace(evs) == "page/a.html snapshot click", trace(evs)
	})

	// A click that cannot be sent yet: A keeps its batch in sessionStorage,
	// and the duplicate gets a copy of it.
	srv.Stop(t)
	clicks(t, tabA, 1)
	if eval[bool](t, tabA, `trailmap.flush()`) {
		t.Fatal("A: flush() resolved true with the server down")
	}
	storage := storageEntries(t, tabA)
	if keys := batchKeys(storage); len(keys) == 0 || !strings.HasPrefix(keys[0], "trailmap_b:"+sidA+":") {
		t.Fatalf("A's sessionStorage holds no unsent batch of %s: %v", sidA, keys)
	}
	srv.Restart(t)

	// Tab B: "Duplicate tab" of A, same URL, same storage.
	tabB := duplicateTab(t, tabA, storage)
	conB := browsertest.WatchConsole(t, tabB)
	sentB := watchBatches(tabB)
	do(t, tabB, chromedp.Navigate(st.URL+"/a.html"))
	waitRecorder(t, tabB)

	// Both tabs are used, in turns.
	const clicksA, clicksB = 2, 3
	for i := 0; i < clicksB; i++ {
		clicks(t, tabB, 1)
		if i < clicksA {
			clicks(t, tabA, 1)
		}
	}
	flushOK(t, tabB, "B")
	flushOK(t, tabA, "A")

	wantA := "page/a.html snapshot click click" + strings.Repeat(" click", clicksA)
	wantB := "page/a.html snapshot" + strings.Repeat(" click", clicksB)
	var sidB string
	eventually(t, 60*time.Second, "two sessions of one visitor, each with its own snapshot and clicks", func() (bool, string) {
		list := sessions(t, srv, "")
		if len(list) != 2 {
			return false, fmt.Sprintf("%d sessions", len(list))
		}
		traces := map[string]string{}
		for _, s := range list {
			_, evs := rawEvents(t, srv, s.ID)
			traces[s.ID] = trace(evs)
			if s.ID != sidA {
				sidB = s.ID
			}
		}
		state := fmt.Sprintf("A %q, B %q", traces[sidA], traces[sidB])
		return list[0].VisitorID == list[1].VisitorID && traces[sidA] == wantA && traces[sidB] == wantB, state
	})

	// What each tab sent: B never sent under A's session (neither its own
	// events nor A's copied batch), and numbered its own batches from 0.
	idsB, seqsB := sessionsOf(sentB.batches(t))
	if len(idsB) != 1 || idsB[0] != sidB || seqsB[sidB][0] != 0 {
		t.Errorf("B sent batches of %v (seqs %v), want only %s from seq 0", idsB, seqsB, sidB)
	}
	if idsA, seqsA := sessionsOf(sentA.batches(t)); len(idsA) != 1 || idsA[0] != sidA {
		t.Errorf("A sent batches of %v (seqs %v), want only %s", idsA, seqsA, sidA)
	}
	if keys := batchKeys(storageEntries(t, tabB)); len(keys) != 0 {
		t.Errorf("B still holds copied batches %v", keys)
	}
	var sessB struct {
		Sid string `json:"sid"`
	}
	json.Unmarshal([]byte(storageEntries(t, tabB)["trailmap"]), &sessB)
	if sessB.Sid != sidB {
		t.Errorf("B's sessionStorage holds session %q, want %q", sessB.Sid, sidB)
	}

	// A plain navigation continues each tab's own session.
	clickAndLoad(t, tabA, "#next")
	clicks(t, tabA, 1)
	flushOK(t, tabA, "A on page b")
	clickAndLoad(t, tabB, "#next")
	clicks(t, tabB, 1)
	flushOK(t, tabB, "B on page b")
	wantA += " click page/b.html snapshot click" // the click on the link, then page b
	wantB += " click page/b.html snapshot click"
	eventually(t, 60*time.Second, "each tab's next page in its own session", func() (bool, string) {
		list := sessions(t, srv, "")
		var got []string
		for _, id := range []string{sidA, sidB} {
			_, evs := rawEvents(t, srv, id)
			got = append(got, trace(evs))
		}
		return len(list) == 2 && got[0] == wantA && got[1] == wantB, fmt.Sprintf("%d sessions; A %q, B %q", len(list), got[0], got[1])
	})
	noPageErrors(t, tabA, conA)
	noPageErrors(t, tabB, conB)
}

// Without BroadcastChannel the recorder asks nobody: a visit's pages stay
// one session, as before.
func TestRecorder_NoBroadcastChannel(t *testing.T) {
	srv := servertest.Start(t)
	st := newSite(t, srv)
	ctx := browsertest.Start(t, browsertest.LoopbackOnly()).NewContext(t)
	con := browsertest.WatchConsole(t, ctx)
	if _, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{
		Source: `delete window.BroadcastChannel`,
	}); err != nil {
		t.Fatal(err)
	}

	do(t, ctx, chromedp.Navigate(st.URL+"/a.html"))
	waitRecorder(t, ctx)
	if eval[bool](t, ctx, `'BroadcastChannel' in window`) {
		t.Fatal("BroadcastChannel is still there")
	}
	clicks(t, ctx, 1)
	clickAndLoad(t, ctx, "#next")
	clicks(t, ctx, 1)
	flushOK(t, ctx, "page b")
	eventually(t, 60*time.Second, "one session of two pages", func() (bool, string) {
		list := sessions(t, srv, "")
		if len(list) != 1 {
			return false, fmt.Sprintf("%d sessions", len(list))
		}
		_, evs := rawEvents(t, srv, list[0].ID)
		got := trace(evs)
		return got == "page/a.html snapshot click click page/b.html snapshot click", got
	})
	noPageErrors(t, ctx, con)
}

// A page restored from the back-forward cache (Back) continues the session
// after the page that came in between: a page view with a fresh snapshot,
// and seqs after that page's, so that none of its batches is taken for a
// repeat. The recorder's BroadcastChannel must not keep it out of that cache.
func TestRecorder_BackForwardCache(t *testing.T) {
	srv := servertest.Start(t)
	st := newSite(t, srv)
	ctx := browsertest.Start(t, browsertest.LoopbackOnly()).NewContext(t)
	con := browsertest.WatchConsole(t, ctx)
	var mu sync.Mutex
	var notCached []string
	reasons := chromedp.Events(ctx, page.BackForwardCacheNotUsed)
	go func() {
		for ev, err := range reasons {
			if err != nil {
				return
			}
			mu.Lock()
			for _, r := range ev.NotRestoredExplanations {
				notCached = append(notCached, string(r.Reason))
			}
			mu.Unlock()
		}
	}()

	do(t, ctx, chromedp.Navigate(st.URL+"/a.html"))
	waitRecorder(t, ctx)
	do(t, ctx, chromedp.Evaluate[chromedp.Void](`window.fromCache = 'still here'`))
	clicks(t, ctx, 1)
	clickAndLoad(t, ctx, "#next")
	clicks(t, ctx, 2)
	flushOK(t, ctx, "page b")

	do(t, ctx, chromedp.Evaluate[chromedp.Void](`history.back()`))
	deadline := time.Now().Add(15 * time.Second)
	for {
		where, err := chromedp.Run(ctx, chromedp.Evaluate[string](`location.pathname + ' ' + document.readyState`))
		if err == nil && where == "/a.html complete" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("back to page a: %q %v", where, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if got := eval[string](t, ctx, `String(window.fromCache)`); got != "still here" {
		mu.Lock()
		t.Fatalf("page a was not restored from the back-forward cache (reasons %v)", notCached)
	}
	// chromedp's DOM queries do not follow a restore from the cache: click
	// by coordinates, with real input events all the same.
	box := eval[[]float64](t, ctx, `(function (r) { return [r.left + r.width / 2, r.top + r.height / 2] })(document.getElementById('btn').getBoundingClientRect())`)
	for i := 0; i < 2; i++ {
		do(t, ctx, chromedp.MouseClickXY(box[0], box[1]), chromedp.Sleep(100*time.Millisecond))
	}
	flushOK(t, ctx, "page a, restored")

	const want = "page/a.html snapshot click click page/b.html snapshot click click page/a.html snapshot click click"
	eventually(t, 60*time.Second, "one session with every page view and click", func() (bool, string) {
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

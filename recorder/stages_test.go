package recorder_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trailmap/trailmap/accounts"
	"github.com/trailmap/trailmap/heatmap"
	"github.com/trailmap/trailmap/internal/rrweb"
	"github.com/trailmap/trailmap/journey"
	"github.com/trailmap/trailmap/recorder"
	"github.com/trailmap/trailmap/storage/fs"
	"github.com/trailmap/trailmap/storage/index"
	"github.com/trailmap/trailmap/storage/index/indextest"
	"github.com/trailmap/trailmap/storage/sqldb"
)

// noteObserver records what it is told: per session row, the timestamp of
// each observed batch's first event, and whether the session was closed
// (and the batches observed after that, which must not happen).
type noteObserver struct {
	mu     sync.Mutex
	fail   bool
	seen   map[int64][]int64
	closed map[int64]bool
	late   []string
}

func newNoteObserver() *noteObserver {
	return &noteObserver{seen: map[int64][]int64{}, closed: map[int64]bool{}}
}

func (o *noteObserver) ObserveBatch(_ context.Context, _ *sqldb.Tx, sid int64, events []rrweb.Event) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.fail {
		return errors.New("observer down")
	}
	var ev struct{ Timestamp int64 }
	if err := json.Unmarshal(events[0].Raw, &ev); err != nil {
		return err
	}
	if ev.Timestamp != events[0].Timestamp {
		return fmt.Errorf("envelope timestamp %d, event says %d", events[0].Timestamp, ev.Timestamp)
	}
	if o.closed[sid] {
		o.late = append(o.late, fmt.Sprintf("session %d ts %d", sid, ev.Timestamp))
	}
	o.seen[sid] = append(o.seen[sid], ev.Timestamp)
	return nil
}

func (o *noteObserver) SessionClosed(_ context.Context, _ *sqldb.Tx, sid int64) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.closed[sid] = true
	return nil
}

// observerStack is a recorder with an observer on a data dir and index that
// outlive it, so a second recorder can replay what the first left.
type observerStack struct {
	db  *index.DB
	dir string
	key string
	id  int64
}

func newObserverStack(t testing.TB) *observerStack {
	return newObserverStackOn(t, indextest.New(t, heatmap.Schema, accounts.Schema, journey.Schema))
}

func newObserverStackOn(t testing.TB, db *index.DB) *observerStack {
	p, err := db.CreateProject(context.Background(), "test", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return &observerStack{db: db, dir: t.TempDir(), key: p.WriteKey, id: p.ID}
}

func (s *observerStack) start(t testing.TB, o recorder.Observer, mod func(*recorder.Config)) *recorder.Recorder {
	t.Helper()
	blobs, err := fs.New(filepath.Join(s.dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := recorder.DefaultConfig(s.dir)
	cfg.RatePerIP, cfg.RatePerKey = 0, 0
	cfg.SweepEvery = 20 * time.Millisecond
	if mod != nil {
		mod(&cfg)
	}
	rec, err := recorder.New(context.Background(), cfg, s.db, blobs, nil, slog.New(slog.NewTextHandler(io.Discard, nil)), o)
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

func (s *observerStack) ingest(t testing.TB, rec *recorder.Recorder, session string, seq int) {
	t.Helper()
	body := fmt.Sprintf(`{"session_id":%q,"visitor_id":"visitor_stages","seq":%d,"events":[{"type":3,"timestamp":%d,"data":{"source":2,"type":2,"id":1,"x":1,"y":2}}]}`, session, seq, 1000+seq)
	if _, err := rec.Ingest(context.Background(), recorder.Request{Key: s.key, Body: strings.NewReader(body)}); err != nil {
		t.Errorf("%s seq %d: %v", session, seq, err)
	}
}

func (s *observerStack) unobserved(t testing.TB) int {
	t.Helper()
	var n int
	if err := s.db.SQL().Read().QueryRow(`SELECT COUNT(*) FROM batches WHERE observed = 0`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// wantSeen checks that every session row saw exactly the batches 0..n-1, in
// order.
func wantSeen(t *testing.T, o *noteObserver, sessions, n int) {
	t.Helper()
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.seen) != sessions {
		t.Fatalf("observed %d sessions, want %d", len(o.seen), sessions)
	}
	for sid, ts := range o.seen {
		want := make([]int64, n)
		for i := range want {
			want[i] = int64(1000 + i)
		}
		if fmt.Sprint(ts) != fmt.Sprint(want) {
			t.Errorf("session %d observed %v, want %v", sid, ts, want)
		}
	}
}

// TestRecorder_observersInOrderBeforeClose: stage 2 sees every batch once,
// in acceptance order, and a session's end only after its batches.
func TestRecorder_observersInOrderBeforeClose(t *testing.T) {
	s := newObserverStack(t)
	o := newNoteObserver()
	rec := s.start(t, o, func(c *recorder.Config) { c.SessionIdle = time.Second })
	const sessions, batches = 3, 20
	var wg sync.WaitGroup
	for i := range sessions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for seq := range batches {
				s.ingest(t, rec, fmt.Sprintf("stages_%d", i), seq)
			}
		}()
	}
	wg.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for {
		o.mu.Lock()
		n := len(o.closed)
		o.mu.Unlock()
		if n == sessions {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d sessions closed", n, sessions)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := rec.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	wantSeen(t, o, sessions, batches)
	if len(o.late) > 0 {
		t.Errorf("observed after the session closed: %v", o.late)
	}
	if n := s.unobserved(t); n != 0 {
		t.Errorf("%d batches not marked observed", n)
	}
}

// TestRecorder_observersReplayed: batches whose observers never ran (here
// the observer fails until shutdown, as after a crash between the stages)
// stay in the log and are observed, once, at the next start.
func TestRecorder_observersReplayed(t *testing.T) {
	s := newObserverStack(t)
	down := newNoteObserver()
	down.fail = true
	rec := s.start(t, down, nil)
	const sessions, batches = 2, 5
	for i := range sessions {
		for seq := range batches {
			s.ingest(t, rec, fmt.Sprintf("replay_%d", i), seq)
		}
	}
	if err := rec.CaughtUp(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := s.unobserved(t); n != sessions*batches {
		t.Fatalf("%d batches not observed, want %d", n, sessions*batches)
	}
	if err := rec.Close(context.Background()); err == nil {
		t.Error("close stored segments of batches never observed")
	}
	var segs int
	if err := s.db.SQL().Read().QueryRow(`SELECT COUNT(*) FROM segments`).Scan(&segs); err != nil {
		t.Fatal(err)
	}
	if segs != 0 {
		t.Errorf("%d segments stored before their batches were observed", segs)
	}

	up := newNoteObserver()
	rec = s.start(t, up, nil)
	if n := s.unobserved(t); n != 0 {
		t.Errorf("%d batches not observed after replay", n)
	}
	wantSeen(t, up, sessions, batches)
	if err := rec.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	// A third start replays nothing more into the observers.
	again := newNoteObserver()
	rec = s.start(t, again, nil)
	if err := rec.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(again.seen) != 0 {
		t.Errorf("observed again after replay: %v", again.seen)
	}
	if err := s.db.SQL().Read().QueryRow(`SELECT COUNT(*) FROM segments WHERE state = 'done'`).Scan(&segs); err != nil {
		t.Fatal(err)
	}
	if segs != sessions {
		t.Errorf("%d segments, want %d", segs, sessions)
	}
}

// gateObserver fails (so stage 2 rolls back and retries, leaving the index
// writer to stage 1) until open is closed, then passes everything on to
// next.
type gateObserver struct {
	open chan struct{}
	next recorder.Observer
}

func (g *gateObserver) ObserveBatch(ctx context.Context, tx *sqldb.Tx, sid int64, events []rrweb.Event) error {
	select {
	case <-g.open:
		return g.next.ObserveBatch(ctx, tx, sid, events)
	default:
		return errors.New("gate closed")
	}
}

func (g *gateObserver) SessionClosed(ctx context.Context, tx *sqldb.Tx, sid int64) error {
	return g.next.SessionClosed(ctx, tx, sid)
}

// TestRecorder_heatmapBehindStage1: under load stage 1 runs ahead of stage
// 2. The heatmap observer must still follow the session batch by batch (its
// DOM mirror from the first batch names the targets of later clicks), not
// take the session's indexed batch count for a lost state and resume
// without a mirror.
func TestRecorder_heatmapBehindStage1(t *testing.T) {
	s := newObserverStack(t)
	hm, err := heatmap.New(context.Background(), heatmap.DefaultConfig(), s.db.SQL(), s.db, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer hm.Close()
	g := &gateObserver{open: make(chan struct{}), next: hm}
	rec := s.start(t, g, nil)
	const t0 = 1_764_000_000_000
	post := func(seq int, events string) {
		t.Helper()
		body := fmt.Sprintf(`{"session_id":"behind_stage1","visitor_id":"visitor_behind","seq":%d,"events":[%s]}`, seq, events)
		if _, err := rec.Ingest(context.Background(), recorder.Request{Key: s.key, Body: strings.NewReader(body)}); err != nil {
			t.Fatalf("seq %d: %v", seq, err)
		}
	}
	click := func(ts int64) string {
		return fmt.Sprintf(`{"type":3,"timestamp":%d,"data":{"source":2,"type":2,"id":4,"x":10,"y":10}}`, ts)
	}
	post(0, fmt.Sprintf(`{"type":4,"timestamp":%d,"data":{"href":"https://shop.test/","width":1280,"height":800}},`+
		`{"type":2,"timestamp":%d,"data":{"node":{"type":0,"id":1,"childNodes":[{"type":2,"id":2,"tagName":"html","attributes":{},"childNodes":[`+
		`{"type":2,"id":3,"tagName":"body","attributes":{},"childNodes":[{"type":2,"id":4,"tagName":"button","attributes":{"id":"buy"},"childNodes":[]}]}]}]},`+
		`"initialOffset":{"top":0,"left":0}}},%s`, t0, t0+1, click(t0+1000)))
	post(1, click(t0+6000))
	post(2, click(t0+11000)+","+fmt.Sprintf(`{"type":3,"timestamp":%d,"data":{"source":1,"positions":[]}}`, t0+20000))
	close(g.open) // stage 1 has all three batches; stage 2 starts on the first
	if err := rec.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	var total, named int
	if err := s.db.SQL().Read().QueryRow(`SELECT COUNT(*), COUNT(selector_id) FROM heat_clicks`).Scan(&total, &named); err != nil {
		t.Fatal(err)
	}
	if total != 3 || named != 3 {
		t.Errorf("clicks %d, with a selector %d; want 3 and 3", total, named)
	}
}

// TestRecorder_observersWaitForTheBatchBefore: a client that sends a
// session's batches out of order (several at once, or one retried late)
// still has them observed in seq order; a batch that never comes (given
// up on) holds the next one back only a few seconds, and one the recording
// rules kept out not at all.
func TestRecorder_observersWaitForTheBatchBefore(t *testing.T) {
	s := newObserverStack(t)
	if err := s.db.SetProjectSettings(context.Background(), s.id, json.RawMessage(`{"recording": {"deny_urls": ["/denied"]}}`)); err != nil {
		t.Fatal(err)
	}
	o := newNoteObserver()
	rec := s.start(t, o, nil)
	for _, seq := range []int{3, 1, 2, 0} {
		s.ingest(t, rec, "held_back", seq)
		time.Sleep(30 * time.Millisecond) // each is indexed and reaches stage 2 alone
	}
	// A gap: seq 1 never comes. And seq 1 of another session all on a
	// denied page: kept out.
	began := time.Now()
	for _, seq := range []int{2, 0} {
		s.ingest(t, rec, "gap_in_seqs", seq)
	}
	for seq, page := range []string{"/a", "/denied", "/b"} {
		body := fmt.Sprintf(`{"session_id":"kept_out","visitor_id":"visitor_stages","seq":%d,"events":[`+
			`{"type":4,"timestamp":%d,"data":{"href":"https://shop.example%s","width":800,"height":600}},`+
			`{"type":3,"timestamp":%[2]d,"data":{"source":2,"type":2,"id":1,"x":1,"y":2}}]}`, seq, 1000+seq, page)
		if _, err := rec.Ingest(context.Background(), recorder.Request{Key: s.key, Body: strings.NewReader(body)}); err != nil {
			t.Fatalf("kept_out seq %d: %v", seq, err)
		}
	}
	// waitObserved waits for the observer to have seen n batches (and the
	// index to have none unobserved, with all).
	waitObserved := func(n int, all bool) time.Duration {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for (all && s.unobserved(t) > 0) || func() bool {
			o.mu.Lock()
			defer o.mu.Unlock()
			got := 0
			for _, ts := range o.seen {
				got += len(ts)
			}
			return got < n
		}() {
			if time.Now().After(deadline) {
				t.Fatalf("%d batches not observed after 20 s", s.unobserved(t))
			}
			time.Sleep(10 * time.Millisecond)
		}
		return time.Since(began)
	}
	// held_back 4, gap_in_seqs 1 (seq 0), kept_out 2 (seqs 0 and 2).
	if waited := waitObserved(7, false); waited > 4*time.Second {
		t.Errorf("the batch after one kept out by a rule was observed after %s, want it without waiting", waited)
	}
	if waited := waitObserved(8, true); waited < 4500*time.Millisecond {
		t.Errorf("seq 2 after a missing seq 1 was observed after %s, want it held about five seconds", waited)
	}
	if err := rec.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	var got []string
	for _, ts := range o.seen {
		got = append(got, fmt.Sprint(ts))
	}
	slices.Sort(got)
	if want := []string{"[1000 1001 1002 1003]", "[1000 1002]", "[1000 1002]"}; !slices.Equal(got, want) {
		t.Errorf("observed %v, want %v", got, want)
	}
}

// BenchmarkObserve_held: how much batches held back for a batch that never
// comes (2,000 sessions each missing seq 0) slow stage 2 down for the
// others (2,000 batches of 100 sessions sent in order), as the ratio of
// the time to observe those with and without the held ones; each held
// batch waits holdForUnseen (5 s), longer than a run.
func BenchmarkObserve_held(b *testing.B) {
	run := func(held int) time.Duration {
		s := newObserverStack(b)
		o := newNoteObserver()
		rec := s.start(b, o, nil)
		defer rec.Close(context.Background())
		for i := range held {
			s.ingest(b, rec, fmt.Sprintf("gap-%06d", i), 1)
		}
		began := time.Now()
		for seq := range 20 {
			for i := range 100 {
				s.ingest(b, rec, fmt.Sprintf("plain-%06d", i), seq)
			}
		}
		for {
			o.mu.Lock()
			n := 0
			for _, ts := range o.seen {
				n += len(ts)
			}
			o.mu.Unlock()
			if n >= 2000 {
				return time.Since(began)
			}
			if time.Since(began) > time.Minute {
				b.Fatalf("%d of 2,000 batches observed after a minute", n)
			}
			time.Sleep(time.Millisecond)
		}
	}
	for range b.N {
		plain, withHeld := run(0), run(2000)
		b.ReportMetric(plain.Seconds(), "s-plain")
		b.ReportMetric(withHeld.Seconds(), "s-held")
		b.ReportMetric(withHeld.Seconds()/plain.Seconds(), "held/plain")
	}
}

package recorder_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/trailmap/trailmap/accounts"
	"github.com/trailmap/trailmap/heatmap"
	"github.com/trailmap/trailmap/internal/pgtest"
	"github.com/trailmap/trailmap/internal/rrweb"
	"github.com/trailmap/trailmap/journey"
	"github.com/trailmap/trailmap/recorder"
	"github.com/trailmap/trailmap/storage/index"
	"github.com/trailmap/trailmap/storage/index/indextest"
	"github.com/trailmap/trailmap/storage/sqldb"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// poisonPages makes the index refuse (for good, as a value no check foresaw
// would) every page view whose URL has "poison" in it: a real error of the
// real database, on either backend.
func poisonPages(t *testing.T, db *index.DB, on bool) {
	t.Helper()
	var stmts []string
	switch {
	case db.SQL().Dialect() == sqldb.SQLite && on:
		stmts = []string{`CREATE TRIGGER poison_pages BEFORE INSERT ON pages WHEN NEW.url LIKE '%poison%'
			BEGIN SELECT RAISE(ABORT, 'poisoned page view'); END`}
	case db.SQL().Dialect() == sqldb.SQLite:
		stmts = []string{`DROP TRIGGER poison_pages`}
	case on:
		stmts = []string{`CREATE FUNCTION poison_pages() RETURNS trigger LANGUAGE plpgsql AS $$
			BEGIN IF NEW.url LIKE '%poison%' THEN RAISE EXCEPTION 'poisoned page view'; END IF; RETURN NEW; END $$`,
			`CREATE TRIGGER poison_pages BEFORE INSERT ON pages FOR EACH ROW EXECUTE FUNCTION poison_pages()`}
	default:
		stmts = []string{`DROP TRIGGER poison_pages ON pages`, `DROP FUNCTION poison_pages()`}
	}
	for _, q := range stmts {
		if _, err := db.SQL().Write().Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

// ingestPage sends one batch of session that views path.
func (s *observerStack) ingestPage(t *testing.T, rec *recorder.Recorder, session string, seq int, path string) {
	t.Helper()
	ts := 1000 + seq
	body := fmt.Sprintf(`{"session_id":%q,"visitor_id":"visitor_q","seq":%d,"events":[{"type":4,"timestamp":%d,"data":{"href":"https://site.example%s","width":1200,"height":800}},{"type":3,"timestamp":%d,"data":{"source":2,"type":2,"id":1,"x":1,"y":2}}]}`,
		session, seq, ts, path, ts)
	if _, err := rec.Ingest(context.Background(), recorder.Request{Key: s.key, Body: strings.NewReader(body)}); err != nil {
		t.Errorf("%s seq %d: %v", session, seq, err)
	}
}

// seqs returns the batches the index has of a session, and the seqs in
// its stored segments.
func (s *observerStack) seqs(t *testing.T, session string) (batches, segments []int64) {
	t.Helper()
	rows, err := s.db.SQL().Read().Query(`SELECT b.seq FROM batches b JOIN sessions s ON s.id = b.session_id WHERE s.public_id = ? ORDER BY b.seq`, session)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var q int64
		if err := rows.Scan(&q); err != nil {
			t.Fatal(err)
		}
		batches = append(batches, q)
	}
	segs, err := s.db.SQL().Read().Query(`SELECT g.seqs FROM segments g JOIN sessions s ON s.id = g.session_id WHERE s.public_id = ? AND g.state = 'done'`, session)
	if err != nil {
		t.Fatal(err)
	}
	defer segs.Close()
	for segs.Next() {
		var js string
		if err := segs.Scan(&js); err != nil {
			t.Fatal(err)
		}
		var pairs [][2]int64
		if err := json.Unmarshal([]byte(js), &pairs); err != nil {
			t.Fatal(err)
		}
		for _, p := range pairs {
			segments = append(segments, p[0])
		}
	}
	slices.Sort(segments)
	return batches, segments
}

func (s *observerStack) projectID(t *testing.T) string {
	t.Helper()
	var id int64
	if err := s.db.SQL().Read().QueryRow(`SELECT id FROM projects`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprint(id)
}

// quarantined lists the quarantine's batch files and reads their notes.
func (s *observerStack) quarantined(t *testing.T) (files []string, notes string) {
	t.Helper()
	names, _ := filepath.Glob(filepath.Join(s.dir, "quarantine", "*"))
	for _, n := range names {
		files = append(files, filepath.Base(n))
		if strings.HasSuffix(n, ".error") {
			b, err := os.ReadFile(n)
			if err != nil {
				t.Fatal(err)
			}
			notes += string(b)
		}
	}
	return files, notes
}

// TestRecorder_quarantine: a batch the index refuses for good while it
// takes the others used to stall stage 1 for ever (every later batch of the
// node waited behind it). It is quarantined: the node goes on indexing,
// the session's other batches are recorded, observed and stored, the batch
// is kept (with the error) in DataDir/quarantine, a restart tries it again
// (and quarantines it again while the cause is there), and once the cause
// is gone a restart records it.
func TestRecorder_quarantine(t *testing.T) {
	indextest.Each(t, func(t *testing.T, db *index.DB) {
		s := newObserverStackOn(t, db)
		poisonPages(t, db, true)
		o := newNoteObserver()
		rec := s.start(t, o, nil)
		for seq := range 4 {
			path := "/ok"
			if seq == 1 {
				path = "/poison"
			}
			s.ingestPage(t, rec, "poisoned", seq, path)
			s.ingestPage(t, rec, "clean_ses", seq, "/ok")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := rec.CaughtUp(ctx); err != nil {
			t.Fatalf("stage 1 never caught up: %v", err)
		}
		// Batches sent after the poisoned one are indexed at once.
		s.ingestPage(t, rec, "later_ses", 0, "/ok")
		if err := rec.CaughtUp(ctx); err != nil {
			t.Fatalf("stage 1 stalled after the quarantine: %v", err)
		}
		if err := rec.Close(context.Background()); err != nil {
			t.Fatalf("close: %v", err)
		}
		batches, segs := s.seqs(t, "poisoned")
		if fmt.Sprint(batches, segs) != "[0 2 3] [0 2 3]" {
			t.Errorf("poisoned session: batches %v, stored %v; want [0 2 3] both", batches, segs)
		}
		for _, id := range []string{"clean_ses", "later_ses"} {
			batches, segs := s.seqs(t, id)
			if len(batches) == 0 || !slices.Equal(batches, segs) {
				t.Errorf("%s: batches %v, stored %v", id, batches, segs)
			}
		}
		if n := s.unobserved(t); n != 0 {
			t.Errorf("%d batches not observed", n)
		}
		files, notes := s.quarantined(t)
		want := fmt.Sprintf("[%[1]s.batch %[1]s.error]", s.projectID(t)+"-poisoned-1")
		if fmt.Sprint(files) != want || !strings.Contains(notes, "poisoned page view") {
			t.Fatalf("quarantine holds %v (notes %q), want %s with the error", files, notes, want)
		}

		// A restart tries it again; the cause is still there: quarantined
		// again, and the node starts.
		rec = s.start(t, newNoteObserver(), nil)
		if err := rec.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		if files, _ := s.quarantined(t); fmt.Sprint(files) != want {
			t.Fatalf("after a restart with the cause there the quarantine holds %v, want %s", files, want)
		}

		// The cause is gone (a release that fixes it): the next start
		// records the batch, observes it and stores it.
		poisonPages(t, db, false)
		again := newNoteObserver()
		rec = s.start(t, again, nil)
		if err := rec.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		if files, _ := s.quarantined(t); len(files) != 0 {
			t.Errorf("quarantine still holds %v", files)
		}
		batches, segs = s.seqs(t, "poisoned")
		if fmt.Sprint(batches, segs) != "[0 1 2 3] [0 1 2 3]" {
			t.Errorf("after the fix: batches %v, stored %v; want [0 1 2 3] both", batches, segs)
		}
		if len(again.seen) != 1 {
			t.Errorf("observed %v after the fix, want the one batch", again.seen)
		}
		if n := s.unobserved(t); n != 0 {
			t.Errorf("%d batches not observed", n)
		}
	}, heatmap.Schema, accounts.Schema, journey.Schema)
}

// TestRecorder_quarantineLoneBatch: a bad batch on a node that gets nothing
// else is quarantined too (the index taking an empty transaction stands in
// for other batches after a few rounds), before the node would report its
// index stalled: a balancer that takes a stalled node out sends it nothing
// else, and it would wait for ever.
func TestRecorder_quarantineLoneBatch(t *testing.T) {
	indextest.Each(t, func(t *testing.T, db *index.DB) {
		s := newObserverStackOn(t, db)
		poisonPages(t, db, true)
		rec := s.start(t, newNoteObserver(), nil)
		s.ingestPage(t, rec, "lone_poisoned", 0, "/poison")
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		done := make(chan error, 1)
		go func() { done <- rec.CaughtUp(ctx) }()
		began := time.Now()
		for caught := false; !caught; {
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("stage 1 never caught up: %v", err)
				}
				caught = true
			case <-time.After(100 * time.Millisecond):
				if err := rec.IndexReady(ctx); err != nil {
					t.Fatalf("after %s: %v", time.Since(began).Round(time.Millisecond), err)
				}
			}
		}
		t.Logf("quarantined after %s", time.Since(began).Round(time.Millisecond))
		if err := rec.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		if files, _ := s.quarantined(t); len(files) != 2 {
			t.Errorf("quarantine holds %v, want the batch and its note", files)
		}
	}, heatmap.Schema, accounts.Schema, journey.Schema)
}

// refuseObserver refuses the batches whose first event has timestamp ts,
// and passes the others on.
type refuseObserver struct {
	ts   int64
	next recorder.Observer
}

func (o *refuseObserver) ObserveBatch(ctx context.Context, tx *sqldb.Tx, sid int64, events []rrweb.Event) error {
	if events[0].Timestamp == o.ts {
		return errors.New("observer refuses this batch")
	}
	return o.next.ObserveBatch(ctx, tx, sid, events)
}

func (o *refuseObserver) SessionClosed(ctx context.Context, tx *sqldb.Tx, sid int64) error {
	return o.next.SessionClosed(ctx, tx, sid)
}

// TestRecorder_factsSkippedLoneBatch: a batch the observers refuse on a
// node that gets nothing else has its facts skipped too, before the node
// would report its index stalled.
func TestRecorder_factsSkippedLoneBatch(t *testing.T) {
	s := newObserverStack(t)
	o := newNoteObserver()
	rec := s.start(t, &refuseObserver{ts: 1000, next: o}, nil)
	s.ingest(t, rec, "lone_refused", 0)
	began := time.Now()
	if err := rec.CaughtUp(context.Background()); err != nil {
		t.Fatal(err)
	}
	for deadline := began.Add(20 * time.Second); s.unobserved(t) > 0; time.Sleep(50 * time.Millisecond) {
		if err := rec.IndexReady(context.Background()); err != nil {
			t.Fatalf("after %s: %v", time.Since(began).Round(time.Millisecond), err)
		}
		if time.Now().After(deadline) {
			t.Fatal("the batch is not observed after 20 s")
		}
	}
	t.Logf("facts skipped after %s", time.Since(began).Round(time.Millisecond))
	if err := rec.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if batches, segs := s.seqs(t, "lone_refused"); fmt.Sprint(batches, segs) != "[0] [0]" {
		t.Errorf("batches %v, stored %v; want [0] both", batches, segs)
	}
}

// TestRecorder_factsSkipped: a batch the observers refuse while they take
// others is marked observed without its facts (stage 2 used to retry it for
// ever); its events are stored with the session's others.
func TestRecorder_factsSkipped(t *testing.T) {
	s := newObserverStack(t)
	o := newNoteObserver()
	rec := s.start(t, &refuseObserver{ts: 1000 + 1, next: o}, nil)
	for seq := range 4 {
		s.ingest(t, rec, "refused_s", seq)
	}
	for seq := range 6 {
		s.ingest(t, rec, fmt.Sprintf("others_%d", seq), 0) // others, later
		time.Sleep(20 * time.Millisecond)
	}
	deadline := time.Now().Add(20 * time.Second)
	for s.unobserved(t) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d batches not observed after 20 s", s.unobserved(t))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := rec.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	o.mu.Lock()
	var refused []int64
	for _, ts := range o.seen {
		if len(ts) > 1 {
			// The note observer is not transactional: a batch noted in a
			// group that the refused batch rolled back is noted again
			// when tried alone.
			refused = slices.Compact(ts)
		}
	}
	o.mu.Unlock()
	if fmt.Sprint(refused) != "[1000 1002 1003]" {
		t.Errorf("facts of the session %v, want [1000 1002 1003] (seq 1 skipped, the rest in order)", refused)
	}
	if batches, segs := s.seqs(t, "refused_s"); fmt.Sprint(batches, segs) != "[0 1 2 3] [0 1 2 3]" {
		t.Errorf("batches %v, stored %v; want [0 1 2 3] both", batches, segs)
	}
}

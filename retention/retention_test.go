package retention_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/trailmap/trailmap/accounts"
	"github.com/trailmap/trailmap/heatmap"
	"github.com/trailmap/trailmap/internal/pgtest"
	"github.com/trailmap/trailmap/journey"
	"github.com/trailmap/trailmap/recorder"
	"github.com/trailmap/trailmap/retention"
	"github.com/trailmap/trailmap/storage/fs"
	"github.com/trailmap/trailmap/storage/index"
	"github.com/trailmap/trailmap/storage/index/indextest"
	"github.com/trailmap/trailmap/storage/sqldb"
)

// stack is a recorder with heatmap and journey observers on a real index
// and local blob store, as `trailmap serve` runs them.
type stack struct {
	t     *testing.T
	db    *index.DB
	blobs *fs.Client
	dir   string
	key   string
	rec   *recorder.Recorder
	hm    *heatmap.Service
	jr    *journey.Service
	logs  *lockedBuffer // the stack's log, shown when a wait fails
}

// lockedBuffer is a bytes.Buffer safe for the stack's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestMain(m *testing.M) { pgtest.Main(m) }

// eachStack runs fn as the subtests "sqlite" and "postgres", each with a
// stack on a fresh index of that backend.
func eachStack(t *testing.T, fn func(t *testing.T, s *stack)) {
	t.Helper()
	indextest.Each(t, func(t *testing.T, db *index.DB) { fn(t, newStack(t, db)) }, heatmap.Schema, accounts.Schema, journey.Schema)
}

func newStack(t *testing.T, db *index.DB) *stack {
	t.Helper()
	ctx := context.Background()
	s := &stack{t: t, db: db, dir: t.TempDir(), logs: &lockedBuffer{}}
	logger := slog.New(slog.NewTextHandler(s.logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	p, err := s.db.CreateProject(ctx, "test", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	s.key = p.WriteKey
	if s.blobs, err = fs.New(filepath.Join(s.dir, "blobs")); err != nil {
		t.Fatal(err)
	}
	hm, err := heatmap.New(ctx, heatmap.DefaultConfig(), s.db.SQL(), s.db, logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hm.Close() })
	jr, err := journey.New(ctx, s.db, logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { jr.Close() })
	s.hm, s.jr = hm, jr
	cfg := recorder.DefaultConfig(s.dir)
	cfg.RatePerIP, cfg.RatePerKey = 0, 0
	cfg.SessionIdle = time.Second
	cfg.SweepEvery = 50 * time.Millisecond
	if s.rec, err = recorder.New(ctx, cfg, s.db, s.blobs, nil, logger, hm, jr); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.rec.Close(context.Background()) })
	return s
}

// record posts a two-batch visit: a page with a button, a click on it, a
// second click later.
func (s *stack) record(session, visitor string) {
	s.t.Helper()
	s.recordKey(s.key, session, visitor)
}

func (s *stack) recordKey(key, session, visitor string) {
	s.t.Helper()
	t0 := time.Now().UnixMilli()
	batches := []string{
		fmt.Sprintf(`{"type":4,"timestamp":%d,"data":{"href":"https://shop.test/cart","width":1280,"height":800}},`+
			`{"type":2,"timestamp":%d,"data":{"node":{"type":0,"id":1,"childNodes":[{"type":2,"id":2,"tagName":"html","attributes":{},"childNodes":[`+
			`{"type":2,"id":3,"tagName":"body","attributes":{},"childNodes":[{"type":2,"id":4,"tagName":"button","attributes":{"id":"buy"},"childNodes":[]}]}]}]},`+
			`"initialOffset":{"top":0,"left":0}}},`+
			`{"type":3,"timestamp":%d,"data":{"source":2,"type":2,"id":4,"x":10,"y":10}}`, t0, t0+1, t0+500),
		fmt.Sprintf(`{"type":3,"timestamp":%d,"data":{"source":2,"type":2,"id":4,"x":12,"y":11}},`+
			`{"type":5,"timestamp":%d,"data":{"tag":"checkout","payload":{"total":12}}}`, t0+900, t0+950),
	}
	for seq, events := range batches {
		body := fmt.Sprintf(`{"session_id":%q,"visitor_id":%q,"seq":%d,"events":[%s]}`, session, visitor, seq, events)
		if _, err := s.rec.Ingest(context.Background(), recorder.Request{Key: key, Body: strings.NewReader(body)}); err != nil {
			s.t.Fatalf("%s seq %d: %v", session, seq, err)
		}
	}
}

func (s *stack) count(query string, args ...any) int {
	s.t.Helper()
	var n int
	if err := s.db.SQL().Read().QueryRow(query, args...).Scan(&n); err != nil {
		s.t.Fatalf("%s: %v", query, err)
	}
	return n
}

// settled waits until n sessions are closed with all their events stored.
// Its bound is for a hang, not a speed: a loaded 2-core CI machine once
// took over 15 s. A failure shows each session's row, its segments and the
// stack's warnings.
func (s *stack) settled(n int) {
	s.t.Helper()
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) {
		got := s.count(`SELECT COUNT(*) FROM sessions s WHERE closed = 1
			AND (SELECT COALESCE(SUM(events), 0) FROM segments WHERE session_id = s.id AND state = 'done') = s.event_count`)
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("%d of %d sessions closed and stored\nsessions (public_id, closed, event_count, segments done/all, events done):\n%s\nlog:\n%s",
				got, n, strings.Join(s.rows(`SELECT s.public_id, s.closed, s.event_count,
					(SELECT COUNT(*) FROM segments WHERE session_id = s.id AND state = 'done'),
					(SELECT COUNT(*) FROM segments WHERE session_id = s.id),
					(SELECT COALESCE(SUM(events), 0) FROM segments WHERE session_id = s.id AND state = 'done')
				FROM sessions s ORDER BY s.id`), "\n"), s.logs)
		}
	}
}

// rows returns query's rows, each formatted as one line.
func (s *stack) rows(query string) []string {
	s.t.Helper()
	rows, err := s.db.SQL().Read().Query(query)
	if err != nil {
		s.t.Fatalf("%s: %v", query, err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var out []string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			s.t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%s", vals))
	}
	return out
}

func (s *stack) objects() []string {
	s.t.Helper()
	var keys []string
	err := filepath.WalkDir(filepath.Join(s.dir, "blobs"), func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && !strings.HasPrefix(d.Name(), ".") {
			keys = append(keys, path)
		}
		return err
	})
	if err != nil {
		s.t.Fatal(err)
	}
	return keys
}

// failingBlobs fails every delete.
type failingBlobs struct{}

func (failingBlobs) Delete(context.Context, string) error { return errors.New("store down") }

func TestSweep(t *testing.T) {
	eachStack(t, func(t *testing.T, s *stack) {
		ctx := context.Background()
		s.record("retention_old_a", "visitor_gone")
		s.record("retention_old_b", "visitor_gone")
		s.record("retention_old_c", "visitor_stays")
		s.settled(3)
		segments := s.count(`SELECT COUNT(*) FROM segments`)
		if len(s.objects()) != segments || segments < 3 {
			t.Fatalf("%d objects for %d segments", len(s.objects()), segments)
		}
		if s.count(`SELECT COUNT(*) FROM heat_clicks`) != 6 || s.count(`SELECT COUNT(*) FROM journey_sessions`) != 3 {
			t.Fatalf("want heatmap clicks and journey timelines before the sweep: %d clicks, %d timelines",
				s.count(`SELECT COUNT(*) FROM heat_clicks`), s.count(`SELECT COUNT(*) FROM journey_sessions`))
		}
		aggregates := s.count(`SELECT COUNT(*) FROM heat_grid_day`) + s.count(`SELECT COUNT(*) FROM heat_page_day`)
		// A share of a session goes with it.
		blob := `x'01'`
		if s.db.SQL().Dialect() == sqldb.Postgres {
			blob = `decode('01', 'hex')`
		}
		if _, err := s.db.SQL().Write().Exec(`INSERT INTO shares (token_hash, token_hint, project_id, session_id, start_ms, end_ms, title, created_by_name, created_at, expires_at)
		SELECT ` + blob + `, 'tm', project_id, id, 0, 1000, 'Checkout', 'ann', 0, 0 FROM sessions WHERE public_id = 'retention_old_a'`); err != nil {
			t.Fatal(err)
		}
		// Later, another visit of visitor_stays, still being recorded.
		cutoffNow := time.Now()
		s.record("retention_live_d", "visitor_stays")

		cfg := retention.DefaultConfig()
		cfg.MaxAge, cfg.Chunk = 24*time.Hour, 2 // two chunks for three sessions

		// Not expired yet.
		res, err := retention.New(s.db, s.blobs, cfg, nil, slog.New(slog.NewTextHandler(io.Discard, nil))).Sweep(ctx, cutoffNow.Add(23*time.Hour))
		if err != nil || res != (retention.Result{}) {
			t.Fatalf("sweep before expiry: %+v, %v", res, err)
		}
		// A clock that jumped back (a year) deletes nothing either: the cutoff
		// is then before every batch.
		res, err = retention.New(s.db, s.blobs, cfg, nil, slog.New(slog.NewTextHandler(io.Discard, nil))).Sweep(ctx, cutoffNow.AddDate(-1, 0, 0))
		if err != nil || res != (retention.Result{}) {
			t.Fatalf("sweep with the clock a year back: %+v, %v", res, err)
		}

		// The blob store fails: rows go, their objects wait in the trash.
		sw := retention.New(s.db, failingBlobs{}, cfg, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if _, err := sw.Sweep(ctx, cutoffNow.Add(25*time.Hour)); err == nil {
			t.Fatal("sweep with a failing blob store: no error")
		}
		if n := s.count(`SELECT COUNT(*) FROM blob_trash`); n == 0 {
			t.Fatal("no object keys kept for later")
		}

		// The next sweep finishes the job.
		reg := prometheus.NewRegistry()
		sw = retention.New(s.db, s.blobs, cfg, reg, slog.New(slog.NewTextHandler(io.Discard, nil)))
		res, err = sw.Sweep(ctx, cutoffNow.Add(25*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if got := s.count(`SELECT COUNT(*) FROM sessions WHERE public_id LIKE 'retention_old_%'`); got != 0 {
			t.Errorf("%d expired sessions left", got)
		}
		if got := s.count(`SELECT COUNT(*) FROM sessions WHERE public_id = 'retention_live_d'`); got != 1 {
			t.Errorf("the live session is gone")
		}
		for _, q := range []string{
			`SELECT COUNT(*) FROM batches b JOIN sessions s ON s.id = b.session_id WHERE s.public_id != 'retention_live_d'`,
			`SELECT COUNT(*) FROM pages p JOIN sessions s ON s.id = p.session_id WHERE s.public_id != 'retention_live_d'`,
			`SELECT COUNT(*) FROM batches WHERE session_id NOT IN (SELECT id FROM sessions)`,
			`SELECT COUNT(*) FROM pages WHERE session_id NOT IN (SELECT id FROM sessions)`,
			`SELECT COUNT(*) FROM custom_events WHERE session_id NOT IN (SELECT id FROM sessions)`,
			`SELECT COUNT(*) FROM segments WHERE session_id NOT IN (SELECT id FROM sessions)`,
			`SELECT COUNT(*) FROM heat_clicks WHERE session_id NOT IN (SELECT id FROM sessions)`,
			`SELECT COUNT(*) FROM heat_pageviews WHERE session_id NOT IN (SELECT id FROM sessions)`,
			`SELECT COUNT(*) FROM journey_sessions WHERE session_id NOT IN (SELECT id FROM sessions)`,
			`SELECT COUNT(*) FROM shares`,
			`SELECT COUNT(*) FROM blob_trash`,
			`SELECT COUNT(*) FROM visitors WHERE id = 'visitor_gone'`,
		} {
			if n := s.count(q); n != 0 {
				t.Errorf("%s: %d, want 0", q, n)
			}
		}
		if n := s.count(`SELECT COUNT(*) FROM visitors WHERE id = 'visitor_stays'`); n != 1 {
			t.Errorf("visitor with a live session: %d rows, want 1", n)
		}
		if got := s.count(`SELECT COUNT(*) FROM heat_grid_day`) + s.count(`SELECT COUNT(*) FROM heat_page_day`); got != aggregates {
			t.Errorf("aggregate rows %d, want %d kept", got, aggregates)
		}
		if left := s.objects(); len(left) != 0 {
			t.Errorf("objects left: %v", left)
		}
		if got, want := deleted(t, reg), map[string]float64{"sessions": 1, "discarded": 0, "objects": float64(segments), "visitors": 0}; fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("trailmap_retention_deleted_total %v, want %v (this sweep's counts)", got, want)
		}
		if res.Sessions != 1 || res.Objects != segments {
			// The failed sweep deleted the rows of the first chunk (2 sessions).
			t.Errorf("second sweep: %+v, want 1 session and %d objects (the first chunk's rows went in the failed sweep)", res, segments)
		}
	})
}

// TestSweep_ProjectRetention: a project's retention_days applies to its
// sessions, also when the server keeps sessions forever.
// A key in the trash that a segment row holds again (a late batch of a
// deleted session stored anew under the same key) keeps its object.
func TestSweep_KeyStoredAgain(t *testing.T) {
	eachStack(t, func(t *testing.T, s *stack) {
		ctx := context.Background()
		s.record("retention_again", "visitor_again")
		s.settled(1)
		var key string
		if err := s.db.SQL().Read().QueryRow(`SELECT key FROM segments LIMIT 1`).Scan(&key); err != nil {
			t.Fatal(err)
		}
		if _, err := s.db.SQL().Write().Exec(`INSERT INTO blob_trash (key, added_at) VALUES (?, 0), ('1/sessions/gone.zst', 0)`, key); err != nil {
			t.Fatal(err)
		}
		before := len(s.objects())
		res, err := retention.New(s.db, s.blobs, retention.DefaultConfig(), nil, slog.New(slog.NewTextHandler(io.Discard, nil))).Sweep(ctx, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if res.Objects != 1 || len(s.objects()) != before {
			t.Errorf("%d objects deleted, %d of %d left; want only the one no row holds", res.Objects, len(s.objects()), before)
		}
		if rc, err := s.blobs.Get(ctx, key, 0, -1); err != nil {
			t.Errorf("the object a segment row holds is gone: %v", err)
		} else {
			rc.Close()
		}
		if n := s.count(`SELECT COUNT(*) FROM blob_trash`); n != 0 {
			t.Errorf("%d keys left in the trash", n)
		}
	})
}

func TestSweep_ProjectRetention(t *testing.T) {
	eachStack(t, func(t *testing.T, s *stack) {
		ctx := context.Background()
		short, err := s.db.CreateProject(ctx, "short", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if err := s.db.SetProjectSettings(ctx, short.ID, []byte(`{"retention_days": 3, "redact_params": ["iban"]}`)); err != nil {
			t.Fatal(err)
		}
		s.recordKey(short.WriteKey, "retention_short", "visitor_short")
		s.record("retention_forever", "visitor_forever")
		s.settled(2)
		sw := retention.New(s.db, s.blobs, retention.DefaultConfig(), nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
		now := time.Now()
		if res, err := sw.Sweep(ctx, now.Add(2*24*time.Hour)); err != nil || res.Sessions != 0 {
			t.Fatalf("after 2 days: %+v, %v", res, err)
		}
		res, err := sw.Sweep(ctx, now.Add(4*24*time.Hour))
		if err != nil || res.Sessions != 1 {
			t.Fatalf("after 4 days: %+v, %v; want 1 session", res, err)
		}
		if n := s.count(`SELECT COUNT(*) FROM sessions WHERE public_id = 'retention_forever'`); n != 1 {
			t.Error("the session of the project without retention is gone")
		}
		if n := s.count(`SELECT COUNT(*) FROM sessions WHERE public_id = 'retention_short'`); n != 0 {
			t.Error("the session of the project with 3 days is still there")
		}
		// What a node's own data (its quarantine) is kept by: the
		// project's days, the server's (here for ever), nothing for a
		// project that does not exist.
		forever, err := s.db.CreateProject(ctx, "forever", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		keep, err := sw.Keep(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if age, ok := keep(short.ID); !ok || age != 3*24*time.Hour {
			t.Errorf("keep(short) = %v, %v; want 72h", age, ok)
		}
		if age, ok := keep(forever.ID); !ok || age != 0 {
			t.Errorf("keep(project without retention) = %v, %v; want 0 (for ever)", age, ok)
		}
		if _, ok := keep(forever.ID + 1000); ok {
			t.Error("keep knows a project that does not exist")
		}
	})
}

func TestProjectDays(t *testing.T) {
	for in, want := range map[string]int{
		``: 0, `{}`: 0, `{"redact_params":["x"]}`: 0, `{"retention_days":30}`: 30, `{"retention_days":1}`: 1,
		`{"retention_days":0}`: -1, `{"retention_days":-5}`: -1, `{"retention_days":1.5}`: -1,
		`{"retention_days":"30"}`: -1, `{"retention_days":99999}`: -1, `[1]`: -1,
	} {
		got, err := retention.ProjectDays([]byte(in))
		if want < 0 {
			if err == nil {
				t.Errorf("%s: %d, want an error", in, got)
			}
			continue
		}
		if err != nil || got != want {
			t.Errorf("%s: %d, %v; want %d", in, got, err, want)
		}
	}
}

// deleted reads trailmap_retention_deleted_total by its "what" label.
func deleted(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "trailmap_retention_deleted_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			out[m.GetLabel()[0].GetValue()] = m.GetCounter().GetValue()
		}
	}
	return out
}

// TestSweep_Discarded: with a project's keep rule (min_duration_ms,
// require_interaction), a session that closes short of it — sent by any
// rrweb client, not only Trailmap's script, which holds such visits back
// itself — leaves the sessions list when it closes and the index and blob
// store with the next sweep, whatever the retention; a session that meets
// the rule stays.
func TestSweep_Discarded(t *testing.T) {
	eachStack(t, func(t *testing.T, s *stack) {
		ctx := context.Background()
		p, err := s.db.ProjectByKey(ctx, s.key)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.db.UpdateProjectSettings(ctx, p.ID, func(json.RawMessage) (json.RawMessage, error) {
			return json.RawMessage(`{"recording":{"min_duration_ms":900,"require_interaction":true}}`), nil
		}); err != nil {
			t.Fatal(err)
		}
		s.record("discard_kept", "visitor_a") // 950 ms with clicks
		t0 := time.Now().UnixMilli()
		glance := fmt.Sprintf(`{"session_id":"discard_glance","visitor_id":"visitor_b","seq":0,"events":[`+
			`{"type":4,"timestamp":%d,"data":{"href":"https://shop.test/","width":1280,"height":800}},`+
			`{"type":2,"timestamp":%d,"data":{"node":{"type":0,"id":1,"childNodes":[]},"initialOffset":{"top":0,"left":0}}},`+
			`{"type":3,"timestamp":%d,"data":{"source":1,"positions":[{"x":1,"y":2,"id":1,"timeOffset":0}]}}]}`, t0, t0+1, t0+5000)
		if _, err := s.rec.Ingest(ctx, recorder.Request{Key: s.key, Body: strings.NewReader(glance)}); err != nil {
			t.Fatal(err)
		}
		s.settled(2)
		list, _, err := s.db.ListSessions(ctx, index.SessionFilter{})
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != 1 || list[0].ID != "discard_kept" {
			t.Fatalf("sessions listed after closing: %+v, want only discard_kept (a mouse move is no interaction)", list)
		}
		before := len(s.objects())

		reg := prometheus.NewRegistry()
		res, err := retention.New(s.db, s.blobs, retention.DefaultConfig(), reg, slog.New(slog.NewTextHandler(io.Discard, nil))).Sweep(ctx, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if res.Sessions != 1 || res.Discarded != 1 || res.Visitors != 1 || res.Objects < 1 {
			t.Errorf("sweep = %+v, want the glance, its visitor and its objects", res)
		}
		if n := s.count(`SELECT COUNT(*) FROM sessions WHERE public_id = 'discard_glance'`); n != 0 {
			t.Error("discarded session still in the index")
		}
		if n := s.count(`SELECT COUNT(*) FROM sessions WHERE public_id = 'discard_kept'`); n != 1 {
			t.Error("kept session deleted")
		}
		if after := len(s.objects()); after != before-res.Objects {
			t.Errorf("%d objects after the sweep, want %d", after, before-res.Objects)
		}
		if got := deleted(t, reg); got["discarded"] != 1 || got["sessions"] != 0 {
			t.Errorf("trailmap_retention_deleted_total %v, want 1 discarded", got)
		}
	})
}

// TestRun_WarnsOnce: a round of Run reads every project's retention once,
// for the node-local sweeps and the cluster's, so a project whose setting
// is unreadable is warned about once per round (it was twice).
func TestRun_WarnsOnce(t *testing.T) {
	eachStack(t, func(t *testing.T, s *stack) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		bad, err := s.db.CreateProject(ctx, "bad", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if err := s.db.SetProjectSettings(ctx, bad.ID, []byte(`{"retention_days": "30"}`)); err != nil {
			t.Fatal(err)
		}
		// A key in the trash makes the sweep log what it deleted: the
		// end of the round.
		if _, err := s.db.SQL().Write().Exec(`INSERT INTO blob_trash (key, added_at) VALUES ('1/sessions/gone.zst', 0)`); err != nil {
			t.Fatal(err)
		}
		logs := &recordingHandler{}
		cfg := retention.DefaultConfig()
		cfg.First = 10 * time.Millisecond
		var keeps []retention.Keep
		sw := retention.New(s.db, s.blobs, cfg, nil, slog.New(logs)).
			OnEveryNode(func(ctx context.Context, now time.Time, keep retention.Keep) error {
				keeps = append(keeps, keep)
				return nil
			})
		done := make(chan struct{})
		go func() { defer close(done); sw.Run(ctx) }()
		deadline := time.Now().Add(10 * time.Second)
		for logs.count("retention sweep") == 0 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		cancel()
		<-done
		if n := logs.count("retention sweep"); n != 1 {
			t.Fatalf("%d sweeps logged, want 1", n)
		}
		if n := logs.count("project retention setting unreadable, using the server's"); n != 1 {
			t.Errorf("the unreadable setting was warned about %d times in one round, want once", n)
		}
		if len(keeps) != 1 {
			t.Fatalf("the node-local sweep ran %d times, want once", len(keeps))
		}
		if age, ok := keeps[0](bad.ID); !ok || age != 0 {
			t.Errorf("keep(project with an unreadable setting) = %v, %v; want the server's (0, for ever)", age, ok)
		}
	})
}

// recordingHandler counts log records by message.
type recordingHandler struct {
	mu   sync.Mutex
	msgs []string
}

func (h *recordingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *recordingHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *recordingHandler) WithGroup(string) slog.Handler            { return h }

func (h *recordingHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.msgs = append(h.msgs, r.Message)
	return nil
}

func (h *recordingHandler) count(msg string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, m := range h.msgs {
		if m == msg {
			n++
		}
	}
	return n
}

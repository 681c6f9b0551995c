package index_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/trailmap/trailmap/internal/pgtest"
	"github.com/trailmap/trailmap/storage/index"
	"github.com/trailmap/trailmap/storage/index/indextest"
	"github.com/trailmap/trailmap/storage/sqldb"
)

// projectIngest creates project "p" and prepares the ingest's statements
// (closed at the test's end).
func projectIngest(t *testing.T, db *index.DB) (*index.Project, *index.Ingest) {
	t.Helper()
	ctx := context.Background()
	p, err := db.CreateProject(ctx, "p", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	in, err := db.Ingest(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.Close() })
	return p, in
}

// record records one batch of session "s1" the way the recorder's stage 1
// does; it returns the session row and whether the batch was new.
func record(t *testing.T, in *index.Ingest, project, seq, at int64) (int64, bool) {
	t.Helper()
	ctx := context.Background()
	var sid int64
	var fresh bool
	err := in.Tx(ctx, func(tx *index.IngestTx) error {
		id, isNew, inserted, err := tx.RecordBatch(ctx, index.SessionStart{ProjectID: project, PublicID: "s1", VisitorID: "v1", StartedAt: at, EndedAt: at, LastReceived: at},
			seq, 1, at, false)
		if err != nil {
			return err
		}
		sid, fresh = id, inserted
		if !fresh {
			return nil
		}
		if err := tx.CountBatch(ctx, id, index.BatchCounts{First: at, Last: at, Received: at, Events: 1, Pages: 1, EntryURL: "https://x/a"}); err != nil {
			return err
		}
		if err := tx.AddPage(ctx, id, at, "https://x/a", "/a", 800, 600); err != nil {
			return err
		}
		if err := tx.AddCustomEvent(ctx, id, at, "signup", `{}`); err != nil {
			return err
		}
		if err := tx.UpsertVisitor(ctx, project, "v1", at, at, isNew); err != nil {
			return err
		}
		return tx.Identify(ctx, project, "v1", "u1", "")
	})
	if err != nil {
		t.Fatal(err)
	}
	return sid, fresh
}

func TestIngest_Tx(t *testing.T) { indextest.Each(t, testIngestTx) }

// stage1Holding runs a stage-1 transaction in the background: before,
// then a wait until release is called, then after (if any). It returns
// once before is done; release lets the transaction go on and returns its
// error.
func stage1Holding(t *testing.T, in *index.Ingest, before, after func(*index.IngestTx) error) (release func() error) {
	t.Helper()
	held, cont := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- in.Tx(context.Background(), func(tx *index.IngestTx) error {
			if err := before(tx); err != nil {
				return err
			}
			close(held)
			<-cont
			if after == nil {
				return nil
			}
			return after(tx)
		})
	}()
	select {
	case <-held:
	case err := <-done:
		t.Fatalf("stage 1: %v", err)
	}
	return func() error {
		close(cont)
		return <-done
	}
}

// TestIngest_StagesDoNotWait: on PostgreSQL the ingest's two stages run in
// transactions of their own at the same time, and stage 2's mark of a
// batch observed does not wait for stage 1's open transaction on the same
// session. It used to count the batch in the sessions row that stage 1
// holds locked until it commits, and the two deadlocked when they took a
// group's sessions in different orders (a stall of a second each time).
func TestIngest_StagesDoNotWait(t *testing.T) {
	db := indextest.Open(t, pgtest.Shared(t).Database(t))
	p, in := projectIngest(t, db)
	ctx := context.Background()
	at := time.Now().UnixMilli()
	sid, _ := record(t, in, p.ID, 0, at)

	release := stage1Holding(t, in, func(tx *index.IngestTx) error {
		_, _, _, err := tx.RecordBatch(ctx, index.SessionStart{ProjectID: p.ID, PublicID: "s1", VisitorID: "v1", StartedAt: at, EndedAt: at + 1, LastReceived: at + 1},
			1, 1, at+1, false)
		if err != nil {
			return err
		}
		return tx.CountBatch(ctx, sid, index.BatchCounts{First: at + 1, Last: at + 1, Received: at + 1, Events: 1})
	}, nil)
	mctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var state index.SessionState
	err := in.Tx(mctx, func(tx *index.IngestTx) error {
		fresh, err := tx.MarkObserved(mctx, sid, 0)
		if err != nil || !fresh {
			return fmt.Errorf("MarkObserved = %v, %v", fresh, err)
		}
		c, err := db.PrepareSessionCounters(mctx)
		if err != nil {
			return err
		}
		defer c.Close()
		state, err = c.SessionState(mctx, tx.Shared(), sid)
		return err
	})
	stage1 := release()
	if err != nil {
		t.Fatalf("stage 2 with stage 1's transaction open on the same session: %v", err)
	}
	if stage1 != nil {
		t.Fatalf("stage 1: %v", stage1)
	}
	if state.Observed != 1 {
		t.Errorf("observed %d, want 1", state.Observed)
	}
}

// TestIngest_SessionWritesInLockOrder: on PostgreSQL an observers'
// transaction writes its sessions rows (frustration, conversions) at its
// end, locking them by (project, session id) as stage 1 takes its batches:
// stage 1 holding s1 and taking s2 next does not deadlock with observers
// that counted s2 and then s1 (they used to lock s2 at once and wait for
// s1, a cycle PostgreSQL broke after a second by failing one of them).
func TestIngest_SessionWritesInLockOrder(t *testing.T) {
	db := indextest.Open(t, pgtest.Shared(t).Database(t))
	p, in := projectIngest(t, db)
	ctx := context.Background()
	at := time.Now().UnixMilli()
	start := func(session string) index.SessionStart {
		return index.SessionStart{ProjectID: p.ID, PublicID: session, VisitorID: "v1", StartedAt: at, EndedAt: at, LastReceived: at}
	}
	sids := map[string]int64{}
	err := in.Tx(ctx, func(tx *index.IngestTx) error {
		for _, session := range []string{"s1", "s2"} {
			id, _, _, err := tx.RecordBatch(ctx, start(session), 0, 1, at, false)
			if err != nil {
				return err
			}
			sids[session] = id
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	counters, err := db.PrepareSessionCounters(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer counters.Close()
	content, err := db.PrepareContentReader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer content.Close()

	recordIn := func(session string) func(tx *index.IngestTx) error {
		return func(tx *index.IngestTx) error {
			_, _, _, err := tx.RecordBatch(ctx, start(session), 1, 1, at+1, false)
			return err
		}
	}
	release := stage1Holding(t, in, recordIn("s1"), recordIn("s2"))
	stage2 := make(chan error, 1)
	go func() {
		stage2 <- in.Tx(ctx, func(tx *index.IngestTx) error {
			if err := counters.AddFrustration(ctx, tx.Shared(), sids["s2"], 1, 0, 0); err != nil {
				return err
			}
			if err := content.SetConversions(ctx, tx.Shared(), sids["s2"], 2); err != nil {
				return err
			}
			return counters.AddFrustration(ctx, tx.Shared(), sids["s1"], 0, 1, 1)
		})
	}()
	// Give the observers' transaction the time to reach s1's lock (or,
	// writing at once, to take s2's and wait for s1's).
	time.Sleep(300 * time.Millisecond)
	if err := release(); err != nil {
		t.Errorf("stage 1: %v", err)
	}
	if err := <-stage2; err != nil {
		t.Errorf("observers: %v", err)
	}
	for session, want := range map[string][4]int{"s1": {0, 1, 1, 0}, "s2": {1, 0, 0, 2}} {
		s, err := db.SessionByRowID(ctx, sids[session])
		if err != nil {
			t.Fatal(err)
		}
		if got := [4]int{s.RageClicks, s.DeadClicks, s.ErrorClicks, s.Conversions}; got != want {
			t.Errorf("%s: rage, dead, error clicks, conversions %v, want %v", session, got, want)
		}
	}
}

// TestIngest_RecordBatchVisitors: RecordBatch tells a new session and a
// new batch from repeated ones, and the visitors of a transaction's batches
// (written at its end on PostgreSQL) are summed per visitor, also across
// transactions, with an identify in between.
func TestIngest_RecordBatchVisitors(t *testing.T) {
	indextest.Each(t, func(t *testing.T, db *index.DB) {
		ctx := context.Background()
		p, in := projectIngest(t, db)
		type step struct {
			session, visitor string
			seq, at          int64
			isNew, inserted  bool
		}
		run := func(steps []step, identify string) {
			t.Helper()
			err := in.Tx(ctx, func(tx *index.IngestTx) error {
				for i, s := range steps {
					id, isNew, inserted, err := tx.RecordBatch(ctx, index.SessionStart{ProjectID: p.ID, PublicID: s.session, VisitorID: s.visitor,
						StartedAt: s.at, EndedAt: s.at, LastReceived: s.at}, s.seq, 1, s.at, false)
					if err != nil {
						return err
					}
					if isNew != s.isNew || inserted != s.inserted {
						t.Errorf("step %d (%s seq %d): new %v, inserted %v; want %v, %v", i, s.session, s.seq, isNew, inserted, s.isNew, s.inserted)
					}
					if !inserted {
						continue
					}
					if err := tx.CountBatch(ctx, id, index.BatchCounts{First: s.at, Last: s.at, Received: s.at, Events: 1}); err != nil {
						return err
					}
					if err := tx.UpsertVisitor(ctx, p.ID, s.visitor, s.at, s.at, isNew); err != nil {
						return err
					}
					if s.visitor == identify {
						if err := tx.Identify(ctx, p.ID, s.visitor, "user-"+s.visitor, `{"plan":"pro"}`); err != nil {
							return err
						}
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		run([]step{
			{"s1", "v1", 0, 5000, true, true},
			{"s1", "v1", 1, 6000, false, true},
			{"s2", "v1", 0, 3000, true, true},
			{"s3", "v2", 0, 4000, true, true}, // identified right after its upsert
			{"s1", "v1", 1, 6000, false, false},
			{"s3", "v2", 1, 4500, false, true},
		}, "v2")
		run([]step{{"s1", "v1", 1, 6000, false, false}, {"s4", "v1", 0, 9000, true, true}}, "")
		rows, err := db.VisitorsByID(ctx, p.ID, []string{"v1", "v2"})
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]index.VisitorRow{}
		for _, r := range rows {
			got[r.ID] = r
		}
		if v := got["v1"]; v.FirstSeen != 3000 || v.LastSeen != 9000 || v.Identified {
			t.Errorf("v1 = %+v, want seen 3000-9000, anonymous", v)
		}
		if v := got["v2"]; v.FirstSeen != 4000 || v.LastSeen != 4500 || v.UserID != "user-v2" || v.Traits != `{"plan":"pro"}` {
			t.Errorf("v2 = %+v, want seen 4000-4500 as user-v2 with traits", v)
		}
		var sessions [2]int64
		for i, v := range []string{"v1", "v2"} {
			if err := db.SQL().Read().QueryRowContext(ctx, `SELECT sessions FROM visitors WHERE project_id = ? AND id = ?`, p.ID, v).Scan(&sessions[i]); err != nil {
				t.Fatal(err)
			}
		}
		if sessions != [2]int64{3, 1} {
			t.Errorf("sessions per visitor %v, want [3 1]", sessions)
		}
	})
}

func testIngestTx(t *testing.T, db *index.DB) {
	ctx := context.Background()
	p, in := projectIngest(t, db)

	sid, fresh := record(t, in, p.ID, 0, 1000)
	if !fresh {
		t.Fatal("first batch not recorded")
	}
	if _, fresh := record(t, in, p.ID, 0, 1000); fresh {
		t.Fatal("repeated batch recorded twice")
	}
	seqs, err := db.SessionSeqs(ctx, p.ID, "s1")
	if err != nil || len(seqs) != 1 || seqs[0].Seq != 0 {
		t.Fatalf("SessionSeqs = %v, %v", seqs, err)
	}
	err = in.Tx(ctx, func(tx *index.IngestTx) error {
		if u, err := tx.LastPageURL(ctx, sid); err != nil || u != "https://x/a" {
			t.Errorf("LastPageURL = %q, %v", u, err)
		}
		for i, want := range []bool{true, false} {
			if got, err := tx.MarkObserved(ctx, sid, 0); err != nil || got != want {
				t.Errorf("MarkObserved #%d = %v, %v; want %v", i, got, err, want)
			}
		}
		if tx.Shared() == nil || tx.Shared().SQL() == nil {
			t.Error("no shared transaction")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	idle, err := db.IdleSessions(ctx, 2000, 10)
	if err != nil || len(idle) != 1 || idle[0].ID != sid || idle[0].ProjectID != p.ID {
		t.Fatalf("IdleSessions = %v, %v", idle, err)
	}
	err = in.Tx(ctx, func(tx *index.IngestTx) error {
		for i, want := range []bool{true, false} {
			if got, discarded, err := tx.CloseSession(ctx, sid, 2000, index.KeepRule{}); err != nil || got != want || discarded {
				t.Errorf("CloseSession #%d = %v, %v; want %v", i, got, err, want)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.SessionRow(ctx, p.ID, "nope"); !errors.Is(err, index.ErrNotFound) {
		t.Fatalf("SessionRow of an unknown session: %v", err)
	}
}

func TestDB_DeleteExpiredSessions(t *testing.T) { eachWithErrorClicks(t, testDeleteExpiredSessions) }

func testDeleteExpiredSessions(t *testing.T, db *index.DB) {
	ctx := context.Background()
	p, in := projectIngest(t, db)
	sid, _ := record(t, in, p.ID, 0, 1000)

	// Not expired: open, its batch unobserved and its events in no segment.
	if ids, err := db.ExpiredSessions(ctx, p.ID, 5000, 10); err != nil || len(ids) != 0 {
		t.Fatalf("ExpiredSessions of a live session = %v, %v", ids, err)
	}
	if n, _, err := db.DeleteExpiredSessions(ctx, []int64{sid}, 5000, 6000); err != nil || n != 0 {
		t.Fatalf("DeleteExpiredSessions of a live session = %d, %v", n, err)
	}

	err := in.Tx(ctx, func(tx *index.IngestTx) error {
		if _, err := tx.MarkObserved(ctx, sid, 0); err != nil {
			return err
		}
		_, _, err := tx.CloseSession(ctx, sid, 5000, index.KeepRule{})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	seg, err := db.AddPendingSegment(ctx, index.NewSegment{SessionID: sid, Key: "k", Seqs: []byte(`[[0,1]]`), Snapshots: []byte(`[]`), Events: 1})
	if err != nil {
		t.Fatal(err)
	}
	if ids, _ := db.ExpiredSessions(ctx, p.ID, 5000, 10); len(ids) != 0 {
		t.Fatal("a session whose segment is pending expired")
	}
	if err := db.MarkSegmentDone(ctx, seg); err != nil {
		t.Fatal(err)
	}
	if st, err := db.SegmentStates(ctx, sid); err != nil || len(st) != 1 || st[0].Pending || st[0].Seqs[0] != [2]int64{0, 1} {
		t.Fatalf("SegmentStates = %+v, %v", st, err)
	}
	ids, err := db.ExpiredSessions(ctx, p.ID, 5000, 10)
	if err != nil || len(ids) != 1 {
		t.Fatalf("ExpiredSessions = %v, %v", ids, err)
	}
	if got := pagePatternSessions(t, db, "*x/a*"); got != 1 {
		t.Fatalf("page pattern before the delete: %d sessions", got)
	}
	if n, err := db.PrunePageURLs(ctx, time.Now().Add(72*time.Hour)); err != nil || n != 0 {
		t.Fatalf("PrunePageURLs took %d URLs a page view has, %v", n, err)
	}
	n, v, err := db.DeleteExpiredSessions(ctx, ids, 5000, 6000)
	if err != nil || n != 1 || v != 1 {
		t.Fatalf("DeleteExpiredSessions = %d sessions, %d visitors, %v", n, v, err)
	}
	// The page pattern filter finds nothing at once; the distinct URL
	// leaves with its last page view on SQLite, and at the next retention
	// sweep once two days passed on PostgreSQL.
	if got := pagePatternSessions(t, db, "*x/a*"); got != 0 {
		t.Fatalf("page pattern after the delete: %d sessions", got)
	}
	pruned, err := db.PrunePageURLs(ctx, time.Now().Add(72*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if want := map[sqldb.Dialect]int{sqldb.SQLite: 0, sqldb.Postgres: 1}[db.SQL().Dialect()]; pruned != want {
		t.Fatalf("PrunePageURLs = %d, want %d", pruned, want)
	}
	var urls int
	if err := db.SQL().Read().QueryRowContext(ctx, `SELECT COUNT(*) FROM page_urls`).Scan(&urls); err != nil || urls != 0 {
		t.Fatalf("page_urls after the delete: %d, %v", urls, err)
	}
	keys, err := db.BlobTrash(ctx, 10)
	if err != nil || len(keys) != 1 || keys[0] != "k" {
		t.Fatalf("BlobTrash = %v, %v", keys, err)
	}
	if live, err := db.SegmentKeyInUse(ctx, "k"); err != nil || live {
		t.Fatalf("SegmentKeyInUse after delete = %v, %v", live, err)
	}
	if err := db.ClearBlobTrash(ctx, keys); err != nil {
		t.Fatal(err)
	}
	if keys, _ := db.BlobTrash(ctx, 10); len(keys) != 0 {
		t.Fatalf("trash not cleared: %v", keys)
	}
}

func TestDB_DiscardSessions(t *testing.T) { eachWithErrorClicks(t, testDiscardSessions) }

// testDiscardSessions closes sessions under a keep rule: those short of it
// are marked, hidden from the list and deleted once settled; the others
// stay, and so does everything with the zero rule.
func testDiscardSessions(t *testing.T, db *index.DB) {
	ctx := context.Background()
	p, in := projectIngest(t, db)
	type visit struct {
		name         string
		durationMS   int64
		interactions int
		keep         index.KeepRule
		discarded    bool
	}
	rule := index.KeepRule{MinDurationMS: 5000, RequireInteraction: true}
	visits := []visit{
		{"kept", 6000, 3, rule, false},
		{"short", 4999, 3, rule, true},
		{"idle", 60000, 0, rule, true},
		{"exact", 5000, 1, rule, false},
		{"no rule", 10, 0, index.KeepRule{}, false},
		{"duration only", 6000, 0, index.KeepRule{MinDurationMS: 5000}, false},
	}
	rows := map[string]int64{}
	err := in.Tx(ctx, func(tx *index.IngestTx) error {
		for _, v := range visits {
			id, _, err := tx.UpsertSession(ctx, index.SessionStart{ProjectID: p.ID, PublicID: v.name, VisitorID: "v-" + v.name,
				StartedAt: 1000, EndedAt: 1000, LastReceived: 1000})
			if err != nil {
				return err
			}
			rows[v.name] = id
			if _, err := tx.InsertBatch(ctx, id, 0, 1, 1000, true); err != nil {
				return err
			}
			if err := tx.CountBatch(ctx, id, index.BatchCounts{First: 1000, Last: 1000 + v.durationMS, Received: 1000,
				Events: 1, Interactions: v.interactions}); err != nil {
				return err
			}
			if err := tx.UpsertVisitor(ctx, p.ID, "v-"+v.name, 1000, 1000, true); err != nil {
				return err
			}
		}
		for _, v := range visits {
			closed, discarded, err := tx.CloseSession(ctx, rows[v.name], 2000, v.keep)
			if err != nil {
				return err
			}
			if !closed || discarded != v.discarded {
				t.Errorf("%s: CloseSession = closed %v, discarded %v; want discarded %v", v.name, closed, discarded, v.discarded)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	list, _, err := db.ListSessions(ctx, index.SessionFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var listed []string
	for _, s := range list {
		listed = append(listed, s.ID)
	}
	sort.Strings(listed)
	if want := []string{"duration only", "exact", "kept", "no rule"}; !slices.Equal(listed, want) {
		t.Errorf("ListSessions = %v, want %v", listed, want)
	}

	// Not settled yet: the events are in no stored segment.
	if ids, err := db.DiscardedSessions(ctx, 3000, 10); err != nil || len(ids) != 0 {
		t.Fatalf("DiscardedSessions before segments = %v, %v", ids, err)
	}
	for _, v := range visits {
		seg, err := db.AddPendingSegment(ctx, index.NewSegment{SessionID: rows[v.name], Key: "k/" + v.name, Seqs: []byte(`[[0,0]]`), Snapshots: []byte(`[]`), Events: 1})
		if err != nil {
			t.Fatal(err)
		}
		if err := db.MarkSegmentDone(ctx, seg); err != nil {
			t.Fatal(err)
		}
	}
	ids, err := db.DiscardedSessions(ctx, 3000, 10)
	if err != nil || len(ids) != 2 {
		t.Fatalf("DiscardedSessions = %v, %v; want short and idle", ids, err)
	}
	// "short" receives a batch again between the listing and the delete:
	// it is open again, and kept until it closes again.
	err = in.Tx(ctx, func(tx *index.IngestTx) error {
		_, _, err := tx.UpsertSession(ctx, index.SessionStart{ProjectID: p.ID, PublicID: "short", VisitorID: "v-short",
			StartedAt: 1000, EndedAt: 1000, LastReceived: 2500})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	n, vis, err := db.DeleteDiscardedSessions(ctx, ids, 3000)
	if err != nil || n != 1 || vis != 1 {
		t.Fatalf("DeleteDiscardedSessions = %d sessions, %d visitors, %v; want 1, 1", n, vis, err)
	}
	if _, _, err := db.SessionRow(ctx, p.ID, "idle"); !errors.Is(err, index.ErrNotFound) {
		t.Errorf("discarded session still there: %v", err)
	}
	if _, _, err := db.SessionRow(ctx, p.ID, "short"); err != nil {
		t.Errorf("reopened session deleted: %v", err)
	}
	if keys, err := db.BlobTrash(ctx, 10); err != nil || !slices.Equal(keys, []string{"k/idle"}) {
		t.Errorf("BlobTrash = %v, %v; want k/idle", keys, err)
	}
}

func TestDB_PlayableSessions(t *testing.T) { eachWithErrorClicks(t, testPlayableSessions) }

// testPlayableSessions: the full snapshots a session's batches hold decide
// whether it can be replayed, and from when.
func testPlayableSessions(t *testing.T, db *index.DB) {
	ctx := context.Background()
	p, in := projectIngest(t, db)
	batches := []struct {
		session     string
		snaps       int
		first, snap int64
	}{
		{"blank", 0, 1000, 0},
		{"late", 0, 1000, 0},
		{"late", 2, 4000, 6000}, // a later batch with the session's first snapshots
		{"late", 1, 2000, 9000},
	}
	const now = 1_796_351_326_000 // real times do not fit 32 bits
	for i := range batches {
		batches[i].first += now
		if batches[i].snap > 0 {
			batches[i].snap += now
		}
	}
	err := in.Tx(ctx, func(tx *index.IngestTx) error {
		for seq, b := range batches {
			id, _, err := tx.UpsertSession(ctx, index.SessionStart{ProjectID: p.ID, PublicID: b.session, VisitorID: "v",
				StartedAt: b.first, EndedAt: b.first, LastReceived: b.first})
			if err != nil {
				return err
			}
			if _, err := tx.InsertBatch(ctx, id, int64(seq), 1, b.first, true); err != nil {
				return err
			}
			if err := tx.CountBatch(ctx, id, index.BatchCounts{First: b.first, Last: b.first + 500, Received: b.first,
				Events: 1, FullSnapshots: b.snaps, FirstSnapshot: b.snap}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	all, _, err := db.ListSessions(ctx, index.SessionFilter{})
	if err != nil || len(all) != 2 {
		t.Fatalf("ListSessions = %d, %v", len(all), err)
	}
	for _, s := range all {
		switch s.ID {
		case "blank":
			if s.Playable || s.PlayableFromMS != 0 {
				t.Errorf("blank: playable %v from %d", s.Playable, s.PlayableFromMS)
			}
		case "late":
			if !s.Playable || s.PlayableFromMS != 5000 { // started at 1000, first snapshot at 6000
				t.Errorf("late: playable %v from %d, want from 5000", s.Playable, s.PlayableFromMS)
			}
		}
	}
	only, _, err := db.ListSessions(ctx, index.SessionFilter{Playable: true})
	if err != nil || len(only) != 1 || only[0].ID != "late" {
		t.Fatalf("ListSessions(Playable) = %+v, %v", only, err)
	}
}

func TestDB_RecentSegmentKeys(t *testing.T) { indextest.Each(t, testRecentSegmentKeys) }

// testRecentSegmentKeys: a project's stored segments, newest first, for
// dictionary training; pending ones and other projects' are left out.
func testRecentSegmentKeys(t *testing.T, db *index.DB) {
	ctx := context.Background()
	p, _ := db.CreateProject(ctx, "p", time.Now())
	other, _ := db.CreateProject(ctx, "other", time.Now())
	in, err := db.Ingest(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	sid, _ := record(t, in, p.ID, 0, 1000)
	oid, _ := record(t, in, other.ID, 0, 1000)
	add := func(session int64, key string, done bool) {
		id, err := db.AddPendingSegment(ctx, index.NewSegment{SessionID: session, Key: key, Seqs: []byte(`[[0,1]]`), Snapshots: []byte(`[]`), Events: 1})
		if err != nil {
			t.Fatal(err)
		}
		if done {
			if err := db.MarkSegmentDone(ctx, id); err != nil {
				t.Fatal(err)
			}
		}
	}
	add(sid, "a", true)
	add(oid, "other", true)
	add(sid, "b", true)
	add(sid, "pending", false)
	add(sid, "c", true)
	keys, err := db.RecentSegmentKeys(ctx, p.ID, 2)
	if err != nil || !slices.Equal(keys, []string{"c", "b"}) {
		t.Fatalf("RecentSegmentKeys = %v, %v; want c, b", keys, err)
	}
}

// pagePatternSessions is how many sessions the sessions list finds with
// the page pattern pat.
func pagePatternSessions(t *testing.T, db *index.DB, pat string) int {
	t.Helper()
	got, _, err := db.ListSessions(context.Background(), index.SessionFilter{URL: pat})
	if err != nil {
		t.Fatal(err)
	}
	return len(got)
}

func TestDB_ListSessions_PagePatternPlans(t *testing.T) {
	eachWithErrorClicks(t, testPagePatternPlans)
}

// testPagePatternPlans checks the page pattern filter's three ways to an
// answer against each other: no distinct URL matches; few page views do
// (their sessions looked up); too many distinct URLs do (the list tested
// newest first).
func testPagePatternPlans(t *testing.T, db *index.DB) {
	ctx := context.Background()
	p, in := projectIngest(t, db)
	// Session "many" views 250 items, "one" views item 7 and a page
	// elsewhere, "none" views no item.
	visits := map[string][]string{"none": {"https://x/about"}, "one": {"https://x/item/7", "https://x/cart"}, "many": nil}
	for i := range 250 {
		visits["many"] = append(visits["many"], fmt.Sprintf("https://x/item/%d?ref=list", i))
	}
	// visit records session "sess-"+name at at with one batch viewing
	// urls, then runs then (if any) in the same transaction.
	visit := func(name string, at int64, urls []string, then func(tx *index.IngestTx, id int64) error) {
		t.Helper()
		err := in.Tx(ctx, func(tx *index.IngestTx) error {
			id, _, err := tx.UpsertSession(ctx, index.SessionStart{ProjectID: p.ID, PublicID: "sess-" + name, VisitorID: "v-" + name, StartedAt: at, EndedAt: at, LastReceived: at})
			if err != nil {
				return err
			}
			if _, err := tx.InsertBatch(ctx, id, 0, 1, at, true); err != nil {
				return err
			}
			for j, u := range urls {
				if err := tx.AddPage(ctx, id, at+int64(j), u, strings.SplitN(strings.TrimPrefix(u, "https://x"), "?", 2)[0], 800, 600); err != nil {
					return err
				}
			}
			if then != nil {
				return then(tx, id)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	for i, name := range []string{"none", "one", "many"} {
		visit(name, int64(1000*(i+1)), visits[name], nil)
	}
	for _, tt := range []struct{ pat, want string }{
		{"*nothing*", ""},
		{"*item/7*", "many,one"}, // few distinct URLs
		{"*ITEM/7?REF*", "many"}, // any case
		{"*item/*", "many,one"},  // over 200 distinct URLs
		{"*/item/*ref=list*", "many"},
		{"*x/*", "many,one,none"},
	} {
		got, _, err := db.ListSessions(ctx, index.SessionFilter{URL: tt.pat, ProjectIDs: []int64{p.ID}})
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, s := range got {
			names = append(names, strings.TrimPrefix(s.ID, "sess-"))
		}
		if strings.Join(names, ",") != tt.want {
			t.Errorf("%s: got %v, want %s", tt.pat, names, tt.want)
		}
	}

	// Pages of a few sessions' page pattern, one of them discarded (on
	// PostgreSQL the page comes from an index-only scan that must take
	// the discarded session into account).
	for i, name := range []string{"d1", "d2", "d3", "d4", "d5"} {
		at := int64(4000 + 1000*i)
		var discard func(tx *index.IngestTx, id int64) error
		if name == "d4" {
			discard = func(tx *index.IngestTx, id int64) error {
				_, discarded, err := tx.CloseSession(ctx, id, at+1, index.KeepRule{RequireInteraction: true})
				if err == nil && !discarded {
					err = fmt.Errorf("d4 not discarded")
				}
				return err
			}
		}
		visit(name, at, []string{"https://x/item/7"}, discard)
	}
	for _, f := range []index.SessionFilter{
		{URL: "*item/7*", ProjectIDs: []int64{p.ID}, Limit: 2},
		{URL: "*item/7*", Limit: 2},
		{URL: "*item/7*", ProjectIDs: []int64{p.ID}, Limit: 1, From: time.UnixMilli(2001)},
	} {
		var names []string
		for page := 0; page < 10; page++ {
			got, next, err := db.ListSessions(ctx, f)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range got {
				names = append(names, strings.TrimPrefix(s.ID, "sess-"))
			}
			if f.Cursor = next; next == "" {
				break
			}
		}
		want := "d5,d3,d2,d1,many,one"
		if !f.From.IsZero() {
			want = "d5,d3,d2,d1,many"
		}
		if strings.Join(names, ",") != want {
			t.Errorf("pages of %+v: %v, want %s", f, names, want)
		}
	}
}

func TestIngest_RecordKnownBatch(t *testing.T) { eachWithErrorClicks(t, testRecordKnownBatch) }

// testRecordKnownBatch: a session's later batches recorded with
// RecordKnownBatch leave its row as RecordBatch and CountBatch do (batches
// out of order, a duplicate, a reopened session), and an id that no longer
// names the session writes nothing.
func testRecordKnownBatch(t *testing.T, db *index.DB) {
	p, in := projectIngest(t, db)
	ctx := context.Background()
	start := func(public string, at int64) index.SessionStart {
		return index.SessionStart{ProjectID: p.ID, PublicID: public, VisitorID: "v1", StartedAt: at, EndedAt: at, LastReceived: at,
			UserAgent: "ua", Browser: "Firefox", OS: "Linux"}
	}
	const at = int64(1_700_000_000_000)
	batches := []struct {
		seq, first, last int64
		c                index.BatchCounts
	}{
		{1, at + 5000, at + 9000, index.BatchCounts{Events: 4, Clicks: 1, Bytes: 100, ViewportW: 800, ViewportH: 600, Device: "desktop", EntryURL: "https://x/b"}},
		{0, at, at + 4000, index.BatchCounts{Events: 7, Pages: 1, Errors: 1, Bytes: 300, FullSnapshots: 1, FirstSnapshot: at + 10, EntryURL: "https://x/a", Referrer: "https://search.example"}},
		{2, at + 10000, at + 20000, index.BatchCounts{Events: 2, Clicks: 3, Interactions: 2, Bytes: 50, Dropped: 1, ViewportW: 1024, Device: "tablet"}},
		{2, at + 10000, at + 20000, index.BatchCounts{Events: 2, Clicks: 3, Bytes: 50}}, // a duplicate: counted once
		{3, at + 90000, at + 95000, index.BatchCounts{Events: 1, Bytes: 10}},            // after the session closed
	}
	// record writes the batches of session public, the first with
	// RecordBatch and the others as known says; it closes the session
	// before the last one.
	record := func(public string, known bool) int64 {
		var sid int64
		for i, b := range batches {
			c := b.c
			c.First, c.Last, c.Received = b.first, b.last, b.last
			if i == len(batches)-1 {
				err := in.Tx(ctx, func(tx *index.IngestTx) error {
					closed, _, err := tx.CloseSession(ctx, sid, b.first, index.KeepRule{})
					if err == nil && !closed {
						err = errors.New("not closed")
					}
					return err
				})
				if err != nil {
					t.Fatalf("close %s: %v", public, err)
				}
			}
			err := in.Tx(ctx, func(tx *index.IngestTx) error {
				s := start(public, b.first)
				s.EndedAt, s.LastReceived = b.last, b.last
				if known && sid != 0 {
					found, isNew, inserted, err := tx.RecordKnownBatch(ctx, sid, s, b.seq, c.Events, b.last, false, c)
					if err != nil {
						return err
					}
					if !found || isNew || inserted != (i != 3) {
						return fmt.Errorf("batch %d: found %v, new %v, inserted %v", i, found, isNew, inserted)
					}
					return nil
				}
				id, isNew, inserted, err := tx.RecordBatch(ctx, s, b.seq, c.Events, b.last, false)
				if err != nil {
					return err
				}
				if isNew != (i == 0) || inserted != (i != 3) {
					return fmt.Errorf("batch %d: new %v, inserted %v", i, isNew, inserted)
				}
				sid = id
				if !inserted {
					return nil
				}
				return tx.CountBatch(ctx, id, c)
			})
			if err != nil {
				t.Fatalf("%s: %v", public, err)
			}
		}
		return sid
	}
	row := func(sid int64) index.Session {
		s, err := db.SessionByRowID(ctx, sid)
		if err != nil {
			t.Fatal(err)
		}
		s.ID, s.RowID = "", 0
		return *s
	}
	two, one := record("two-steps", false), record("one-step", true)
	if got, want := row(one), row(two); got != want {
		t.Errorf("recorded as known:\n %+v\nwith RecordBatch and CountBatch:\n %+v", got, want)
	}
	if s := row(one); !s.Live || s.Events != 14 || s.Clicks != 4 || s.EntryURL != "https://x/a" {
		t.Errorf("session: %+v", s)
	}

	// A session created in a transaction that rolled back: its id names no
	// row (or, on SQLite, may name the next session's).
	var gone int64
	err := in.Tx(ctx, func(tx *index.IngestTx) error {
		id, _, _, err := tx.RecordBatch(ctx, start("rolled-back", at), 0, 1, at, false)
		gone = id
		if err == nil {
			err = errors.New("roll back")
		}
		return err
	})
	if err == nil || gone == 0 {
		t.Fatalf("rolled back: %d, %v", gone, err)
	}
	other, _ := recordOne(t, in, start("next", at))
	before := row(other)
	for _, id := range []int64{gone, other, one} {
		err = in.Tx(ctx, func(tx *index.IngestTx) error {
			found, _, inserted, err := tx.RecordKnownBatch(ctx, id, start("rolled-back", at), 5, 1, at, false, index.BatchCounts{Events: 1, First: at, Last: at, Received: at})
			if err == nil && (found || inserted) {
				err = fmt.Errorf("id %d: found %v, inserted %v", id, found, inserted)
			}
			return err
		})
		if err != nil {
			t.Error(err)
		}
	}
	if after := row(other); after != before {
		t.Errorf("another session's row changed:\n %+v\n %+v", after, before)
	}
}

// recordOne records batch 0 of session s with RecordBatch and CountBatch.
func recordOne(t *testing.T, in *index.Ingest, s index.SessionStart) (int64, bool) {
	t.Helper()
	ctx := context.Background()
	var sid int64
	var isNew bool
	err := in.Tx(ctx, func(tx *index.IngestTx) error {
		id, fresh, _, err := tx.RecordBatch(ctx, s, 0, 1, s.LastReceived, false)
		if err != nil {
			return err
		}
		sid, isNew = id, fresh
		return tx.CountBatch(ctx, id, index.BatchCounts{First: s.StartedAt, Last: s.EndedAt, Received: s.LastReceived, Events: 1})
	})
	if err != nil {
		t.Fatal(err)
	}
	return sid, isNew
}

// TestIngest_NewPageURLsInOneOrder: on PostgreSQL two nodes' stage 1
// recording the first views of the same two new pages, in opposite
// orders, do not deadlock: the URLs go into page_urls at the end of each
// transaction, in URL order, so the second neither waits for the first
// one's page views nor makes it wait (a trigger used to add each URL as
// its page view was inserted: the second waited for "one", which the
// first had inserted, the first then for "two", and PostgreSQL failed one
// of them after a second; here the second would time out waiting).
func TestIngest_NewPageURLsInOneOrder(t *testing.T) {
	db := indextest.Open(t, pgtest.Shared(t).Database(t))
	p, in := projectIngest(t, db)
	ctx := context.Background()
	at := time.Now().UnixMilli()
	a, _ := record(t, in, p.ID, 0, at)
	sb := index.SessionStart{ProjectID: p.ID, PublicID: "other", VisitorID: "v2", StartedAt: at, EndedAt: at, LastReceived: at}
	var b int64
	if err := in.Tx(ctx, func(tx *index.IngestTx) (err error) {
		b, _, _, err = tx.RecordBatch(ctx, sb, 0, 1, at, false)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	page := func(ctx context.Context, sid int64, u string) func(*index.IngestTx) error {
		return func(tx *index.IngestTx) error {
			return tx.AddPage(ctx, sid, at, u, strings.TrimPrefix(u, "https://x"), 800, 600)
		}
	}
	release := stage1Holding(t, in, page(ctx, a, "https://x/one"), page(ctx, a, "https://x/two"))
	tctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	err := in.Tx(tctx, func(tx *index.IngestTx) error {
		if err := page(tctx, b, "https://x/two")(tx); err != nil {
			return err
		}
		return page(tctx, b, "https://x/one")(tx)
	})
	if err != nil {
		t.Errorf("second transaction, the first one open: %v", err)
	}
	if err := release(); err != nil {
		t.Errorf("first transaction: %v", err)
	}
	var n int
	if err := db.SQL().Read().QueryRowContext(ctx, `SELECT COUNT(*) FROM page_urls WHERE project_id = ? AND url IN ('https://x/one', 'https://x/two')`, p.ID).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Errorf("page_urls holds %d URLs, want 2", n)
	}
}

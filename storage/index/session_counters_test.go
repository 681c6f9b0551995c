package index_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/trailmap/trailmap/heatmap"
	"github.com/trailmap/trailmap/storage/index"
	"github.com/trailmap/trailmap/storage/index/indextest"
	"github.com/trailmap/trailmap/storage/sqldb"
)

// eachWithErrorClicks runs fn on each backend with the column
// sessions.error_clicks, which on SQLite heatmap's schema adds.
func eachWithErrorClicks(t *testing.T, fn func(t *testing.T, db *index.DB)) {
	indextest.EachWith(t, func(d sqldb.Dialect) []sqldb.Schema {
		if d == sqldb.SQLite {
			return []sqldb.Schema{heatmap.Schema}
		}
		return nil
	}, fn)
}

// sessionsFixture gives db a project and sessions of the given devices,
// visitor "v<i % 2>", started at second i.
func sessionsFixture(t *testing.T, db *index.DB, devices ...string) []int64 {
	t.Helper()
	p, err := db.CreateProject(context.Background(), "p", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for i, d := range devices {
		var id int64
		err := db.SQL().Write().QueryRow(`INSERT INTO sessions (project_id, public_id, visitor_id, started_at, ended_at, last_received, device)
			VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id`, p.ID, fmt.Sprintf("pub%d", i), fmt.Sprintf("v%d", i%2), i*1000, i*1000, i*1000, d).Scan(&id)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	return ids
}

func TestSessionCounters(t *testing.T) {
	eachWithErrorClicks(t, func(t *testing.T, db *index.DB) {
		ids := sessionsFixture(t, db, "mobile")
		ctx := context.Background()
		c, err := db.PrepareSessionCounters(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		err = db.SQL().InTx(ctx, func(tx *sql.Tx) error {
			stx := sqldb.WrapTx(tx)
			if _, err := tx.Exec(`INSERT INTO session_observed (session_id, observed_count) VALUES (?, 3)`, ids[0]); err != nil {
				return err
			}
			st, err := c.SessionState(ctx, stx, ids[0])
			if err != nil {
				return err
			}
			if st.Device != "mobile" || st.Observed != 3 || st.ProjectID == 0 {
				t.Errorf("state %+v, want mobile, 3 observed (read inside the transaction)", st)
			}
			if _, err := c.SessionState(ctx, stx, ids[0]+100); !errors.Is(err, index.ErrNotFound) {
				t.Errorf("unknown session: %v, want ErrNotFound", err)
			}
			for range 2 {
				if err := c.AddFrustration(ctx, stx, ids[0], 1, 2, 3); err != nil {
					return err
				}
			}
			return stx.Flush(ctx) // PostgreSQL writes the counts here
		})
		if err != nil {
			t.Fatal(err)
		}
		s, err := db.SessionByRowID(ctx, ids[0])
		if err != nil {
			t.Fatal(err)
		}
		if s.RageClicks != 2 || s.DeadClicks != 4 || s.ErrorClicks != 6 {
			t.Errorf("rage %d dead %d error clicks %d, want 2 4 6", s.RageClicks, s.DeadClicks, s.ErrorClicks)
		}
	})
}

func TestDB_SessionByRowID(t *testing.T) {
	eachWithErrorClicks(t, func(t *testing.T, db *index.DB) {
		ids := sessionsFixture(t, db, "desktop", "tablet")
		ctx := context.Background()
		s, err := db.SessionByRowID(ctx, ids[1])
		if err != nil {
			t.Fatal(err)
		}
		if s.ID != "pub1" || s.RowID != ids[1] || s.Device != "tablet" || s.StartedAt.UnixMilli() != 1000 {
			t.Errorf("session %+v, want pub1 on tablet started at 1000 ms", s)
		}
		if _, err := db.SessionByRowID(ctx, ids[1]+100); !errors.Is(err, index.ErrNotFound) {
			t.Errorf("unknown session: %v, want ErrNotFound", err)
		}
	})
}

func TestDB_MatchSessions(t *testing.T) {
	eachWithErrorClicks(t, func(t *testing.T, db *index.DB) {
		ids := sessionsFixture(t, db, "desktop", "mobile", "desktop", "mobile")
		ctx := context.Background()
		tests := []struct {
			name string
			ids  []int64
			m    index.Match
			want []int64
		}{
			{"no ids", nil, index.Match{}, nil},
			{"no condition keeps existing ids", []int64{ids[3], ids[0], 999}, index.Match{}, []int64{ids[0], ids[3]}},
			{"column", ids, index.Match{Field: index.FieldDevice, Op: index.OpEq, Text: []string{"desktop"}}, []int64{ids[0], ids[2]}},
			{"among the given ids only", ids[1:], index.Match{Field: index.FieldDevice, Op: index.OpEq, Text: []string{"desktop"}}, []int64{ids[2]}},
			{"none", ids, index.Match{Field: index.FieldUserID, Op: index.OpEq, Text: []string{"nobody"}}, nil},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				got, err := db.MatchSessions(ctx, tt.ids, tt.m)
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(got, tt.want) {
					t.Errorf("got %v, want %v", got, tt.want)
				}
			})
		}
	})
}

// MarkObserved reads the session's state with the mark (on both backends), and
// SessionState in the same transaction answers from it: it must say what
// the row says, batch after batch.
func TestSessionCounters_afterMarkObserved(t *testing.T) {
	eachWithErrorClicks(t, func(t *testing.T, db *index.DB) {
		ctx := context.Background()
		p, in := projectIngest(t, db)
		sid, _ := record(t, in, p.ID, 0, 1000)
		record(t, in, p.ID, 1, 2000)
		c, err := db.PrepareSessionCounters(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		err = in.Tx(ctx, func(tx *index.IngestTx) error {
			for seq := range int64(2) {
				if fresh, err := tx.MarkObserved(ctx, sid, seq); err != nil || !fresh {
					t.Fatalf("MarkObserved(%d) = %v, %v", seq, fresh, err)
				}
				st, err := c.SessionState(ctx, tx.Shared(), sid)
				if err != nil {
					return err
				}
				var row index.SessionState
				err = tx.Shared().SQL().QueryRowContext(ctx, `SELECT s.project_id, s.device, o.observed_count FROM sessions s JOIN session_observed o ON o.session_id = s.id WHERE s.id = ?`, sid).
					Scan(&row.ProjectID, &row.Device, &row.Observed)
				if err != nil {
					return err
				}
				if st != row || st.Observed != seq+1 || st.ProjectID != p.ID {
					t.Errorf("after seq %d: state %+v, the row %+v; want %d observed", seq, st, row, seq+1)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}

// MarkObservedMany marks a chunk of batches ahead (one round trip on
// PostgreSQL, nothing on SQLite) and MarkObserved then answers for each of
// them in turn as it would have alone: false for a batch observed before,
// and each session's count with its batches before it in the chunk.
func TestSessionCounters_afterMarkObservedMany(t *testing.T) {
	eachWithErrorClicks(t, func(t *testing.T, db *index.DB) {
		ctx := context.Background()
		p, in := projectIngest(t, db)
		a, _ := record(t, in, p.ID, 0, 1000)
		record(t, in, p.ID, 1, 2000)
		record(t, in, p.ID, 2, 3000)
		var b int64
		err := in.Tx(ctx, func(tx *index.IngestTx) error {
			var err error
			b, _, _, err = tx.RecordBatch(ctx, index.SessionStart{ProjectID: p.ID, PublicID: "other", VisitorID: "v2", StartedAt: 1500, EndedAt: 1500, LastReceived: 1500}, 0, 1, 1500, false)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		c, err := db.PrepareSessionCounters(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		err = in.Tx(ctx, func(tx *index.IngestTx) error {
			if fresh, err := tx.MarkObserved(ctx, a, 0); err != nil || !fresh {
				t.Fatalf("MarkObserved(a, 0) = %v, %v", fresh, err)
			}
			chunk := []index.BatchKey{{SessionID: a, Seq: 0}, {SessionID: a, Seq: 1}, {SessionID: b, Seq: 0}, {SessionID: a, Seq: 2}, {SessionID: a, Seq: 9}}
			if err := tx.MarkObservedMany(ctx, chunk); err != nil {
				return err
			}
			for i, want := range []int64{0, 2, 1, 3, 0} { // 0: not fresh
				k := chunk[i]
				fresh, err := tx.MarkObserved(ctx, k.SessionID, k.Seq)
				if err != nil {
					return err
				}
				if fresh != (want > 0) {
					t.Errorf("%+v: fresh %v, want %v", k, fresh, want > 0)
				}
				if !fresh {
					continue
				}
				st, err := c.SessionState(ctx, tx.Shared(), k.SessionID)
				if err != nil {
					return err
				}
				if st.Observed != want || st.ProjectID != p.ID {
					t.Errorf("%+v: state %+v, want %d observed", k, st, want)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		for sid, want := range map[int64]int64{a: 3, b: 1} {
			var n int64
			if err := db.SQL().Read().QueryRowContext(ctx, `SELECT observed_count FROM session_observed WHERE session_id = ?`, sid).Scan(&n); err != nil || n != want {
				t.Errorf("session %d: observed_count %d, %v; want %d", sid, n, err, want)
			}
		}
	})
}

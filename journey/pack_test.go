package journey

import (
	"context"
	"reflect"
	"testing"

	"github.com/trailmap/trailmap/storage/sqldb"
)

// TestPack checks that packed and loose sessions give the same answers,
// and that re-deriving or deleting a packed session dissolves its chunk.
func TestPack(t *testing.T) {
	eachFixture(t, func(t *testing.T, f *fixture) {
		f.noPack = true
		ss := shopSessions(f)
		ctx := context.Background()
		q := FunnelQuery{ProjectID: f.project, Def: FunnelDef{Steps: shopSteps}, From: day, To: day.AddDate(0, 0, 1), Split: "device"}
		run := func() []SplitResult {
			t.Helper()
			res, err := f.svc.RunFunnel(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			return append([]SplitResult{{Value: "all", Steps: res.Steps}}, res.Splits...)
		}
		count := func(q string) int {
			t.Helper()
			var n int
			if err := f.db.SQL().Read().QueryRow(q).Scan(&n); err != nil {
				t.Fatal(err)
			}
			return n
		}
		loose := run()
		if n, err := f.svc.Pack(ctx, false); err != nil || n != 0 {
			t.Fatalf("routine pack of a few sessions: %d %v", n, err)
		}
		if n, err := f.svc.Pack(ctx, true); err != nil || n != 9 {
			t.Fatalf("forced pack: %d %v", n, err)
		}
		if got := run(); !reflect.DeepEqual(got, loose) {
			t.Errorf("packed %+v\nloose %+v", got, loose)
		}
		if count(`SELECT COUNT(*) FROM journey_sessions WHERE chunk IS NULL`) != 0 || count(`SELECT COUNT(*) FROM journey_chunks`) != 1 {
			t.Fatal("not packed")
		}
		// A late batch re-derives one session: its chunk dissolves.
		if err := f.db.SQL().InSharedTx(ctx, func(tx *sqldb.Tx) error { return f.svc.SessionClosed(ctx, tx, ss["S1"].row) }); err != nil {
			t.Fatal(err)
		}
		if count(`SELECT COUNT(*) FROM journey_sessions WHERE chunk IS NULL`) != 9 || count(`SELECT COUNT(*) FROM journey_chunks`) != 0 {
			t.Fatal("chunk not dissolved")
		}
		if got := run(); !reflect.DeepEqual(got, loose) {
			t.Errorf("after dissolving %+v\nloose %+v", got, loose)
		}
		// Retention deletes a packed session: it leaves every report.
		if _, err := f.svc.Pack(ctx, true); err != nil {
			t.Fatal(err)
		}
		f.exec(`DELETE FROM pages WHERE session_id = ?`, ss["S4"].row)
		f.exec(`DELETE FROM custom_events WHERE session_id = ?`, ss["S4"].row)
		f.exec(`DELETE FROM sessions WHERE id = ?`, ss["S4"].row)
		if count(`SELECT COUNT(*) FROM journey_sessions`) != 8 || count(`SELECT COUNT(*) FROM journey_chunks`) != 0 {
			t.Fatal("deleted session still derived")
		}
		res, err := f.svc.RunFunnel(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		if res.Steps[0].Count != 6 || res.Steps[0].Dropped != 1 {
			t.Errorf("after delete: %+v", res.Steps[0])
		}
	})
}

package journey

import (
	"context"
	"testing"

	"github.com/trailmap/trailmap/storage/sqldb"
)

// TestService_ForgetSessions: a packed session's rows go without the
// trigger on sessions (the sessions row stays here), its chunk dissolves,
// the chunk's other sessions stay, loose, and funnels still answer.
func TestService_ForgetSessions(t *testing.T) {
	eachFixture(t, func(t *testing.T, f *fixture) {
		f.noPack = true
		ss := shopSessions(f)
		ctx := context.Background()
		count := func(q string, args ...any) int {
			t.Helper()
			var n int
			if err := f.db.SQL().Read().QueryRow(q, args...).Scan(&n); err != nil {
				t.Fatal(err)
			}
			return n
		}
		if n, err := f.svc.Pack(ctx, true); err != nil || n != 9 {
			t.Fatalf("forced pack: %d %v", n, err)
		}
		row := ss["S1"].row
		var got map[string]int
		err := f.db.InSharedTx(ctx, func(tx *sqldb.Tx) error {
			var err error
			got, err = f.svc.ForgetSessions(ctx, tx, []int64{row})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if got["journey_sessions"] != 1 || got["journey_chunks"] != 1 {
			t.Errorf("counts %v", got)
		}
		if count(`SELECT COUNT(*) FROM journey_sessions WHERE session_id = ?`, row) != 0 ||
			count(`SELECT COUNT(*) FROM journey_searches WHERE session_id = ?`, row) != 0 {
			t.Error("rows of the session left")
		}
		if count(`SELECT COUNT(*) FROM journey_chunks`) != 0 || count(`SELECT COUNT(*) FROM journey_sessions WHERE chunk IS NULL`) != 8 {
			t.Error("chunk not dissolved into 8 loose sessions")
		}
		if _, err := f.svc.RunFunnel(ctx, FunnelQuery{ProjectID: f.project, Def: FunnelDef{Steps: shopSteps}, From: day, To: day.AddDate(0, 0, 1)}); err != nil {
			t.Errorf("funnel after forget: %v", err)
		}
		// Again: nothing.
		err = f.db.InSharedTx(ctx, func(tx *sqldb.Tx) error {
			var err error
			got, err = f.svc.ForgetSessions(ctx, tx, []int64{row})
			return err
		})
		if err != nil || got["journey_sessions"] != 0 || got["journey_chunks"] != 0 {
			t.Errorf("again: %v %v", got, err)
		}
	})
}

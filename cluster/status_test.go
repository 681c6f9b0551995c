package cluster

import (
	"context"
	"testing"
	"time"

	"github.com/trailmap/trailmap/storage/index"
	"github.com/trailmap/trailmap/storage/index/indextest"
)

// ReadStatus tells alive, stale and gone nodes apart, counts the sessions
// each claimed within the window (those of a stale or gone node as
// orphaned), and lists the cluster-wide jobs' last starts.
func TestReadStatus(t *testing.T) {
	indextest.Each(t, func(t *testing.T, db *index.DB) {
		ctx := context.Background()
		clk := &clock{t: time.Now().Add(-3 * time.Hour)}
		a := node(t, db, "http://10.0.0.1:8080", clk)
		claim := func(c *Cluster, session string) {
			t.Helper()
			if got, err := c.Owner(ctx, session); err != nil || got != c.Self() {
				t.Fatalf("%s claims %s: owner %q, %v", c.Self(), session, got, err)
			}
		}
		claim(a, "old-session") // outside the window
		clk.add(3 * time.Hour)
		b := node(t, db, "http://10.0.0.2:8080", clk)
		c := node(t, db, "http://10.0.0.3:8080", clk)
		d := node(t, db, "http://10.0.0.4:8080", clk)
		claim(a, "s1")
		claim(a, "s2")
		claim(b, "s3")
		claim(c, "s4")
		claim(c, "s5")
		claim(d, "s6")
		// d leaves as a graceful stop does; c stops beating.
		if _, err := db.SQL().Write().ExecContext(ctx, `DELETE FROM cluster_nodes WHERE id = ?`, d.Self()); err != nil {
			t.Fatal(err)
		}
		clk.add(11 * time.Second)
		for _, n := range []*Cluster{a, b} {
			if err := n.beat(ctx, false); err != nil {
				t.Fatal(err)
			}
		}
		jobs := NewJobs(db.SQL(), b.Self())
		jobs.now = clk.now
		if _, err := jobs.Once(ctx, "retention", time.Hour, func(context.Context) error { return nil }); err != nil {
			t.Fatal(err)
		}
		st, err := ReadStatus(ctx, db.SQL(), clk.now(), DefaultStale, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		want := []struct {
			node, state string
			sessions    int64
		}{{a.Self(), NodeAlive, 2}, {b.Self(), NodeAlive, 1}, {c.Self(), NodeStale, 2}, {d.Self(), NodeGone, 1}}
		if len(st.Nodes) != len(want) {
			t.Fatalf("nodes %+v, want %d", st.Nodes, len(want))
		}
		for i, w := range want {
			n := st.Nodes[i]
			if n.Node != w.node || n.State != w.state || n.Sessions != w.sessions {
				t.Errorf("node %d: %s %s %d sessions, want %s %s %d", i, n.Node, n.State, n.Sessions, w.node, w.state, w.sessions)
			}
			if (n.SeenAt == nil) != (w.state == NodeGone) {
				t.Errorf("node %s: seen at %v", n.Node, n.SeenAt)
			}
		}
		if st.Orphaned != 3 {
			t.Errorf("orphaned sessions %d, want 3 (c's two and d's one)", st.Orphaned)
		}
		if len(st.Jobs) != 1 || st.Jobs[0].Name != "retention" || st.Jobs[0].Node != b.Self() || !st.Jobs[0].StartedAt.Equal(clk.now().Truncate(time.Millisecond)) {
			t.Errorf("jobs %+v", st.Jobs)
		}
		if st.Stale != "10s" || st.Window != "1h0m0s" {
			t.Errorf("stale %q, window %q", st.Stale, st.Window)
		}
	}, Schema)
}

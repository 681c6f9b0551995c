package cluster

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trailmap/trailmap/storage/index"
	"github.com/trailmap/trailmap/storage/index/indextest"
)

// A cluster-wide job runs once per period whichever nodes tick: not again
// on the node that ran it, not on another node within the period, on
// either once the period is over, and once when nodes tick together.
func TestJobs_OncePerPeriod(t *testing.T) {
	indextest.Each(t, func(t *testing.T, db *index.DB) {
		ctx := context.Background()
		clk := &clock{t: time.Now()}
		nodes := []*Jobs{NewJobs(db.SQL(), "http://10.0.0.1:8080"), NewJobs(db.SQL(), "http://10.0.0.2:8080"), NewJobs(db.SQL(), "http://10.0.0.3:8080")}
		for _, n := range nodes {
			n.now = clk.now
		}
		runs := map[string]int{}
		tick := func(n *Jobs, job string) bool {
			t.Helper()
			ran, err := n.Once(ctx, job, time.Hour, func(context.Context) error {
				runs[job]++
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			return ran
		}
		if !tick(nodes[0], "retention") {
			t.Fatal("the first tick did not run the job")
		}
		clk.add(20 * time.Minute)
		for _, n := range nodes {
			if tick(n, "retention") {
				t.Fatalf("%s ran the job 20 minutes after it ran", n.self)
			}
		}
		if !tick(nodes[1], "dictionaries") {
			t.Fatal("another job was held by the first one's run")
		}
		clk.add(38 * time.Minute) // 58 minutes: a tick a little early still runs it
		if !tick(nodes[2], "retention") || tick(nodes[0], "retention") {
			t.Fatal("after its period the job ran on none or on two nodes")
		}
		if runs["retention"] != 2 || runs["dictionaries"] != 1 {
			t.Fatalf("runs %v", runs)
		}

		// Nodes ticking at once: one runs it (the others skip on the lock,
		// or take it after and find the job run).
		clk.add(2 * time.Hour)
		var ran, reported atomic.Int32
		var wg sync.WaitGroup
		for _, n := range nodes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ok, err := n.Once(ctx, "retention", time.Hour, func(context.Context) error {
					ran.Add(1)
					return nil
				})
				if err != nil {
					t.Error(err)
				}
				if ok {
					reported.Add(1)
				}
			}()
		}
		wg.Wait()
		if ran.Load() != 1 || reported.Load() != 1 {
			t.Fatalf("%d nodes ran the job ticking together (%d said so)", ran.Load(), reported.Load())
		}
	}, Schema)
}

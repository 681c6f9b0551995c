package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/trailmap/trailmap/cluster"
)

// `trailmap cluster status` on one node's SQLite index: no nodes, the
// cluster-wide jobs it ran; bad arguments are usage errors. (On a cluster:
// TestCluster_ThreeNodesAndAKill.)
func TestClusterStatusCommand(t *testing.T) {
	ctx := context.Background()
	data := t.TempDir()
	db, err := openIndex(ctx, data, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cluster.NewJobs(db.SQL(), "this-node").Once(ctx, "retention", time.Hour, func(context.Context) error { return nil }); err != nil {
		t.Fatal(err)
	}
	db.Close()
	var out strings.Builder
	if err := run(ctx, []string{"cluster", "status", "--data", data, "--window", "30m"}, strings.NewReader(""), &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	var st cluster.Status
	if err := json.Unmarshal([]byte(out.String()), &st); err != nil {
		t.Fatalf("output %q: %v", out.String(), err)
	}
	if len(st.Nodes) != 0 || st.Window != "30m0s" || len(st.Jobs) != 1 || st.Jobs[0].Name != "retention" || st.Jobs[0].Node != "this-node" {
		t.Errorf("status %+v", st)
	}
	for _, bad := range [][]string{{"cluster"}, {"cluster", "nodes"}, {"cluster", "status", "extra"}, {"cluster", "status", "--window", "0s"}, {"cluster", "status", "--window", "soon"}} {
		var ue usageError
		if err := run(ctx, append(bad, "--data", data), strings.NewReader(""), io.Discard, io.Discard); !errors.As(err, &ue) {
			t.Errorf("%q: %v, want a usage error", bad, err)
		}
	}
}

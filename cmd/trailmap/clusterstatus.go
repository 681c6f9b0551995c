package main

import (
	"context"
	"encoding/json"
	"flag"
	"io"
	"time"

	"github.com/trailmap/trailmap/cluster"
)

// clusterStatus runs `trailmap cluster status [--window D]`: it prints, as
// JSON, what the index says of the cluster — each node (alive, stale: not
// seen for the stale time, or gone: stopped but still named by sessions),
// the sessions each claimed within the window and those left to a stale or
// gone node (taken over at their next batch), and when each cluster-wide
// job last started and where. On one node with SQLite it lists the jobs.
func clusterStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("cluster status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	data := fs.String("data", "./data", "data directory (the SQLite index, when there is no --index-url)")
	indexURL := indexURLFlag(fs)
	window := fs.Duration("window", time.Hour, "count the sessions claimed within this time")
	if err := envTwins(fs); err != nil {
		return usageError{err.Error()}
	}
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 || *window <= 0 {
		return usageError{"usage: trailmap cluster status [--window 1h] [--index-url URL] [--data DIR]"}
	}
	db, err := openIndex(ctx, *data, *indexURL)
	if err != nil {
		return err
	}
	defer db.Close()
	// The nodes judge each other stale after the default stale time; so
	// does this.
	st, err := cluster.ReadStatus(ctx, db.SQL(), time.Now(), cluster.DefaultStale, *window)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(st)
}

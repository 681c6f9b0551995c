package main

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/trailmap/trailmap/internal/loadtest"
	"github.com/trailmap/trailmap/internal/pgtest"
	"github.com/trailmap/trailmap/internal/rrwebgen"
	"github.com/trailmap/trailmap/internal/servertest"
)

// BenchmarkIngestServer measures ingest end to end against the real binary
// over loopback, with everything a production server runs at ingest (index,
// heatmap and journey facts), on SQLite and on PostgreSQL: peak MB/s and
// events/s with 32 clients, until the facts of every batch are written
// (sustained), the acknowledgements alone (acked: the 202 waits only for
// the write-ahead log, up to --max-unindexed batches ahead of the index),
// until a graceful stop has stored all of it in segments (stored), each as
// a ratio to the floor (the same clients against a server that only
// gunzips), the server's CPU per batch split by stage (from a CPU profile
// of its labelled stages), PostgreSQL's CPU per batch (db-cpu-µs/batch, its
// processes' CPU time over the same run), and p50/p99 acknowledgement
// latency at half of the peak rate. postgres-remote reaches the same
// PostgreSQL through a proxy that adds about 0.5 ms to each round trip
// (0.1 ms each way and its own hops: a query takes ~0.6 ms through it,
// ~0.07 ms without), as a database on another host of the same network
// would: what the stages' round trips cost.
func BenchmarkIngestServer(b *testing.B) {
	peak := rrwebgen.NewWorkload(128, 24, "peak")
	half := rrwebgen.NewWorkload(128, 12, "half")
	for _, backend := range []string{"sqlite", "postgres", "postgres-remote"} {
		b.Run(backend, func(b *testing.B) {
			for range b.N {
				loadtest.Measure(b, func() loadtest.Target {
					index := ""
					var dbCPU func() (float64, error)
					if backend != "sqlite" {
						pg := pgtest.Shared(b)
						index, dbCPU = pg.Database(b), pg.CPUSeconds
						logStatements(b, pg, index)
						if backend == "postgres-remote" {
							index = pgtest.Delayed(b, index, 100*time.Microsecond)
						}
					}
					pprof := servertest.FreeAddr(b)
					s := servertest.StartOn(b, index, "--pprof-addr", pprof)
					c := loadtest.NewClient(s.URL, s.WriteKey)
					c.Settled = c.ObserversSettled
					return loadtest.Target{Client: c, Drain: func() { s.Stop(b) }, Pprof: pprof, DBCPU: dbCPU, CPU: s.CPUSeconds}
				}, peak, half)
			}
		})
	}
}

// BenchmarkIngestOverload sends from 2,000 clients at once (as many
// browsers flushing their outboxes after an outage), each batch right after
// the previous one's answer and a refused one after the Retry-After asked
// for, for 8 s: accepted batches/s, the share refused with 503 overloaded,
// p99 acknowledgement latency and peak resident memory of the server, with
// the default --max-inflight and without a bound.
func BenchmarkIngestOverload(b *testing.B) {
	w := rrwebgen.NewWorkload(2000, 12, "overload")
	for _, limit := range []string{"128", "0"} {
		b.Run("max-inflight="+limit, func(b *testing.B) {
			for range b.N {
				s := servertest.Start(b, "--max-inflight", limit)
				o, err := loadtest.NewClient(s.URL, s.WriteKey).RunOverload(w, 8*time.Second)
				if err != nil {
					b.Fatal(err)
				}
				s.Stop(b)
				b.ReportMetric(o.AcceptedPerSec, "accepted/s")
				b.ReportMetric(100*o.RefusedShare, "refused-%")
				b.ReportMetric(float64(o.P99.Milliseconds()), "p99-ack-ms")
				b.ReportMetric(o.PeakRSS/(1<<20), "peak-RSS-MiB")
			}
		})
	}
}

// logStatements logs, when the run ends, the statements PostgreSQL ran in
// database dbURL per batch recorded, most frequent first, if its server
// counts them (TRAILMAP_PG_STATEMENTS=1, see pgtest.Server.Statements).
func logStatements(b *testing.B, pg *pgtest.Server, dbURL string) {
	ctx := context.Background()
	if err := pg.ResetStatements(ctx); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { // before the database is dropped
		u, err := url.Parse(dbURL)
		if err != nil {
			b.Fatal(err)
		}
		sts, err := pg.Statements(ctx, strings.TrimPrefix(u.Path, "/"))
		if err != nil {
			b.Error(err)
		}
		if len(sts) == 0 {
			return // not counted (or the error above)
		}
		db, err := sql.Open("pgx", dbURL)
		if err != nil {
			b.Fatal(err)
		}
		defer db.Close()
		var batches float64
		if err := db.QueryRowContext(ctx, `SELECT count(*) FROM batches`).Scan(&batches); err != nil || batches == 0 {
			b.Errorf("count batches: %v", err)
			return
		}
		var all float64
		var lines []string
		for _, st := range sts {
			all += float64(st.Calls)
			if len(lines) < 30 {
				q := strings.Join(strings.Fields(st.Query), " ")
				lines = append(lines, fmt.Sprintf("%6.2f/batch %7.1f µs  %.150s", float64(st.Calls)/batches, 1000*st.TotalMS/float64(max(st.Calls, 1)), q))
			}
		}
		b.Logf("%.0f batches, %.1f statements per batch; most called:\n%s", batches, all/batches, strings.Join(lines, "\n"))
	})
}

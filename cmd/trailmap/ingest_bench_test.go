package main

import (
	"testing"

	"github.com/trailmap/trailmap/internal/loadtest"
	"github.com/trailmap/trailmap/internal/rrwebgen"
	"github.com/trailmap/trailmap/internal/servertest"
)

// BenchmarkIngestServer measures ingest end to end against the real binary
// over loopback, with everything a production server runs at ingest (index,
// heatmap and journey facts): peak MB/s and events/s with 32 clients, until
// the observers of every batch have run (stage 2 of the index may lag behind
// the acknowledgements by up to 4,096 batches; acked-MB/s ignores that), and
// until a graceful stop has stored all of it in segments (stored-MB/s), the
// single-core zstd-fastest encode speed of the same bytes, the floor (a
// server that only gunzips) and p50/p99 acknowledgement latency at half of
// the peak rate.
func BenchmarkIngestServer(b *testing.B) {
	peak := rrwebgen.NewWorkload(128, 24, "peak")
	half := rrwebgen.NewWorkload(128, 12, "half")
	for range b.N {
		loadtest.Measure(b, func() loadtest.Target {
			s := servertest.Start(b)
			c := loadtest.NewClient(s.URL, s.WriteKey)
			c.Settled = c.ObserversSettled
			return loadtest.Target{Client: c, Drain: func() { s.Stop(b) }}
		}, peak, half)
	}
}

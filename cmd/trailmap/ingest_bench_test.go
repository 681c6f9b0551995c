package main

import (
	"testing"

	"github.com/trailmap/trailmap/internal/loadtest"
	"github.com/trailmap/trailmap/internal/rrwebgen"
	"github.com/trailmap/trailmap/internal/servertest"
)

// BenchmarkIngestServer measures ingest end to end against the real binary
// over loopback, with everything a production server runs at ingest (index,
// heatmap and journey facts): peak MB/s and events/s with 32 clients, the
// single-core zstd-fastest encode speed of the same bytes, and p50/p99
// acknowledgement latency at half of the peak rate.
func BenchmarkIngestServer(b *testing.B) {
	peak := rrwebgen.NewWorkload(64, 24, "peak")
	half := rrwebgen.NewWorkload(64, 12, "half")
	for range b.N {
		s := servertest.Start(b)
		c := loadtest.NewClient(s.URL, s.WriteKey)
		loadtest.Measure(b, c, peak, half)
	}
}

package recorder_test

import (
	"context"
	"testing"

	"github.com/trailmap/trailmap/internal/loadtest"
	"github.com/trailmap/trailmap/internal/rrwebgen"
)

// BenchmarkIngestHTTP measures the ingest pipeline alone (in process, no
// heatmap or journey observers) over loopback HTTP: gzip decode, validation,
// WAL fsync, index. cmd/trailmap's BenchmarkIngestServer measures the whole
// binary. Figures: peak MB/s and events/s with 32 clients, the single-core
// zstd-fastest encode speed of the same bytes, and the p99 acknowledgement
// latency at half of the peak rate (see loadtest.Measure).
func BenchmarkIngestHTTP(b *testing.B) {
	peak := rrwebgen.NewWorkload(64, 24, "peak")
	half := rrwebgen.NewWorkload(64, 12, "half")
	for range b.N {
		loadtest.Measure(b, func() loadtest.Target {
			s := newStack(b, nil)
			return loadtest.Target{
				Client: loadtest.NewClient(s.url, s.key),
				Drain: func() {
					if err := s.rec.Close(context.Background()); err != nil {
						b.Fatal(err)
					}
				},
			}
		}, peak, half)
	}
}

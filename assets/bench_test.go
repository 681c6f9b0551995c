package assets_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/trailmap/trailmap/assets"
	"github.com/trailmap/trailmap/heatmap"
	"github.com/trailmap/trailmap/internal/rrwebgen"
	"github.com/trailmap/trailmap/journey"
	"github.com/trailmap/trailmap/recorder"
	"github.com/trailmap/trailmap/storage/index/indextest"
)

// BenchmarkIngest_assets ingests the same workload (sessions of pages with
// ~2,000 nodes, images among them) in process, with the heatmap and journey
// observers as `trailmap serve` runs them, with asset capture off and on in
// the same run, and reports acknowledged events/s of each and their
// ratio (on/off; the goal is ≥ 0.9). The daily fetch cap is 1, so what is
// measured is the cost ingest bears: queueing, and reading every batch for
// asset URLs on the collector goroutine alongside, not the network.
func BenchmarkIngest_assets(b *testing.B) {
	w := rrwebgen.NewWorkload(32, 12, "bench")
	var off, on, dropped float64
	for i := range b.N {
		r, _ := ingestRate(b, w, false, i)
		off += r
		r, d := ingestRate(b, w, true, i)
		on += r
		dropped += d
	}
	b.ReportMetric(off/float64(b.N), "events/s_off")
	b.ReportMetric(on/float64(b.N), "events/s_on")
	b.ReportMetric(on/off, "ratio_on/off")
	// Batches the asset queue dropped at this saturating rate (their
	// assets are not copied): the price of leaving ingest alone.
	b.ReportMetric(dropped/float64(b.N*w.Batches()), "dropped_batch_share")
}

func ingestRate(b *testing.B, w *rrwebgen.Workload, capture bool, run int) (rate, dropped float64) {
	b.Helper()
	b.StopTimer()
	ctx := context.Background()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	db := indextest.New(b, heatmap.Schema, journey.Schema, assets.Schema)
	p, err := db.CreateProject(ctx, fmt.Sprintf("bench%d%v", run, capture), time.Now())
	if err != nil {
		b.Fatal(err)
	}
	blobs := mustFS(b)
	// As `trailmap serve` runs: heatmap and journey observe every batch.
	hm, err := heatmap.New(ctx, heatmap.DefaultConfig(), db.SQL(), db, logger)
	if err != nil {
		b.Fatal(err)
	}
	defer hm.Close()
	jr, err := journey.New(ctx, db, logger)
	if err != nil {
		b.Fatal(err)
	}
	defer jr.Close()
	observers := []recorder.Observer{hm, jr}
	var svc *assets.Service
	reg := prometheus.NewRegistry()
	if capture {
		counters, err := db.PrepareSessionCounters(ctx)
		if err != nil {
			b.Fatal(err)
		}
		defer counters.Close()
		cfg := assets.DefaultConfig()
		cfg.MaxProjectDayFetches = 1
		if svc, err = assets.New(cfg, assets.NewStore(db.SQL()), blobs, counters, db, reg, logger); err != nil {
			b.Fatal(err)
		}
		defer svc.Close()
		observers = append(observers, svc)
	}
	rcfg := recorder.DefaultConfig(b.TempDir())
	rcfg.RatePerIP, rcfg.RatePerKey = 0, 0
	rec, err := recorder.New(ctx, rcfg, db, blobs, nil, logger, observers...)
	if err != nil {
		b.Fatal(err)
	}
	b.StartTimer()
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, len(w.Bodies))
	for _, bodies := range w.Bodies {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, body := range bodies {
				if _, err := rec.Ingest(ctx, recorder.Request{Key: p.WriteKey, Encoding: "gzip", Body: bytes.NewReader(body)}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	if err := rec.Close(ctx); err != nil {
		b.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		b.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "trailmap_assets_dropped_total" {
			for _, m := range mf.GetMetric() {
				for _, l := range m.GetLabel() {
					if strings.HasPrefix(l.GetValue(), "batch_queue") {
						dropped += m.GetCounter().GetValue()
					}
				}
			}
		}
	}
	b.StartTimer()
	return float64(w.Events) / elapsed.Seconds(), dropped
}

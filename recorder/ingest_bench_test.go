package recorder_test

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"runtime/pprof"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/trailmap/trailmap/internal/rrwebgen"
)

// workload is a set of realistic sessions, gzip-compressed as browsers send
// them: a full snapshot, then 5 s batches of mouse moves, clicks, scrolls,
// mutations and inputs.
type workload struct {
	bodies [][][]byte // [session][seq] gzip body
	raw    []byte     // all decompressed bodies, concatenated
	events int
}

func makeWorkload(b *testing.B, sessions, batches int, tag string) *workload {
	w := &workload{bodies: make([][][]byte, sessions)}
	var raw bytes.Buffer
	for i := range sessions {
		g := rrwebgen.New(uint64(i+1), 1_764_000_000_000)
		for seq := range batches {
			var evs []json.RawMessage
			if seq == 0 {
				evs = g.Page(2000)
			}
			evs = append(evs, g.Activity(5)...)
			w.events += len(evs)
			body, _ := json.Marshal(map[string]any{"session_id": fmt.Sprintf("%s_%05d", tag, i), "visitor_id": "visitor_bench", "seq": seq, "events": evs})
			raw.Write(body)
			var gz bytes.Buffer
			zw := gzip.NewWriter(&gz)
			zw.Write(body)
			zw.Close()
			w.bodies[i] = append(w.bodies[i], gz.Bytes())
		}
	}
	w.raw = raw.Bytes()
	return w
}

// BenchmarkIngestHTTP measures ingest over loopback HTTP, end to end (gzip
// decode, validation, WAL fsync, index): peak throughput with 32 concurrent
// clients, the single-core zstd-fastest encode speed of the same bytes for
// scale, and the p99 acknowledgement latency at half of the peak rate.
func BenchmarkIngestHTTP(b *testing.B) {
	for range b.N {
		b.StopTimer()
		s := newStack(b, nil)
		peak := makeWorkload(b, 64, 24, "peak")
		half := makeWorkload(b, 64, 12, "half")
		tr := &http.Transport{MaxIdleConnsPerHost: 64}
		hc := &http.Client{Transport: tr}
		send := func(body []byte) error {
			req, _ := http.NewRequest(http.MethodPost, s.url+"/api/v1/ingest", bytes.NewReader(body))
			req.Header.Set("X-Trailmap-Key", s.key)
			req.Header.Set("Content-Encoding", "gzip")
			req.Header.Set("Content-Type", "application/json")
			resp, err := hc.Do(req)
			if err != nil {
				return err
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusAccepted {
				return fmt.Errorf("status %d", resp.StatusCode)
			}
			return nil
		}
		b.StartTimer()
		if f := os.Getenv("TRAILMAP_BENCH_CPUPROFILE"); f != "" {
			pf, _ := os.Create(f)
			pprof.StartCPUProfile(pf)
		}

		// Peak: 32 clients, each taking whole sessions in seq order.
		start := time.Now()
		var next atomic.Int64
		var wg sync.WaitGroup
		for range 32 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					i := int(next.Add(1) - 1)
					if i >= len(peak.bodies) {
						return
					}
					for _, body := range peak.bodies[i] {
						if err := send(body); err != nil {
							b.Error(err)
							return
						}
					}
				}
			}()
		}
		wg.Wait()
		elapsed := time.Since(start)
		pprof.StopCPUProfile()
		batches := 0
		for _, s := range peak.bodies {
			batches += len(s)
		}
		mbs := float64(len(peak.raw)) / elapsed.Seconds() / 1e6
		b.ReportMetric(mbs, "MB/s")
		b.ReportMetric(float64(peak.events)/elapsed.Seconds(), "events/s")
		peakRate := float64(batches) / elapsed.Seconds()

		// The same bytes through zstd's fastest level on one core.
		enc, _ := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
		enc.EncodeAll(peak.raw[:1<<20], nil)
		zs := time.Now()
		n := 0
		for time.Since(zs) < time.Second {
			enc.EncodeAll(peak.raw, nil)
			n++
		}
		zmbs := float64(n*len(peak.raw)) / time.Since(zs).Seconds() / 1e6
		b.ReportMetric(zmbs, "zstd-fastest-1core-MB/s")
		b.ReportMetric(mbs/zmbs, "ingest/zstd")

		// Half of peak: paced requests, each latency recorded.
		var all [][]byte
		for j := range 12 {
			for i := range half.bodies {
				all = append(all, half.bodies[i][j])
			}
		}
		interval := time.Duration(float64(time.Second) / (peakRate / 2))
		lat := make([]time.Duration, len(all))
		sem := make(chan struct{}, 256)
		tick := time.NewTicker(interval)
		for i, body := range all {
			<-tick.C
			sem <- struct{}{}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				t0 := time.Now()
				if err := send(body); err != nil {
					b.Error(err)
				}
				lat[i] = time.Since(t0)
			}()
		}
		tick.Stop()
		wg.Wait()
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ack-ms@half-peak")
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ack-ms@half-peak")
	}
}

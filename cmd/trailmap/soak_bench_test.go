package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trailmap/trailmap/internal/rrwebgen"
	"github.com/trailmap/trailmap/internal/servertest"
)

// BenchmarkSoak runs the real binary under a steady mix of work for
// SOAK_DURATION (default 2m; SOAK_DURATION=10m for a long run; use
// -benchtime 1x): writers record sessions of eight 5-second batches each
// (a page snapshot, then activity; sessions end by the idle timeout and
// their segments are stored), while readers replay sessions (events API),
// read session metadata, heatmap JSON (pages, then clicks of a page) and
// journeys (paths, people). Anything but a 2xx (or a 503 retried after its
// Retry-After) fails it.
//
// It reports the server's resident memory, goroutines, open file
// descriptors and open index connections 10 s into the load ("start"), at
// its end ("end") and 5 s after it ("idle"), with the peak RSS and the rates
// achieved. RSS and descriptors come from /proc/<pid>, goroutines and index
// connections (and the Go heap in use) from /metrics. A leak shows as end (and idle) far above start.
func BenchmarkSoak(b *testing.B) {
	d := 2 * time.Minute
	if v := os.Getenv("SOAK_DURATION"); v != "" {
		var err error
		if d, err = time.ParseDuration(v); err != nil || d < 20*time.Second {
			b.Fatalf("SOAK_DURATION=%q: want a duration of at least 20s", v)
		}
	}
	for range b.N {
		s := servertest.Start(b, "--segment-max-age", "10s", "--session-idle", "15s")
		soak(b, s, d)
		s.Stop(b)
	}
}

// soakSample is the server's state at one moment.
type soakSample struct {
	rssMiB     float64
	heapMiB    float64 // Go heap in use
	fds        float64
	goroutines float64
	dbConns    float64
}

func sampleServer(b *testing.B, s *servertest.Server) soakSample {
	b.Helper()
	var out soakSample
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.PID()))
	if err != nil {
		b.Fatalf("read /proc: %v", err)
	}
	for line := range strings.SplitSeq(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
			out.rssMiB = kb / 1024
		}
	}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", s.PID()))
	if err != nil {
		b.Fatalf("read /proc: %v", err)
	}
	out.fds = float64(len(fds))
	resp, err := http.Get(s.URL + "/metrics")
	if err != nil {
		b.Fatalf("metrics: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	sum := func(name string) float64 {
		total, found := 0.0, false
		for line := range strings.SplitSeq(string(body), "\n") {
			rest, ok := strings.CutPrefix(line, name)
			if !ok || (rest != "" && rest[0] != ' ' && rest[0] != '{') {
				continue
			}
			f := strings.Fields(rest)
			v, err := strconv.ParseFloat(f[len(f)-1], 64)
			if err == nil {
				total, found = total+v, true
			}
		}
		if !found {
			b.Fatalf("/metrics serves no %s", name)
		}
		return total
	}
	out.goroutines = sum("go_goroutines")
	out.heapMiB = sum("go_memstats_heap_inuse_bytes") / (1 << 20)
	out.dbConns = sum("trailmap_index_connections_open")
	return out
}

func soak(b *testing.B, s *servertest.Server, d time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	hc := &http.Client{Timeout: 60 * time.Second}
	var (
		mu        sync.Mutex
		sessions  []string // with at least one acknowledged batch
		batches   atomic.Int64
		refused   atomic.Int64
		reads     [4]atomic.Int64 // events, metadata, heatmap, journey
		readBytes atomic.Int64
		failed    atomic.Value
	)
	fail := func(err error) {
		if failed.CompareAndSwap(nil, err) {
			cancel()
		}
	}
	get := func(path string) ([]byte, error) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+s.Token)
		resp, err := hc.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("GET %s: %d %.300s", path, resp.StatusCode, body)
		}
		readBytes.Add(int64(len(body)))
		return body, nil
	}

	var wg sync.WaitGroup
	const writers, readers = 6, 3
	for w := range writers {
		wg.Go(func() {
			for n := 0; ctx.Err() == nil; n++ {
				id := fmt.Sprintf("soak_w%d_%06d", w, n)
				g := rrwebgen.New(uint64(w<<32|n+1), time.Now().UnixMilli())
				for seq := 0; seq < 8 && ctx.Err() == nil; {
					var evs []json.RawMessage
					if seq == 0 {
						evs = g.Page(300)
					}
					evs = append(evs, g.Activity(5)...)
					body, _ := json.Marshal(map[string]any{"session_id": id, "visitor_id": fmt.Sprintf("soak_visitor_%d_%d", w, n%20), "seq": seq, "events": evs})
					req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.URL+"/api/v1/ingest", bytes.NewReader(body))
					req.Header.Set("X-Trailmap-Key", s.WriteKey)
					req.Header.Set("Content-Type", "application/json")
					resp, err := hc.Do(req)
					if err != nil {
						if ctx.Err() == nil {
							fail(err)
						}
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					switch resp.StatusCode {
					case http.StatusAccepted:
						if seq == 0 {
							mu.Lock()
							sessions = append(sessions, id)
							mu.Unlock()
						}
						batches.Add(1)
						seq++
						time.Sleep(100 * time.Millisecond)
					case http.StatusServiceUnavailable:
						refused.Add(1)
						ra, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
						time.Sleep(time.Duration(max(ra, 1)) * time.Second)
					default:
						fail(fmt.Errorf("ingest %s seq %d: %d", id, seq, resp.StatusCode))
						return
					}
				}
			}
		})
	}
	for r := range readers {
		wg.Go(func() {
			rnd := rand.New(rand.NewPCG(uint64(r), 7))
			for i := 0; ctx.Err() == nil; i++ {
				mu.Lock()
				var id string
				if len(sessions) > 0 {
					id = sessions[rnd.IntN(len(sessions))]
				}
				mu.Unlock()
				if id == "" {
					time.Sleep(100 * time.Millisecond)
					continue
				}
				var err error
				switch kind := i % 4; kind {
				case 0:
					_, err = get("/api/v1/sessions/" + id + "/events")
				case 1:
					_, err = get("/api/v1/sessions/" + id)
				case 2:
					var body []byte
					if body, err = get("/api/v1/heatmaps/pages?project=test"); err == nil {
						var pages struct {
							Pages []struct{ Page string } `json:"pages"`
						}
						json.Unmarshal(body, &pages)
						if len(pages.Pages) > 0 {
							p := pages.Pages[rnd.IntN(len(pages.Pages))].Page
							_, err = get("/api/v1/heatmaps/clicks?project=test&url=" + url.QueryEscape(p))
						}
					}
				case 3:
					if _, err = get("/api/v1/paths?project=test&page=*"); err == nil {
						_, err = get("/api/v1/people?project=test")
					}
				}
				if err != nil {
					if ctx.Err() == nil {
						fail(err)
					}
					return
				}
				reads[i%4].Add(1)
			}
		})
	}

	began := time.Now()
	var start soakSample
	peak := 0.0
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	startAt := min(10*time.Second, d/4)
	sampled := false
	for ctx.Err() == nil {
		select {
		case <-tick.C:
		case <-ctx.Done():
			continue
		}
		smp := sampleServer(b, s)
		peak = max(peak, smp.rssMiB)
		if !sampled && time.Since(began) >= startAt {
			start, sampled = smp, true
			batches.Store(0)
			for i := range reads {
				reads[i].Store(0)
			}
		}
	}
	end := sampleServer(b, s)
	elapsed := time.Since(began) - startAt
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		b.Fatal(err)
	}
	time.Sleep(5 * time.Second)
	idle := sampleServer(b, s)
	peak = max(peak, end.rssMiB, idle.rssMiB)

	for _, m := range []struct {
		name             string
		start, end, idle float64
	}{
		{"RSS-MiB", start.rssMiB, end.rssMiB, idle.rssMiB},
		{"heap-MiB", start.heapMiB, end.heapMiB, idle.heapMiB},
		{"goroutines", start.goroutines, end.goroutines, idle.goroutines},
		{"fds", start.fds, end.fds, idle.fds},
		{"db-conns", start.dbConns, end.dbConns, idle.dbConns},
	} {
		b.ReportMetric(m.start, m.name+"-start")
		b.ReportMetric(m.end, m.name+"-end")
		b.ReportMetric(m.idle, m.name+"-idle")
	}
	b.ReportMetric(peak, "RSS-MiB-peak")
	secs := elapsed.Seconds()
	b.ReportMetric(float64(batches.Load())/secs, "batches/s")
	b.ReportMetric(float64(reads[0].Load())/secs, "replays/s")
	b.ReportMetric(float64(reads[2].Load())/secs, "heatmaps/s")
	b.ReportMetric(float64(reads[3].Load())/secs, "journeys/s")
	b.ReportMetric(float64(refused.Load()), "refused")
	b.Logf("soak %s: %d sessions, %.0f MiB read back", d, len(sessions), float64(readBytes.Load())/(1<<20))
}

package ui_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trailmap/trailmap/internal/servertest"
)

// BenchmarkRender renders a busy 60 s recording (the pointer moving every
// 100 ms, a click every 2 s, the page's text changing every 500 ms) to MP4
// at 720p and 10 fps, and 10 s of it to a GIF at 720p, through the real
// server. It reports seconds of video per wall second (target ≥ 2), the
// peak memory of the server's Chromium and ffmpeg processes together, and
// the GIF's size.
func BenchmarkRender(b *testing.B) {
	s := start(b, "--assets=false", "--render-workers=1")
	busySession(b, s, "render-bench-0001", 60_000)
	for i := 0; i < b.N; i++ {
		// A new title each round: the cache would answer an equal request.
		for _, tc := range []struct {
			name, body string
			video      float64
		}{
			{"mp4-60s-720p-10fps", `{"session_id":"render-bench-0001","start_ms":0,"end_ms":60000,"format":"mp4","size":"720p","fps":10,"caption":true,"title":"bench %d"}`, 60},
			{"gif-10s-720p-10fps", `{"session_id":"render-bench-0001","start_ms":20000,"end_ms":30000,"format":"gif","size":"720p","fps":10,"caption":true,"title":"bench %d"}`, 10},
		} {
			_, stop := watchRSS(s.PID())
			began := time.Now()
			j := submitRender(b, s, fmt.Sprintf(tc.body, i))
			j = waitRender(b, s, j.ID, 10*time.Minute)
			took := time.Since(began)
			rss := stop()
			if j.Status != "done" {
				b.Fatalf("%s: %+v", tc.name, j)
			}
			if testing.Verbose() {
				for _, l := range strings.Split(s.Logs(), "\n") {
					if strings.Contains(l, "render done") && strings.Contains(l, j.ID) {
						b.Log(l)
					}
				}
			}
			b.ReportMetric(tc.video/took.Seconds(), tc.name+"-video-s/wall-s")
			b.ReportMetric(float64(rss)/(1<<20), tc.name+"-peak-MB")
			b.ReportMetric(float64(j.SizeBytes)/1024, tc.name+"-KB")
		}
	}
}

// busySession records ms of a visit that keeps changing.
func busySession(t testing.TB, s *servertest.Server, id string, ms int64) {
	t.Helper()
	t0 := time.Now().Add(-2 * time.Hour).UnixMilli()
	snap := `{"type":0,"id":1,"childNodes":[{"type":2,"id":2,"tagName":"html","attributes":{},"childNodes":[` +
		`{"type":2,"id":3,"tagName":"head","attributes":{},"childNodes":[{"type":2,"id":4,"tagName":"style","attributes":{},"childNodes":[` +
		`{"type":3,"id":5,"isStyle":true,"textContent":"body{margin:0;font:24px sans-serif} header{height:64px;background:#123} li{padding:8px 24px;border-bottom:1px solid #ddd}"}]}]},` +
		`{"type":2,"id":6,"tagName":"body","attributes":{},"childNodes":[{"type":2,"id":7,"tagName":"header","attributes":{},"childNodes":[]},` +
		`{"type":2,"id":8,"tagName":"p","attributes":{},"childNodes":[{"type":3,"id":9,"textContent":"Items: 0"}]},` +
		`{"type":2,"id":10,"tagName":"ul","attributes":{},"childNodes":[` + items(11, 20) + `]}]}]}]}`
	evs := []json.RawMessage{
		json.RawMessage(fmt.Sprintf(`{"type":4,"timestamp":%d,"data":{"href":"https://shop.test/list","width":1280,"height":800}}`, t0)),
		json.RawMessage(fmt.Sprintf(`{"type":2,"timestamp":%d,"data":{"node":%s,"initialOffset":{"top":0,"left":0}}}`, t0+1, snap)),
	}
	for at := int64(100); at < ms; at += 100 {
		x, y := 200+int(at/37%800), 150+int(at/53%500)
		evs = append(evs, json.RawMessage(fmt.Sprintf(`{"type":3,"timestamp":%d,"data":{"source":1,"positions":[{"x":%d,"y":%d,"id":6,"timeOffset":0}]}}`, t0+at, x, y)))
		if at%500 == 0 {
			evs = append(evs, json.RawMessage(fmt.Sprintf(`{"type":3,"timestamp":%d,"data":{"source":0,"texts":[{"id":9,"value":"Items: %d"}],"attributes":[],"removes":[],"adds":[]}}`, t0+at, at/500)))
		}
		if at%2000 == 0 {
			evs = append(evs, json.RawMessage(fmt.Sprintf(`{"type":3,"timestamp":%d,"data":{"source":2,"type":2,"id":6,"x":%d,"y":%d}}`, t0+at, x, y)))
		}
	}
	evs = append(evs, json.RawMessage(fmt.Sprintf(`{"type":3,"timestamp":%d,"data":{"source":3,"id":1,"x":0,"y":0}}`, t0+ms)))
	for i := 0; i < len(evs); i += 500 {
		ingest(t, s, s.WriteKey, id, i/500, evs[i:min(i+500, len(evs))])
	}
	waitSession(t, s, id, len(evs))
}

func items(first, n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"type":2,"id":%d,"tagName":"li","attributes":{},"childNodes":[{"type":3,"id":%d,"textContent":"Product %d — in stock"}]}`, first+2*i, first+2*i+1, i+1)
	}
	return b.String()
}

// watchRSS samples, every 100 ms, the resident memory of pid's
// descendants (the renderer's Chromium and ffmpeg) and returns the peak
// of their sum when stopped.
func watchRSS(pid int) (peak *int64, stop func() int64) {
	var mu sync.Mutex
	var max int64
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			if n := descendantsRSS(pid); n > 0 {
				mu.Lock()
				if n > max {
					max = n
				}
				mu.Unlock()
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return &max, func() int64 {
		close(done)
		<-finished
		mu.Lock()
		defer mu.Unlock()
		return max
	}
}

func descendantsRSS(root int) int64 {
	parent := map[int]int{}
	rss := map[int]int64{}
	dirs, _ := filepath.Glob("/proc/[0-9]*/status")
	for _, f := range dirs {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(f)))
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "PPid:"); ok {
				parent[pid], _ = strconv.Atoi(strings.TrimSpace(v))
			}
			if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
				kb, _ := strconv.ParseInt(strings.Fields(v)[0], 10, 64)
				rss[pid] = kb << 10
			}
		}
	}
	var sum int64
	for pid, n := range rss {
		for p := parent[pid]; p > 1; p = parent[p] {
			if p == root {
				sum += n
				break
			}
		}
	}
	return sum
}

// Package loadtest drives ingest load at a Trailmap server on loopback, for
// benchmarks: a peak run with concurrent clients, and a paced run that
// records acknowledgement latencies. Runs are bounded by the workload.
package loadtest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/pprof/profile"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"golang.org/x/sys/unix"

	"github.com/trailmap/trailmap/internal/rrwebgen"
	"github.com/trailmap/trailmap/storage/zdict"
)

// Client sends ingest batches.
type Client struct {
	URL, Key string
	// Settled, when set, reports whether the server has finished the work
	// it accepted (acknowledged batches may still wait for observers); a
	// peak run ends when it first does.
	Settled func() (bool, error)
	hc      *http.Client
}

// ObserversSettled is a Settled for a real server: its /metrics report no
// batch waiting for its observers (heatmaps, journeys).
func (c *Client) ObserversSettled() (bool, error) {
	v, err := c.Metric("trailmap_observe_backlog_batches")
	return v == 0, err
}

// Metric reads an unlabelled metric from the server's /metrics.
func (c *Client) Metric(name string) (float64, error) {
	req, err := http.NewRequest(http.MethodGet, c.URL+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Accept-Encoding", "identity") // no gzip of every scrape on the server's CPU
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return strconv.ParseFloat(v, 64)
		}
	}
	return 0, fmt.Errorf("metric %s: not served", name)
}

// NewClient returns a client for a server's base URL and write key.
func NewClient(url, key string) *Client {
	return &Client{URL: url, Key: key, hc: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}, Timeout: 30 * time.Second}}
}

// Send posts one gzip body and fails on anything but 202.
func (c *Client) Send(body []byte) error {
	status, _, err := c.post(c.hc, body)
	if err == nil && status != http.StatusAccepted {
		err = fmt.Errorf("ingest: status %d", status)
	}
	return err
}

// post posts one gzip body with hc and returns the status and Retry-After.
func (c *Client) post(hc *http.Client, body []byte) (int, string, error) {
	req, err := http.NewRequest(http.MethodPost, c.URL+"/api/v1/ingest", bytes.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("X-Trailmap-Key", c.Key)
	req.Header.Set("Content-Encoding", "gzip")
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return 0, "", err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("Retry-After"), nil
}

// Peak is the outcome of a peak run: rates over the time until every batch
// was acknowledged and, with Settled, the server had settled.
type Peak struct {
	Elapsed       time.Duration
	Acked         time.Duration // until the last acknowledgement
	MBPerSec      float64       // decompressed bytes
	EventsPerSec  float64
	BatchesPerSec float64
	// CPU is this process's CPU time until the last acknowledgement: the
	// clients' (and an in-process server's), unless CPUErr says why not.
	CPU    time.Duration
	CPUErr error
}

// RunPeak sends every session of w with clients concurrent clients, each
// taking whole sessions in seq order.
func (c *Client) RunPeak(w *rrwebgen.Workload, clients int) (Peak, error) {
	start := time.Now()
	cpu0, cpuErr := processCPU()
	var next atomic.Int64
	var wg sync.WaitGroup
	var firstErr atomic.Value
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(w.Bodies) || firstErr.Load() != nil {
					return
				}
				for _, body := range w.Bodies[i] {
					if err := c.Send(body); err != nil {
						firstErr.CompareAndSwap(nil, err)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	if err, _ := firstErr.Load().(error); err != nil {
		return Peak{}, err
	}
	acked := time.Since(start)
	cpu1, err := processCPU()
	cpuErr = errors.Join(cpuErr, err)
	// Every look at /metrics costs the server CPU its stages want (it was
	// every 5 ms: on PostgreSQL, draining for seconds, the scrapes took
	// ~0.8 s of CPU of an 8 s profile and were counted as ack path);
	// every 50 ms adds at most that to a run of seconds.
	for deadline := time.Now().Add(2 * time.Minute); c.Settled != nil; time.Sleep(50 * time.Millisecond) {
		ok, err := c.Settled()
		if err != nil {
			return Peak{}, fmt.Errorf("settled: %w", err)
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			return Peak{}, errors.New("server did not settle within 2 minutes")
		}
	}
	el := time.Since(start)
	return Peak{
		Elapsed:       el,
		Acked:         acked,
		MBPerSec:      float64(len(w.Raw)) / el.Seconds() / 1e6,
		EventsPerSec:  float64(w.Events) / el.Seconds(),
		BatchesPerSec: float64(w.Batches()) / el.Seconds(),
		CPU:           cpu1 - cpu0,
		CPUErr:        cpuErr,
	}, nil
}

// Overload is the outcome of an overload run.
type Overload struct {
	AcceptedPerSec float64
	RefusedShare   float64       // of all answers, 503 overloaded
	P99            time.Duration // acknowledgement latency of accepted batches
	PeakRSS        float64       // bytes, the most the server's /metrics reported
}

// RunOverload has every session of w sent by its own client, as many
// browsers at once, each batch right after the previous one was
// acknowledged (as browsers flushing their outboxes after an outage) and a
// refused one again after the Retry-After the server asked for, for d. It
// samples the server's resident memory from /metrics.
func (c *Client) RunOverload(w *rrwebgen.Workload, d time.Duration) (Overload, error) {
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: len(w.Bodies)}, Timeout: time.Minute}
	defer hc.CloseIdleConnections() // its 2,000-odd connections end with the run
	stop := time.Now().Add(d)
	var mu sync.Mutex
	var accepted []time.Duration
	var refused, other int
	var wg sync.WaitGroup
	for _, bodies := range w.Bodies {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < len(bodies) && time.Now().Before(stop); {
				t0 := time.Now()
				status, retry, _ := c.post(hc, bodies[i]) // a failed request counts as other
				lat := time.Since(t0)
				wait := time.Second
				if ra, err := strconv.Atoi(retry); err == nil {
					wait = time.Duration(ra) * time.Second
				}
				mu.Lock()
				switch status {
				case http.StatusAccepted:
					accepted = append(accepted, lat)
				case http.StatusServiceUnavailable:
					refused++
				default:
					other++
				}
				mu.Unlock()
				if status == http.StatusAccepted {
					i++
				} else {
					time.Sleep(min(wait, time.Until(stop)))
				}
			}
		}()
	}
	var peak float64
	done := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			if v, err := c.Metric("process_resident_memory_bytes"); err == nil {
				peak = max(peak, v)
			}
			select {
			case <-done:
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	wg.Wait()
	close(done)
	<-sampled
	if other > 0 || len(accepted) == 0 {
		return Overload{}, fmt.Errorf("overload: %d accepted, %d answers neither 202 nor 503", len(accepted), other)
	}
	sort.Slice(accepted, func(i, j int) bool { return accepted[i] < accepted[j] })
	return Overload{
		AcceptedPerSec: float64(len(accepted)) / d.Seconds(),
		RefusedShare:   float64(refused) / float64(refused+len(accepted)),
		P99:            accepted[len(accepted)*99/100],
		PeakRSS:        peak,
	}, nil
}

// Latency is the outcome of a paced run.
type Latency struct {
	P50, P99, Max time.Duration
}

// RunPaced sends w's batches at rate batches per second and measures each
// acknowledgement. Sessions start staggered, as in a steady state where
// visits begin all the time (session i starts i mod n rounds late, n the
// batches per session), so first batches with their full snapshots are
// spread out instead of arriving all at once; within a session batches go
// in seq order.
func (c *Client) RunPaced(w *rrwebgen.Workload, rate float64) (Latency, error) {
	n := 0
	for _, s := range w.Bodies {
		n = max(n, len(s))
	}
	var all [][]byte
	for round := 0; round < 2*n; round++ {
		for i, s := range w.Bodies {
			if j := round - i%n; j >= 0 && j < len(s) {
				all = append(all, s[j])
			}
		}
	}
	lat := make([]time.Duration, len(all))
	errs := make(chan error, len(all))
	sem := make(chan struct{}, 512)
	tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
	defer tick.Stop()
	var wg sync.WaitGroup
	for i, body := range all {
		<-tick.C
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			t0 := time.Now()
			if err := c.Send(body); err != nil {
				errs <- err
			}
			lat[i] = time.Since(t0)
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return Latency{}, err
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	return Latency{P50: lat[len(lat)/2], P99: lat[len(lat)*99/100], Max: lat[len(lat)-1]}, nil
}

// ZstdFastestMBPerSec is the single-core encode speed of zstd's fastest
// level on raw, the yardstick the ingest target is set against.
func ZstdFastestMBPerSec(raw []byte) float64 {
	enc, _ := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
	defer enc.Close()
	enc.EncodeAll(raw[:min(len(raw), 1<<20)], nil)
	start := time.Now()
	n := 0
	for time.Since(start) < time.Second {
		enc.EncodeAll(raw, nil)
		n++
	}
	return float64(n*len(raw)) / time.Since(start).Seconds() / 1e6
}

// Floor is the outcome of a floor run (RunFloor).
type Floor struct {
	MBPerSec      float64
	BatchesPerSec float64
	// CPUPerBatch is this process's CPU time over the run (the floor
	// server and the clients both) per batch, and Cores that time over the
	// run's wall time: near the machine's cores, the floor is bound by CPU.
	CPUPerBatch time.Duration
	Cores       float64
}

// RunFloor measures the peak rate, with the same client and clients, of a
// server that does the least any ingest server must: take the HTTP request,
// gunzip the body (pooled readers) and answer 202. Run in the same process
// on the same cores as the real measurement, it shows how much of the
// machine the load generator and HTTP itself leave to everything else.
func RunFloor(w *rrwebgen.Workload, clients int) (Floor, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return Floor{}, err
	}
	var readers sync.Pool
	srv := &http.Server{Handler: http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		zr, _ := readers.Get().(*gzip.Reader)
		var err error
		if zr == nil {
			zr, err = gzip.NewReader(r.Body)
		} else {
			err = zr.Reset(r.Body)
		}
		if err == nil {
			_, err = io.Copy(io.Discard, zr)
			readers.Put(zr)
		}
		if err != nil {
			http.Error(rw, err.Error(), http.StatusBadRequest)
			return
		}
		rw.Header().Set("Content-Type", "application/json")
		rw.WriteHeader(http.StatusAccepted)
		io.WriteString(rw, `{"ok":true}`)
	})}
	go srv.Serve(ln)
	defer srv.Close()
	p, err := NewClient("http://"+ln.Addr().String(), "").RunPeak(w, clients)
	if err == nil {
		err = p.CPUErr
	}
	if err != nil {
		return Floor{}, fmt.Errorf("floor: %w", err)
	}
	return Floor{
		MBPerSec:      p.MBPerSec,
		BatchesPerSec: p.BatchesPerSec,
		CPUPerBatch:   p.CPU / time.Duration(w.Batches()),
		Cores:         p.CPU.Seconds() / p.Elapsed.Seconds(),
	}, nil
}

// processCPU is the CPU time this process has used so far.
func processCPU() (time.Duration, error) {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		return 0, fmt.Errorf("getrusage: %w", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}

// Least is what two steps every ingest server takes cost at the least,
// per batch of a workload, measured as one thread's CPU time (so that
// nothing else on the machine, nor a wait for a core, counts).
type Least struct {
	// Gunzip is decompressing the batch's body, with one kept reader.
	Gunzip time.Duration
	// Store is compressing each session whole at zstd's best level with
	// one kept encoder, as the server stores a long segment (zdict's large
	// segments: no dictionary, the level the storage target on real
	// recordings needs), per batch of the session.
	Store time.Duration
}

// MeasureLeast measures Least on w.
func MeasureLeast(w *rrwebgen.Workload) (Least, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var l Least
	n := time.Duration(max(w.Batches(), 1))
	sessions := make([][]byte, len(w.Bodies))
	var zr gzip.Reader
	for i, bodies := range w.Bodies {
		for _, body := range bodies {
			if err := zr.Reset(bytes.NewReader(body)); err != nil {
				return Least{}, err
			}
			raw, err := io.ReadAll(&zr)
			if err != nil {
				return Least{}, err
			}
			sessions[i] = append(sessions[i], raw...)
		}
	}
	// As the floor's server does: into nothing, so that no copy (nor a page
	// fault of a growing buffer) counts.
	took, err := threadCPUOf(func() error {
		for _, bodies := range w.Bodies {
			for _, body := range bodies {
				if err := zr.Reset(bytes.NewReader(body)); err != nil {
					return err
				}
				if _, err := io.Copy(io.Discard, &zr); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return Least{}, err
	}
	l.Gunzip = took / n
	enc, err := zstd.NewWriter(nil, zdict.SegmentOptions(zstd.SpeedBestCompression)...)
	if err != nil {
		return Least{}, err
	}
	defer enc.Close()
	// A first frame beforehand, so that the encoder's first touch of its
	// tables (page faults, once per encoder a server keeps) does not count.
	var dst []byte
	if len(sessions) > 0 {
		dst = enc.EncodeAll(sessions[0], dst[:0])
	}
	took, err = threadCPUOf(func() error {
		for _, s := range sessions {
			dst = enc.EncodeAll(s, dst[:0])
		}
		return nil
	})
	if err != nil {
		return Least{}, err
	}
	l.Store = took / n
	return l, nil
}

// threadCPUOf runs f and returns the CPU time the calling OS thread spent
// on it; the caller has locked itself to its thread.
func threadCPUOf(f func() error) (time.Duration, error) {
	var before, after unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_THREAD, &before); err != nil {
		return 0, fmt.Errorf("getrusage: %w", err)
	}
	if err := f(); err != nil {
		return 0, err
	}
	if err := unix.Getrusage(unix.RUSAGE_THREAD, &after); err != nil {
		return 0, fmt.Errorf("getrusage: %w", err)
	}
	return time.Duration(after.Utime.Nano() + after.Stime.Nano() - before.Utime.Nano() - before.Stime.Nano()), nil
}

// Target is a server under measurement.
type Target struct {
	Client *Client
	// Drain stops the server gracefully: it returns once every accepted
	// batch is stored in a compressed segment, the work a server under
	// steady load does all along but a short run leaves for later.
	Drain func()
	// Pprof is the server's profiler address (--pprof-addr), if any: the
	// CPU per batch is then split by the stages' profiler labels.
	Pprof string
	// DBCPU, if set, returns the CPU seconds the target's database server
	// has used so far (PostgreSQL's processes): its CPU per batch is then
	// reported beside the server's.
	DBCPU func() (float64, error)
	// CPU, if set, returns the CPU seconds the server used over its whole
	// life, asked after Drain: with it the second run reports its CPU per
	// batch all in — start, acknowledgements, index, facts and storing
	// every segment (which the first run's figure leaves out).
	CPU func() (float64, error)
}

// Measure runs a peak run of peak with 32 clients on a target from start,
// then half at half the peak batch rate on the same target; then another
// peak run on a second target, drained at its end. It reports on b: MB/s
// and events/s (sustained: with Client.Settled, until the server is done
// with all it accepted but storing segments), acked-MB/s (acknowledgements
// alone, higher as long as a backlog may build up behind them), stored-MB/s
// (the second run, until drained: everything in segments), the zstd-fastest
// yardstick and the ratio to it, the floor (RunFloor) and its ratio to
// the yardstick, the p50/p99 acknowledgement latencies of the paced run,
// and what the targets leave per batch against what storing alone costs
// (reportBudget) beside the clients' own CPU per batch.
func Measure(b *testing.B, start func() Target, peak, half *rrwebgen.Workload) {
	b.Helper()
	t := start()
	before, cpuErr := t.Client.Metric("process_cpu_seconds_total")
	var dbBefore, dbAfter float64
	var dbErr error
	if t.DBCPU != nil {
		dbBefore, dbErr = t.DBCPU()
	}
	p, err := t.Client.RunPeak(peak, 32)
	if err != nil {
		b.Fatal(err)
	}
	after, err := t.Client.Metric("process_cpu_seconds_total")
	cpuErr = errors.Join(cpuErr, err)
	if t.DBCPU != nil && dbErr == nil {
		dbAfter, dbErr = t.DBCPU()
	}
	l, err := t.Client.RunPaced(half, p.BatchesPerSec/2)
	if err != nil {
		b.Fatal(err)
	}
	t.Drain()
	t = start()
	type split struct {
		shares map[string]float64
		err    error
	}
	shares := make(chan split, 1)
	go func() {
		sh, err := cpuShares(t.Pprof, p.Elapsed)
		shares <- split{sh, err}
	}()
	q, err := t.Client.RunPeak(peak, 32)
	if err != nil {
		b.Fatal(err)
	}
	t0 := time.Now()
	t.Drain()
	stored := q.Elapsed + time.Since(t0)
	if t.CPU != nil {
		if all, err := t.CPU(); err != nil {
			b.Logf("no CPU per batch all in: %v", err)
		} else {
			b.ReportMetric(all/(float64(peak.Batches())/1e6), "all-in-cpu-µs/batch")
		}
	}
	z := ZstdFastestMBPerSec(peak.Raw)
	fl, err := RunFloor(peak, 32)
	if err != nil {
		b.Fatal(err)
	}
	floor := fl.MBPerSec
	least, err := MeasureLeast(peak)
	if err != nil {
		b.Fatal(err)
	}
	reportBudget(b, fl, least)
	// The clients' CPU is this process's only where the server runs in
	// another one (CPU, read from its process, says so); until the last
	// acknowledgement, so without the looks at /metrics while it drains.
	if t.CPU != nil && p.CPUErr == nil {
		b.ReportMetric(micros(p.CPU/time.Duration(peak.Batches())), "client-cpu-µs/batch")
	}
	b.ReportMetric(p.MBPerSec, "MB/s")
	b.ReportMetric(float64(len(peak.Raw))/p.Acked.Seconds()/1e6, "acked-MB/s")
	b.ReportMetric(float64(len(peak.Raw))/stored.Seconds()/1e6, "stored-MB/s")
	b.ReportMetric(p.EventsPerSec, "events/s")
	b.ReportMetric(z, "zstd-fastest-1core-MB/s")
	b.ReportMetric(p.MBPerSec/z, "ingest/zstd")
	b.ReportMetric(floor, "floor-MB/s")
	b.ReportMetric(floor/z, "floor/zstd")
	b.ReportMetric(float64(l.P50.Microseconds())/1000, "p50-ack-ms@half-peak")
	b.ReportMetric(float64(l.P99.Microseconds())/1000, "p99-ack-ms@half-peak")
	b.ReportMetric(float64(len(peak.Raw))/p.Acked.Seconds()/1e6/floor, "acked/floor")
	b.ReportMetric(p.MBPerSec/floor, "sustained/floor")
	b.ReportMetric(float64(len(peak.Raw))/stored.Seconds()/1e6/floor, "stored/floor")
	// The server's CPU per batch in the first peak run (until its facts were
	// written), split by the shares of a CPU profile of the second one by
	// stage label: index (stage 1), facts (stage 2), segments (storing),
	// assets (reading batches for the site's files to keep), and the rest
	// — HTTP, decode, validation, redaction, the write-ahead log (the
	// acknowledgement path) and the runtime's own work (GC).
	if t.DBCPU != nil {
		if dbErr != nil {
			b.Logf("no database CPU per batch: %v", dbErr)
		} else {
			b.ReportMetric((dbAfter-dbBefore)/(float64(peak.Batches())/1e6), "db-cpu-µs/batch")
		}
	}
	if cpuErr != nil {
		b.Logf("no CPU per batch: %v", cpuErr)
		return
	}
	total := (after - before) / (float64(peak.Batches()) / 1e6)
	b.ReportMetric(total, "cpu-µs/batch")
	sh := <-shares
	if sh.err != nil {
		b.Logf("no CPU per stage: %v", sh.err)
		return
	}
	for _, stage := range []string{"index", "facts", "segments", "assets", ""} {
		name := stage
		if name == "" {
			name = "ack-path"
		}
		b.ReportMetric(total*sh.shares[stage], name+"-µs/batch")
	}
}

// reportBudget reports what the ingest targets leave per batch: at a
// share k of the floor's batch rate, a machine of n cores has n/(k·rate) of
// CPU for each batch — for the clients, the server and its database
// together (budget-µs/batch@0.5 for the acknowledged target, @0.35 for
// the sustained one). Beside it the floor's own CPU per batch (its
// clients and its server, which only gunzips), how many cores the floor
// kept busy, and the least two steps of every ingest server cost per batch
// (Least): gunzip-cpu-µs/batch and store-cpu-µs/batch.
func reportBudget(b *testing.B, fl Floor, least Least) {
	n := float64(runtime.NumCPU())
	for _, k := range []struct {
		share float64
		name  string
	}{{0.5, "0.5"}, {0.35, "0.35"}} {
		b.ReportMetric(n*1e6/(k.share*fl.BatchesPerSec), "budget-µs/batch@"+k.name)
	}
	b.ReportMetric(micros(fl.CPUPerBatch), "floor-cpu-µs/batch")
	b.ReportMetric(fl.Cores, "floor-cores")
	b.ReportMetric(micros(least.Gunzip), "gunzip-cpu-µs/batch")
	b.ReportMetric(micros(least.Store), "store-cpu-µs/batch")
}

func micros(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// cpuShares profiles the server at pprof for about d and returns the share
// of CPU samples per "stage" label ("" for samples without one).
// TRAILMAP_BENCH_PROFILE names a file to keep the profile in, for a look
// with go tool pprof.
func cpuShares(pprof string, d time.Duration) (map[string]float64, error) {
	if pprof == "" {
		return nil, errors.New("the server has no profiler address")
	}
	// Whole seconds, rounded down, so the profile ends before the run does
	// (and does not take in the stop that follows it).
	secs := max(1, int(d/time.Second))
	resp, err := http.Get(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", pprof, secs))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if out := os.Getenv("TRAILMAP_BENCH_PROFILE"); out != "" {
		if err := os.WriteFile(out, raw, 0o644); err != nil {
			return nil, err
		}
	}
	prof, err := profile.Parse(bytes.NewReader(raw))
	if err != nil {
		return nil, err
	}
	if len(prof.SampleType) < 2 {
		return nil, errors.New("the profile has no CPU time")
	}
	by := map[string]float64{}
	var sum float64
	for _, s := range prof.Sample {
		v := float64(s.Value[1]) // cpu nanoseconds
		stage := ""
		if l := s.Label["stage"]; len(l) > 0 {
			stage = l[0]
		}
		by[stage] += v
		sum += v
	}
	if sum == 0 {
		return nil, errors.New("the profile has no samples")
	}
	for k := range by {
		by[k] /= sum
	}
	return by, nil
}

package main

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3"

	"github.com/trailmap/trailmap/internal/miniotest"
	"github.com/trailmap/trailmap/internal/servertest"
	"github.com/trailmap/trailmap/storage"
	"github.com/trailmap/trailmap/storage/s3"
	"github.com/trailmap/trailmap/storage/zdict"
)

// faultEvents is how many marker events each batch of the fault tests holds.
const faultEvents = 8

// faultClient sends the batches of one session in order, as the recorder
// does: the next seq only once the previous one is acknowledged, resending
// after a refusal.
type faultClient struct {
	session string
	pad     string
	hc      *http.Client

	mu    sync.Mutex
	acked int // seqs 0..acked-1 are acknowledged
}

func newFaultClients(n, pad int, prefix string) []*faultClient {
	cs := make([]*faultClient, n)
	for i := range cs {
		cs[i] = &faultClient{
			session: fmt.Sprintf("%s_%03d", prefix, i),
			pad:     strings.Repeat("p", pad),
			hc:      &http.Client{Timeout: 30 * time.Second},
		}
	}
	return cs
}

func (c *faultClient) body(t testing.TB, seq int) []byte {
	return batchBody(t, c.session, "fault_visitor", seq, c.events(seq))
}

// events are the events of batch seq.
func (c *faultClient) events(seq int) []json.RawMessage {
	evs := make([]json.RawMessage, faultEvents)
	for i := range evs {
		evs[i] = json.RawMessage(fmt.Sprintf(
			`{"type":5,"timestamp":%d,"data":{"tag":"fault","payload":{"s":%q,"seq":%d,"i":%d,"pad":%q}}}`,
			1700000000000+int64(seq*100+i), c.session, seq, i, c.pad))
	}
	return evs
}

// faultAnswer is one ingest answer.
type faultAnswer struct {
	status     int
	code       string
	retryAfter string
	took       time.Duration
}

// sendNext sends the next unacknowledged batch and notes a 202.
func (c *faultClient) sendNext(t testing.TB, url, key string) (faultAnswer, error) {
	c.mu.Lock()
	seq := c.acked
	c.mu.Unlock()
	req, err := http.NewRequest(http.MethodPost, url+"/api/v1/ingest", bytes.NewReader(c.body(t, seq)))
	if err != nil {
		return faultAnswer{}, err
	}
	req.Header.Set("X-Trailmap-Key", key)
	req.Header.Set("Content-Type", "application/json")
	start := time.Now()
	resp, err := c.hc.Do(req)
	if err != nil {
		return faultAnswer{}, err
	}
	defer resp.Body.Close()
	var out struct {
		Error struct{ Code string } `json:"error"`
	}
	raw, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(raw, &out); err != nil {
		return faultAnswer{}, fmt.Errorf("answer %d is not JSON: %q", resp.StatusCode, raw)
	}
	a := faultAnswer{status: resp.StatusCode, code: out.Error.Code, retryAfter: resp.Header.Get("Retry-After"), took: time.Since(start)}
	if a.status == http.StatusAccepted {
		c.mu.Lock()
		c.acked++
		c.mu.Unlock()
	}
	return a, nil
}

func (c *faultClient) ackedCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.acked
}

// checkMarkers checks that evs hold every batch 0..batches-1 of session
// exactly once, in seq order, each with all its events in order.
func checkMarkers(t testing.TB, where, session string, evs []json.RawMessage, batches int) {
	t.Helper()
	var got [][2]int
	for _, raw := range evs {
		var ev struct {
			Data struct {
				Tag     string `json:"tag"`
				Payload struct {
					S   string `json:"s"`
					Seq int    `json:"seq"`
					I   int    `json:"i"`
				} `json:"payload"`
			} `json:"data"`
		}
		if err := json.Unmarshal(raw, &ev); err != nil {
			t.Fatalf("%s: %s: %v", where, session, err)
		}
		if ev.Data.Tag != "fault" {
			continue
		}
		if ev.Data.Payload.S != session {
			t.Fatalf("%s: %s holds an event of %s", where, session, ev.Data.Payload.S)
		}
		got = append(got, [2]int{ev.Data.Payload.Seq, ev.Data.Payload.I})
	}
	want := make([][2]int, 0, batches*faultEvents)
	for seq := range batches {
		for i := range faultEvents {
			want = append(want, [2]int{seq, i})
		}
	}
	if !slices.Equal(got, want) {
		n := min(len(got), len(want))
		first := n
		for i := range n {
			if got[i] != want[i] {
				first = i
				break
			}
		}
		t.Fatalf("%s: %s holds %d marker events, want %d (batches 0..%d once each, in order); first difference at %d",
			where, session, len(got), len(want), batches-1, first)
	}
}

// storedSegments reads every segment object of the project straight from the
// blob store and returns the events of each session, segments in seq order:
// what the store holds, whatever the index says.
func storedSegments(t testing.TB, blobs storage.Blobs, projectID int64) map[string][]json.RawMessage {
	t.Helper()
	ctx := context.Background()
	type seg struct {
		key   string
		first int
	}
	bySession := map[string][]seg{}
	err := blobs.List(ctx, fmt.Sprintf("%d/sessions/", projectID), func(o storage.Object) error {
		parts := strings.Split(o.Key, "/")
		if len(parts) != 7 || !strings.HasSuffix(parts[6], ".zst") {
			return fmt.Errorf("unexpected key %s", o.Key)
		}
		first, _, _ := strings.Cut(strings.TrimSuffix(parts[6], ".zst"), "-")
		n, err := strconv.Atoi(first)
		if err != nil {
			return fmt.Errorf("key %s: %w", o.Key, err)
		}
		bySession[parts[5]] = append(bySession[parts[5]], seg{o.Key, n})
		return nil
	})
	if err != nil {
		t.Fatalf("list segments: %v", err)
	}
	out := map[string][]json.RawMessage{}
	segs := zdict.New(blobs, zdict.DefaultConfig(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	for session, list := range bySession {
		sort.Slice(list, func(i, j int) bool { return list[i].first < list[j].first })
		for _, s := range list {
			rc, err := blobs.Get(ctx, s.key, 0, -1)
			if err != nil {
				t.Fatalf("get %s: %v", s.key, err)
			}
			zr, err := segs.Open(ctx, rc)
			if err != nil {
				t.Fatal(err)
			}
			sc := bufio.NewScanner(zr)
			sc.Buffer(nil, 64<<20)
			for sc.Scan() {
				out[session] = append(out[session], json.RawMessage(bytes.Clone(sc.Bytes())))
			}
			if err := sc.Err(); err != nil {
				t.Fatalf("read %s: %v", s.key, err)
			}
			zr.Close()
			rc.Close()
		}
	}
	return out
}

// readyz returns /readyz's status and checks.
func readyz(t testing.TB, url string) (int, map[string]string) {
	t.Helper()
	resp, err := http.Get(url + "/readyz")
	if err != nil {
		t.Fatalf("readyz: %v", err)
	}
	defer resp.Body.Close()
	var out struct {
		Checks map[string]string `json:"checks"`
	}
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out.Checks
}

// TestFaults_ObjectStoreDown stops the object store (a real MinIO) in the
// middle of heavy ingest: the server keeps acknowledging from its
// write-ahead log until --max-buffered is reached, then answers 503
// overloaded with Retry-After (and /readyz says the blob store is away);
// once MinIO is back, ingest resumes and everything acknowledged is stored,
// once, in order — read back both from the bucket itself and through the
// events API.
func TestFaults_ObjectStoreDown(t *testing.T) {
	m := miniotest.Start(t)
	cfg := m.Config(t)
	bucket, err := s3.New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	const maxBuffered = 256 << 10
	s := servertest.Start(t, "--s3-endpoint", cfg.Endpoint, "--s3-bucket", cfg.Bucket,
		"--s3-access-key", cfg.AccessKey, "--s3-secret-key", cfg.SecretKey,
		"--segment-max-age", "200ms", "--max-buffered", strconv.Itoa(maxBuffered))
	clients := newFaultClients(8, 1000, "store_down") // ≈8 KB raw per batch

	// run makes every client send until stop says so or the deadline passes.
	run := func(what string, d time.Duration, stop func(c *faultClient, a faultAnswer) bool) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), d)
		defer cancel()
		var wg sync.WaitGroup
		for _, c := range clients {
			wg.Go(func() {
				for ctx.Err() == nil {
					a, err := c.sendNext(t, s.URL, s.WriteKey)
					if err != nil {
						t.Errorf("%s: %s: %v", what, c.session, err)
						return
					}
					if stop(c, a) {
						return
					}
					if a.status != http.StatusAccepted {
						time.Sleep(50 * time.Millisecond)
					}
				}
				t.Errorf("%s: %s not done after %s (at seq %d)", what, c.session, d, c.ackedCount())
			})
		}
		wg.Wait()
		if t.Failed() {
			t.FailNow()
		}
	}

	// Healthy: a few batches each, some stored in segments.
	run("store up", 30*time.Second, func(c *faultClient, a faultAnswer) bool {
		if a.status != http.StatusAccepted {
			t.Errorf("store up: %s: %d %s", c.session, a.status, a.code)
			return true
		}
		return c.ackedCount() >= 5
	})
	// Wait until they are in the bucket, so the buffer is empty at the cut.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		stored, n := storedSegments(t, bucket, s.ProjectID), 0
		for _, c := range clients {
			n += len(stored[c.session])
		}
		if n == len(clients)*5*faultEvents {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 30 s the bucket holds %d events, want %d", n, len(clients)*5*faultEvents)
		}
	}
	m.Down(t)
	before := 0
	for _, c := range clients {
		before += c.ackedCount()
	}

	// Down: acknowledged from the log until the buffer is full, then 503.
	var mu sync.Mutex
	refused := 0
	run("store down", 60*time.Second, func(c *faultClient, a faultAnswer) bool {
		switch {
		case a.status == http.StatusAccepted:
			return false
		case a.status == http.StatusServiceUnavailable && a.code == "overloaded":
			if ra, err := strconv.Atoi(a.retryAfter); err != nil || ra < 1 {
				t.Errorf("503 with Retry-After %q", a.retryAfter)
			}
			mu.Lock()
			refused++
			mu.Unlock()
			return true
		default:
			t.Errorf("store down: %s: %d %s", c.session, a.status, a.code)
			return true
		}
	})
	during := 0
	for _, c := range clients {
		during += c.ackedCount()
	}
	during -= before
	// Up to twice --max-buffered (raw bytes) may wait for the store before
	// ingest is refused; at least --max-buffered must.
	raw := 0
	for _, ev := range clients[0].events(0) {
		raw += len(ev) + 1
	}
	if b := during * raw; b < maxBuffered || b > 2*maxBuffered+len(clients)*raw {
		t.Errorf("%d batches (%d raw bytes) acknowledged with the store down, want between --max-buffered (%d) and twice that",
			during, b, maxBuffered)
	}
	if code, checks := readyz(t, s.URL); code != http.StatusServiceUnavailable || checks["blobs"] != "unavailable" {
		t.Errorf("readyz with the store down: %d %v", code, checks)
	}
	t.Logf("store down: %d batches acknowledged, then %d refusals", during, refused)

	m.Up(t)
	// Back: every client gets on, through its refusals, to 10 more batches.
	goal := map[*faultClient]int{}
	for _, c := range clients {
		goal[c] = c.ackedCount() + 10
	}
	run("store back", 90*time.Second, func(c *faultClient, a faultAnswer) bool {
		if a.status != http.StatusAccepted && !(a.status == http.StatusServiceUnavailable && a.code == "overloaded") {
			t.Errorf("store back: %s: %d %s", c.session, a.status, a.code)
			return true
		}
		return c.ackedCount() >= goal[c]
	})
	if code, checks := readyz(t, s.URL); code != http.StatusOK {
		t.Errorf("readyz with the store back: %d %v", code, checks)
	}

	// A graceful stop stores what is buffered; then the bucket must hold
	// every acknowledged batch once.
	s.Stop(t)
	stored := storedSegments(t, bucket, s.ProjectID)
	for _, c := range clients {
		checkMarkers(t, "bucket", c.session, stored[c.session], c.ackedCount())
	}
	s.Restart(t)
	for _, c := range clients {
		checkMarkers(t, "events API", c.session, events(t, s, c.session, ""), c.ackedCount())
	}
}

// lockIndex takes SQLite's write lock on the index from a connection of its
// own (BEGIN IMMEDIATE), as another process would; release rolls back.
func lockIndex(t testing.TB, dataDir string) (release func()) {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+filepath.Join(dataDir, "index.db")+"?_busy_timeout=5000")
	if err != nil {
		t.Fatal(err)
	}
	conn, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(context.Background(), "BEGIN IMMEDIATE"); err != nil {
		t.Fatalf("lock the index: %v", err)
	}
	var once sync.Once
	release = func() {
		once.Do(func() {
			if _, err := conn.ExecContext(context.Background(), "ROLLBACK"); err != nil {
				t.Errorf("unlock the index: %v", err)
			}
			conn.Close()
			db.Close()
		})
	}
	t.Cleanup(release)
	return release
}

// TestFaults_IndexLocked holds the index's write lock from another
// connection for longer than the server's busy timeout (10 s): ingest keeps
// answering within bounds (202 once the batch is in the write-ahead log, at
// most a few seconds later), /readyz reports the stalled index writes, and
// once the lock is gone everything acknowledged is recorded, once, in order.
func TestFaults_IndexLocked(t *testing.T) {
	s := servertest.Start(t, "--segment-max-age", "200ms")
	clients := newFaultClients(4, 200, "index_locked")
	for _, c := range clients {
		for range 3 {
			if a, err := c.sendNext(t, s.URL, s.WriteKey); err != nil || a.status != http.StatusAccepted {
				t.Fatalf("before the lock: %v %+v", err, a)
			}
		}
	}

	release := lockIndex(t, s.DataDir)
	lockedUntil := time.Now().Add(14 * time.Second)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var slowest time.Duration
	statuses := map[string]int{}
	for _, c := range clients {
		wg.Go(func() {
			for time.Now().Before(lockedUntil) {
				a, err := c.sendNext(t, s.URL, s.WriteKey)
				if err != nil {
					t.Errorf("%s while locked: %v", c.session, err)
					return
				}
				mu.Lock()
				slowest = max(slowest, a.took)
				statuses[fmt.Sprintf("%d %s", a.status, a.code)]++
				mu.Unlock()
				if a.status != http.StatusAccepted && !(a.status == http.StatusServiceUnavailable && a.retryAfter != "") {
					t.Errorf("%s while locked: %d %s", c.session, a.status, a.code)
					return
				}
			}
		})
	}
	// The index writes stall: /readyz says so within a few seconds.
	sawStall := false
	for deadline := time.Now().Add(12 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if code, checks := readyz(t, s.URL); code == http.StatusServiceUnavailable && checks["index_writes"] == "unavailable" {
			sawStall = true
			break
		}
	}
	wg.Wait()
	release()
	if !sawStall {
		t.Error("/readyz never reported the locked index")
	}
	// The server waits up to 5 s for the index before it acknowledges a
	// logged batch; with the client's round trip that is the bound.
	if slowest > 8*time.Second {
		t.Errorf("slowest ingest answer while locked took %s", slowest)
	}
	t.Logf("while locked: answers %v, slowest %s", statuses, slowest.Round(time.Millisecond))

	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		if code, _ := readyz(t, s.URL); code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("/readyz not ok 30 s after the lock was released")
		}
	}
	for _, c := range clients {
		if a, err := c.sendNext(t, s.URL, s.WriteKey); err != nil || a.status != http.StatusAccepted {
			t.Fatalf("after the lock: %v %+v", err, a)
		}
	}
	var list struct {
		Sessions []struct {
			ID string `json:"id"`
		} `json:"sessions"`
	}
	s.GetJSON(t, "/api/v1/sessions?limit=100", &list)
	if len(list.Sessions) != len(clients) {
		t.Errorf("sessions list holds %d sessions, want %d", len(list.Sessions), len(clients))
	}
	s.Restart(t) // store everything in segments; read the stored form
	for _, c := range clients {
		checkMarkers(t, "events API", c.session, events(t, s, c.session, ""), c.ackedCount())
	}
}

package recorder_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trailmap/trailmap/recorder"
	"github.com/trailmap/trailmap/replay"
	"github.com/trailmap/trailmap/storage"
	"github.com/trailmap/trailmap/storage/fs"
)

// flakyBlobs fails every Put while down is set.
type flakyBlobs struct {
	blobStore
	down atomic.Bool
}

func (f *flakyBlobs) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	if f.down.Load() {
		return errors.New("blob store unreachable")
	}
	return f.blobStore.Put(ctx, key, r, size)
}

// TestRecorder_BlobStoreDown checks that while the blob store is down the
// recorder keeps accepting until its buffer is full, then answers 503
// overloaded, and that once the store is back everything accepted is stored.
func TestRecorder_BlobStoreDown(t *testing.T) {
	flaky := &flakyBlobs{}
	flaky.down.Store(true)
	s := newStackBlobs(t, func(c *recorder.Config) {
		c.MaxBuffered = 64 << 10
		c.SegmentMaxAge = 20 * time.Millisecond
	}, func(b blobStore) blobStore { flaky.blobStore = b; return flaky })

	pad := strings.Repeat("x", 4000)
	accepted, overloaded := 0, 0
	for seq := range 100 {
		ev := fmt.Sprintf(`{"type":5,"timestamp":%d,"data":{"tag":"pad","payload":%q}}`, 1000+seq, pad)
		code, body := s.post(t, "blob_down_session", seq, ev)
		switch code {
		case http.StatusAccepted:
			accepted++
		case http.StatusServiceUnavailable:
			overloaded++
			if e, _ := body["error"].(map[string]any); e["code"] != "overloaded" {
				t.Fatalf("503 body %v", body)
			}
		default:
			t.Fatalf("seq %d: %d %v", seq, code, body)
		}
		if overloaded > 0 {
			break
		}
	}
	if overloaded == 0 {
		t.Fatal("never pushed back with the blob store down")
	}
	flaky.down.Store(false)
	// Once segments are stored again, ingest resumes.
	deadline := time.Now().Add(20 * time.Second)
	for seq := accepted; ; {
		ev := fmt.Sprintf(`{"type":5,"timestamp":%d,"data":{"tag":"pad","payload":"after"}}`, 1000+seq)
		code, _ := s.post(t, "blob_down_session", seq, ev)
		if code == http.StatusAccepted {
			accepted++
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still %d after the blob store came back", code)
		}
		time.Sleep(20 * time.Millisecond)
	}
	sess, err := s.db.SessionByPublicID(context.Background(), nil, "blob_down_session")
	if err != nil {
		t.Fatal(err)
	}
	var got collect
	if err := s.stream.Stream(context.Background(), sess, replay.All, &got); err != nil {
		t.Fatal(err)
	}
	if len(got.events) != accepted {
		t.Fatalf("%d events back, %d accepted", len(got.events), accepted)
	}
}

// answerLostBlobs stores the first object it is given, then answers with an
// error, as when a PUT's response is lost on the way back.
type answerLostBlobs struct {
	blobStore
	local *fs.Client
	lost  chan string // receives the key of the lost answer
	once  atomic.Bool
	// down refuses every PUT after the lost answer until the test has
	// sent the next batch, so that the retry holds both (without it a quick
	// retry could store the first batch alone, under the same key).
	down atomic.Bool
}

func (a *answerLostBlobs) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	if a.down.Load() {
		return errors.New("store unavailable")
	}
	if err := a.blobStore.Put(ctx, key, r, size); err != nil {
		return err
	}
	if a.once.CompareAndSwap(false, true) {
		a.down.Store(true)
		a.lost <- key
		return errors.New("connection reset after the upload")
	}
	return nil
}

// TestRecorder_PutAnswerLost: a segment whose PUT stored the object but
// failed is stored again with later batches under another key; the first
// object must not stay behind, unreferenced.
func TestRecorder_PutAnswerLost(t *testing.T) {
	a := &answerLostBlobs{lost: make(chan string, 1)}
	s := newStackBlobs(t, func(c *recorder.Config) {
		c.SegmentMaxAge = 20 * time.Millisecond
	}, func(b blobStore) blobStore { a.blobStore, a.local = b, b.(*fs.Client); return a })
	ev := func(seq int) string {
		return fmt.Sprintf(`{"type":5,"timestamp":%d,"data":{"tag":"step","payload":{}}}`, 1000+seq)
	}
	if code, body := s.post(t, "answer_lost_session", 0, ev(0)); code != http.StatusAccepted {
		t.Fatalf("seq 0: %d %v", code, body)
	}
	var lostKey string
	select {
	case lostKey = <-a.lost:
	case <-time.After(10 * time.Second):
		t.Fatal("no segment flush")
	}
	if code, body := s.post(t, "answer_lost_session", 1, ev(1)); code != http.StatusAccepted {
		t.Fatalf("seq 1: %d %v", code, body)
	}
	a.down.Store(false)
	ctx := context.Background()
	var keys []string
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		keys = keys[:0]
		rows, err := s.db.SQL().Read().QueryContext(ctx, `SELECT key FROM segments WHERE state = 'done' AND events = 2`)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var k string
			rows.Scan(&k)
			keys = append(keys, k)
		}
		rows.Close()
		if len(keys) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("segments holding both batches: %v", keys)
		}
	}
	if keys[0] == lostKey {
		t.Fatalf("the second segment reused the key %s: the test shows nothing", lostKey)
	}
	var objects []string
	if err := a.local.List(ctx, "", func(o storage.Object) error { objects = append(objects, o.Key); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(objects) != 1 || objects[0] != keys[0] {
		t.Errorf("objects %v, want only %s (the object of the lost answer, %s, left behind?)", objects, keys[0], lostKey)
	}
}

// TestRecorder_MaxInFlight: a slow upload holds no slot; over MaxInFlight
// requests at work (here one waiting for the index writer, which the test
// holds), another is refused at once with 503 overloaded and a
// Retry-After of 1–5 s, keeping nothing of it, while a beacon waits for the
// slot; the one at work, the beacon and the retried one are stored, once
// each.
func TestRecorder_MaxInFlight(t *testing.T) {
	s := newStack(t, func(c *recorder.Config) { c.MaxInFlight, c.MaxUnindexed = 1, 0 }) // each 202 waits for the index
	const session = "inflight_session"
	body := func(seq int) string {
		return fmt.Sprintf(`{"session_id":%q,"visitor_id":"visitor_concurrent","seq":%d,"events":[{"type":5,"timestamp":%d,"data":{"tag":"step","payload":{}}}]}`,
			session, seq, 1000+seq)
	}
	send := func(b io.Reader) (int, string, string) {
		req, _ := http.NewRequest(http.MethodPost, s.url+"/api/v1/ingest", b)
		req.Header.Set("X-Trailmap-Key", s.key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Error(err)
			return 0, "", ""
		}
		defer resp.Body.Close()
		var out struct {
			Error struct{ Code string } `json:"error"`
		}
		json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out.Error.Code, resp.Header.Get("Retry-After")
	}
	recorded := func() int {
		var n int
		err := s.db.SQL().Read().QueryRow(`SELECT COUNT(*) FROM batches b JOIN sessions s ON s.id = b.session_id WHERE s.public_id = ?`, session).Scan(&n)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}

	// A body arriving slowly (seq 2) does not hold the only slot.
	pr, pw := io.Pipe()
	t.Cleanup(func() { pw.CloseWithError(errors.New("test over")) }) // before the server closes
	slow := make(chan int, 1)
	go func() { code, _, _ := send(pr); slow <- code }()
	if _, err := pw.Write([]byte(body(2)[:20])); err != nil {
		t.Fatal(err)
	}
	if code, _, _ := send(strings.NewReader(body(0))); code != http.StatusAccepted {
		t.Fatalf("seq 0 beside a slow upload: %d", code)
	}

	// Seq 1 and seq 3 come together while the index writer is held: the
	// one that takes the only slot waits for the writer, the other is
	// refused at once.
	tx, err := s.db.SQL().Write().BeginTx(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	type answer struct {
		seq, code      int
		errCode, retry string
	}
	answers := make(chan answer, 2)
	for _, seq := range []int{1, 3} {
		go func() {
			code, errCode, retry := send(strings.NewReader(body(seq)))
			answers <- answer{seq, code, errCode, retry}
		}()
	}
	refused := <-answers
	if refused.code != http.StatusServiceUnavailable || refused.errCode != "overloaded" {
		t.Fatalf("seq %d: %d %q while the other was at work, want 503 overloaded", refused.seq, refused.code, refused.errCode)
	}
	if ra, err := strconv.Atoi(refused.retry); err != nil || ra < 1 || ra > 5 {
		t.Errorf("Retry-After %q, want 1–5 s", refused.retry)
	}
	if n := recorded(); n != 1 {
		t.Errorf("%d batches recorded while the writer was held, want 1 (seq 0)", n)
	}
	// A beacon (key in the URL: its sender cannot retry) waits for the
	// slot instead of being refused.
	received := func() float64 {
		mfs, err := s.reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() != "trailmap_ingest_bytes_total" {
				continue
			}
			for _, m := range mf.GetMetric() {
				if m.GetLabel()[0].GetValue() == "compressed" {
					return m.GetCounter().GetValue()
				}
			}
		}
		t.Fatal("no trailmap_ingest_bytes_total")
		return 0
	}
	before := received()
	beacon := make(chan int, 1)
	go func() {
		resp, err := http.Post(s.url+"/api/v1/ingest?key="+s.key, "text/plain", strings.NewReader(body(4)))
		if err != nil {
			t.Error(err)
			beacon <- 0
			return
		}
		resp.Body.Close()
		beacon <- resp.StatusCode
	}()
	// Once its body is counted in, the beacon is at the slot (the next
	// step, no I/O between), which the request waiting for the writer holds.
	for deadline := time.Now().Add(5 * time.Second); received() < before+float64(len(body(4))); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the beacon's body never arrived")
		}
	}
	tx.Rollback()
	if a := <-answers; a.code != http.StatusAccepted {
		t.Fatalf("seq %d: %d", a.seq, a.code)
	}
	if code := <-beacon; code != http.StatusAccepted {
		t.Fatalf("beacon: %d", code)
	}
	if code, _, _ := send(strings.NewReader(body(refused.seq))); code != http.StatusAccepted {
		t.Fatalf("seq %d retried: %d", refused.seq, code)
	}
	pw.Write([]byte(body(2)[20:]))
	pw.Close()
	if code := <-slow; code != http.StatusAccepted {
		t.Fatalf("slow seq 2: %d", code)
	}
	if n := recorded(); n != 5 {
		t.Errorf("%d batches recorded, want 5", n)
	}
}

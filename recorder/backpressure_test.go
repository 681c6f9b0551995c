package recorder_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trailmap/trailmap/recorder"
	"github.com/trailmap/trailmap/replay"
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

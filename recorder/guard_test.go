package recorder_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trailmap/trailmap/recorder"
	"github.com/trailmap/trailmap/storage/fs"
	"github.com/trailmap/trailmap/storage/index"
	"github.com/trailmap/trailmap/storage/index/indextest"
)

// countingIndex counts write-key lookups.
type countingIndex struct {
	*index.DB
	lookups atomic.Int64
}

func (c *countingIndex) ProjectByKey(ctx context.Context, key string) (*index.Project, error) {
	c.lookups.Add(1)
	return c.DB.ProjectByKey(ctx, key)
}

// TestRecorder_UnknownKeyCached checks that an unknown write key is looked
// up once and then refused from memory for a while.
func TestRecorder_UnknownKeyCached(t *testing.T) {
	db := &countingIndex{DB: indextest.New(t)}
	dir := t.TempDir()
	blobs, err := fs.New(dir + "/blobs")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_764_403_200, 0)
	cfg := recorder.DefaultConfig(dir)
	cfg.RatePerIP, cfg.RatePerKey = 0, 0
	cfg.Now = func() time.Time { return now }
	rec, err := recorder.New(context.Background(), cfg, db, blobs, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rec.Close(context.Background()) })
	ingest := func() error {
		_, err := rec.Ingest(context.Background(), recorder.Request{Key: "wk_madeup", Body: strings.NewReader(`{}`), RemoteIP: "203.0.113.1"})
		return err
	}
	for range 5 {
		if err := ingest(); !errors.Is(err, recorder.ErrUnknownKey) {
			t.Fatalf("err %v, want ErrUnknownKey", err)
		}
	}
	if n := db.lookups.Load(); n != 1 {
		t.Fatalf("%d lookups for 5 requests with one unknown key, want 1", n)
	}
	now = now.Add(11 * time.Second)
	ingest()
	if n := db.lookups.Load(); n != 2 {
		t.Fatalf("%d lookups after the cache expired, want 2", n)
	}
}

// TestRecorder_QuotaConcurrent starts many sessions at once against a
// session quota, each with a few batches racing: exactly the quota's
// sessions are accepted, each of them whole, and the index counts them.
func TestRecorder_QuotaConcurrent(t *testing.T) {
	const quota = 25
	s := newStack(t, func(c *recorder.Config) { c.Quota.SessionsPerDay = quota })
	const sessions, batches = 60, 3
	accepted := make([]atomic.Int64, sessions)
	var wg sync.WaitGroup
	for i := range sessions {
		for seq := range batches {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ev := fmt.Sprintf(`{"type":5,"timestamp":%d,"data":{"tag":"n","payload":{}}}`, 1000+seq)
				code, body := s.post(t, fmt.Sprintf("quota_race_%04d", i), seq, ev)
				switch {
				case code == http.StatusAccepted:
					accepted[i].Add(1)
				case code == http.StatusTooManyRequests && body["error"].(map[string]any)["code"] == "quota_exceeded":
				default:
					t.Errorf("%d %v", code, body)
				}
			}()
		}
	}
	wg.Wait()
	let := 0
	for i := range sessions {
		n := accepted[i].Load()
		if n > 0 {
			let++
		}
	}
	if let != quota {
		t.Fatalf("%d sessions let in, want %d", let, quota)
	}
	// Batches of a session that was let in are never refused for the
	// session quota once its first accepted batch is in.
	for i := range sessions {
		sess := fmt.Sprintf("quota_race_%04d", i)
		if accepted[i].Load() == 0 {
			continue
		}
		for seq := range batches {
			if code, body := s.post(t, sess, seq, `{"type":5,"timestamp":1,"data":{"tag":"n","payload":{}}}`); code != http.StatusAccepted {
				t.Fatalf("%s seq %d of a started session: %d %v", sess, seq, code, body)
			}
		}
	}
	if err := s.rec.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	p, err := s.db.ProjectByKey(context.Background(), s.key)
	if err != nil {
		t.Fatal(err)
	}
	u, err := s.db.UsageOn(context.Background(), p.ID, time.Now().UnixMilli()/(24*3600*1000))
	if err != nil {
		t.Fatal(err)
	}
	if u.Sessions != quota || u.Events != quota*batches {
		t.Fatalf("index usage %+v, want %d sessions and %d events", u, quota, quota*batches)
	}
}

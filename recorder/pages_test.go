package recorder_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
)

// TestRecorder_PageViews checks that a repair snapshot (a Meta repeating the
// current URL without a trailmap/page event) is not a new page view, while a
// navigation or a reload the recorder marks is.
func TestRecorder_PageViews(t *testing.T) {
	s := newStack(t, nil)
	meta := func(ts int, path string) string {
		return fmt.Sprintf(`{"type":4,"timestamp":%d,"data":{"href":"https://site.example%s","width":1200,"height":800}},{"type":2,"timestamp":%d,"data":{"node":{"type":0,"id":1,"childNodes":[]},"initialOffset":{"top":0,"left":0}}}`, ts, path, ts+1)
	}
	page := func(ts int) string {
		return fmt.Sprintf(`{"type":5,"timestamp":%d,"data":{"tag":"trailmap/page","payload":{"referrer":"","title":"t"}}}`, ts)
	}
	steps := []struct {
		name   string
		events string
		pages  int
	}{
		{"first page", meta(1000, "/a") + "," + page(1002), 1},
		{"repair snapshot on the same page", meta(2000, "/a"), 1},
		{"navigation without marker (plain rrweb client)", meta(3000, "/b"), 2},
		{"reload marked by the recorder", meta(4000, "/b") + "," + page(4002), 3},
	}
	for seq, st := range steps {
		if code, body := s.post(t, "page_views_session", seq, st.events); code != http.StatusAccepted {
			t.Fatalf("%s: %d %v", st.name, code, body)
		}
		if err := s.rec.CaughtUp(context.Background()); err != nil { // the 202 does not wait for the index
			t.Fatal(err)
		}
		sess, err := s.db.SessionByPublicID(context.Background(), nil, "page_views_session")
		if err != nil {
			t.Fatal(err)
		}
		if sess.Pages != st.pages {
			t.Fatalf("after %s: %d page views, want %d", st.name, sess.Pages, st.pages)
		}
	}
}

// TestRecorder_EntryOutOfOrder checks that the entry page and referrer come
// from the earliest batch even when it arrives after a later one.
func TestRecorder_EntryOutOfOrder(t *testing.T) {
	s := newStack(t, nil)
	page := func(ts int, path, ref string) string {
		return fmt.Sprintf(`{"type":4,"timestamp":%d,"data":{"href":"https://site.example%s","width":1200,"height":800}},{"type":5,"timestamp":%d,"data":{"tag":"trailmap/page","payload":{"referrer":%q,"title":"t"}}}`, ts, path, ts+1, ref)
	}
	for _, b := range []struct {
		seq    int
		events string
	}{{1, page(2000, "/b", "https://site.example/a")}, {0, page(1000, "/a", "https://search.example/?q=x")}} {
		if code, body := s.post(t, "entry_order_session", b.seq, b.events); code != http.StatusAccepted {
			t.Fatalf("%d %v", code, body)
		}
	}
	if err := s.rec.CaughtUp(context.Background()); err != nil {
		t.Fatal(err)
	}
	sess, err := s.db.SessionByPublicID(context.Background(), nil, "entry_order_session")
	if err != nil {
		t.Fatal(err)
	}
	if sess.EntryURL != "https://site.example/a" || sess.Referrer != "https://search.example" || sess.StartedAt.UnixMilli() != 1000 {
		t.Fatalf("entry %q referrer %q start %v", sess.EntryURL, sess.Referrer, sess.StartedAt.UnixMilli())
	}
}

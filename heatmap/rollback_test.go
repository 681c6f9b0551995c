package heatmap

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/trailmap/trailmap/internal/rrweb"
	"github.com/trailmap/trailmap/storage/sqldb"
)

// A transaction that fails after its batches were followed (a deadlock, a
// lost connection, another batch of the group refused) puts the trackers
// back as they were before it: the retry meets the DOM the session's
// earlier batches built and the clicks still in their dead-click window,
// and counts nothing twice. Until 2026-12-05 a retry resumed the session
// from the index, which forgot both: the retried batch's dead click was
// never dead and its clicks had no element until the next full snapshot.
func TestService_RollbackKeepsTracker(t *testing.T) {
	eachFixture(t, DefaultConfig(), func(t *testing.T, f *fixture) {
		sid := f.session("keep0001", "desktop", t0)
		// A click on the menu button: nothing answers it in this batch.
		f.observe(sid, cat(session(t0, "https://shop.test/", 1280, 800, 1280, 3000), evClicks(t0+1000, 14, 10, 20)))
		// The next batch: a button added after the click's window has
		// passed (a dead click), then a click on the new button.
		batch := cat(
			evAdd(t0+4000, 11, 0, `{"type":2,"id":30,"tagName":"button","attributes":{"class":"late"},"childNodes":[]}`),
			evClicks(t0+4500, 30, 40, 50))
		for range 2 { // fails twice, as a deadlock retried would
			if err := f.observeErr(f.svc, sid, batch, true); !errors.Is(err, errRollback) {
				t.Fatalf("want the rollback, got %v", err)
			}
		}
		f.observe(sid, batch)
		if got := f.count(`SELECT COUNT(*) FROM heat_signals WHERE session_id = ? AND type = 'dead'`, sid); got != 1 {
			t.Errorf("dead clicks %d, want 1 (the window passed in the retried batch)", got)
		}
		if got := f.count(`SELECT COUNT(*) FROM heat_clicks WHERE session_id = ?`, sid); got != 2 {
			t.Errorf("clicks %d, want 2", got)
		}
		sels := f.rows(`SELECT c.node_id, COALESCE(s.selector, '') FROM heat_clicks c
			LEFT JOIN heat_selectors s ON s.id = c.selector_id WHERE c.session_id = ? ORDER BY c.ts`, sid)
		if want := []string{"14|div#app > main > button:nth-of-type(2)", "30|div#app > main > button:nth-of-type(3)"}; !slices.Equal(sels, want) {
			t.Errorf("clicks' elements %q, want %q (the DOM kept, the added button in it)", sels, want)
		}
		if got := f.count(`SELECT dead_clicks FROM sessions WHERE id = ?`, sid); got != 1 {
			t.Errorf("session's dead clicks %d, want 1", got)
		}
		if got := f.count(`SELECT SUM(clicks) * 10 + SUM(dead_clicks) FROM heat_page_day WHERE ? > 0`, sid); got != 21 {
			t.Errorf("page day clicks * 10 + dead = %d, want 21", got)
		}
	})
}

// Every shared rrweb fixture gives the same facts when each of its
// batches is first followed in a transaction that fails — alone, or with
// the batch after it — and then again: the rows of its clicks, signals and
// page views equal those of a run without failures.
func TestService_RollbackFixtures(t *testing.T) {
	paths, err := filepath.Glob(filepath.Join(fixtureDir, "*.json"))
	if err != nil || len(paths) == 0 {
		paths, _ = filepath.Glob("/work/shared/testdata/rrweb-fixtures/*.json")
	}
	if len(paths) < 20 {
		t.Fatalf("found %d fixtures", len(paths))
	}
	ctx := context.Background()
	eachFixture(t, DefaultConfig(), func(t *testing.T, f *fixture) {
		clicks := 0
		for i, p := range paths {
			evs := loadFixture(t, filepath.Base(p))
			var batches [][]json.RawMessage
			for j := 0; j < len(evs); j += 15 {
				batches = append(batches, evs[j:min(j+15, len(evs))])
			}
			straight := f.session(fmt.Sprintf("straight%04d", i), "desktop", t0)
			for _, b := range batches {
				f.observe(straight, b)
			}
			f.close(straight)
			failing := f.session(fmt.Sprintf("failing%04d", i), "desktop", t0)
			for j, b := range batches {
				// Every other batch fails together with the next one.
				group := batches[j:min(j+1+j%2, len(batches))]
				err := f.db.SQL().InSharedTx(ctx, func(tx *sqldb.Tx) error {
					for _, g := range group {
						if err := observeIn(ctx, tx, f.svc, failing, g); err != nil {
							return err
						}
					}
					return errRollback
				})
				if !errors.Is(err, errRollback) {
					t.Fatalf("%s batch %d: want the rollback, got %v", filepath.Base(p), j, err)
				}
				f.observe(failing, b)
			}
			f.close(failing)
			for _, q := range []string{
				`SELECT ts, vx, vy, x, y, wb, node_id, COALESCE(selector_id, 0), COALESCE(ox, -1), COALESCE(oy, -1), flags FROM heat_clicks WHERE session_id = ? ORDER BY id`,
				`SELECT ts, type, x, y, COALESCE(selector_id, 0), count, message FROM heat_signals WHERE session_id = ? ORDER BY id`,
				`SELECT page_id, ts, url, snapshot_ts, vw, vh, doc_w, doc_h, max_bottom, depth_bucket, fold_px, fold_pm, agg_doc_h, clicks, state FROM heat_pageviews WHERE session_id = ? ORDER BY id`,
				`SELECT rage_clicks, dead_clicks, error_clicks FROM sessions WHERE id = ?`,
			} {
				want, got := f.rows(q, straight), f.rows(q, failing)
				if !slices.Equal(got, want) {
					t.Errorf("%s: %s\n with failures: %q\n without:       %q", filepath.Base(p), q[:strings.Index(q, " FROM")], got, want)
				}
			}
			clicks += int(f.count(`SELECT COUNT(*) FROM heat_clicks WHERE session_id = ?`, straight))
		}
		if clicks == 0 {
			t.Error("no fixture has a click")
		}
	})
}

// rows returns a query's rows, each as its columns' text joined by |.
func (f *fixture) rows(query string, args ...any) []string {
	f.t.Helper()
	rs, err := f.db.SQL().Read().Query(query, args...)
	if err != nil {
		f.t.Fatalf("%s: %v", query, err)
	}
	defer rs.Close()
	cols, err := rs.Columns()
	if err != nil {
		f.t.Fatal(err)
	}
	var out []string
	for rs.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rs.Scan(ptrs...); err != nil {
			f.t.Fatal(err)
		}
		parts := make([]string, len(vals))
		for i, v := range vals {
			if b, ok := v.([]byte); ok {
				v = string(b)
			}
			parts[i] = fmt.Sprint(v)
		}
		out = append(out, strings.Join(parts, "|"))
	}
	if err := rs.Err(); err != nil {
		f.t.Fatal(err)
	}
	return out
}

// A checkpoint shares no page view, click or signal with the tracker, and
// keeps which points to which: the rage chain's clicks and the recent ones
// are the same copies, their signal names the copy of its first click.
func TestTracker_CheckpointCopies(t *testing.T) {
	set := DefaultSettings()
	tr := newTracker(&set, 1000)
	events := cat(session(t0, "https://shop.test/", 1280, 800, 1280, 3000),
		evClicks(t0+1000, 12, 10, 20), evClicks(t0+1200, 12, 10, 20), evClicks(t0+1400, 12, 10, 20))
	if err := tr.observe(rrweb.SplitAll(events), &memSink{}); err != nil {
		t.Fatal(err)
	}
	if len(tr.chain) != 3 || tr.chain[0].rage == nil {
		t.Fatalf("want a rage chain of 3, got %d", len(tr.chain))
	}
	c := tr.checkpoint()
	if c.pv == tr.pv || c.chain[0] == tr.chain[0] || c.chain[0].rage == tr.chain[0].rage {
		t.Fatal("the checkpoint shares a page view, click or signal with the tracker")
	}
	if c.recent[len(c.recent)-1] != c.chain[2] || c.chain[0].rage.c != c.chain[0] || c.chain[1].rage != c.chain[0].rage || c.chain[0].pv != c.pv {
		t.Error("the copies do not point to each other as the originals do")
	}
	tr.chain[0].rage.count = 99
	tr.pv.clicks = 99
	if c.chain[0].rage.count == 99 || c.pv.clicks == 99 {
		t.Error("a change to the tracker shows in the checkpoint")
	}
}

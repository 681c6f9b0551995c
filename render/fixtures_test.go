package render

import (
	"context"
	"encoding/json"
	"errors"
	"image"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trailmap/trailmap/ui"
)

// fixtureDir is the rrweb project's event streams (shared test data, or
// the recorder's copy of them).
func fixtureDir(t *testing.T) string {
	for _, d := range []string{filepath.Join("..", "..", "shared", "testdata", "rrweb-fixtures"), filepath.Join("..", "recorder", "testdata", "rrweb")} {
		if _, err := os.Stat(filepath.Join(d, "example.json")); err == nil {
			return d
		}
	}
	t.Fatal("no rrweb fixtures")
	return ""
}

// Every rrweb fixture renders: frames with the replayed page in them, or,
// for a stream without a full snapshot, the clear ErrInvalid a user sees.
func TestRenderer_RRWebFixtures(t *testing.T) {
	web, err := ui.NewWeb()
	if err != nil || !web.Built() {
		t.Fatalf("the UI bundle is not built (make js): %v", err)
	}
	dir := fixtureDir(t)
	files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	if len(files) < 20 {
		t.Fatalf("%d fixtures in %s", len(files), dir)
	}
	// One Chromium for all of them (a tab each).
	br, err := startBrowser(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer br.Close()
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".json")
		t.Run(name, func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var evs []struct {
				Type      int   `json:"type"`
				Timestamp int64 `json:"timestamp"`
			}
			if err := json.Unmarshal(b, &evs); err != nil || len(evs) == 0 {
				t.Fatalf("%v", err)
			}
			first, last, snapshot := evs[0].Timestamp, evs[0].Timestamp, false
			for _, e := range evs {
				first, last = min(first, e.Timestamp), max(last, e.Timestamp)
				snapshot = snapshot || e.Type == 2
			}
			// At most 20 s of each (a fixture's clock may jump: the
			// server's ranges are bounded as well).
			dur := min(max(last-first, 1000), 20_000)
			pg := func(w io.Writer) error {
				return web.WriteRender(w, ui.RenderClip{StartTS: first, DurationMS: dur},
					func(w io.Writer) error { _, err := w.Write(b); return err })
			}
			o := Options{Format: FormatGIF, Size: Size720, FPS: 5, Speed: 8, EndMS: dur}
			lit := 0
			r := &Renderer{browser: br, onFrame: func(i int, fr *image.RGBA) {
				if i != 0 {
					return
				}
				// The stage is dark; the replayed page is drawn over it.
				for p := 0; p < len(fr.Pix); p += 4 * 97 {
					if fr.Pix[p] > 100 || fr.Pix[p+1] > 100 || fr.Pix[p+2] > 100 {
						lit++
					}
				}
			}}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			res, err := r.Render(ctx, pg, dur, o, filepath.Join(t.TempDir(), "out.gif"), nil)
			if !snapshot {
				if !errors.Is(err, ErrInvalid) {
					t.Fatalf("a stream without a full snapshot: %v, want ErrInvalid", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if res.Frames < 1 || lit < 100 {
				t.Errorf("%d frames, %d lit samples in the first: nothing drawn", res.Frames, lit)
			}
		})
	}
}

package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trailmap/trailmap/internal/miniotest"
	"github.com/trailmap/trailmap/internal/servertest"
	"github.com/trailmap/trailmap/storage/fs"
	"github.com/trailmap/trailmap/storage/zdict"
)

// TestConformance ingests every rrweb fixture, gzip- and zstd-encoded and
// split over several batches, and streams it back equal, event for event,
// before and after the segments are flushed, on both blob backends.
func TestConformance(t *testing.T) {
	fx := fixtures(t)
	backends := []struct {
		name string
		args func(t *testing.T) []string
	}{
		{"local", func(t *testing.T) []string { return nil }},
		{"minio", func(t *testing.T) []string {
			m := miniotest.Shared(t)
			c := m.Config(t)
			return []string{"--s3-endpoint", c.Endpoint, "--s3-bucket", c.Bucket, "--s3-access-key", c.AccessKey, "--s3-secret-key", c.SecretKey}
		}},
	}
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			s := servertest.Start(t, be.args(t)...)
			type sent struct{ session, name string }
			var all []sent
			for i, name := range sortedKeys(fx) {
				evs := fx[name]
				enc := []string{"gzip", "zstd"}[i%2]
				session := fmt.Sprintf("conf_%s_%02d", be.name, i)
				// Split into up to 3 batches to exercise seq ordering.
				chunks := split(evs, 3)
				for seq, chunk := range chunks {
					a := post(t, s.URL, s.WriteKey, enc, compress(t, enc, batchBody(t, session, "visitor_conf", seq, chunk)))
					if a.Status != http.StatusAccepted {
						t.Fatalf("%s seq %d: %d %v", name, seq, a.Status, a.Body)
					}
				}
				all = append(all, sent{session, name})
			}
			// Live: served from the write-ahead log buffers.
			for _, x := range all {
				t.Run("live/"+x.name, func(t *testing.T) { sameEvents(t, events(t, s, x.session, ""), fx[x.name]) })
			}
			// Stored: a graceful restart flushes everything into segments.
			s.Restart(t)
			for _, x := range all {
				t.Run("stored/"+x.name, func(t *testing.T) { sameEvents(t, events(t, s, x.session, ""), fx[x.name]) })
			}
			if be.name == "local" {
				checkSegmentsOnDisk(t, s.DataDir, len(all))
			}
		})
	}
}

func split[T any](xs []T, n int) [][]T {
	if len(xs) < n {
		n = len(xs)
	}
	var out [][]T
	size := (len(xs) + n - 1) / n
	for i := 0; i < len(xs); i += size {
		out = append(out, xs[i:min(i+size, len(xs))])
	}
	return out
}

// checkSegmentsOnDisk checks the storage layout of DESIGN.md: every object a
// zstd frame of newline-delimited events under
// <project>/sessions/<yyyy>/<mm>/<dd>/<session_id>/<first>-<last>.zst.
func checkSegmentsOnDisk(t *testing.T, dataDir string, sessions int) {
	t.Helper()
	root := filepath.Join(dataDir, "blobs")
	segs := segmentReader(t, root)
	seen := map[string]bool{}
	err := filepath.Walk(root, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if strings.HasPrefix(filepath.ToSlash(rel), "dicts/") || strings.HasSuffix(rel, "/dictionary.json") {
			return nil // segment dictionaries (storage/zdict)
		}
		parts := strings.Split(filepath.ToSlash(rel), "/")
		if len(parts) != 7 || parts[1] != "sessions" || !strings.HasSuffix(parts[6], ".zst") {
			t.Errorf("object %s does not follow the key layout", rel)
			return nil
		}
		seen[parts[5]] = true
		raw, _ := os.ReadFile(p)
		out, err := segs.DecodeAll(context.Background(), raw)
		if err != nil {
			t.Errorf("%s is not zstd: %v", rel, err)
			return nil
		}
		if len(out) == 0 || out[len(out)-1] != '\n' {
			t.Errorf("%s is not newline-delimited", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != sessions {
		t.Errorf("segments for %d sessions on disk, want %d", len(seen), sessions)
	}
}

// segmentReader decompresses segments of the local blob store at root,
// with the dictionaries they were written with.
func segmentReader(t testing.TB, root string) *zdict.Set {
	t.Helper()
	blobs, err := fs.New(root)
	if err != nil {
		t.Fatal(err)
	}
	return zdict.New(blobs, zdict.DefaultConfig(), slog.New(slog.NewTextHandler(io.Discard, nil)))
}

package zdict_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/trailmap/trailmap/internal/miniotest"
	"github.com/trailmap/trailmap/storage"
	"github.com/trailmap/trailmap/storage/fs"
	"github.com/trailmap/trailmap/storage/index"
	"github.com/trailmap/trailmap/storage/s3"
	"github.com/trailmap/trailmap/storage/zdict"
)

func TestMain(m *testing.M) { miniotest.Main(m) }

// eachStore runs fn on the local blob store and on a real MinIO bucket.
func eachStore(t *testing.T, fn func(t *testing.T, blobs storage.Blobs)) {
	t.Run("local", func(t *testing.T) {
		b, err := fs.New(filepath.Join(t.TempDir(), "blobs"))
		if err != nil {
			t.Fatal(err)
		}
		fn(t, b)
	})
	t.Run("minio", func(t *testing.T) {
		b, err := s3.New(context.Background(), miniotest.Shared(t).Config(t))
		if err != nil {
			t.Fatal(err)
		}
		fn(t, b)
	})
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// segments is a project's stored segments, as the index lists them.
type segments struct {
	project int64
	keys    []string // oldest first
}

func (s *segments) Projects(context.Context) ([]index.Project, error) {
	return []index.Project{{ID: s.project}}, nil
}

func (s *segments) RecentSegmentKeys(_ context.Context, project int64, limit int) ([]string, error) {
	var out []string
	for i := len(s.keys) - 1; i >= 0 && len(out) < limit; i-- {
		out = append(out, s.keys[i])
	}
	return out, nil
}

// store compresses n shop visits with set and stores them as segments.
func (s *segments) store(t testing.TB, ctx context.Context, set *zdict.Set, blobs storage.Blobs, r *rand.Rand, n int) (raws [][]byte) {
	t.Helper()
	for i := 0; i < n; i++ {
		raw := ShopVisit(r, len(s.keys))
		key := fmt.Sprintf("%d/sessions/2026/12/04/visit%05d/0-0.zst", s.project, len(s.keys))
		data := set.Compress(ctx, s.project, raw, false)
		if err := blobs.Put(ctx, key, bytes.NewReader(data), int64(len(data))); err != nil {
			t.Fatal(err)
		}
		s.keys = append(s.keys, key)
		raws = append(raws, raw)
	}
	return raws
}

func dictID(t testing.TB, frame []byte) uint32 {
	t.Helper()
	var h zstd.Header
	if err := h.Decode(frame); err != nil {
		t.Fatal(err)
	}
	return h.DictionaryID
}

func read(t *testing.T, ctx context.Context, set *zdict.Set, blobs storage.Blobs, key string) ([]byte, error) {
	t.Helper()
	rc, err := blobs.Get(ctx, key, 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	r, err := set.Open(ctx, rc)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(r)
}

// A project's segments are written with the built-in dictionary until it
// has its own; then with v1, after a retrain with v2. A node that has
// never seen either reads all of them; one without v1's object says so.
func TestDictionaries(t *testing.T) {
	eachStore(t, func(t *testing.T, blobs storage.Blobs) {
		ctx := context.Background()
		r := rand.New(rand.NewSource(1))
		writer := zdict.New(blobs, zdict.DefaultConfig(), quiet())
		segs := &segments{project: 7}
		cfg := zdict.DefaultTrainConfig()
		cfg.MinSegments = 40
		trainer := zdict.NewTrainer(writer, segs, cfg, quiet())

		if n, err := trainer.TrainDue(ctx, time.Now()); err != nil || n != 0 {
			t.Fatalf("TrainDue without segments = %d, %v", n, err)
		}
		raws := segs.store(t, ctx, writer, blobs, r, 60)
		first, _ := blobs.Get(ctx, segs.keys[0], 0, 64)
		head, _ := io.ReadAll(first)
		first.Close()
		if id := dictID(t, head); id != zdict.BuiltinID {
			t.Fatalf("a project without a dictionary writes with dictionary %d, want the built-in one", id)
		}

		if n, err := trainer.TrainDue(ctx, time.Now()); err != nil || n != 1 {
			t.Fatalf("TrainDue with 60 segments = %d, %v", n, err)
		}
		v1, err := writer.ReadInfo(ctx, segs.project)
		if err != nil || v1 == nil || v1.Reason != "first" || v1.ID <= zdict.BuiltinID {
			t.Fatalf("info after training: %+v, %v", v1, err)
		}
		t.Logf("v1: %d bytes, on held-out visits %.3f × raw with it, %.3f without (best level), gzip -6 %.3f: %.2f × gzip",
			v1.Bytes, v1.Ratio, v1.PlainRate, v1.GzipRatio, v1.Ratio/v1.GzipRatio)
		if v1.Ratio >= v1.PlainRate {
			t.Errorf("the dictionary does not help: %.3f with, %.3f without", v1.Ratio, v1.PlainRate)
		}
		raws = append(raws, segs.store(t, ctx, writer, blobs, r, 10)...)
		withV1 := segs.keys[len(segs.keys)-1]

		// A week later: retrained, v2 is current; v1's segments stay.
		if n, err := trainer.TrainDue(ctx, time.Now().Add(8*24*time.Hour)); err != nil || n != 1 {
			t.Fatalf("TrainDue a week later = %d, %v", n, err)
		}
		v2, _ := writer.ReadInfo(ctx, segs.project)
		if v2.ID == v1.ID || v2.Previous != v1.ID || v2.Reason != "age" {
			t.Fatalf("v2 %+v after v1 %d", v2, v1.ID)
		}
		raws = append(raws, segs.store(t, ctx, writer, blobs, r, 5)...)

		// A node that has never seen a dictionary reads every segment.
		fresh := zdict.New(blobs, zdict.DefaultConfig(), quiet())
		ids := map[uint32]int{}
		for i, k := range segs.keys {
			obj, _ := blobs.Get(ctx, k, 0, 64)
			h, _ := io.ReadAll(obj)
			obj.Close()
			ids[dictID(t, h)]++
			got, err := read(t, ctx, fresh, blobs, k)
			if err != nil {
				t.Fatalf("%s: %v", k, err)
			}
			if !bytes.Equal(got, raws[i]) {
				t.Fatalf("%s reads back different", k)
			}
		}
		if ids[zdict.BuiltinID] != 60 || ids[v1.ID] != 10 || ids[v2.ID] != 5 {
			t.Errorf("segments by dictionary %v, want 60 built-in, 10 v1 (%d), 5 v2 (%d)", ids, v1.ID, v2.ID)
		}

		// Without v1's object, its segments cannot be read, and say why.
		if err := blobs.Delete(ctx, zdict.DictKey(v1.ID)); err != nil {
			t.Fatal(err)
		}
		_, err = read(t, ctx, zdict.New(blobs, zdict.DefaultConfig(), quiet()), blobs, withV1)
		if !errors.Is(err, zdict.ErrMissingDictionary) || !strings.Contains(err.Error(), zdict.DictKey(v1.ID)) {
			t.Errorf("reading a segment whose dictionary is gone: %v", err)
		}
	})
}

// Segments written by zstd alone (before dictionaries) read as before.
func TestDictionaries_PlainSegments(t *testing.T) {
	ctx := context.Background()
	blobs, err := fs.New(filepath.Join(t.TempDir(), "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	enc, _ := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedBestCompression))
	raw := ShopVisit(rand.New(rand.NewSource(2)), 0)
	data := enc.EncodeAll(raw, nil)
	if err := blobs.Put(ctx, "1/sessions/2026/01/01/old/0-0.zst", bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	got, err := read(t, ctx, zdict.New(blobs, zdict.DefaultConfig(), quiet()), blobs, "1/sessions/2026/01/01/old/0-0.zst")
	if err != nil || !bytes.Equal(got, raw) {
		t.Fatalf("plain segment: %v", err)
	}
	if _, err := zdict.New(blobs, zdict.DefaultConfig(), quiet()).DecodeAll(ctx, []byte("not zstd at all")); err == nil {
		t.Error("garbage decoded")
	}
}

// A large segment is written at zstd's best level without a dictionary
// (the dictionary would gain a few percent at several times the time), a
// small one with its project's; under pressure both with the dictionary
// at the fastest level. All read back, and only the dictionary's own
// segments count toward its drift.
func TestCompress_sizes(t *testing.T) {
	ctx := context.Background()
	blobs, err := fs.New(filepath.Join(t.TempDir(), "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	set := zdict.New(blobs, zdict.DefaultConfig(), quiet())
	r := rand.New(rand.NewSource(3))
	small := ShopVisit(r, 0)
	var large bytes.Buffer
	for i := 1; large.Len() < 200<<10; i++ {
		large.Write(ShopVisit(r, i))
	}
	for _, c := range []struct {
		name string
		raw  []byte
		fast bool
		id   uint32
	}{
		{"small", small, false, zdict.BuiltinID},
		{"large", large.Bytes(), false, 0},
		{"large under pressure", large.Bytes(), true, zdict.BuiltinID},
	} {
		data := set.Compress(ctx, 3, c.raw, c.fast)
		if id := dictID(t, data); id != c.id {
			t.Errorf("%s segment (%d bytes): dictionary %d, want %d", c.name, len(c.raw), id, c.id)
		}
		got, err := zdict.New(blobs, zdict.DefaultConfig(), quiet()).DecodeAll(ctx, data)
		if err != nil || !bytes.Equal(got, c.raw) {
			t.Errorf("%s segment reads back different: %v", c.name, err)
		}
	}
	if _, raw := set.Observed(3); raw != int64(len(small)+large.Len()) {
		t.Errorf("drift measured on %d raw bytes, want the dictionary's segments' %d", raw, len(small)+large.Len())
	}
}

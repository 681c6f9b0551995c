package zdict_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/trailmap/trailmap/internal/rrwebgen"
	"github.com/trailmap/trailmap/storage/fs"
	"github.com/trailmap/trailmap/storage/zdict"
)

// BenchmarkDictionaries compares how short visits to a shop are stored:
// zstd alone at its best level (segments before dictionaries), with the
// built-in dictionary (a new project) and with the project's own (trained
// on 400 earlier visits), each as stored ÷ gzip -6 of the same events and
// ÷ raw, and compression MB/s on one core (speedup: ÷ the best level's).
func BenchmarkDictionaries(b *testing.B) {
	ctx := context.Background()
	r := rand.New(rand.NewSource(1))
	blobs, err := fs.New(filepath.Join(b.TempDir(), "blobs"))
	if err != nil {
		b.Fatal(err)
	}
	set := zdict.New(blobs, zdict.DefaultConfig(), quiet())
	segs := &segments{project: 1}
	b.StopTimer()
	segs.store(b, ctx, set, blobs, r, 400)
	var test [][]byte
	gz, raw := 0, 0
	for i := 0; i < 100; i++ {
		v := ShopVisit(r, 1000+i)
		test = append(test, v)
		var buf bytes.Buffer
		w, _ := gzip.NewWriterLevel(&buf, 6)
		w.Write(v)
		w.Close()
		gz += buf.Len()
		raw += len(v)
	}
	run := func(compress func([]byte) []byte) (ratio, mbps float64) {
		stored := 0
		start := time.Now()
		for i := 0; i < max(1, b.N); i++ {
			stored = 0
			for _, v := range test {
				stored += len(compress(v))
			}
		}
		return float64(stored) / float64(gz), float64(raw*max(1, b.N)) / time.Since(start).Seconds() / 1e6
	}
	best, _ := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedBestCompression), zstd.WithEncoderConcurrency(1), zstd.WithWindowSize(8<<20), zstd.WithEncoderCRC(true))
	b.StartTimer()
	plainRatio, plainMBps := run(func(v []byte) []byte { return best.EncodeAll(v, nil) })
	builtinRatio, builtinMBps := run(func(v []byte) []byte { return set.Compress(ctx, 2, v, false) })
	b.StopTimer()
	if _, err := zdict.NewTrainer(set, segs, zdict.DefaultTrainConfig(), quiet()).Train(ctx, 1, "first", time.Now()); err != nil {
		b.Fatal(err)
	}
	b.StartTimer()
	ownRatio, ownMBps := run(func(v []byte) []byte { return set.Compress(ctx, 1, v, false) })
	b.ReportMetric(float64(raw)/float64(len(test)), "visit-bytes")
	b.ReportMetric(plainRatio, "best-x-gzip")
	b.ReportMetric(builtinRatio, "builtin-x-gzip")
	b.ReportMetric(ownRatio, "own-x-gzip")
	b.ReportMetric(float64(gz)/float64(raw)*ownRatio, "own-x-raw")
	b.ReportMetric(plainMBps, "best-MB/s")
	b.ReportMetric(ownMBps, "own-MB/s")
	b.ReportMetric(ownMBps/plainMBps, "own-speedup")
	b.ReportMetric(builtinMBps/plainMBps, "builtin-speedup")
	// The rrweb project's 81 s demo recording, one segment: a long visit
	// of another site, with the built-in dictionary.
	if demo, err := os.ReadFile("../../recorder/testdata/rrweb/player-demo-recording.json"); err == nil {
		var evs []json.RawMessage
		if json.Unmarshal(demo, &evs) == nil {
			var seg bytes.Buffer
			for _, e := range evs {
				seg.Write(e)
				seg.WriteByte('\n')
			}
			var buf bytes.Buffer
			w, _ := gzip.NewWriterLevel(&buf, 6)
			w.Write(seg.Bytes())
			w.Close()
			b.ReportMetric(float64(len(best.EncodeAll(seg.Bytes(), nil)))/float64(buf.Len()), "demo-best-x-gzip")
			b.ReportMetric(float64(len(set.Compress(ctx, 2, seg.Bytes(), false)))/float64(buf.Len()), "demo-builtin-x-gzip")
		}
	}
	if b.N == 1 {
		fmt.Printf("stored ÷ gzip -6: best level %.3f, built-in %.3f, own %.3f; MB/s best %.1f, own %.1f\n", plainRatio, builtinRatio, ownRatio, plainMBps, ownMBps)
	}
}

// BenchmarkCompress_large compares ways to write a large segment (the
// rrweb demo recording, 158 KB, 300 KB of shop visits and a generated
// session of the ingest benchmark): what Compress
// does (zstd's best level, no dictionary), the best level with the
// built-in dictionary (what it did before 2026-12-06) and "better" with
// it, each as stored ÷ gzip -6 and MB/s on one core.
func BenchmarkCompress_large(b *testing.B) {
	ctx := context.Background()
	blobs, err := fs.New(filepath.Join(b.TempDir(), "blobs"))
	if err != nil {
		b.Fatal(err)
	}
	set := zdict.New(blobs, zdict.DefaultConfig(), quiet())
	if err := set.WriteBuiltin(ctx); err != nil {
		b.Fatal(err)
	}
	rc, err := blobs.Get(ctx, zdict.DictKey(zdict.BuiltinID), 0, -1)
	if err != nil {
		b.Fatal(err)
	}
	builtin, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		b.Fatal(err)
	}
	demo, err := os.ReadFile("../../recorder/testdata/rrweb/player-demo-recording.json")
	if err != nil {
		b.Fatal(err)
	}
	var evs []json.RawMessage
	if err := json.Unmarshal(demo, &evs); err != nil {
		b.Fatal(err)
	}
	var seg bytes.Buffer
	for _, e := range evs {
		seg.Write(e)
		seg.WriteByte('\n')
	}
	r := rand.New(rand.NewSource(1))
	var shop bytes.Buffer
	for i := 0; shop.Len() < 300<<10; i++ {
		shop.Write(ShopVisit(r, i))
	}
	// One session of the ingest benchmark's generated workload (a 2,000-node
	// page and two minutes of activity: random words, which match less).
	g := rrwebgen.New(1, 1_764_000_000_000)
	var gen bytes.Buffer
	for _, e := range append(g.Page(2000), g.Activity(120)...) {
		gen.Write(e)
		gen.WriteByte('\n')
	}
	withDict := func(level zstd.EncoderLevel) func([]byte) []byte {
		enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(level), zstd.WithEncoderConcurrency(1),
			zstd.WithWindowSize(8<<20), zstd.WithEncoderCRC(true), zstd.WithEncoderDictRaw(zdict.BuiltinID, builtin))
		if err != nil {
			b.Fatal(err)
		}
		return func(v []byte) []byte { return enc.EncodeAll(v, nil) }
	}
	ways := []struct {
		name     string
		compress func([]byte) []byte
	}{
		{"compress", func(v []byte) []byte { return set.Compress(ctx, 2, v, false) }},
		{"best-dict", withDict(zstd.SpeedBestCompression)},
		{"better-dict", withDict(zstd.SpeedBetterCompression)},
	}
	for _, in := range []struct {
		name string
		data []byte
	}{{"demo", seg.Bytes()}, {"shop", shop.Bytes()}, {"generated", gen.Bytes()}} {
		var gz bytes.Buffer
		w, _ := gzip.NewWriterLevel(&gz, 6)
		w.Write(in.data)
		w.Close()
		for _, way := range ways {
			b.Run(in.name+"/"+way.name, func(b *testing.B) {
				b.SetBytes(int64(len(in.data)))
				n := len(way.compress(in.data)) // the encoder made and warm
				for b.Loop() {
					n = len(way.compress(in.data))
				}
				b.ReportMetric(float64(n)/float64(gz.Len()), "x-gzip")
			})
		}
	}
}

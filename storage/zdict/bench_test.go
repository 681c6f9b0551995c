package zdict_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

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

package replay

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/trailmap/trailmap/storage/index"
)

// objectBlobs serves one object, whatever the key.
type objectBlobs []byte

func (o objectBlobs) Get(_ context.Context, _ string, off, _ int64) (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(o[min(off, int64(len(o))):])), nil
}

const fuzzKey = "1/sessions/2026/12/03/fuzz_session/0-9.zst"

// FuzzStreamSegment feeds arbitrary bytes to the reader of stored segment
// objects, from arbitrary uncompressed offsets: it never panics, emits only
// whole non-empty lines, keeps a damaged object's endless line bounded, and
// names the segment in its error. When the bytes are a zstd stream that
// decodes, it emits exactly that stream's lines.
func FuzzStreamSegment(f *testing.F) {
	enc, _ := zstd.NewWriter(nil)
	add := func(ndjson []byte) {
		z := enc.EncodeAll(ndjson, nil)
		f.Add(z, uint16(0))
		f.Add(z, uint16(len(ndjson)/2))
		f.Add(z[:len(z)/2], uint16(0))
	}
	paths, _ := filepath.Glob("../../shared/testdata/rrweb-fixtures/*.json")
	if len(paths) == 0 {
		f.Fatal("no rrweb fixtures in ../../shared/testdata/rrweb-fixtures (shared/ must sit beside the repository)")
	}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		var evs []json.RawMessage
		if json.Unmarshal(b, &evs) != nil || len(b) > 64<<10 {
			continue // keep the seeds small: the fuzzer mutates them
		}
		var nd bytes.Buffer
		for _, ev := range evs {
			var c bytes.Buffer
			json.Compact(&c, ev)
			nd.Write(c.Bytes())
			nd.WriteByte('\n')
		}
		add(nd.Bytes())
	}
	add([]byte(`{"type":4,"timestamp":1,"data":{}}` + "\n\n" + `{"type":2,"timestamp":2}`))
	add([]byte(strings.Repeat("x", 3000)))
	f.Add([]byte{}, uint16(0))
	f.Add([]byte("not zstd at all\n"), uint16(0))

	const maxEvent = 1 << 12
	dec, _ := zstd.NewReader(nil, zstd.WithDecoderMaxMemory(16<<20), zstd.WithDecoderConcurrency(1))
	f.Fuzz(func(t *testing.T, obj []byte, off uint16) {
		s := New(nil, objectBlobs(obj), nil)
		s.maxEvent = maxEvent
		var got [][]byte
		_, err := s.streamSegment(context.Background(), index.Segment{Key: fuzzKey}, 0, int64(off), func(ev []byte) (bool, error) {
			if len(ev) == 0 || bytes.IndexByte(ev, '\n') >= 0 {
				t.Fatalf("emitted %q: not one non-empty line", ev)
			}
			if len(ev) > maxEvent+256<<10 {
				t.Fatalf("emitted a line of %d bytes over the bound %d", len(ev), maxEvent)
			}
			got = append(got, bytes.Clone(ev))
			return false, nil
		})
		if err != nil && !strings.Contains(err.Error(), fuzzKey) {
			t.Fatalf("error %q does not name the segment", err)
		}
		plain, derr := dec.DecodeAll(obj, nil)
		if derr != nil || len(plain) < int(off) {
			return
		}
		var want [][]byte
		for line := range bytes.SplitSeq(plain[off:], []byte("\n")) {
			if len(line) > 0 {
				want = append(want, line)
			}
		}
		if err != nil {
			for _, l := range want {
				if len(l) > maxEvent {
					return // refused for its long line, as it should be
				}
			}
			t.Fatalf("the object decodes, but streaming it failed: %v", err)
		}
		if len(got) != len(want) {
			t.Fatalf("streamed %d events, the object holds %d", len(got), len(want))
		}
		for i := range want {
			if !bytes.Equal(got[i], want[i]) {
				t.Fatalf("event %d: streamed %q, the object holds %q", i, got[i], want[i])
			}
		}
	})
}

// TestStreamSegment_EndlessLine: a damaged segment whose line never ends is
// refused once the line is over the bound, naming the segment, instead of
// being gathered in memory whole.
func TestStreamSegment_EndlessLine(t *testing.T) {
	enc, _ := zstd.NewWriter(nil)
	obj := enc.EncodeAll(bytes.Repeat([]byte("x"), 8<<20), nil) // 8 MiB, no newline
	s := New(nil, objectBlobs(obj), nil)
	s.maxEvent = 1 << 20
	n := 0
	_, err := s.streamSegment(context.Background(), index.Segment{Key: fuzzKey}, 0, 0, func([]byte) (bool, error) { n++; return false, nil })
	if err == nil || !strings.Contains(err.Error(), fuzzKey) || !strings.Contains(err.Error(), "not an event") {
		t.Fatalf("err %v, want a refusal of the endless line naming the segment", err)
	}
	if n != 0 {
		t.Fatalf("emitted %d events", n)
	}
}

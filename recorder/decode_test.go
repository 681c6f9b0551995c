package recorder

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zlib"
	"github.com/klauspost/compress/zstd"
)

func gzipBytes(t testing.TB, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// testZstd is the tests' one zstd encoder (EncodeAll is safe for
// concurrent use): making one per body cost TestDecoder_concurrent most of
// its 38 s under the race detector.
var testZstd = sync.OnceValue(func() *zstd.Encoder {
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(2))
	if err != nil {
		panic(err)
	}
	return enc
})

func zstdBytes(t testing.TB, data []byte) []byte {
	t.Helper()
	return testZstd().EncodeAll(data, nil)
}

func zlibBytes(t testing.TB, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := zlib.NewWriter(&buf)
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func flateBytes(t testing.TB, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := flate.NewWriter(&buf, flate.DefaultCompression)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// bombs are a GiB of zeros, gzipped and in zstd, built once. Compressing
// the GiB took most of a minute under the race detector, so they are
// assembled: gzip repeats the deflate blocks of one MiB of zeros (blocks
// after a sync flush decode the same wherever the 32 KiB before them are
// zeros), zstd is a frame of RLE blocks.
var bombs = sync.OnceValues(func() (gz, zs []byte) {
	const mib, gib = 1 << 20, 1 << 30
	zeros := make([]byte, mib)
	var g bytes.Buffer
	gw, _ := gzip.NewWriterLevel(&g, gzip.BestSpeed)
	gw.Write(zeros)
	gw.Flush()
	first := g.Len()
	gw.Write(zeros)
	gw.Flush()
	more := bytes.Clone(g.Bytes()[first:])
	for range gib/mib - 2 {
		g.Write(more)
	}
	g.Write([]byte{0x03, 0x00}) // an empty final block (fixed Huffman codes)
	crc := uint32(0)
	for range gib / mib {
		crc = crc32.Update(crc, crc32.IEEETable, zeros)
	}
	g.Write(binary.LittleEndian.AppendUint32(binary.LittleEndian.AppendUint32(nil, crc), gib&0xffffffff))

	// Magic; no content size, checksum or dictionary; a 1 MiB window
	// (2^(10+10)); then RLE blocks of 128 KiB of byte 0, the last one
	// marked.
	z := []byte{0x28, 0xb5, 0x2f, 0xfd, 0x00, 10 << 3}
	const block = 128 << 10
	for i := range gib / block {
		h := uint32(block<<3 | 1<<1)
		if i == gib/block-1 {
			h |= 1
		}
		z = append(z, byte(h), byte(h>>8), byte(h>>16), 0x00)
	}
	return g.Bytes(), z
})

func TestDecoder_Decompress(t *testing.T) {
	payload := []byte(strings.Repeat(`{"type":3,"data":{"source":1,"positions":[{"x":1,"y":2}]},"timestamp":1700000000000},`, 200))
	lim := DefaultLimits()
	tests := []struct {
		name     string
		encoding string
		body     []byte
		want     []byte
	}{
		{name: "no encoding", encoding: "", body: payload, want: payload},
		{name: "identity", encoding: "identity", body: payload, want: payload},
		{name: "identity upper case", encoding: "IDENTITY", body: payload, want: payload},
		{name: "gzip", encoding: "gzip", body: gzipBytes(t, payload), want: payload},
		{name: "gzip mixed case and spaces", encoding: " GZip ", body: gzipBytes(t, payload), want: payload},
		{name: "x-gzip", encoding: "x-gzip", body: gzipBytes(t, payload), want: payload},
		{name: "gzip multistream", encoding: "gzip", body: append(gzipBytes(t, payload[:100]), gzipBytes(t, payload[100:])...), want: payload},
		{name: "zstd", encoding: "zstd", body: zstdBytes(t, payload), want: payload},
		{name: "zstd upper case", encoding: "ZSTD", body: zstdBytes(t, payload), want: payload},
		{name: "deflate zlib-wrapped", encoding: "deflate", body: zlibBytes(t, payload), want: payload},
		{name: "deflate raw", encoding: "deflate", body: flateBytes(t, payload), want: payload},
		{name: "empty identity", encoding: "", body: nil, want: []byte{}},
	}
	d := NewDecoder(lim)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Twice: the second run takes pooled decompressors.
			for range 2 {
				got, err := d.Decompress(bytes.NewReader(tt.body), tt.encoding)
				if err != nil {
					t.Fatalf("Decompress: %v", err)
				}
				if !bytes.Equal(got, tt.want) {
					t.Fatalf("Decompress = %d bytes, want %d", len(got), len(tt.want))
				}
			}
		})
	}
}

func TestDecoder_Decompress_errors(t *testing.T) {
	payload := bytes.Repeat([]byte(`{"a":"b"},`), 1000) // 10 000 bytes
	gz := gzipBytes(t, payload)
	zs := zstdBytes(t, payload)
	small := Limits{MaxCompressed: 1000, MaxDecompressed: 5000, MaxEvents: 10, MaxEventBytes: 1000}
	gzBomb, zsBomb := bombs()
	bombLimits := DefaultLimits()
	bombLimits.MaxCompressed = 2 << 20 // let the bombs in, to test the inflate limit

	// A raw deflate stream whose first bytes look like a zlib header.
	lookalike := flateBytes(t, payload)
	if isZlibHeader(lookalike) {
		t.Fatal("raw deflate test stream happens to start with a zlib header")
	}

	tests := []struct {
		name     string
		lim      Limits
		encoding string
		body     []byte
		want     error
		msg      string
	}{
		{name: "unknown encoding", encoding: "br", body: payload, want: ErrUnsupportedEncoding, msg: `"br"`},
		{name: "encoding list", encoding: "gzip, zstd", body: gz, want: ErrUnsupportedEncoding},
		{name: "truncated gzip", encoding: "gzip", body: gz[:len(gz)/2], want: ErrMalformed, msg: "corrupt gzip"},
		{name: "gzip without trailer", encoding: "gzip", body: gz[:len(gz)-4], want: ErrMalformed},
		{name: "gzip bad checksum", encoding: "gzip", body: flipByte(gz, len(gz)-6), want: ErrMalformed},
		{name: "not gzip", encoding: "gzip", body: payload, want: ErrMalformed},
		{name: "empty gzip", encoding: "gzip", body: nil, want: ErrMalformed, msg: "empty gzip body"},
		{name: "gzip with trailing garbage", encoding: "gzip", body: append(bytes.Clone(gz), "garbage"...), want: ErrMalformed},
		{name: "truncated zstd", encoding: "zstd", body: zs[:len(zs)/2], want: ErrMalformed, msg: "corrupt zstd"},
		{name: "not zstd", encoding: "zstd", body: payload, want: ErrMalformed},
		{name: "truncated zlib", encoding: "deflate", body: zlibBytes(t, payload)[:20], want: ErrMalformed},
		{name: "truncated raw deflate", encoding: "deflate", body: lookalike[:len(lookalike)/2], want: ErrMalformed},
		{name: "not deflate", encoding: "deflate", body: []byte{0xff, 0xff, 0xff, 0xff}, want: ErrMalformed},
		{name: "compressed over limit", lim: small, encoding: "gzip", body: gzipBytes(t, randomBytes(2000)), want: ErrTooLarge, msg: "compressed body over 1000 bytes"},
		{name: "decompressed over limit gzip", lim: small, encoding: "gzip", body: gz, want: ErrTooLarge, msg: "decompressed body over 5000 bytes"},
		{name: "decompressed over limit zstd", lim: small, encoding: "zstd", body: zs, want: ErrTooLarge},
		{name: "decompressed over limit zlib", lim: small, encoding: "deflate", body: zlibBytes(t, payload), want: ErrTooLarge},
		{name: "decompressed over limit raw deflate", lim: small, encoding: "deflate", body: flateBytes(t, payload), want: ErrTooLarge},
		{name: "identity over limit", lim: small, encoding: "identity", body: payload, want: ErrTooLarge, msg: "body over 1000 bytes"},
		{name: "gzip bomb", lim: bombLimits, encoding: "gzip", body: gzBomb, want: ErrTooLarge},
		{name: "gzip bomb default limits", lim: DefaultLimits(), encoding: "gzip", body: gzBomb, want: ErrTooLarge},
		{name: "zstd bomb", lim: bombLimits, encoding: "zstd", body: zsBomb, want: ErrTooLarge},
		{name: "zstd frame declaring 1 GiB", lim: bombLimits, encoding: "zstd", body: zstdDeclaring(t, 1<<30), want: ErrTooLarge},
		{name: "zstd frame with 20 MiB content", lim: DefaultLimits(), encoding: "zstd", body: zstdBytes(t, make([]byte, 20<<20)), want: ErrTooLarge, msg: "declares"},
		// Magic, no content size, window descriptor 2^30, one raw block "x".
		{name: "zstd frame with a 1 GiB window", encoding: "zstd", body: []byte{0x28, 0xb5, 0x2f, 0xfd, 0x00, 20 << 3, 0x09, 0x00, 0x00, 'x'}, want: ErrTooLarge, msg: "memory"},
		{name: "zstd frame with a 1 KiB window", encoding: "zstd", body: []byte{0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x00, 0x09, 0x00, 0x00, 'x', 0x09, 0x00}, want: ErrMalformed},
		{name: "deflate bomb", lim: bombLimits, encoding: "deflate", body: gunzipToRaw(t, gzBomb), want: ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lim := tt.lim
			if lim == (Limits{}) {
				lim = DefaultLimits()
			}
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			got, err := NewDecoder(lim).Decompress(bytes.NewReader(tt.body), tt.encoding)
			runtime.ReadMemStats(&after)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Decompress = %d bytes, %v; want %v", len(got), err, tt.want)
			}
			if tt.msg != "" && !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q does not say %q", err, tt.msg)
			}
			// A bomb must stop at the limit: a few buffers of MaxDecompressed,
			// not the GiB it would inflate to.
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > uint64(4*lim.MaxDecompressed+lim.MaxCompressed+(8<<20)) {
				t.Errorf("allocated %d MiB", alloc>>20)
			}
		})
	}
}

func TestDecoder_Decompress_atLimit(t *testing.T) {
	lim := Limits{MaxCompressed: 1 << 20, MaxDecompressed: 10000, MaxEvents: 10, MaxEventBytes: 100}
	payload := randomBytes(10000)
	d := NewDecoder(lim)
	for _, enc := range []string{"identity", "gzip", "zstd", "deflate"} {
		body := payload
		switch enc {
		case "gzip":
			body = gzipBytes(t, payload)
		case "zstd":
			body = zstdBytes(t, payload)
		case "deflate":
			body = zlibBytes(t, payload)
		}
		got, err := d.Decompress(bytes.NewReader(body), enc)
		if err != nil || !bytes.Equal(got, payload) {
			t.Errorf("%s: exactly MaxDecompressed bytes: %d bytes, %v", enc, len(got), err)
		}
		if _, err := d.Decompress(bytes.NewReader(body[:len(body):len(body)]), enc); err != nil {
			t.Errorf("%s: second call: %v", enc, err)
		}
	}
	body := gzipBytes(t, payload)
	lim.MaxCompressed = int64(len(body))
	if _, err := NewDecoder(lim).Decompress(bytes.NewReader(body), "gzip"); err != nil {
		t.Errorf("exactly MaxCompressed bytes: %v", err)
	}
}

func TestDecoder_Decompress_readErrors(t *testing.T) {
	d := NewDecoder(DefaultLimits())
	boom := errors.New("connection reset")
	_, err := d.Decompress(io.MultiReader(strings.NewReader("abc"), errReader{boom}), "gzip")
	if !errors.Is(err, ErrMalformed) || !errors.Is(err, boom) {
		t.Errorf("read error: %v, want ErrMalformed wrapping it", err)
	}

	// http.MaxBytesReader set by the server reads as too large.
	rec := httptest.NewRecorder()
	body := http.MaxBytesReader(rec, io.NopCloser(bytes.NewReader(make([]byte, 100))), 10)
	_, err = d.Decompress(body, "")
	if !errors.Is(err, ErrTooLarge) {
		t.Errorf("MaxBytesReader: %v, want ErrTooLarge", err)
	}
}

// TestDecoder_pooledAfterErrors checks that decompressors returned to the
// pools after a failure still decode the next body right.
func TestDecoder_pooledAfterErrors(t *testing.T) {
	lim := Limits{MaxCompressed: 1 << 20, MaxDecompressed: 50000, MaxEvents: 10, MaxEventBytes: 100}
	d := NewDecoder(lim)
	good := bytes.Repeat([]byte("trailmap "), 1000)
	big := bytes.Repeat([]byte("x"), 100000)
	encs := map[string]func(testing.TB, []byte) []byte{"gzip": gzipBytes, "zstd": zstdBytes, "deflate": zlibBytes}
	for range 3 {
		for enc, compress := range encs {
			if _, err := d.Decompress(bytes.NewReader(compress(t, big)), enc); !errors.Is(err, ErrTooLarge) {
				t.Fatalf("%s big: %v", enc, err)
			}
			c := compress(t, good)
			if _, err := d.Decompress(bytes.NewReader(c[:len(c)-3]), enc); !errors.Is(err, ErrMalformed) {
				t.Fatalf("%s truncated: %v", enc, err)
			}
			got, err := d.Decompress(bytes.NewReader(c), enc)
			if err != nil || !bytes.Equal(got, good) {
				t.Fatalf("%s after errors: %d bytes, %v", enc, len(got), err)
			}
		}
	}
}

func TestDecoder_concurrent(t *testing.T) {
	d := NewDecoder(DefaultLimits())
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				payload := []byte(fmt.Sprintf(`{"g":%d,"i":%d,"pad":%q}`, g, i, strings.Repeat("z", i*10)))
				for enc, body := range map[string][]byte{"gzip": gzipBytes(t, payload), "zstd": zstdBytes(t, payload), "deflate": flateBytes(t, payload)} {
					got, err := d.Decompress(bytes.NewReader(body), enc)
					if err != nil || !bytes.Equal(got, payload) {
						t.Errorf("%s: %q, %v", enc, got, err)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
}

func TestDecompress_func(t *testing.T) {
	got, err := Decompress(bytes.NewReader(gzipBytes(t, []byte("hi"))), "gzip", DefaultLimits())
	if err != nil || string(got) != "hi" {
		t.Errorf("Decompress = %q, %v", got, err)
	}
}

func TestLimits_Validate(t *testing.T) {
	if err := DefaultLimits().Validate(); err != nil {
		t.Errorf("defaults: %v", err)
	}
	bad := DefaultLimits()
	bad.MaxEventBytes = int(bad.MaxDecompressed + 1)
	if bad.Validate() == nil {
		t.Error("event limit over body limit accepted")
	}
	if (Limits{}).Validate() == nil {
		t.Error("zero limits accepted")
	}
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

func flipByte(b []byte, i int) []byte {
	b = bytes.Clone(b)
	b[i] ^= 0xff
	return b
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	x := uint32(2463534242)
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	return b
}

// zstdDeclaring returns a zstd frame whose header declares size bytes of
// content but that holds only a little.
func zstdDeclaring(t *testing.T, size int64) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	enc.ResetContentSize(&buf, size)
	enc.Write(make([]byte, 1<<16))
	enc.Flush()
	return buf.Bytes()
}

// gunzipToRaw strips the gzip wrapper, leaving the raw deflate stream.
func gunzipToRaw(t *testing.T, gz []byte) []byte {
	t.Helper()
	// Fixed 10-byte header (no optional fields from our writer), 8-byte trailer.
	if gz[3] != 0 {
		t.Fatal("gzip header has optional fields")
	}
	return gz[10 : len(gz)-8]
}

// BenchmarkDecoder_Decompress measures decompression of a batch made of
// the rrweb demo recording; MB/s counts decompressed bytes.
func BenchmarkDecoder_Decompress(b *testing.B) {
	body, err := os.ReadFile(filepath.Join("testdata", "rrweb", "player-demo-recording.json"))
	if err != nil {
		b.Fatal(err)
	}
	body = batchBody(string(body))
	d := NewDecoder(DefaultLimits())
	for _, enc := range []string{"identity", "gzip", "zstd", "deflate"} {
		var compressed []byte
		switch enc {
		case "identity":
			compressed = body
		case "gzip":
			compressed = gzipBytes(b, body)
		case "zstd":
			compressed = zstdBytes(b, body)
		case "deflate":
			compressed = zlibBytes(b, body)
		}
		b.Run(enc, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			b.ReportMetric(float64(len(body))/float64(len(compressed)), "ratio")
			for b.Loop() {
				if _, err := d.Decompress(bytes.NewReader(compressed), enc); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

package recorder

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"errors"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// FuzzDecompress feeds arbitrary bodies under every encoding: the decoder
// never panics, never returns more than the decompressed limit, and every
// failure is one of its three errors (each a 4xx with a code).
func FuzzDecompress(f *testing.F) {
	enc := func(kind string, data []byte) []byte {
		var buf bytes.Buffer
		switch kind {
		case "gzip":
			w := gzip.NewWriter(&buf)
			w.Write(data)
			w.Close()
		case "deflate":
			w := zlib.NewWriter(&buf)
			w.Write(data)
			w.Close()
		case "raw":
			w, _ := flate.NewWriter(&buf, 6)
			w.Write(data)
			w.Close()
		case "zstd":
			w, _ := zstd.NewWriter(&buf)
			w.Write(data)
			w.Close()
		default:
			buf.Write(data)
		}
		return buf.Bytes()
	}
	seeds := [][]byte{[]byte(`{}`), bytes.Repeat([]byte("a"), 70000)}
	for _, data := range fixtures(f) {
		if len(data) < 16<<10 {
			seeds = append(seeds, data)
		}
	}
	for i, s := range seeds {
		for j, e := range []string{"gzip", "deflate", "raw", "zstd", "identity"} {
			name := e
			if e == "raw" {
				name = "deflate"
			}
			if (i+j)%2 == 0 || len(seeds) < 4 {
				f.Add(enc(e, s), name)
			}
		}
	}
	f.Add([]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff}, "gzip") // header only
	f.Add([]byte{0x28, 0xb5, 0x2f, 0xfd, 0x64, 0xff, 0xff, 0xff}, "zstd")
	lim := Limits{MaxCompressed: 64 << 10, MaxDecompressed: 256 << 10, MaxEvents: 100, MaxEventBytes: 64 << 10}
	d := NewDecoder(lim)
	f.Fuzz(func(t *testing.T, body []byte, encoding string) {
		out, err := d.Decompress(bytes.NewReader(body), encoding)
		if err != nil {
			if !errors.Is(err, ErrTooLarge) && !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrUnsupportedEncoding) {
				t.Fatalf("%s body of %d bytes: error %v is none of the decoder's", encoding, len(body), err)
			}
			if _, _, ok := Code(err); !ok {
				t.Fatalf("error %v has no status code", err)
			}
			return
		}
		if int64(len(out)) > lim.MaxDecompressed {
			t.Fatalf("%s: %d bytes out, over the %d limit", encoding, len(out), lim.MaxDecompressed)
		}
	})
}

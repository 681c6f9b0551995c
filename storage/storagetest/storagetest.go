// Package storagetest is the conformance suite of storage.Blobs: every
// backend runs Run and so behaves the same.
package storagetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trailmap/trailmap/storage"
)

// Run checks a storage.Blobs implementation against the contract.
// newBlobs must return a new, empty store for each call and release it in
// t.Cleanup; every subtest calls it once. The subtests run one after the
// other and put about 150 MiB in all (objects past the 16 MiB S3 part size,
// so multipart uploads are covered).
//
// Concurrent Puts of one key are checked for atomicity (every read sees one
// writer's whole object), not for an order: which of two racing writers wins
// is undefined, while a Put that starts after another returned always wins.
func Run(t *testing.T, newBlobs func(t *testing.T) storage.Blobs) {
	tests := []struct {
		name string
		fn   func(*testing.T, func(*testing.T) storage.Blobs)
	}{
		{"PutGet", testPutGet},
		{"Overwrite", testOverwrite},
		{"GetRange", testGetRange},
		{"NotFound", testNotFound},
		{"List", testList},
		{"ListStop", testListStop},
		{"Delete", testDelete},
		{"InvalidKey", testInvalidKey},
		{"BadBody", testBadBody},
		{"Large", testLarge},
		{"ConcurrentKeys", testConcurrentKeys},
		{"ConcurrentSameKey", testConcurrentSameKey},
		{"Cancel", testCancel},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, newBlobs) })
	}
}

func testPutGet(t *testing.T, newBlobs func(*testing.T) storage.Blobs) {
	b := newBlobs(t)
	tests := []struct {
		name    string
		key     string
		data    []byte
		unsized bool // Put with size -1
	}{
		{name: "small", key: "small", data: []byte("hello, world")},
		{name: "empty", key: "empty", data: []byte{}},
		{name: "empty unsized", key: "empty-unsized", data: []byte{}, unsized: true},
		{name: "unsized", key: "unsized", data: pattern(100_000, 1), unsized: true},
		{name: "segment key", key: "1/sessions/2026/11/29/abcDEF_-12345678/0-12.zst", data: pattern(5000, 2)},
		{name: "spaces and unicode", key: "odd/na me/ünï €/x.y", data: []byte("odd")},
		{name: "dot names", key: ".hidden/..x/x..", data: []byte("dots")},
		{name: "binary", key: "bin", data: pattern(1<<20+3, 3)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			size := int64(len(tt.data))
			if tt.unsized {
				size = -1
			}
			put(t, b, tt.key, bytes.NewReader(tt.data), size)
			if got := get(t, b, tt.key, 0, -1); !bytes.Equal(got, tt.data) {
				t.Fatalf("Get = %s, want %s", brief(got), brief(tt.data))
			}
			objs := list(t, b, tt.key)
			if len(objs) != 1 || objs[0] != (storage.Object{Key: tt.key, Size: int64(len(tt.data))}) {
				t.Fatalf("List(%q) = %v, want the one object of size %d", tt.key, objs, len(tt.data))
			}
		})
	}
}

func testOverwrite(t *testing.T, newBlobs func(*testing.T) storage.Blobs) {
	b := newBlobs(t)
	tests := []struct {
		name string
		data []byte
	}{
		{"first", []byte("first version, rather long")},
		{"shorter", []byte("second")},
		{"longer", pattern(70_000, 4)},
		{"empty", nil},
		{"again", []byte("third")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			put(t, b, "a/key", bytes.NewReader(tt.data), int64(len(tt.data)))
			if got := get(t, b, "a/key", 0, -1); !bytes.Equal(got, tt.data) {
				t.Fatalf("Get = %s, want %s", brief(got), brief(tt.data))
			}
			want := []storage.Object{{Key: "a/key", Size: int64(len(tt.data))}}
			if got := list(t, b, ""); !slices.Equal(got, want) {
				t.Fatalf("List = %v, want %v", got, want)
			}
		})
	}
}

func testGetRange(t *testing.T, newBlobs func(*testing.T) storage.Blobs) {
	b := newBlobs(t)
	data := []byte("0123456789abcdefghij") // 20 bytes
	put(t, b, "r", bytes.NewReader(data), int64(len(data)))
	put(t, b, "empty", bytes.NewReader(nil), 0)
	tests := []struct {
		name        string
		key         string
		off, length int64
		want        string
	}{
		{name: "whole", key: "r", off: 0, length: -1, want: string(data)},
		{name: "whole exact length", key: "r", off: 0, length: 20, want: string(data)},
		{name: "start", key: "r", off: 0, length: 5, want: "01234"},
		{name: "first byte", key: "r", off: 0, length: 1, want: "0"},
		{name: "middle", key: "r", off: 7, length: 6, want: "789abc"},
		{name: "middle to end", key: "r", off: 12, length: -1, want: "cdefghij"},
		{name: "last byte", key: "r", off: 19, length: 1, want: "j"},
		{name: "length past end", key: "r", off: 15, length: 100, want: "fghij"},
		{name: "zero length", key: "r", off: 3, length: 0, want: ""},
		{name: "offset at end", key: "r", off: 20, length: -1, want: ""},
		{name: "offset at end with length", key: "r", off: 20, length: 5, want: ""},
		{name: "offset past end", key: "r", off: 1000, length: -1, want: ""},
		{name: "offset past end with length", key: "r", off: 1000, length: 10, want: ""},
		{name: "empty object whole", key: "empty", off: 0, length: -1, want: ""},
		{name: "empty object with length", key: "empty", off: 0, length: 10, want: ""},
		{name: "empty object past end", key: "empty", off: 5, length: -1, want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(get(t, b, tt.key, tt.off, tt.length)); got != tt.want {
				t.Fatalf("Get(%q, %d, %d) = %q, want %q", tt.key, tt.off, tt.length, got, tt.want)
			}
		})
	}
	t.Run("negative offset", func(t *testing.T) {
		rc, err := b.Get(t.Context(), "r", -1, -1)
		if err == nil {
			rc.Close()
			t.Fatal("Get with offset -1 succeeded, want an error")
		}
	})
}

func testNotFound(t *testing.T, newBlobs func(*testing.T) storage.Blobs) {
	b := newBlobs(t)
	put(t, b, "dir/obj", strings.NewReader("x"), 1)
	tests := []struct {
		name        string
		key         string
		off, length int64
	}{
		{name: "missing", key: "missing", length: -1},
		{name: "missing with range", key: "missing", off: 5, length: 10},
		{name: "missing zero length", key: "missing", off: 0, length: 0},
		{name: "missing in existing dir", key: "dir/other", length: -1},
		{name: "directory of objects", key: "dir", length: -1},
		{name: "below an object", key: "dir/obj/below", length: -1},
		{name: "prefix of a key", key: "dir/ob", length: -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc, err := b.Get(t.Context(), tt.key, tt.off, tt.length)
			if err == nil {
				rc.Close()
				t.Fatalf("Get(%q) succeeded, want ErrNotFound", tt.key)
			}
			if !errors.Is(err, storage.ErrNotFound) {
				t.Fatalf("Get(%q) = %v, want ErrNotFound", tt.key, err)
			}
		})
	}
}

func testList(t *testing.T, newBlobs func(*testing.T) storage.Blobs) {
	b := newBlobs(t)
	keys := []string{
		// Order of insertion is deliberately not the lexical order.
		"b/xy", "a/2", "a/10", "a/1", "a0", "a.x", "a-b", "b/x/y",
		"1/sessions/2026/11/29/xyz/0-1.zst",
		"1/sessions/2026/11/29/abd/0-1.zst",
		"1/sessions/2026/11/29/abc/2-3.zst",
		"1/sessions/2026/11/29/abc/0-1.zst",
		"1/sessions/2026/11/3/abc/0-1.zst",
		"1/sessions/2026/11/30/aaa/0-1.zst",
		"10/sessions/2026/11/29/abc/0-1.zst",
	}
	for i, k := range keys {
		data := strings.Repeat("x", i)
		put(t, b, k, strings.NewReader(data), int64(len(data)))
	}
	sizes := map[string]int64{}
	for i, k := range keys {
		sizes[k] = int64(i)
	}
	tests := []struct {
		name   string
		prefix string
		want   []string
	}{
		{name: "all", prefix: "", want: sorted(keys)},
		{name: "directory", prefix: "a/", want: []string{"a/1", "a/10", "a/2"}},
		{name: "partial element", prefix: "a", want: []string{"a-b", "a.x", "a/1", "a/10", "a/2", "a0"}},
		{name: "key is prefix of keys", prefix: "a/1", want: []string{"a/1", "a/10"}},
		{name: "exact key", prefix: "a/2", want: []string{"a/2"}},
		{name: "object and directory siblings", prefix: "b/x", want: []string{"b/x/y", "b/xy"}},
		{name: "project", prefix: "1/", want: []string{
			"1/sessions/2026/11/29/abc/0-1.zst",
			"1/sessions/2026/11/29/abc/2-3.zst",
			"1/sessions/2026/11/29/abd/0-1.zst",
			"1/sessions/2026/11/29/xyz/0-1.zst",
			"1/sessions/2026/11/3/abc/0-1.zst",
			"1/sessions/2026/11/30/aaa/0-1.zst",
		}},
		{name: "project without slash", prefix: "1", want: []string{
			"1/sessions/2026/11/29/abc/0-1.zst",
			"1/sessions/2026/11/29/abc/2-3.zst",
			"1/sessions/2026/11/29/abd/0-1.zst",
			"1/sessions/2026/11/29/xyz/0-1.zst",
			"1/sessions/2026/11/3/abc/0-1.zst",
			"1/sessions/2026/11/30/aaa/0-1.zst",
			"10/sessions/2026/11/29/abc/0-1.zst",
		}},
		{name: "day", prefix: "1/sessions/2026/11/29/", want: []string{
			"1/sessions/2026/11/29/abc/0-1.zst",
			"1/sessions/2026/11/29/abc/2-3.zst",
			"1/sessions/2026/11/29/abd/0-1.zst",
			"1/sessions/2026/11/29/xyz/0-1.zst",
		}},
		{name: "session id ends mid-name", prefix: "1/sessions/2026/11/29/ab", want: []string{
			"1/sessions/2026/11/29/abc/0-1.zst",
			"1/sessions/2026/11/29/abc/2-3.zst",
			"1/sessions/2026/11/29/abd/0-1.zst",
		}},
		{name: "day ends mid-name", prefix: "1/sessions/2026/11/3", want: []string{
			"1/sessions/2026/11/3/abc/0-1.zst",
			"1/sessions/2026/11/30/aaa/0-1.zst",
		}},
		{name: "segment ends mid-name", prefix: "1/sessions/2026/11/29/abc/0-", want: []string{
			"1/sessions/2026/11/29/abc/0-1.zst",
		}},
		{name: "no match", prefix: "zzz", want: nil},
		{name: "no match in directory", prefix: "a/3", want: nil},
		{name: "below an object", prefix: "a/1/", want: nil},
		{name: "missing directory", prefix: "nope/deeper/", want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs := list(t, b, tt.prefix)
			var got []string
			for _, o := range objs {
				got = append(got, o.Key)
				if o.Size != sizes[o.Key] {
					t.Errorf("List(%q): %s has size %d, want %d", tt.prefix, o.Key, o.Size, sizes[o.Key])
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("List(%q) =\n  %q\nwant\n  %q", tt.prefix, got, tt.want)
			}
		})
	}

	invalid := []struct {
		name   string
		prefix string
	}{
		{"absolute", "/a"},
		{"dot dot", "../"},
		{"dot dot inside", "a/../"},
		{"double slash", "a//"},
		{"backslash", `a\b`},
		{"NUL", "a\x00"},
		{"not UTF-8", "a/\xff"},
	}
	for _, tt := range invalid {
		t.Run("invalid "+tt.name, func(t *testing.T) {
			err := b.List(t.Context(), tt.prefix, func(o storage.Object) error {
				t.Errorf("List(%q) called fn with %v", tt.prefix, o)
				return nil
			})
			if !errors.Is(err, storage.ErrInvalidKey) {
				t.Fatalf("List(%q) = %v, want ErrInvalidKey", tt.prefix, err)
			}
		})
	}
}

func testListStop(t *testing.T, newBlobs func(*testing.T) storage.Blobs) {
	b := newBlobs(t)
	for _, k := range []string{"k/1", "k/2", "k/3", "k/4"} {
		put(t, b, k, strings.NewReader(k), int64(len(k)))
	}
	errStop := errors.New("stop")
	var seen []string
	err := b.List(t.Context(), "k/", func(o storage.Object) error {
		seen = append(seen, o.Key)
		if len(seen) == 2 {
			return errStop
		}
		return nil
	})
	if !errors.Is(err, errStop) {
		t.Fatalf("List = %v, want the error fn returned", err)
	}
	if want := []string{"k/1", "k/2"}; !slices.Equal(seen, want) {
		t.Fatalf("fn saw %q, want %q", seen, want)
	}
}

func testDelete(t *testing.T, newBlobs func(*testing.T) storage.Blobs) {
	b := newBlobs(t)
	for _, k := range []string{"p/q/r/1", "p/q/r/2", "p/q/s", "top"} {
		put(t, b, k, strings.NewReader(k), int64(len(k)))
	}
	tests := []struct {
		name string
		key  string
		want []string // what List("") shows afterwards
	}{
		{name: "existing", key: "p/q/r/1", want: []string{"p/q/r/2", "p/q/s", "top"}},
		{name: "again", key: "p/q/r/1", want: []string{"p/q/r/2", "p/q/s", "top"}},
		{name: "never existed", key: "never/was", want: []string{"p/q/r/2", "p/q/s", "top"}},
		{name: "directory of objects", key: "p/q", want: []string{"p/q/r/2", "p/q/s", "top"}},
		{name: "below an object", key: "top/x", want: []string{"p/q/r/2", "p/q/s", "top"}},
		{name: "last in directory", key: "p/q/r/2", want: []string{"p/q/s", "top"}},
		{name: "top level", key: "top", want: []string{"p/q/s"}},
		{name: "last of all", key: "p/q/s", want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := b.Delete(t.Context(), tt.key); err != nil {
				t.Fatalf("Delete(%q): %v", tt.key, err)
			}
			var got []string
			for _, o := range list(t, b, "") {
				got = append(got, o.Key)
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("after Delete(%q), List = %q, want %q", tt.key, got, tt.want)
			}
			if _, err := b.Get(t.Context(), tt.key, 0, -1); !errors.Is(err, storage.ErrNotFound) {
				t.Fatalf("Get(%q) after Delete = %v, want ErrNotFound", tt.key, err)
			}
		})
	}
	t.Run("put after delete", func(t *testing.T) {
		put(t, b, "p/q/r/1", strings.NewReader("back"), 4)
		if got := string(get(t, b, "p/q/r/1", 0, -1)); got != "back" {
			t.Fatalf("Get = %q, want %q", got, "back")
		}
	})
}

// invalidKeys are keys every backend must reject with ErrInvalidKey.
var invalidKeys = []struct {
	name string
	key  string
}{
	{"empty", ""},
	{"absolute", "/a/b"},
	{"root", "/"},
	{"dot", "."},
	{"dot dot", ".."},
	{"leading dot", "./a"},
	{"inner dot", "a/./b"},
	{"leading dot dot", "../a"},
	{"inner dot dot", "a/../b"},
	{"escaping dot dot", "a/../../b"},
	{"trailing dot dot", "a/.."},
	{"trailing slash", "a/"},
	{"double slash", "a//b"},
	{"backslash", `a\b`},
	{"backslash dot dot", `..\a`},
	{"NUL", "a\x00b"},
	{"not UTF-8", "a/\xff\xfe"},
	{"too long", strings.Repeat("k/", storage.MaxKeyLen/2) + "k"},
	{"element too long", "a/" + strings.Repeat("e", storage.MaxElementLen+1)},
}

func testInvalidKey(t *testing.T, newBlobs func(*testing.T) storage.Blobs) {
	b := newBlobs(t)
	for _, tt := range invalidKeys {
		t.Run(tt.name, func(t *testing.T) {
			ctx := t.Context()
			if err := b.Put(ctx, tt.key, strings.NewReader("x"), 1); !errors.Is(err, storage.ErrInvalidKey) {
				t.Errorf("Put(%q) = %v, want ErrInvalidKey", tt.key, err)
			}
			rc, err := b.Get(ctx, tt.key, 0, -1)
			if err == nil {
				rc.Close()
			}
			if !errors.Is(err, storage.ErrInvalidKey) {
				t.Errorf("Get(%q) = %v, want ErrInvalidKey", tt.key, err)
			}
			if err := b.Delete(ctx, tt.key); !errors.Is(err, storage.ErrInvalidKey) {
				t.Errorf("Delete(%q) = %v, want ErrInvalidKey", tt.key, err)
			}
		})
	}
	if got := list(t, b, ""); len(got) != 0 {
		t.Fatalf("invalid Puts stored %v", got)
	}
}

// testBadBody: a Put whose body is short, long or fails stores nothing and
// keeps the previous object.
func testBadBody(t *testing.T, newBlobs func(*testing.T) storage.Blobs) {
	b := newBlobs(t)
	big := pattern(17<<20, 5) // over one multipart part
	tests := []struct {
		name string
		r    func() io.Reader
		size int64
	}{
		{name: "short", r: func() io.Reader { return strings.NewReader("12345") }, size: 10},
		{name: "empty but sized", r: func() io.Reader { return strings.NewReader("") }, size: 10},
		{name: "long", r: func() io.Reader { return strings.NewReader("1234567890") }, size: 5},
		{name: "long by one byte", r: func() io.Reader { return strings.NewReader("123456") }, size: 5},
		{name: "not empty", r: func() io.Reader { return strings.NewReader("1") }, size: 0},
		{name: "read error", r: func() io.Reader { return &failingReader{r: strings.NewReader("12345"), after: 3} }, size: 5},
		{name: "read error unsized", r: func() io.Reader { return &failingReader{r: strings.NewReader("12345"), after: 3} }, size: -1},
		{name: "short large", r: func() io.Reader { return bytes.NewReader(big[:len(big)-1]) }, size: int64(len(big))},
		{name: "long large", r: func() io.Reader { return bytes.NewReader(big) }, size: int64(len(big)) - 1},
		{name: "read error large unsized", r: func() io.Reader {
			return &failingReader{r: bytes.NewReader(big), after: len(big) - 1000}
		}, size: -1},
	}
	old := []byte("the old object")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := t.Context()
			newKey, oldKey := "new/"+tt.name, "old/"+tt.name
			if err := b.Put(ctx, newKey, tt.r(), tt.size); err == nil {
				t.Fatal("Put into a new key succeeded, want an error")
			}
			if _, err := b.Get(ctx, newKey, 0, -1); !errors.Is(err, storage.ErrNotFound) {
				t.Fatalf("Get after failed Put = %v, want ErrNotFound", err)
			}

			put(t, b, oldKey, bytes.NewReader(old), int64(len(old)))
			if err := b.Put(ctx, oldKey, tt.r(), tt.size); err == nil {
				t.Fatal("Put over an object succeeded, want an error")
			}
			if got := get(t, b, oldKey, 0, -1); !bytes.Equal(got, old) {
				t.Fatalf("after failed Put, Get = %s, want the old object", brief(got))
			}
			if got := list(t, b, "new/"+tt.name); len(got) != 0 {
				t.Fatalf("after failed Put, List = %v, want nothing", got)
			}
			want := []storage.Object{{Key: oldKey, Size: int64(len(old))}}
			if got := list(t, b, oldKey); !slices.Equal(got, want) {
				t.Fatalf("after failed Put, List = %v, want %v", got, want)
			}
		})
	}
}

// testLarge streams objects big enough for S3 multipart uploads (parts of
// 16 MiB) and reads them back, whole and in ranges across part boundaries.
func testLarge(t *testing.T, newBlobs func(*testing.T) storage.Blobs) {
	b := newBlobs(t)
	tests := []struct {
		name    string
		size    int64
		unsized bool
	}{
		{name: "24MiB", size: 24 << 20},
		{name: "20MiB unsized", size: 20<<20 + 12345, unsized: true},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := t.Context()
			seed := uint64(100 + i)
			key := "large/" + tt.name
			size := tt.size
			if tt.unsized {
				size = -1
			}
			start := time.Now()
			put(t, b, key, randReader(seed, tt.size), size)
			t.Logf("put %d MiB in %v", tt.size>>20, time.Since(start).Round(time.Millisecond))

			rc, err := b.Get(ctx, key, 0, -1)
			if err != nil {
				t.Fatalf("Get: %v", err)
			}
			h := sha256.New()
			n, err := io.Copy(h, rc)
			rc.Close()
			if err != nil {
				t.Fatalf("read back: %v", err)
			}
			if n != tt.size {
				t.Fatalf("read back %d bytes, want %d", n, tt.size)
			}
			if got, want := h.Sum(nil), digest(randReader(seed, tt.size)); !bytes.Equal(got, want) {
				t.Fatal("object read back differs from what was put")
			}

			ranges := []struct{ off, length int64 }{
				{16<<20 - 100, 200}, // across the first part boundary
				{tt.size - 50, -1},  // tail
				{12345, 1 << 20},    // inside the first part
			}
			for _, r := range ranges {
				got := get(t, b, key, r.off, r.length)
				want := readRange(randReader(seed, tt.size), r.off, r.length)
				if !bytes.Equal(got, want) {
					t.Fatalf("Get(%d, %d) = %s, want %s", r.off, r.length, brief(got), brief(want))
				}
			}

			objs := list(t, b, key)
			if len(objs) != 1 || objs[0].Size != tt.size {
				t.Fatalf("List = %v, want one object of size %d", objs, tt.size)
			}
		})
	}

	t.Run("cancel while reading", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		rc, err := b.Get(ctx, "large/24MiB", 0, -1)
		if err != nil {
			t.Fatalf("Get: %v", err)
		}
		defer rc.Close()
		if _, err := io.ReadFull(rc, make([]byte, 1000)); err != nil {
			t.Fatalf("first read: %v", err)
		}
		cancel()
		if n, err := io.Copy(io.Discard, rc); err == nil {
			t.Fatalf("read %d more bytes to the end after cancel, want an error", n)
		}
	})
}

func testConcurrentKeys(t *testing.T, newBlobs func(*testing.T) storage.Blobs) {
	b := newBlobs(t)
	const n = 16
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			data := pattern(10_000+i*1000, uint64(i))
			// Shared directories, so that backends creating them race too.
			key := fmt.Sprintf("c/%d/%d", i%2, i)
			if err := b.Put(t.Context(), key, bytes.NewReader(data), int64(len(data))); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	objs := list(t, b, "c/")
	if len(objs) != n {
		t.Fatalf("List shows %d objects, want %d: %v", len(objs), n, objs)
	}
	for i := range n {
		key := fmt.Sprintf("c/%d/%d", i%2, i)
		if got, want := get(t, b, key, 0, -1), pattern(10_000+i*1000, uint64(i)); !bytes.Equal(got, want) {
			t.Errorf("Get(%q) = %s, want %s", key, brief(got), brief(want))
		}
	}
}

// testConcurrentSameKey races writers of one key against readers and
// against deletes of a neighbour (which may remove shared directories).
// Every read must see exactly one writer's object; afterwards the key holds
// one of them. Which one wins a race is not defined; a later Put always
// wins over an earlier one (see Overwrite).
func testConcurrentSameKey(t *testing.T, newBlobs func(*testing.T) storage.Blobs) {
	b := newBlobs(t)
	const writers, rounds = 6, 4
	payload := func(w int) []byte {
		// Different sizes and contents: a torn object shows either way.
		return bytes.Repeat([]byte{byte('A' + w)}, 200_000+w*7919)
	}
	whole := func(got []byte) bool {
		return len(got) > 0 && bytes.Equal(got, payload(int(got[0]-'A')))
	}
	const key = "same/dir/key"

	ctx := t.Context()
	stop := make(chan struct{})
	var readers, wg sync.WaitGroup
	errs := make(chan error, 100)
	report := func(err error) {
		select {
		case errs <- err:
		default:
		}
	}
	for range 2 {
		readers.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				rc, err := b.Get(ctx, key, 0, -1)
				if errors.Is(err, storage.ErrNotFound) {
					continue // before the first Put lands
				}
				if err != nil {
					report(fmt.Errorf("Get: %w", err))
					return
				}
				got, err := io.ReadAll(rc)
				rc.Close()
				if err != nil {
					report(fmt.Errorf("read: %w", err))
					return
				}
				if !whole(got) {
					report(fmt.Errorf("read a torn object: %s", brief(got)))
					return
				}
			}
		})
	}
	// Churn a neighbour so that a backend cleaning up empty directories
	// races with the writers creating them.
	wg.Go(func() {
		for r := 0; r < writers*rounds; r++ {
			if err := b.Put(ctx, "same/other/x", strings.NewReader("x"), 1); err != nil {
				report(fmt.Errorf("Put neighbour: %w", err))
			}
			if err := b.Delete(ctx, "same/other/x"); err != nil {
				report(fmt.Errorf("Delete neighbour: %w", err))
			}
		}
	})
	for w := range writers {
		wg.Go(func() {
			data := payload(w)
			for range rounds {
				if err := b.Put(ctx, key, bytes.NewReader(data), int64(len(data))); err != nil {
					report(fmt.Errorf("Put: %w", err))
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	readers.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := get(t, b, key, 0, -1); !whole(got) {
		t.Fatalf("final object is torn: %s", brief(got))
	}
	objs := list(t, b, "same/")
	if len(objs) != 1 || objs[0].Key != key {
		t.Fatalf("List = %v, want only %s", objs, key)
	}
}

func testCancel(t *testing.T, newBlobs func(*testing.T) storage.Blobs) {
	b := newBlobs(t)
	put(t, b, "c/exists", strings.NewReader("old"), 3)
	cancelled, cancel := context.WithCancel(t.Context())
	cancel()

	tests := []struct {
		name string
		op   func(ctx context.Context) error
	}{
		{"Put", func(ctx context.Context) error {
			return b.Put(ctx, "c/new", strings.NewReader("x"), 1)
		}},
		{"Put over", func(ctx context.Context) error {
			return b.Put(ctx, "c/exists", strings.NewReader("new"), 3)
		}},
		{"Get", func(ctx context.Context) error {
			rc, err := b.Get(ctx, "c/exists", 0, -1)
			if err == nil {
				_, err = io.ReadAll(rc)
				rc.Close()
			}
			return err
		}},
		{"List", func(ctx context.Context) error {
			return b.List(ctx, "", func(storage.Object) error { return nil })
		}},
		{"Delete", func(ctx context.Context) error {
			return b.Delete(ctx, "c/exists")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.op(cancelled)
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("%s with a cancelled context = %v, want context.Canceled", tt.name, err)
			}
		})
	}

	// Cancelling while the body streams: the Put fails, nothing changes.
	streams := []struct {
		name string
		size int64
	}{
		{"sized", 3 << 20},
		{"unsized", -1},
		{"sized multipart", 20 << 20},
	}
	for _, tt := range streams {
		t.Run("Put cancelled midway "+tt.name, func(t *testing.T) {
			for _, key := range []string{"c/new", "c/exists"} {
				ctx, cancel := context.WithCancel(t.Context())
				n := tt.size
				if n < 0 {
					n = 3 << 20
				}
				r := &cancellingReader{r: randReader(7, n), after: 1 << 20, cancel: cancel}
				err := b.Put(ctx, key, r, tt.size)
				cancel()
				if err == nil {
					t.Fatalf("Put(%q) succeeded though its context was cancelled midway", key)
				}
			}
			if _, err := b.Get(t.Context(), "c/new", 0, -1); !errors.Is(err, storage.ErrNotFound) {
				t.Fatalf("Get(c/new) = %v, want ErrNotFound", err)
			}
			if got := string(get(t, b, "c/exists", 0, -1)); got != "old" {
				t.Fatalf("Get(c/exists) = %q, want %q", got, "old")
			}
		})
	}
	if got := list(t, b, ""); len(got) != 1 {
		t.Fatalf("List = %v, want only c/exists", got)
	}
}

// Helpers.

func put(t testing.TB, b storage.Blobs, key string, r io.Reader, size int64) {
	t.Helper()
	if err := b.Put(t.Context(), key, r, size); err != nil {
		t.Fatalf("Put(%q): %v", key, err)
	}
}

func get(t testing.TB, b storage.Blobs, key string, off, length int64) []byte {
	t.Helper()
	rc, err := b.Get(t.Context(), key, off, length)
	if err != nil {
		t.Fatalf("Get(%q, %d, %d): %v", key, off, length, err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read %q: %v", key, err)
	}
	return data
}

func list(t testing.TB, b storage.Blobs, prefix string) []storage.Object {
	t.Helper()
	var objs []storage.Object
	err := b.List(t.Context(), prefix, func(o storage.Object) error {
		objs = append(objs, o)
		return nil
	})
	if err != nil {
		t.Fatalf("List(%q): %v", prefix, err)
	}
	return objs
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// pattern returns n reproducible pseudo-random bytes.
func pattern(n int, seed uint64) []byte {
	buf := make([]byte, n)
	rand.NewChaCha8(seedBytes(seed)).Read(buf)
	return buf
}

// randReader streams n reproducible pseudo-random bytes without holding them.
func randReader(seed uint64, n int64) io.Reader {
	return io.LimitReader(rand.NewChaCha8(seedBytes(seed)), n)
}

func seedBytes(seed uint64) [32]byte {
	var s [32]byte
	for i := range 8 {
		s[i] = byte(seed >> (8 * i))
	}
	return s
}

func digest(r io.Reader) []byte {
	h := sha256.New()
	io.Copy(h, r)
	return h.Sum(nil)
}

func readRange(r io.Reader, off, length int64) []byte {
	io.CopyN(io.Discard, r, off)
	if length >= 0 {
		r = io.LimitReader(r, length)
	}
	data, _ := io.ReadAll(r)
	return data
}

// brief describes data without dumping megabytes into a failure message.
func brief(data []byte) string {
	if len(data) <= 40 {
		return fmt.Sprintf("%q", data)
	}
	return fmt.Sprintf("%d bytes %q...", len(data), data[:24])
}

// failingReader returns an error after delivering after bytes.
type failingReader struct {
	r     io.Reader
	after int
	n     int
}

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n >= f.after {
		return 0, errors.New("storagetest: reader failed on purpose")
	}
	if len(p) > f.after-f.n {
		p = p[:f.after-f.n]
	}
	n, err := f.r.Read(p)
	f.n += n
	return n, err
}

// cancellingReader calls cancel once it has delivered after bytes, then
// keeps delivering, as a client that hangs up mid-upload would.
type cancellingReader struct {
	r      io.Reader
	after  int
	n      int
	cancel context.CancelFunc
}

func (c *cancellingReader) Read(p []byte) (int, error) {
	if c.n >= c.after {
		c.cancel()
	}
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

package fs_test

import (
	"bytes"
	"errors"
	"io"
	iofs "io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/trailmap/trailmap/storage"
	"github.com/trailmap/trailmap/storage/fs"
	"github.com/trailmap/trailmap/storage/storagetest"
)

func newClient(t testing.TB, dir string) *fs.Client {
	t.Helper()
	c, err := fs.New(dir)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestClient(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Blobs {
		c := newClient(t, t.TempDir())
		t.Cleanup(func() { assertNoTemp(t, c.Dir()) })
		return c
	})
}

func TestNew(t *testing.T) {
	t.Run("creates dir", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "a", "b")
		c := newClient(t, dir)
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			t.Fatalf("root not created: %v", err)
		}
		if err := c.Ready(t.Context()); err != nil {
			t.Fatalf("Ready: %v", err)
		}
	})
	t.Run("empty dir name", func(t *testing.T) {
		if _, err := fs.New(""); err == nil {
			t.Fatal(`New("") succeeded`)
		}
	})
	t.Run("dir is a file", func(t *testing.T) {
		f := filepath.Join(t.TempDir(), "file")
		os.WriteFile(f, nil, 0o600)
		if _, err := fs.New(f); err == nil {
			t.Fatal("New on a file succeeded")
		}
	})
}

// TestClient_Put_layout checks where objects land on disk.
func TestClient_Put_layout(t *testing.T) {
	dir := t.TempDir()
	c := newClient(t, dir)
	key := "1/sessions/2026/11/29/abc/0-12.zst"
	if err := c.Put(t.Context(), key, strings.NewReader("segment"), 7); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(key)))
	if err != nil || string(data) != "segment" {
		t.Fatalf("file = %q, %v; want %q", data, err, "segment")
	}
}

// TestClient_escape tries to leave the root through keys and symbolic links.
func TestClient_escape(t *testing.T) {
	base := t.TempDir()
	root := filepath.Join(base, "root")
	outside := filepath.Join(base, "outside")
	os.MkdirAll(outside, 0o750)
	os.WriteFile(filepath.Join(outside, "secret"), []byte("secret"), 0o600)
	c := newClient(t, root)

	keys := []struct {
		name string
		key  string
	}{
		{"parent", "../outside/secret"},
		{"parent deep", "a/b/../../../outside/secret"},
		{"absolute", filepath.Join(outside, "secret")},
		{"backslash parent", `..\outside\secret`},
		{"reserved temp name", fs.TempPrefix + "x"},
		{"reserved temp dir", "a/" + fs.TempPrefix + "x/b"},
	}
	for _, tt := range keys {
		t.Run(tt.name, func(t *testing.T) {
			ctx := t.Context()
			if err := c.Put(ctx, tt.key, strings.NewReader("pwned"), 5); !errors.Is(err, storage.ErrInvalidKey) {
				t.Errorf("Put = %v, want ErrInvalidKey", err)
			}
			if _, err := c.Get(ctx, tt.key, 0, -1); !errors.Is(err, storage.ErrInvalidKey) {
				t.Errorf("Get = %v, want ErrInvalidKey", err)
			}
			if err := c.Delete(ctx, tt.key); !errors.Is(err, storage.ErrInvalidKey) {
				t.Errorf("Delete = %v, want ErrInvalidKey", err)
			}
		})
	}

	// A symbolic link inside the root that points out of it is not followed.
	if err := os.Symlink(outside, filepath.Join(root, "link")); err != nil {
		t.Fatal(err)
	}
	t.Run("symlink get", func(t *testing.T) {
		if rc, err := c.Get(t.Context(), "link/secret", 0, -1); err == nil {
			data, _ := io.ReadAll(rc)
			rc.Close()
			t.Fatalf("Get through a symlink out of the root read %q", data)
		}
	})
	t.Run("symlink put", func(t *testing.T) {
		if err := c.Put(t.Context(), "link/new", strings.NewReader("x"), 1); err == nil {
			t.Fatal("Put through a symlink out of the root succeeded")
		}
		if _, err := os.Stat(filepath.Join(outside, "new")); err == nil {
			t.Fatal("file created outside the root")
		}
	})
	t.Run("symlink list", func(t *testing.T) {
		c.List(t.Context(), "", func(o storage.Object) error {
			t.Errorf("List showed %v", o)
			return nil
		})
	})
	if data, _ := os.ReadFile(filepath.Join(outside, "secret")); string(data) != "secret" {
		t.Fatalf("outside file changed to %q", data)
	}
}

// errReader fails after delivering some bytes, as a client dropping
// mid-upload would.
type errReader struct{ n int }

func (r *errReader) Read(p []byte) (int, error) {
	if r.n <= 0 {
		return 0, errors.New("connection reset")
	}
	n := min(len(p), r.n)
	clear(p[:n])
	r.n -= n
	return n, nil
}

func TestClient_Put_failureLeavesNoTemp(t *testing.T) {
	tests := []struct {
		name string
		r    io.Reader
		size int64
	}{
		{"reader error", &errReader{n: 1 << 20}, 2 << 20},
		{"reader error unsized", &errReader{n: 1 << 20}, -1},
		{"short", strings.NewReader("abc"), 10},
		{"long", strings.NewReader("abcdef"), 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			c := newClient(t, dir)
			if err := c.Put(t.Context(), "a/b/obj", tt.r, tt.size); err == nil {
				t.Fatal("Put succeeded")
			}
			assertNoTemp(t, dir)
			if _, err := os.Stat(filepath.Join(dir, "a", "b", "obj")); !errors.Is(err, iofs.ErrNotExist) {
				t.Fatalf("object exists after failed Put: %v", err)
			}
		})
	}
}

func TestClient_Put_objectOverDirectory(t *testing.T) {
	c := newClient(t, t.TempDir())
	ctx := t.Context()
	if err := c.Put(ctx, "a/b", strings.NewReader("x"), 1); err != nil {
		t.Fatal(err)
	}
	// The file system cannot hold "a/b" as both object and directory.
	if err := c.Put(ctx, "a/b/c", strings.NewReader("x"), 1); err == nil {
		t.Error(`Put("a/b/c") over object "a/b" succeeded`)
	}
	if err := c.Put(ctx, "a", strings.NewReader("x"), 1); err == nil {
		t.Error(`Put("a") over directory "a" succeeded`)
	}
	assertNoTemp(t, c.Dir())
}

func TestClient_Delete_removesEmptyDirs(t *testing.T) {
	dir := t.TempDir()
	c := newClient(t, dir)
	ctx := t.Context()
	for _, k := range []string{"1/sessions/2026/11/29/abc/0-1.zst", "1/sessions/2026/11/29/abd/0-1.zst"} {
		if err := c.Put(ctx, k, strings.NewReader("x"), 1); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Delete(ctx, "1/sessions/2026/11/29/abc/0-1.zst"); err != nil {
		t.Fatal(err)
	}
	if got, want := dirs(t, dir), []string{"1", "1/sessions", "1/sessions/2026", "1/sessions/2026/11",
		"1/sessions/2026/11/29", "1/sessions/2026/11/29/abd"}; !slices.Equal(got, want) {
		t.Fatalf("dirs = %q, want %q", got, want)
	}
	if err := c.Delete(ctx, "1/sessions/2026/11/29/abd/0-1.zst"); err != nil {
		t.Fatal(err)
	}
	if got := dirs(t, dir); len(got) != 0 {
		t.Fatalf("dirs left = %q, want none", got)
	}
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("root removed: %v", err)
	}
}

// TestClient_List_skipsForeignFiles: leftovers of a crash and files that no
// valid key names stay out of List.
func TestClient_List_skipsForeignFiles(t *testing.T) {
	dir := t.TempDir()
	c := newClient(t, dir)
	ctx := t.Context()
	if err := c.Put(ctx, "s/obj", strings.NewReader("x"), 1); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "s", fs.TempPrefix+"0123"), []byte("partial"), 0o600)
	os.WriteFile(filepath.Join(dir, "s", `back\slash`), []byte("x"), 0o600)
	var got []string
	if err := c.List(ctx, "", func(o storage.Object) error {
		got = append(got, o.Key)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if want := []string{"s/obj"}; !slices.Equal(got, want) {
		t.Fatalf("List = %q, want %q", got, want)
	}
}

func TestClient_Ready(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "blobs")
	c := newClient(t, dir)
	if err := c.Ready(t.Context()); err != nil {
		t.Fatalf("Ready: %v", err)
	}
	assertNoTemp(t, dir)
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := c.Ready(t.Context()); err == nil {
		t.Fatal("Ready succeeded after the root was removed")
	}
}

func BenchmarkClient_Put(b *testing.B) {
	for _, size := range []int{64 << 10, 4 << 20} {
		b.Run(sizeName(size), func(b *testing.B) {
			c := newClient(b, b.TempDir())
			data := bytes.Repeat([]byte("trailmap"), size/8)
			b.SetBytes(int64(size))
			for i := 0; b.Loop(); i++ {
				if err := c.Put(b.Context(), "bench/"+strconv.Itoa(i%16), bytes.NewReader(data), int64(size)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkClient_Get(b *testing.B) {
	for _, size := range []int{64 << 10, 4 << 20} {
		b.Run(sizeName(size), func(b *testing.B) {
			c := newClient(b, b.TempDir())
			data := bytes.Repeat([]byte("trailmap"), size/8)
			if err := c.Put(b.Context(), "bench/obj", bytes.NewReader(data), int64(size)); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(size))
			for b.Loop() {
				rc, err := c.Get(b.Context(), "bench/obj", 0, -1)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := io.Copy(io.Discard, rc); err != nil {
					b.Fatal(err)
				}
				rc.Close()
			}
		})
	}
}

func sizeName(n int) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return strconv.Itoa(n>>20) + "MiB"
	case n >= 1<<10 && n%(1<<10) == 0:
		return strconv.Itoa(n>>10) + "KiB"
	}
	return strconv.Itoa(n)
}

// assertNoTemp fails t if a temporary file is left anywhere under dir.
func assertNoTemp(t testing.TB, dir string) {
	t.Helper()
	filepath.WalkDir(dir, func(p string, d iofs.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(d.Name(), fs.TempPrefix) {
			t.Errorf("temporary file left behind: %s", p)
		}
		return nil
	})
}

// dirs lists the directories under root, relative and slash-separated.
func dirs(t testing.TB, root string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(root, func(p string, d iofs.DirEntry, err error) error {
		if err == nil && d.IsDir() && p != root {
			rel, _ := filepath.Rel(root, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	return out
}

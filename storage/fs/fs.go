// Package fs is the local-directory blob store, Trailmap's default backend.
//
// A key is a file path under the root directory. Writes go to a temporary
// file in the key's directory, are fsynced and renamed over the key, and the
// directory is fsynced, so an object is either absent or whole, even after a
// crash. All file access goes through an os.Root, so neither a key nor a
// symbolic link inside the tree can reach outside the root.
package fs

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/trailmap/trailmap/storage"
)

// TempPrefix starts the names of in-flight temporary files. List skips them,
// and keys with an element starting with it are rejected, so they can never
// collide with objects. A crash can leave such files behind; they are safe
// to delete when no Put is running.
const TempPrefix = ".trailmap-tmp-"

const (
	dirPerm  = 0o750
	filePerm = 0o640
)

// Client stores blobs as files under a root directory. It is safe for
// concurrent use, also by several Clients (or processes) sharing one root.
type Client struct {
	root *os.Root
}

var _ storage.Blobs = (*Client)(nil)

// New returns a Client storing blobs under dir, creating dir if needed.
func New(dir string) (*Client, error) {
	if dir == "" {
		return nil, errors.New("blob dir is empty")
	}
	if err := os.MkdirAll(dir, dirPerm); err != nil {
		return nil, fmt.Errorf("create blob dir: %w", err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("open blob dir: %w", err)
	}
	return &Client{root: root}, nil
}

// Close releases the root directory handle. The Client must not be used
// afterwards.
func (c *Client) Close() error {
	return c.root.Close()
}

// Dir returns the root directory the Client was opened with.
func (c *Client) Dir() string {
	return c.root.Name()
}

// Ready reports whether the root directory is still there and writable, by
// creating and removing a small probe file. It backs /readyz.
func (c *Client) Ready(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	f, name, err := c.createTemp(".")
	if err != nil {
		return fmt.Errorf("blob dir not writable: %w", err)
	}
	_, werr := f.Write([]byte("ok"))
	cerr := f.Close()
	rerr := c.root.Remove(name)
	if err := errors.Join(werr, cerr, rerr); err != nil {
		return fmt.Errorf("blob dir not writable: %w", err)
	}
	return nil
}

// Put implements storage.Blobs.
func (c *Client) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	if err := c.put(ctx, key, r, size); err != nil {
		return fmt.Errorf("put %q: %w", key, err)
	}
	return nil
}

func (c *Client) put(ctx context.Context, key string, r io.Reader, size int64) (err error) {
	if err := validKey(key); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	name := filepath.FromSlash(key)
	dir := filepath.Dir(name)
	f, tmp, err := c.createTempDirs(dir)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			c.root.Remove(tmp)
		}
	}()

	if err := copyExact(f, &ctxReader{ctx: ctx, r: r}, size); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close: %w", err)
	}
	// Last chance to honour a cancellation: after the rename the object exists.
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := c.root.Rename(tmp, name); err != nil {
		return fmt.Errorf("rename: %w", err)
	}
	return c.syncDir(dir)
}

// copyExact copies r to w: exactly size bytes, or everything when size < 0.
func copyExact(w io.Writer, r io.Reader, size int64) error {
	w = struct{ io.Writer }{w} // hide ReadFrom so CopyBuffer uses our buffer
	buf := make([]byte, 256<<10)
	if size < 0 {
		_, err := io.CopyBuffer(w, r, buf)
		return err
	}
	n, err := io.CopyBuffer(w, io.LimitReader(r, size), buf)
	if err != nil {
		return err
	}
	if n < size {
		return fmt.Errorf("body has %d bytes, want %d: %w", n, size, io.ErrUnexpectedEOF)
	}
	// The caller said size bytes; more would mean a wrong size, which we
	// refuse rather than silently truncate.
	var one [1]byte
	for {
		m, err := r.Read(one[:])
		if m > 0 {
			return fmt.Errorf("body longer than %d bytes", size)
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// createTempDirs creates a temporary file in dir, creating dir (and fsyncing
// the parent of every directory it creates) when missing. It retries because
// a concurrent Delete may remove a directory it has just found empty.
func (c *Client) createTempDirs(dir string) (*os.File, string, error) {
	for attempt := 0; ; attempt++ {
		f, tmp, err := c.createTemp(dir)
		if err == nil || !errors.Is(err, iofs.ErrNotExist) || attempt == 5 {
			return f, tmp, err
		}
		if err := c.mkdirAll(dir); err != nil {
			return nil, "", err
		}
	}
}

func (c *Client) createTemp(dir string) (*os.File, string, error) {
	for {
		var b [8]byte
		rand.Read(b[:])
		name := filepath.Join(dir, TempPrefix+hex.EncodeToString(b[:]))
		f, err := c.root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, filePerm)
		if errors.Is(err, iofs.ErrExist) {
			continue
		}
		if err != nil {
			return nil, "", err
		}
		return f, name, nil
	}
}

// mkdirAll is os.Root.MkdirAll that also fsyncs the parent of each directory
// it creates, so that the new entries survive a crash along with the file.
func (c *Client) mkdirAll(dir string) error {
	if dir == "." {
		return nil
	}
	elems := strings.Split(dir, string(filepath.Separator))
	for i := range elems {
		p := filepath.Join(elems[:i+1]...)
		err := c.root.Mkdir(p, dirPerm)
		if errors.Is(err, iofs.ErrExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("create dir: %w", err)
		}
		if err := c.syncDir(filepath.Dir(p)); err != nil {
			return err
		}
	}
	return nil
}

func (c *Client) syncDir(dir string) error {
	d, err := c.root.Open(dir)
	if err != nil {
		return fmt.Errorf("sync dir: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync dir: %w", err)
	}
	return nil
}

// Get implements storage.Blobs.
func (c *Client) Get(ctx context.Context, key string, off, length int64) (io.ReadCloser, error) {
	rc, err := c.get(ctx, key, off, length)
	if err != nil {
		return nil, fmt.Errorf("get %q: %w", key, err)
	}
	return rc, nil
}

func (c *Client) get(ctx context.Context, key string, off, length int64) (io.ReadCloser, error) {
	if err := validKey(key); err != nil {
		return nil, err
	}
	if off < 0 {
		return nil, fmt.Errorf("negative offset %d", off)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f, err := c.root.Open(filepath.FromSlash(key))
	if err != nil {
		// ENOTDIR: an element of the key is an object, so the key is not.
		if errors.Is(err, iofs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			return nil, storage.ErrNotFound
		}
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, storage.ErrNotFound
	}
	n := max(fi.Size()-off, 0)
	if length >= 0 {
		n = min(n, length)
	}
	// Reading the open file keeps a consistent view even if a Put renames a
	// new version over the key meanwhile.
	return &fileReader{ctxReader: ctxReader{ctx: ctx, r: io.NewSectionReader(f, off, n)}, f: f}, nil
}

type fileReader struct {
	ctxReader
	f *os.File
}

func (r *fileReader) Close() error { return r.f.Close() }

// ctxReader fails reads once ctx is done, so a cancelled request stops
// streaming a large file as it would on S3.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (r *ctxReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}

// List implements storage.Blobs.
func (c *Client) List(ctx context.Context, prefix string, fn func(storage.Object) error) error {
	if err := storage.ValidPrefix(prefix); err != nil {
		return fmt.Errorf("list %q: %w", prefix, err)
	}
	dir, partial := "", prefix
	if i := strings.LastIndexByte(prefix, '/'); i >= 0 {
		dir, partial = prefix[:i], prefix[i+1:]
	}
	err := c.walk(ctx, dir, partial, fn)
	var fe fnError
	if errors.As(err, &fe) {
		return fe.err // the caller's own error, as it was
	}
	if err != nil {
		return fmt.Errorf("list %q: %w", prefix, err)
	}
	return nil
}

// fnError carries an error returned by the caller's fn out of the walk.
type fnError struct{ err error }

func (e fnError) Error() string { return e.err.Error() }

// walk calls fn for the objects under the directory dir (a slash key prefix
// without trailing slash, "" for the root) whose next element starts with
// partial, in key order.
func (c *Client) walk(ctx context.Context, dir, partial string, fn func(storage.Object) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	name := "."
	if dir != "" {
		name = filepath.FromSlash(dir)
	}
	d, err := c.root.Open(name)
	if err != nil {
		if errors.Is(err, iofs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			return nil
		}
		return err
	}
	entries, err := d.ReadDir(-1)
	d.Close()
	if err != nil {
		if errors.Is(err, syscall.ENOTDIR) {
			return nil
		}
		return err
	}

	type entry struct {
		name  string
		isDir bool
		sort  string
	}
	list := make([]entry, 0, len(entries))
	for _, e := range entries {
		n := e.Name()
		if !strings.HasPrefix(n, partial) || strings.HasPrefix(n, TempPrefix) || validElement(n) != nil {
			continue
		}
		switch {
		case e.IsDir():
			// Every key below dir "a" starts with "a/", so that is how the
			// directory sorts among its siblings ("a-b" < "a/1" < "a0").
			list = append(list, entry{n, true, n + "/"})
		case e.Type().IsRegular():
			list = append(list, entry{n, false, n})
		}
	}
	slices.SortFunc(list, func(a, b entry) int { return strings.Compare(a.sort, b.sort) })

	for _, e := range list {
		key := e.name
		if dir != "" {
			key = dir + "/" + e.name
		}
		if e.isDir {
			if err := c.walk(ctx, key, "", fn); err != nil {
				return err
			}
			continue
		}
		fi, err := c.root.Lstat(filepath.FromSlash(key))
		if errors.Is(err, iofs.ErrNotExist) {
			continue // deleted meanwhile
		}
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(storage.Object{Key: key, Size: fi.Size()}); err != nil {
			return fnError{err}
		}
	}
	return nil
}

// Delete implements storage.Blobs. Directories left empty are removed, best
// effort, up to the root.
func (c *Client) Delete(ctx context.Context, key string) error {
	if err := c.delete(ctx, key); err != nil {
		return fmt.Errorf("delete %q: %w", key, err)
	}
	return nil
}

func (c *Client) delete(ctx context.Context, key string) error {
	if err := validKey(key); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	name := filepath.FromSlash(key)
	fi, err := c.root.Lstat(name)
	if err != nil {
		if errors.Is(err, iofs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			return nil
		}
		return err
	}
	if fi.IsDir() {
		return nil // a "directory" of other keys, not an object
	}
	if err := c.root.Remove(name); err != nil && !errors.Is(err, iofs.ErrNotExist) {
		return err
	}
	for dir := path.Dir(key); dir != "."; dir = path.Dir(dir) {
		// Fails on the first directory that is not empty, which ends the climb.
		if c.root.Remove(filepath.FromSlash(dir)) != nil {
			break
		}
	}
	return nil
}

// validKey is storage.ValidKey plus the reserved temporary-file names.
func validKey(key string) error {
	if err := storage.ValidKey(key); err != nil {
		return err
	}
	if strings.HasPrefix(key, TempPrefix) || strings.Contains(key, "/"+TempPrefix) {
		return fmt.Errorf("%w: element starts with reserved %q", storage.ErrInvalidKey, TempPrefix)
	}
	return nil
}

func validElement(name string) error {
	return storage.ValidKey(name)
}

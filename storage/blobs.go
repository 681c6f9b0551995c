// Package storage holds Trailmap's persistence: the blob-store contract that
// the local (storage/fs) and S3 (storage/s3) backends implement, and the
// SQLite index (storage/index).
package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// ErrNotFound is returned (wrapped) by a blob store when a key does not exist.
var ErrNotFound = errors.New("blob not found")

// ErrInvalidKey is returned (wrapped) when a key or list prefix is empty,
// absolute, or otherwise fails ValidKey / ValidPrefix.
var ErrInvalidKey = errors.New("invalid blob key")

// Blobs is the whole blob-store contract; storagetest.Run checks an
// implementation against it. Consumers declare the subset they call.
//
// Keys are slash-separated relative paths such as
// "1/sessions/2026/11/29/abc/0-12.zst" and must pass ValidKey; every method
// rejects other keys with an error wrapping ErrInvalidKey before doing any
// I/O, so a key behaves the same on every backend. A key cannot be both an
// object and a "directory" of other objects ("a" and "a/b"): the local
// backend cannot represent it and MinIO refuses it, so Put fails.
//
// All methods honour ctx: once it is done they return an error (wrapping
// ctx.Err() where the backend's client allows).
type Blobs interface {
	// Put stores the bytes of r under key, replacing any existing object.
	// With size >= 0, r must yield exactly size bytes: a shorter or longer
	// stream fails the Put. size < 0 means unknown, and r is read to EOF.
	// The object is visible to Get only once Put has returned nil, and is then
	// durable. A failed Put leaves no partial object behind and leaves an
	// existing object under key as it was. Concurrent Puts of one key never
	// mix: readers see one whole object or another.
	Put(ctx context.Context, key string, r io.Reader, size int64) error
	// Get opens key for reading from byte offset off; length < 0 reads to the
	// end, and a range running past the end is cut short at the end. An off at
	// or past the end yields an empty reader, not an error; off < 0 is an
	// error. It returns an error wrapping ErrNotFound when key does not exist.
	// The caller closes the reader; reads fail once ctx is done.
	Get(ctx context.Context, key string, off, length int64) (io.ReadCloser, error)
	// List calls fn for every object whose key starts with prefix, in
	// lexical (byte-wise) key order. The prefix is a plain string prefix and
	// may end in the middle of an element ("1/sessions/2026/11/29/ab").
	// Returning an error from fn stops the walk and List returns that error.
	// An invalid prefix (see ValidPrefix) is an error wrapping ErrInvalidKey.
	List(ctx context.Context, prefix string, fn func(Object) error) error
	// Delete removes key. Deleting a missing key is not an error.
	Delete(ctx context.Context, key string) error
}

// Object describes a stored blob.
type Object struct {
	Key  string
	Size int64
}

// Limits on keys. They are the tighter of S3's object-name limit and the
// common file-name limit of local file systems, so that any valid key can
// live on either backend.
const (
	MaxKeyLen     = 1024 // bytes in a whole key
	MaxElementLen = 255  // bytes in one slash-separated element
)

// ValidKey returns nil if key may name a blob, or an error wrapping
// ErrInvalidKey that says why not. A valid key is valid UTF-8 of at most
// MaxKeyLen bytes, made of slash-separated elements that are non-empty, at
// most MaxElementLen bytes, not "." or "..", and free of backslashes and NUL
// bytes. Hence no key is absolute, ends in "/", or can leave a directory root.
func ValidKey(key string) error {
	if key == "" {
		return fmt.Errorf("%w: empty", ErrInvalidKey)
	}
	if err := validString(key); err != nil {
		return err
	}
	for elem := range strings.SplitSeq(key, "/") {
		if err := validElement(elem); err != nil {
			return err
		}
	}
	return nil
}

// ValidPrefix returns nil if prefix is acceptable to List, or an error
// wrapping ErrInvalidKey. The empty prefix lists everything. Every element
// before the last "/" must be valid as in ValidKey; the part after it may be
// empty or the start of an element.
func ValidPrefix(prefix string) error {
	if err := validString(prefix); err != nil {
		return err
	}
	i := strings.LastIndexByte(prefix, '/')
	if i < 0 {
		return nil
	}
	for elem := range strings.SplitSeq(prefix[:i], "/") {
		if err := validElement(elem); err != nil {
			return err
		}
	}
	if len(prefix)-i-1 > MaxElementLen {
		return fmt.Errorf("%w: element longer than %d bytes", ErrInvalidKey, MaxElementLen)
	}
	return nil
}

func validString(s string) error {
	switch {
	case len(s) > MaxKeyLen:
		return fmt.Errorf("%w: longer than %d bytes", ErrInvalidKey, MaxKeyLen)
	case !utf8.ValidString(s):
		return fmt.Errorf("%w: not valid UTF-8", ErrInvalidKey)
	case strings.ContainsRune(s, 0):
		return fmt.Errorf("%w: contains a NUL byte", ErrInvalidKey)
	case strings.ContainsRune(s, '\\'):
		return fmt.Errorf("%w: contains a backslash", ErrInvalidKey)
	}
	return nil
}

func validElement(elem string) error {
	switch {
	case elem == "":
		return fmt.Errorf("%w: empty element (leading, trailing or double slash)", ErrInvalidKey)
	case elem == "." || elem == "..":
		return fmt.Errorf("%w: %q element", ErrInvalidKey, elem)
	case len(elem) > MaxElementLen:
		return fmt.Errorf("%w: element longer than %d bytes", ErrInvalidKey, MaxElementLen)
	}
	return nil
}

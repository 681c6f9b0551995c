// Package storage holds Trailmap's persistence: the blob-store contract that
// the local (storage/fs) and S3 (storage/s3) backends implement, and the
// SQLite index (storage/index).
package storage

import (
	"context"
	"errors"
	"io"
)

// ErrNotFound is returned (wrapped) by a blob store when a key does not exist.
var ErrNotFound = errors.New("blob not found")

// ErrInvalidKey is returned when a key is empty, absolute, or would escape the store.
var ErrInvalidKey = errors.New("invalid blob key")

// Blobs is the whole blob-store contract; storagetest.Run checks an
// implementation against it. Consumers declare the subset they call.
//
// Keys are slash-separated relative paths such as
// "1/sessions/2026/11/29/abc/0-12.zst"; they never start with "/" and never
// contain "." or ".." elements.
type Blobs interface {
	// Put stores size bytes from r under key, replacing any existing object.
	// The object is visible to Get only once Put has returned nil, and is then
	// durable. A failed Put leaves no partial object behind.
	Put(ctx context.Context, key string, r io.Reader, size int64) error
	// Get opens key for reading from byte offset off; length < 0 reads to the
	// end. It returns an error wrapping ErrNotFound when key does not exist.
	Get(ctx context.Context, key string, off, length int64) (io.ReadCloser, error)
	// List calls fn for every object whose key starts with prefix, in
	// lexical key order. Returning an error from fn stops the walk and List
	// returns that error.
	List(ctx context.Context, prefix string, fn func(Object) error) error
	// Delete removes key. Deleting a missing key is not an error.
	Delete(ctx context.Context, key string) error
}

// Object describes a stored blob.
type Object struct {
	Key  string
	Size int64
}

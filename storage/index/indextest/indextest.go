// Package indextest gives tests a fresh, fully migrated index.
package indextest

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/trailmap/trailmap/storage/index"
)

// New opens a fresh index in a temp dir, closed when the test ends.
func New(t testing.TB) *index.DB {
	t.Helper()
	db, err := index.Open(context.Background(), filepath.Join(t.TempDir(), "index.db"))
	if err != nil {
		t.Fatalf("open index: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// Package indextest gives tests a fresh, fully migrated index.
package indextest

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/trailmap/trailmap/storage/index"
	"github.com/trailmap/trailmap/storage/sqldb"
)

// New opens a fresh index in a temp dir with the core schema and more (the
// schemas of the other owners a test needs), closed when the test ends.
func New(t testing.TB, more ...sqldb.Schema) *index.DB {
	t.Helper()
	db, err := index.Open(context.Background(), filepath.Join(t.TempDir(), "index.db"), more...)
	if err != nil {
		t.Fatalf("open index: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// Package indextest gives tests a fresh, fully migrated index, on SQLite or
// on each backend in turn.
package indextest

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/trailmap/trailmap/internal/pgtest"
	"github.com/trailmap/trailmap/storage/index"
	"github.com/trailmap/trailmap/storage/sqldb"
)

// New opens a fresh SQLite index in a temp dir with the core schema and
// more (the schemas of the other owners a test needs), closed when the test
// ends.
func New(t testing.TB, more ...sqldb.Schema) *index.DB {
	t.Helper()
	return Open(t, filepath.Join(t.TempDir(), "index.db"), more...)
}

// Open opens the index at url (a SQLite path or a postgres:// URL) with the
// core schema and more, closed when the test ends.
func Open(t testing.TB, url string, more ...sqldb.Schema) *index.DB {
	t.Helper()
	db, err := index.Open(context.Background(), url, more...)
	if err != nil {
		t.Fatalf("open index: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// Each runs fn as the subtests "sqlite" and "postgres", each on a fresh
// index with the core schema and more. The PostgreSQL database is one of
// pgtest's shared server, so the test binary's TestMain must stop it
// (pgtest.Main); a missing PostgreSQL fails the test.
func Each(t *testing.T, fn func(t *testing.T, db *index.DB), more ...sqldb.Schema) {
	t.Helper()
	EachWith(t, func(sqldb.Dialect) []sqldb.Schema { return more }, fn)
}

// EachWith is Each with the other owners' schemas chosen per dialect, for
// tests that need a schema on one backend only. (On SQLite heatmap's schema
// adds sessions.error_clicks; on PostgreSQL the core schema has it.)
func EachWith(t *testing.T, more func(sqldb.Dialect) []sqldb.Schema, fn func(t *testing.T, db *index.DB)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) {
		fn(t, New(t, more(sqldb.SQLite)...))
	})
	t.Run("postgres", func(t *testing.T) {
		fn(t, Open(t, pgtest.Shared(t).Database(t), more(sqldb.Postgres)...))
	})
}

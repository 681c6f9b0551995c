// Package index owns the core tables of Trailmap's index: projects, keys,
// visitors, sessions, pages, batches, segments, custom events and the blob
// trash. It holds their migrations and all of their SQL; other packages call
// its typed methods. The connection itself is storage/sqldb's.
package index

import (
	"context"
	"embed"
	"errors"

	"github.com/trailmap/trailmap/storage/sqldb"
)

// ErrNotFound is returned (wrapped) when a looked-up row does not exist.
var ErrNotFound = errors.New("not found")

// ErrExists is returned (wrapped) when a row with the same unique name exists.
var ErrExists = errors.New("already exists")

//go:embed migrations
var migrations embed.FS

// Schema is the core tables' migrations (0001–0009, then 0080–0089), SQLite's and their
// PostgreSQL twins under postgres/, for sqldb.Open.
var Schema = sqldb.NewSchema("index", 1, 9, migrations).Also(80, 89)

// DB is the core index: typed methods over the tables storage/index owns.
type DB struct {
	db *sqldb.DB
}

// New is the core index on db, whose schemas must include Schema.
func New(db *sqldb.DB) *DB { return &DB{db: db} }

// Open opens the index at url (a SQLite path or a postgres:// URL, see
// sqldb.Open) with the core schema and more (other owners' schemas), for
// tools and tests that need no other owner.
func Open(ctx context.Context, url string, more ...sqldb.Schema) (*DB, error) {
	db, err := sqldb.Open(ctx, url, append([]sqldb.Schema{Schema}, more...)...)
	if err != nil {
		return nil, err
	}
	return New(db), nil
}

// Close closes the database.
func (db *DB) Close() error { return db.db.Close() }

// SQL is the database, for the other owners' constructors (cmd/trailmap and
// tests wire them).
func (db *DB) SQL() *sqldb.DB { return db.db }

// Ping checks that the index answers, for /readyz.
func (db *DB) Ping(ctx context.Context) error { return db.db.Ping(ctx) }

// dialect is the SQL the database speaks.
func (db *DB) dialect() sqldb.Dialect { return db.db.Dialect() }

// pick is the statement of the database's dialect: sqlite, or its
// PostgreSQL twin. Twins are kept next to the code that runs them.
func (db *DB) pick(sqlite, postgres string) string {
	if db.db.Dialect() == sqldb.Postgres {
		return postgres
	}
	return sqlite
}

// List is the SQL placeholder list "(?,?,...)" for n arguments, for
// "x IN " + List(n).
func List(n int) string { return sqldb.List(n) }

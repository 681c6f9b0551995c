// Package accounts owns the dashboard's people and what they share: users,
// their projects, login sessions, share links and notes on recordings. It
// stores rows; the rules about them (what input is valid, how passwords are
// checked, when a link is gone, who may delete a note) live in ui.
package accounts

import (
	"crypto/sha256"
	"embed"
	"fmt"

	"github.com/trailmap/trailmap/storage/index"
	"github.com/trailmap/trailmap/storage/sqldb"
)

//go:embed migrations
var migrations embed.FS

// Schema is the accounts tables' migrations (0020–0029), SQLite's and their
// PostgreSQL twins under postgres/, for sqldb.Open.
var Schema = sqldb.NewSchema("accounts", 20, 29, migrations)

// Errors of the store. Each is also the index's error of the same name, so
// the server's one error handler answers 404 and 409 for them.
var (
	// ErrNotFound is a lookup that finds nothing (or a login that expired).
	ErrNotFound = fmt.Errorf("%w", index.ErrNotFound)
	// ErrExists is a user whose email is taken.
	ErrExists = fmt.Errorf("%w", index.ErrExists)
)

// Store keeps the accounts tables in the index database.
type Store struct {
	db *sqldb.DB
}

// New returns the store over the index's connection.
func New(db *sqldb.DB) *Store { return &Store{db: db} }

// pick is the statement of the database's dialect: sqlite, or its
// PostgreSQL twin.
func (s *Store) pick(sqlite, postgres string) string {
	if s.db.Dialect() == sqldb.Postgres {
		return postgres
	}
	return sqlite
}

// hashSecret is how login and share tokens are stored: their sha256 only.
func hashSecret(v string) []byte {
	h := sha256.Sum256([]byte(v))
	return h[:]
}

// nullID stores 0 as NULL, for optional references to users.
func nullID(id int64) any {
	if id == 0 {
		return nil
	}
	return id
}

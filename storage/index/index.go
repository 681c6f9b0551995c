// Package index is Trailmap's SQLite index: projects, keys, sessions, pages,
// segments and the facts extracted at ingest. It is a concrete type; a
// PostgreSQL twin would be the second implementation that earns an interface.
package index

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	_ "github.com/mattn/go-sqlite3" // registers the "sqlite3" driver
)

// ErrNotFound is returned (wrapped) when a looked-up row does not exist.
var ErrNotFound = errors.New("not found")

// ErrExists is returned (wrapped) when a row with the same unique name exists.
var ErrExists = errors.New("already exists")

//go:embed migrations/*.sql
var migrations embed.FS

// DB is the index. Reads go through a pool; every write goes through a single
// connection, which is what SQLite serialises anyway, so writers queue in Go
// instead of spinning on SQLITE_BUSY.
type DB struct {
	read  *sql.DB
	write *sql.DB
}

// Open opens (creating if needed) the index at path and runs every migration
// that has not run yet.
func Open(ctx context.Context, path string) (*DB, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("create index dir: %w", err)
	}
	q := url.Values{}
	q.Set("_journal_mode", "WAL")
	q.Set("_busy_timeout", "10000")
	q.Set("_foreign_keys", "on")
	q.Set("_synchronous", "NORMAL")
	q.Set("_txlock", "immediate")
	dsn := "file:" + path + "?" + q.Encode()

	write, err := sql.Open("sqlite3", dsn)
	if err != nil {
		return nil, fmt.Errorf("open index: %w", err)
	}
	write.SetMaxOpenConns(1)
	write.SetConnMaxIdleTime(0)
	read, err := sql.Open("sqlite3", dsn+"&mode=ro")
	if err != nil {
		write.Close()
		return nil, fmt.Errorf("open index: %w", err)
	}
	read.SetMaxOpenConns(8)
	db := &DB{read: read, write: write}
	if err := db.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// Close closes both pools.
func (db *DB) Close() error {
	return errors.Join(db.read.Close(), db.write.Close())
}

// Read is the read-only pool, for queries of other packages (heatmap, journey).
func (db *DB) Read() *sql.DB { return db.read }

// Write is the single writer connection. Keep transactions on it short.
func (db *DB) Write() *sql.DB { return db.write }

// Ping checks that the index answers, for /readyz.
func (db *DB) Ping(ctx context.Context) error {
	var one int
	if err := db.read.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		return fmt.Errorf("ping index: %w", err)
	}
	return nil
}

// Tx runs fn in a write transaction, committing if fn returns nil.
func (db *DB) Tx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if err := fn(tx); err != nil {
		return errors.Join(err, tx.Rollback())
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// migrate runs the embedded migrations numbered NNNN_name.sql in order, each
// in its own transaction together with the version bump.
func (db *DB) migrate(ctx context.Context) error {
	if _, err := db.write.ExecContext(ctx,
		`CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("create schema_version: %w", err)
	}
	var current int
	err := db.write.QueryRowContext(ctx, `SELECT version FROM schema_version`).Scan(&current)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		if _, err := db.write.ExecContext(ctx, `INSERT INTO schema_version VALUES (0)`); err != nil {
			return fmt.Errorf("init schema_version: %w", err)
		}
	case err != nil:
		return fmt.Errorf("read schema_version: %w", err)
	}

	entries, err := fs.ReadDir(migrations, "migrations")
	if err != nil {
		return fmt.Errorf("list migrations: %w", err)
	}
	type mig struct {
		n    int
		name string
	}
	var all []mig
	for _, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		n, err := strconv.Atoi(num)
		if !ok || err != nil {
			return fmt.Errorf("migration %s: name must start with a number", e.Name())
		}
		all = append(all, mig{n, e.Name()})
	}
	sort.Slice(all, func(i, j int) bool { return all[i].n < all[j].n })
	for i, m := range all {
		if i > 0 && all[i-1].n == m.n {
			return fmt.Errorf("migrations %s and %s share number %d", all[i-1].name, m.name, m.n)
		}
		if m.n <= current {
			continue
		}
		body, err := fs.ReadFile(migrations, "migrations/"+m.name)
		if err != nil {
			return fmt.Errorf("read migration %s: %w", m.name, err)
		}
		err = db.Tx(ctx, func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, string(body)); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, `UPDATE schema_version SET version = ?`, m.n)
			return err
		})
		if err != nil {
			return fmt.Errorf("migration %s: %w", m.name, err)
		}
	}
	return nil
}

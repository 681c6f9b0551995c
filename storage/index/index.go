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

// migrate runs the embedded migrations named NNNN_name.sql in numeric
// order, each in its own transaction together with its record in
// schema_migrations. Each applied number is recorded, so migrations merged
// from parallel branches (numbers in reserved ranges) all run.
func (db *DB) migrate(ctx context.Context) error {
	if _, err := db.write.ExecContext(ctx,
		`CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	applied := map[int]bool{}
	rows, err := db.write.QueryContext(ctx, `SELECT version FROM schema_migrations`)
	if err != nil {
		return fmt.Errorf("read schema_migrations: %w", err)
	}
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			rows.Close()
			return fmt.Errorf("scan schema_migrations: %w", err)
		}
		applied[v] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read schema_migrations: %w", err)
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
		if applied[m.n] {
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
			_, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, strftime('%s','now'))`, m.n, m.name)
			return err
		})
		if err != nil {
			return fmt.Errorf("migration %s: %w", m.name, err)
		}
	}
	return nil
}

// List is the SQL placeholder list "(?,?,...)" for n arguments, for
// "x IN " + List(n).
func List(n int) string {
	return "(" + strings.TrimSuffix(strings.Repeat("?,", n), ",") + ")"
}

// Package sqldb is the index's connection, kept in one place: the SQLite DSN
// (WAL, busy_timeout, foreign_keys) with a read pool beside a single writer,
// or a PostgreSQL pool; and the migrator that runs every table owner's
// numbered migrations, in the dialect of the database.
//
// Only table owners (storage/index, heatmap, journey, accounts) hold a *DB
// and write SQL, each for its own tables; everyone else calls their typed
// methods. The ownership test in this package enforces that.
package sqldb

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/mattn/go-sqlite3"
)

// Schema is one owner's migrations: files named NNNN_name.sql at the root of
// FS for SQLite and their PostgreSQL twins under postgres/ (the same
// numbers), every number within [Min, Max]. Ranges of owners never overlap,
// so migrations of parallel branches never collide.
type Schema struct {
	Owner    string
	Min, Max int
	FS       fs.FS
	// More are further ranges of the owner, for an owner whose first
	// range is full (see Also).
	More []Range
}

// Range is a range of migration numbers, both ends included.
type Range struct{ Min, Max int }

// Also returns s with one more range of numbers, [min, max].
func (s Schema) Also(min, max int) Schema {
	s.More = append(append([]Range(nil), s.More...), Range{min, max})
	return s
}

// ranges are every range of s.
func (s Schema) ranges() []Range { return append([]Range{{s.Min, s.Max}}, s.More...) }

// owns tells whether migration number n is in one of s's ranges.
func (s Schema) owns(n int) bool {
	for _, r := range s.ranges() {
		if r.Min <= n && n <= r.Max {
			return true
		}
	}
	return false
}

// NewSchema is owner's schema over the migrations directory embedded in
// fsys (an owner's `//go:embed migrations`).
func NewSchema(owner string, min, max int, fsys embed.FS) Schema {
	sub, err := fs.Sub(fsys, "migrations")
	if err != nil {
		panic(fmt.Sprintf("schema %s: %v", owner, err)) // a literal path into an embedded FS
	}
	return Schema{Owner: owner, Min: min, Max: max, FS: sub}
}

// DB is the index database. Reads go through a pool; every write goes through
// a single connection, which is what SQLite serialises anyway, so writers
// queue in Go instead of spinning on SQLITE_BUSY.
type DB struct {
	read    *sql.DB
	write   *sql.DB
	dialect Dialect
}

// Dialect names the SQL a database speaks; owners keep twins of the
// statements (and migrations) where SQLite and PostgreSQL differ.
type Dialect string

// The dialects.
const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

// Dialect is the database's dialect.
func (db *DB) Dialect() Dialect { return db.dialect }

// IsPostgres reports whether url names a PostgreSQL database
// (postgres:// or postgresql://); anything else is a SQLite file path.
func IsPostgres(url string) bool {
	return strings.HasPrefix(url, "postgres://") || strings.HasPrefix(url, "postgresql://")
}

// Open opens the index at url — a postgres:// URL, or the path of a SQLite
// file (created if needed) — and runs every migration of schemas that has
// not run yet, all owners' together in numeric order (a later owner's
// tables may reference an earlier one's).
func Open(ctx context.Context, url string, schemas ...Schema) (*DB, error) {
	if IsPostgres(url) {
		return openPostgres(ctx, url, schemas)
	}
	return openSQLite(ctx, url, schemas)
}

func openSQLite(ctx context.Context, path string, schemas []Schema) (*DB, error) {
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
	db := &DB{read: read, write: write, dialect: SQLite}
	if err := db.migrate(ctx, schemas); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// Close closes both pools.
func (db *DB) Close() error {
	if db.read == db.write {
		return db.read.Close()
	}
	return errors.Join(db.read.Close(), db.write.Close())
}

// Read is the read-only pool. For an owner's queries of its own tables.
func (db *DB) Read() *sql.DB { return db.read }

// Write is the single writer connection. For an owner's statements on its
// own tables; keep transactions on it short.
func (db *DB) Write() *sql.DB { return db.write }

// Ping checks that the index answers, for /readyz.
func (db *DB) Ping(ctx context.Context) error {
	var one int
	if err := db.read.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		return fmt.Errorf("ping index: %w", err)
	}
	return nil
}

// Tx is a write transaction that several owners take part in (the ingest's
// observer stage: the core marks a batch observed, heatmap and journey
// record its facts, all or nothing). Whoever holds one passes it on; only an
// owner opens it with SQL, for its own tables.
//
// A participant may keep writes back until the end (Buffer): the owner
// that began the transaction calls Flush before it commits.
type Tx struct {
	tx      *sql.Tx
	buffers []keyedBuffer
}

type keyedBuffer struct {
	key any
	b   Buffer
}

// Buffer is what a participant writes once for the whole transaction
// instead of once per call: sums over every batch of a group (a daily
// count, a heatmap row) take one statement per row touched, not one per
// batch, and nodes of a cluster lock those rows once, in one order.
type Buffer interface {
	Flush(ctx context.Context, tx *Tx) error
}

// Committer is a Buffer that is told when its transaction has committed:
// for what must not happen before its writes are visible (a cache of
// what was read made stale).
type Committer interface {
	Committed()
}

// RolledBacker is a Buffer that is told when its transaction did not
// commit: for what a participant changed in memory along with its writes
// (a heatmap tracker's state), to be put back as it was before the
// transaction, so that the transaction run again meets what the first
// attempt met.
type RolledBacker interface {
	RolledBack()
}

// SQL is the transaction itself, for an owner's statements on its own tables.
func (t *Tx) SQL() *sql.Tx { return t.tx }

// WrapTx makes a shared transaction of tx, for the owner that began it,
// who calls Flush before committing and Committed after, or RolledBack
// after a rollback.
func WrapTx(tx *sql.Tx) *Tx { return &Tx{tx: tx} }

// Buffer returns the participant's buffer under key (a comparable value of
// its own, such as its service pointer), made by mk on first use.
func (t *Tx) Buffer(key any, mk func() Buffer) Buffer {
	if b := t.Lookup(key); b != nil {
		return b
	}
	b := mk()
	t.buffers = append(t.buffers, keyedBuffer{key, b})
	return b
}

// Lookup returns the participant's buffer under key, nil when it has made
// none in this transaction.
func (t *Tx) Lookup(key any) Buffer {
	for _, kb := range t.buffers {
		if kb.key == key {
			return kb.b
		}
	}
	return nil
}

// Ranked is a Buffer that says when it is flushed: buffers of a lower rank
// first, then by the order they were made; one that does not say has rank
// 0. A buffer whose flush takes a lock that every node's transactions wait
// for (journey's) goes after those whose rows other nodes also write, or
// two nodes could each hold what the other waits for. A flush may fill
// buffers of a later rank (they are flushed after it), not of its own or an
// earlier one.
type Ranked interface {
	Buffer
	FlushRank() int
}

// The ranks, in the order they flush: the one order every node takes its
// locks in at the end of a transaction.
const (
	// RankSharedRows: rows every node adds to (heatmap sums), each
	// buffer's in key order; a Buffer that does not say has this rank.
	RankSharedRows = 0
	// RankClusterLock: work under locks every node's transactions take
	// (journey's timelines lock, shared, and its per-project keys lock),
	// after every row other nodes write.
	RankClusterLock = 1
	// RankSessionRows: sessions rows (their lock order is the index's),
	// which work of the ranks before may fill (conversions).
	RankSessionRows = 2
	// RankLast: rows written last, with nothing locked after them (page
	// URLs, which stage 1's transactions write).
	RankLast = 3
)

func rankOf(b Buffer) int {
	if r, ok := b.(Ranked); ok {
		return r.FlushRank()
	}
	return RankSharedRows
}

// Flush writes the participants' buffers, by rank and then in the order
// they were made (a buffer flushed keeps only what is added after). The
// owner that began the transaction calls it last, before committing; a
// transaction rolled back instead drops them with it.
func (t *Tx) Flush(ctx context.Context) error {
	for last := math.MinInt; ; {
		rank, more := math.MaxInt, false
		for _, kb := range t.buffers {
			if r := rankOf(kb.b); r > last && r <= rank {
				rank, more = r, true
			}
		}
		if !more {
			return nil
		}
		// by index: a buffer made while these flush is met too
		for i := 0; i < len(t.buffers); i++ {
			if b := t.buffers[i].b; rankOf(b) == rank {
				if err := b.Flush(ctx, t); err != nil {
					return err
				}
			}
		}
		last = rank
	}
}

// Committed tells the buffers that are Committers that the transaction has
// committed, and forgets them. The owner calls it after the commit.
func (t *Tx) Committed() {
	bs := t.buffers
	t.buffers = nil
	for _, kb := range bs {
		if c, ok := kb.b.(Committer); ok {
			c.Committed()
		}
	}
}

// RolledBack tells the buffers that are RolledBackers that the transaction
// did not commit, and forgets them. The owner calls it after a rollback, or
// after a commit that failed (when a commit's outcome is unknown, a
// participant's state as before the transaction is what it checks against
// the index next time).
func (t *Tx) RolledBack() {
	bs := t.buffers
	t.buffers = nil
	for _, kb := range bs {
		if r, ok := kb.b.(RolledBacker); ok {
			r.RolledBack()
		}
	}
}

// InSharedTx runs fn in a write transaction that several owners take part
// in, flushing their buffers and committing if fn returns nil (and then
// telling them), or rolling back (and then telling them).
func (db *DB) InSharedTx(ctx context.Context, fn func(*Tx) error) error {
	var stx *Tx
	err := db.InTx(ctx, func(tx *sql.Tx) error {
		stx = WrapTx(tx)
		if err := fn(stx); err != nil {
			return err
		}
		return stx.Flush(ctx)
	})
	switch {
	case err == nil:
		stx.Committed()
	case stx != nil:
		stx.RolledBack()
	}
	return err
}

// ConcurrentWriters reports whether write transactions run side by side,
// each on a connection of its own (PostgreSQL), rather than one after the
// other on the single write connection (SQLite).
func (db *DB) ConcurrentWriters() bool { return db.dialect == Postgres }

// InTx runs fn in a write transaction, committing if fn returns nil.
func (db *DB) InTx(ctx context.Context, fn func(*sql.Tx) error) error {
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

// IsUnique tells whether err is a unique-constraint violation, in either
// dialect, so an owner can turn it into its own ErrExists.
func IsUnique(err error) bool {
	var se sqlite3.Error
	if errors.As(err, &se) {
		return se.ExtendedCode == sqlite3.ErrConstraintUnique || se.ExtendedCode == sqlite3.ErrConstraintPrimaryKey
	}
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505" // unique_violation
}

// IsTransient tells whether err is one a transaction may succeed after
// when run again: a PostgreSQL deadlock or serialization failure (nodes of
// a cluster updating the same rows in another order), or SQLite busy or
// locked.
func IsTransient(err error) bool {
	var se sqlite3.Error
	if errors.As(err, &se) {
		return se.Code == sqlite3.ErrBusy || se.Code == sqlite3.ErrLocked
	}
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40P01" || pe.Code == "40001")
}

// IsUnavailable tells whether err says the database itself is out of
// service rather than refusing one statement's data: no connection, a disk
// full or failing, out of memory, a shutdown, a corrupt file, and the
// transient errors above. Another statement would meet it too, so it says
// nothing against the data being written (see the recorder's quarantine).
func IsUnavailable(err error) bool {
	if err == nil {
		return false
	}
	if IsTransient(err) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, driver.ErrBadConn) || errors.Is(err, sql.ErrConnDone) || errors.Is(err, io.ErrUnexpectedEOF) {
		return true
	}
	var se sqlite3.Error
	if errors.As(err, &se) {
		switch se.Code {
		case sqlite3.ErrNomem, sqlite3.ErrReadonly, sqlite3.ErrInterrupt, sqlite3.ErrIoErr, sqlite3.ErrCorrupt,
			sqlite3.ErrFull, sqlite3.ErrCantOpen, sqlite3.ErrProtocol, sqlite3.ErrNotADB:
			return true
		}
		return false
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code[:min(2, len(pe.Code))] {
		case "08", "53", "57", "58", "XX": // connection, resources, operator, system, internal
			return true
		}
		return false
	}
	var ce *pgconn.ConnectError
	var ne net.Error
	return errors.As(err, &ce) || errors.As(err, &ne) || pgconn.SafeToRetry(err) || pgconn.Timeout(err)
}

// IsBadText tells whether err is PostgreSQL refusing a text value: a NUL
// character, or bytes that are not UTF-8 (SQLite stores both).
func IsBadText(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "22021" || pe.Code == "22P05")
}

// List is the SQL placeholder list "(?,?,...)" for n arguments, for
// "x IN " + List(n).
func List(n int) string {
	return "(" + strings.TrimSuffix(strings.Repeat("?,", n), ",") + ")"
}

// InIDs is the condition that expr is one of ids, bound as one argument
// however many they are: a JSON array read by json_each on SQLite, a
// bigint[] on PostgreSQL. It returns the condition and its argument.
func (db *DB) InIDs(expr string, ids []int64) (string, any) {
	if ids == nil {
		ids = []int64{}
	}
	if db.dialect == Postgres {
		return expr + " = ANY(CAST(? AS BIGINT[]))", ids
	}
	b, _ := json.Marshal(ids) // int64s always encode
	return expr + " IN (SELECT value FROM json_each(?))", string(b)
}

// InTexts is InIDs for strings: a JSON array on SQLite, a text[] on
// PostgreSQL.
func (db *DB) InTexts(expr string, vs []string) (string, any) {
	if vs == nil {
		vs = []string{}
	}
	if db.dialect == Postgres {
		return expr + " = ANY(CAST(? AS TEXT[]))", vs
	}
	b, _ := json.Marshal(vs) // strings always encode
	return expr + " IN (SELECT value FROM json_each(?))", string(b)
}

// ErrNoPostgres is returned (wrapped) by Open on PostgreSQL when an owner
// has not got the PostgreSQL twins of its migrations yet.
var ErrNoPostgres = errors.New("not available on PostgreSQL yet")

type migration struct {
	n          int
	name, path string
	owner      Schema
}

// migrate runs the migrations of every schema in numeric order, each in its
// own transaction together with its record in schema_migrations. Each applied
// number is recorded, so migrations merged from parallel branches all run.
func (db *DB) migrate(ctx context.Context, schemas []Schema) error {
	if db.dialect == Postgres {
		// Nodes starting together migrate one after the other.
		unlock, err := db.lockMigrations(ctx)
		if err != nil {
			return err
		}
		defer unlock()
	}
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

	all, err := collect(schemas, db.dialect)
	if err != nil {
		return err
	}
	for _, m := range all {
		if applied[m.n] {
			continue
		}
		body, err := fs.ReadFile(m.owner.FS, m.path)
		if err != nil {
			return fmt.Errorf("read migration %s/%s: %w", m.owner.Owner, m.name, err)
		}
		err = db.InTx(ctx, func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, string(body)); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`, m.n, m.name, time.Now().Unix())
			return err
		})
		if err != nil {
			return fmt.Errorf("migration %s/%s: %w", m.owner.Owner, m.name, err)
		}
	}
	return nil
}

// collect lists the migrations of schemas for dialect d in numeric order,
// checking names, ranges, that no number is used twice, and that every
// SQLite migration has its PostgreSQL twin.
func collect(schemas []Schema, d Dialect) ([]migration, error) {
	var all []migration
	for i, s := range schemas {
		for _, r := range s.ranges() {
			if r.Min > r.Max {
				return nil, fmt.Errorf("schema %s: empty range %d-%d", s.Owner, r.Min, r.Max)
			}
			for _, o := range schemas[:i] {
				for _, q := range o.ranges() {
					if r.Min <= q.Max && q.Min <= r.Max {
						return nil, fmt.Errorf("schemas %s and %s: ranges overlap", o.Owner, s.Owner)
					}
				}
			}
		}
		entries, err := fs.ReadDir(s.FS, ".")
		if err != nil {
			return nil, fmt.Errorf("list migrations of %s: %w", s.Owner, err)
		}
		for _, e := range entries {
			if e.IsDir() || !strings.HasSuffix(e.Name(), ".sql") {
				continue
			}
			num, _, ok := strings.Cut(e.Name(), "_")
			n, err := strconv.Atoi(num)
			if !ok || err != nil {
				return nil, fmt.Errorf("migration %s/%s: name must start with a number", s.Owner, e.Name())
			}
			if !s.owns(n) {
				return nil, fmt.Errorf("migration %s/%s: number outside the owner's ranges %v", s.Owner, e.Name(), s.ranges())
			}
			m := migration{n: n, name: e.Name(), path: e.Name(), owner: s}
			if d == Postgres {
				m.path = "postgres/" + e.Name()
				if _, err := fs.Stat(s.FS, m.path); err != nil {
					return nil, fmt.Errorf("%w: %s has no PostgreSQL twin of migration %s", ErrNoPostgres, s.Owner, e.Name())
				}
			}
			all = append(all, m)
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i].n < all[j].n })
	for i := 1; i < len(all); i++ {
		if all[i-1].n == all[i].n {
			return nil, fmt.Errorf("migrations %s and %s share number %d", all[i-1].name, all[i].name, all[i].n)
		}
	}
	return all, nil
}

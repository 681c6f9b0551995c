package sqldb_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/mattn/go-sqlite3"

	"github.com/trailmap/trailmap/internal/pgtest"
	"github.com/trailmap/trailmap/storage/sqldb"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// backends opens a fresh, empty database of each dialect.
func backends(t *testing.T) map[string]string {
	return map[string]string{
		"sqlite":   filepath.Join(t.TempDir(), "index.db"),
		"postgres": pgtest.Shared(t).Database(t),
	}
}

var things = sqldb.Schema{Owner: "things", Min: 1, Max: 9, FS: fstest.MapFS{
	"0001_things.sql":          {Data: []byte(`CREATE TABLE things (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, note TEXT NOT NULL DEFAULT '')`)},
	"postgres/0001_things.sql": {Data: []byte(`CREATE TABLE things (id BIGSERIAL PRIMARY KEY, name TEXT NOT NULL UNIQUE, note TEXT NOT NULL DEFAULT '')`)},
	"0002_more.sql":            {Data: []byte(`CREATE INDEX things_note ON things (note); INSERT INTO things (name) VALUES ('first');`)},
	"postgres/0002_more.sql":   {Data: []byte(`CREATE INDEX things_note ON things (note); INSERT INTO things (name) VALUES ('first');`)},
}}

var others = sqldb.Schema{Owner: "others", Min: 10, Max: 19, FS: fstest.MapFS{
	"0010_others.sql":          {Data: []byte(`CREATE TABLE others (thing INTEGER NOT NULL REFERENCES things (id) ON DELETE CASCADE)`)},
	"postgres/0010_others.sql": {Data: []byte(`CREATE TABLE others (thing BIGINT NOT NULL REFERENCES things (id) ON DELETE CASCADE)`)},
}}

// The same owners' migrations run once on either dialect, in order across
// owners; statements with "?" work on both; unique errors are recognised.
func TestOpen_Dialects(t *testing.T) {
	ctx := context.Background()
	for name, url := range backends(t) {
		t.Run(name, func(t *testing.T) {
			for range 2 {
				db, err := sqldb.Open(ctx, url, others, things)
				if err != nil {
					t.Fatalf("open: %v", err)
				}
				if string(db.Dialect()) != name {
					t.Errorf("dialect %s", db.Dialect())
				}
				db.Close()
			}
			db, err := sqldb.Open(ctx, url, things, others)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			var n int
			if err := db.Read().QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations`).Scan(&n); err != nil || n != 3 {
				t.Fatalf("%d migrations recorded, %v; want 3", n, err)
			}
			err = db.InTx(ctx, func(tx *sql.Tx) error {
				_, err := tx.ExecContext(ctx, `INSERT INTO things (name, note) VALUES (?, ?)`, "second", "what? 'a?' -- ?")
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			var note string
			if err := db.Read().QueryRowContext(ctx, `SELECT note FROM things WHERE name = ? AND note <> '?'`, "second").Scan(&note); err != nil || note != "what? 'a?' -- ?" {
				t.Fatalf("note %q, %v", note, err)
			}
			_, err = db.Write().ExecContext(ctx, `INSERT INTO things (name) VALUES (?)`, "first")
			if !sqldb.IsUnique(err) {
				t.Errorf("duplicate name: %v, want a unique violation", err)
			}
			if sqldb.IsUnique(errors.New("UNIQUE constraint failed")) {
				t.Error("plain text taken for a unique violation")
			}
		})
	}
}

// Nodes starting at once against one PostgreSQL migrate once.
func TestOpen_ConcurrentPostgres(t *testing.T) {
	ctx := context.Background()
	url := pgtest.Shared(t).Database(t)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			db, err := sqldb.Open(ctx, url, things, others)
			if err == nil {
				db.Close()
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

func TestOpen_Refuses(t *testing.T) {
	ctx := context.Background()
	noTwin := sqldb.Schema{Owner: "lonely", Min: 20, Max: 29, FS: fstest.MapFS{"0020_x.sql": {Data: []byte(`SELECT 1`)}}}
	if _, err := sqldb.Open(ctx, pgtest.Shared(t).Database(t), things, noTwin); !errors.Is(err, sqldb.ErrNoPostgres) {
		t.Errorf("owner without PostgreSQL twins: %v, want ErrNoPostgres", err)
	}
	outside := sqldb.Schema{Owner: "out", Min: 20, Max: 29, FS: fstest.MapFS{"0030_x.sql": {Data: []byte(`SELECT 1`)}}}
	if _, err := sqldb.Open(ctx, filepath.Join(t.TempDir(), "x.db"), outside); err == nil {
		t.Error("a migration outside its owner's range ran")
	}
	overlap := sqldb.Schema{Owner: "overlap", Min: 5, Max: 12, FS: fstest.MapFS{}}
	if _, err := sqldb.Open(ctx, filepath.Join(t.TempDir(), "x.db"), things, overlap); err == nil {
		t.Error("overlapping ranges accepted")
	}
	second := sqldb.Schema{Owner: "second", Min: 40, Max: 49, FS: fstest.MapFS{}}.Also(15, 16)
	if _, err := sqldb.Open(ctx, filepath.Join(t.TempDir(), "x.db"), others, second); err == nil {
		t.Error("a second range overlapping another owner's accepted")
	}
}

// An owner whose range is full goes on in a second one.
func TestOpen_SecondRange(t *testing.T) {
	more := sqldb.Schema{Owner: "more", Min: 20, Max: 21, FS: fstest.MapFS{
		"0020_a.sql": {Data: []byte(`CREATE TABLE more_a (x INTEGER)`)},
		"0080_b.sql": {Data: []byte(`CREATE TABLE more_b (x INTEGER)`)},
	}}
	if _, err := sqldb.Open(context.Background(), filepath.Join(t.TempDir(), "x.db"), more); err == nil {
		t.Fatal("0080 outside the range 20-21 accepted")
	}
	db, err := sqldb.Open(context.Background(), filepath.Join(t.TempDir(), "x.db"), more.Also(80, 89))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Write().Exec(`INSERT INTO more_b (x) VALUES (1)`); err != nil {
		t.Errorf("the second range's migration did not run: %v", err)
	}
}

func TestRebind(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"none", `SELECT 1`, `SELECT 1`},
		{"plain", `SELECT a FROM t WHERE b = ? AND c IN (?, ?)`, `SELECT a FROM t WHERE b = $1 AND c IN ($2, $3)`},
		{"string", `SELECT '?', 'it''s ?', ?`, `SELECT '?', 'it''s ?', $1`},
		{"identifier", `SELECT "a?b" FROM t WHERE x = ?`, `SELECT "a?b" FROM t WHERE x = $1`},
		{"line comment", "SELECT ? -- what?\n, ?", "SELECT $1 -- what?\n, $2"},
		{"block comment", `SELECT /* ? */ ?`, `SELECT /* ? */ $1`},
		{"dollar quoted", `DO $$ SELECT '?' $$; SELECT ?`, `DO $$ SELECT '?' $$; SELECT $1`},
		{"tagged dollar", `SELECT $x$ ? $x$, ?`, `SELECT $x$ ? $x$, $1`},
		{"unterminated", `SELECT 'abc ?`, `SELECT 'abc ?`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := sqldb.Rebind(tt.in); got != tt.want {
				t.Errorf("Rebind(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// A cluster-wide job runs on one node at a time on PostgreSQL; the other
// skips it while it runs and takes it afterwards. On SQLite it just runs.
func TestOnce(t *testing.T) {
	ctx := context.Background()
	url := pgtest.Shared(t).Database(t)
	a, err := sqldb.Open(ctx, url, things, others)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := sqldb.Open(ctx, url, things, others)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	running, release := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		ran, err := a.Once(ctx, "retention", func(context.Context) error {
			close(running)
			<-release
			return nil
		})
		if err == nil && !ran {
			err = errors.New("node a did not run the job")
		}
		done <- err
	}()
	<-running
	if ran, err := b.Once(ctx, "retention", func(context.Context) error { return nil }); err != nil || ran {
		t.Errorf("node b while a runs: ran %v, %v", ran, err)
	}
	if ran, err := b.Once(ctx, "dictionaries", func(context.Context) error { return nil }); err != nil || !ran {
		t.Errorf("another job on node b: ran %v, %v", ran, err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	want := errors.New("sweep failed")
	if ran, err := b.Once(ctx, "retention", func(context.Context) error { return want }); !ran || !errors.Is(err, want) {
		t.Errorf("node b after a: ran %v, %v", ran, err)
	}

	lite, err := sqldb.Open(ctx, filepath.Join(t.TempDir(), "x.db"), things, others)
	if err != nil {
		t.Fatal(err)
	}
	defer lite.Close()
	if ran, err := lite.Once(ctx, "retention", func(context.Context) error { return nil }); !ran || err != nil {
		t.Errorf("SQLite: ran %v, %v", ran, err)
	}
}

// Deadlocks and serialization failures (PostgreSQL) and busy or locked
// databases (SQLite) are worth a second try; other errors are not.
func TestIsTransient(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{&pgconn.PgError{Code: "40P01"}, true},
		{fmt.Errorf("upsert session: %w", &pgconn.PgError{Code: "40001"}), true},
		{&pgconn.PgError{Code: "23505"}, false},
		{sqlite3.Error{Code: sqlite3.ErrBusy}, true},
		{sqlite3.Error{Code: sqlite3.ErrLocked}, true},
		{sqlite3.Error{Code: sqlite3.ErrConstraint}, false},
		{errors.New("disk full"), false},
		{nil, false},
	} {
		if got := sqldb.IsTransient(tc.err); got != tc.want {
			t.Errorf("IsTransient(%v) = %v", tc.err, got)
		}
	}
}

// noteBuffer inserts its names at Flush and counts the commits and
// rollbacks it is told of.
type noteBuffer struct {
	names      []string
	committed  int
	rolledBack int
}

func (b *noteBuffer) Flush(ctx context.Context, tx *sqldb.Tx) error {
	for _, n := range b.names {
		if _, err := tx.SQL().ExecContext(ctx, `INSERT INTO things (name) VALUES (?)`, n); err != nil {
			return err
		}
	}
	b.names = nil
	return nil
}

func (b *noteBuffer) Committed()  { b.committed++ }
func (b *noteBuffer) RolledBack() { b.rolledBack++ }

// A participant's buffer is one per key and transaction, written at Flush
// (again only with what came after), and told of the commit; a transaction
// rolled back writes nothing and tells of the rollback, also when the
// failure is the buffer's own flush.
func TestTx_Buffer(t *testing.T) {
	ctx := context.Background()
	for name, url := range backends(t) {
		t.Run(name, func(t *testing.T) {
			db, err := sqldb.Open(ctx, url, things)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			var made []*noteBuffer
			buf := func(tx *sqldb.Tx) *noteBuffer {
				return tx.Buffer("notes", func() sqldb.Buffer {
					b := &noteBuffer{}
					made = append(made, b)
					return b
				}).(*noteBuffer)
			}
			err = db.InSharedTx(ctx, func(tx *sqldb.Tx) error {
				buf(tx).names = append(buf(tx).names, "a")
				if err := tx.Flush(ctx); err != nil {
					return err
				}
				buf(tx).names = append(buf(tx).names, "b")
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(made) != 1 || made[0].committed != 1 || made[0].rolledBack != 0 {
				t.Fatalf("%d buffers made, committed %d times, rolled back %d; want one, told of the commit once", len(made), made[0].committed, made[0].rolledBack)
			}
			boom := errors.New("boom")
			err = db.InSharedTx(ctx, func(tx *sqldb.Tx) error {
				buf(tx).names = append(buf(tx).names, "c")
				return boom
			})
			if !errors.Is(err, boom) || len(made) != 2 || made[1].committed != 0 || made[1].rolledBack != 1 {
				t.Fatalf("rolled back: err %v, %d buffers, committed %d, rolled back %d", err, len(made), made[1].committed, made[1].rolledBack)
			}
			// A flush that fails (a name too many: things.name is unique)
			// rolls back too.
			err = db.InSharedTx(ctx, func(tx *sqldb.Tx) error {
				buf(tx).names = append(buf(tx).names, "a")
				return nil
			})
			if !sqldb.IsUnique(err) || len(made) != 3 || made[2].committed != 0 || made[2].rolledBack != 1 {
				t.Fatalf("flush failed: err %v, %d buffers, committed %d, rolled back %d", err, len(made), made[2].committed, made[2].rolledBack)
			}
			rows, err := db.Read().QueryContext(ctx, `SELECT name FROM things ORDER BY id`)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for rows.Next() {
				var n string
				if err := rows.Scan(&n); err != nil {
					t.Fatal(err)
				}
				names = append(names, n)
			}
			if err := errors.Join(rows.Err(), rows.Close()); err != nil {
				t.Fatal(err)
			}
			got := strings.Join(names, ",")
			if got != "first,a,b" {
				t.Errorf("things %q, want first,a,b (each once, c rolled back)", got)
			}
		})
	}
}

// rankedBuffer logs its flushes; fill, when set, is a buffer it adds to
// while it flushes.
type rankedBuffer struct {
	name string
	rank int
	log  *[]string
	fill func()
	n    int
}

func (b *rankedBuffer) FlushRank() int { return b.rank }

func (b *rankedBuffer) Flush(ctx context.Context, tx *sqldb.Tx) error {
	if b.n == 0 {
		return nil
	}
	b.n = 0
	*b.log = append(*b.log, b.name)
	if b.fill != nil {
		b.fill()
	}
	return nil
}

// Buffers flush by rank, then in the order they were made; one a flush
// fills (or makes) with a later rank is flushed after it.
func TestTx_FlushRanks(t *testing.T) {
	var log []string
	tx := sqldb.WrapTx(nil)
	mk := func(name string, rank int) *rankedBuffer {
		return tx.Buffer(name, func() sqldb.Buffer { return &rankedBuffer{name: name, rank: rank, log: &log} }).(*rankedBuffer)
	}
	late := mk("sessions", sqldb.RankSessionRows)
	mk("journey", sqldb.RankClusterLock).fill = func() { late.n++; mk("urls", sqldb.RankLast).n++ }
	mk("journey", sqldb.RankClusterLock).n++
	mk("heat", sqldb.RankSharedRows).n++
	mk("other", sqldb.RankSharedRows).n++
	if err := tx.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(log, " "), "heat other journey sessions urls"; got != want {
		t.Errorf("flushed %q, want %q", got, want)
	}
}

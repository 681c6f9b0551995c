package sqldb

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// openPostgres opens a PostgreSQL index: a pool of up to 16 connections for
// writes (PostgreSQL takes concurrent writers) and one of up to 8 for reads
// whose statements are always planned for their arguments
// (plan_cache_mode=force_custom_plan): pgx prepares every statement, and
// after five runs PostgreSQL may settle on a generic plan, blind to the
// arguments that decide a read's plan (a list of ids, a pattern, a time
// range): the sessions list filtered by a page pattern matching few page
// views took 140-150 ms on every sixth run instead of 9 ms. Writes keep
// their cached plans (forcing custom plans there made PostgreSQL ingest
// slower: facts 0.6 -> 0.9-1.2 ms of CPU per batch). Statements are
// written with "?" placeholders like SQLite's and rebound to $1, $2… on
// their way in.
func openPostgres(ctx context.Context, url string, schemas []Schema) (*DB, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("index url: %w", err)
	}
	write := sql.OpenDB(rebindConnector{stdlib.GetConnector(*cfg)})
	write.SetMaxOpenConns(16)
	write.SetMaxIdleConns(16)
	rcfg := cfg.Copy()
	if _, ok := rcfg.RuntimeParams["plan_cache_mode"]; !ok {
		rcfg.RuntimeParams["plan_cache_mode"] = "force_custom_plan"
	}
	read := sql.OpenDB(rebindConnector{stdlib.GetConnector(*rcfg)})
	read.SetMaxOpenConns(8)
	read.SetMaxIdleConns(8)
	db := &DB{read: read, write: write, dialect: Postgres}
	if err := db.Ping(ctx); err != nil {
		db.Close()
		return nil, err
	}
	if err := db.migrate(ctx, schemas); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// migrationLock is the advisory lock key of schema migrations.
const migrationLock = 0x7472616d // "tram"

// lockMigrations holds PostgreSQL's advisory lock on migrations until the
// returned func is called.
func (db *DB) lockMigrations(ctx context.Context) (func(), error) {
	conn, err := db.write.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("lock migrations: %w", err)
	}
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock(?)`, migrationLock); err != nil {
		conn.Close()
		return nil, fmt.Errorf("lock migrations: %w", err)
	}
	return func() {
		_, _ = conn.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock(?)`, migrationLock)
		conn.Close()
	}, nil
}

// rebindConnector hands out connections that rebind placeholders.
type rebindConnector struct{ driver.Connector }

func (c rebindConnector) Connect(ctx context.Context) (driver.Conn, error) {
	cn, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return &rebindConn{cn.(*stdlib.Conn)}, nil
}

// rebindConn is pgx's connection with "?" placeholders rebound; every other
// method (transactions, pings, value checks, session resets) is pgx's own.
type rebindConn struct{ *stdlib.Conn }

func (c *rebindConn) Prepare(query string) (driver.Stmt, error) {
	return c.Conn.Prepare(Rebind(query))
}

func (c *rebindConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	return c.Conn.PrepareContext(ctx, Rebind(query))
}

func (c *rebindConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	return c.Conn.ExecContext(ctx, Rebind(query), args)
}

func (c *rebindConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	return c.Conn.QueryContext(ctx, Rebind(query), args)
}

// Rebind turns the "?" placeholders of query into PostgreSQL's $1, $2, …,
// leaving string literals, quoted identifiers, comments and dollar-quoted
// bodies alone. (Owners do not use PostgreSQL's jsonb "?" operators, which
// this would take for placeholders.)
func Rebind(query string) string {
	if strings.IndexByte(query, '?') < 0 {
		return query
	}
	var b strings.Builder
	b.Grow(len(query) + 16)
	n := 0
	for i := 0; i < len(query); i++ {
		c := query[i]
		switch {
		case c == '\'' || c == '"':
			j := i + 1
			for j < len(query) {
				if query[j] == c {
					if j+1 < len(query) && query[j+1] == c { // doubled quote
						j += 2
						continue
					}
					break
				}
				j++
			}
			end := min(j+1, len(query))
			b.WriteString(query[i:end])
			i = end - 1
		case c == '-' && i+1 < len(query) && query[i+1] == '-':
			j := strings.IndexByte(query[i:], '\n')
			if j < 0 {
				j = len(query) - i
			}
			b.WriteString(query[i : i+j])
			i += j - 1
		case c == '/' && i+1 < len(query) && query[i+1] == '*':
			j := strings.Index(query[i+2:], "*/")
			end := len(query)
			if j >= 0 {
				end = i + 2 + j + 2
			}
			b.WriteString(query[i:end])
			i = end - 1
		case c == '$' && dollarTag(query[i:]) != "":
			tag := dollarTag(query[i:])
			j := strings.Index(query[i+len(tag):], tag)
			end := len(query)
			if j >= 0 {
				end = i + len(tag) + j + len(tag)
			}
			b.WriteString(query[i:end])
			i = end - 1
		case c == '?':
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// dollarTag returns the opening "$tag$" of a dollar-quoted string at the
// start of s, or "".
func dollarTag(s string) string {
	for i := 1; i < len(s); i++ {
		c := s[i]
		if c == '$' {
			return s[:i+1]
		}
		if !(c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || i > 1 && '0' <= c && c <= '9') {
			return ""
		}
	}
	return ""
}

// Once runs fn unless another process runs the job of that name at the
// moment, and tells whether it ran it: the cluster-wide jobs (retention,
// dictionary training) run on one node at a time. On PostgreSQL a session
// advisory lock named after job is held for the run, on its own
// connection; it goes with the connection if the process dies. SQLite is
// one process's file: fn always runs.
func (db *DB) Once(ctx context.Context, job string, fn func(context.Context) error) (bool, error) {
	if db.dialect != Postgres {
		return true, fn(ctx)
	}
	h := fnv.New64a()
	h.Write([]byte("trailmap job " + job))
	key := int64(h.Sum64() >> 1)
	conn, err := db.write.Conn(ctx)
	if err != nil {
		return false, fmt.Errorf("job %s: %w", job, err)
	}
	defer conn.Close()
	var got bool
	if err := conn.QueryRowContext(ctx, `SELECT pg_try_advisory_lock(?)`, key).Scan(&got); err != nil {
		return false, fmt.Errorf("job %s: lock: %w", job, err)
	}
	if !got {
		return false, nil
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock(?)`, key)
	return true, fn(ctx)
}

// Package pgtest runs a real PostgreSQL server for tests.
//
// The server is Debian's `postgresql` package, which `make test` installs
// (initdb and postgres from /usr/lib/postgresql/<version>/bin, or from the
// directory in $PG_BIN). A missing server fails the test; it never skips, so
// a green run always means the PostgreSQL code was exercised.
//
// One server per test binary, started on first use by Shared and stopped by
// Main after the last test; each test gets a database of its own:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
//
//	func TestSomething(t *testing.T) {
//		url := pgtest.Shared(t).Database(t) // postgres://… of a fresh database
//		...
//	}
//
// The server listens on a free loopback port, keeps its data in a temporary
// directory removed when it stops, runs as an unprivileged OS user when the
// tests run as root (initdb refuses root), and on Linux dies with the test
// binary even when that is killed.
package pgtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
)

const readyTimeout = 60 * time.Second

// Server is a running PostgreSQL.
type Server struct {
	Port  int
	dir   string
	keep  bool // the directory outlives the server (StartIn)
	cmd   *exec.Cmd
	admin *sql.DB
	log   bytes.Buffer
	exit  chan struct{}
	// statements: pg_stat_statements is loaded (TRAILMAP_PG_STATEMENTS).
	statements bool
}

var (
	sharedMu  sync.Mutex
	shared    *Server
	sharedErr error
)

// Main runs the tests and stops the shared server after them.
func Main(m *testing.M) { os.Exit(Tests(m).Run()) }

// Tests wraps m so that running it stops the shared server after the tests,
// for a TestMain that hands m to another harness's Main as well:
// miniotest.Main(pgtest.Tests(m)).
func Tests(m interface{ Run() int }) interface{ Run() int } { return runner{m} }

type runner struct{ m interface{ Run() int } }

func (r runner) Run() int {
	code := r.m.Run()
	sharedMu.Lock()
	if shared != nil {
		shared.Stop()
		shared = nil
	}
	sharedMu.Unlock()
	return code
}

// Shared returns the test binary's server, starting it on first use. It
// fails t when PostgreSQL cannot be started.
func Shared(t testing.TB) *Server {
	t.Helper()
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if shared == nil && sharedErr == nil {
		shared, sharedErr = Start(context.Background())
	}
	if sharedErr != nil {
		t.Fatalf("pgtest: %v", sharedErr)
	}
	return shared
}

// SharedIn is Shared with the server's cluster kept in dir (see StartIn)
// when this call starts it.
func SharedIn(t testing.TB, dir string) *Server {
	t.Helper()
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if shared == nil && sharedErr == nil {
		shared, sharedErr = StartIn(context.Background(), dir)
	}
	if sharedErr != nil {
		t.Fatalf("pgtest: %v", sharedErr)
	}
	return shared
}

// BinDir finds the directory holding initdb and postgres: $PG_BIN, else
// the newest /usr/lib/postgresql/<version>/bin.
func BinDir() (string, error) {
	if d := os.Getenv("PG_BIN"); d != "" {
		return d, nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool {
		vi, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[i])))
		vj, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[j])))
		return vi < vj
	})
	for i := len(dirs) - 1; i >= 0; i-- {
		if _, err := os.Stat(filepath.Join(dirs[i], "initdb")); err == nil {
			return dirs[i], nil
		}
	}
	return "", errors.New("PostgreSQL not found in /usr/lib/postgresql/*/bin (run `make test`, which installs Debian's postgresql, or set PG_BIN)")
}

// Start initialises a cluster in a temporary directory and starts it on a
// free loopback port.
func Start(ctx context.Context) (*Server, error) {
	dir, err := os.MkdirTemp("", "trailmap-pg-")
	if err != nil {
		return nil, fmt.Errorf("temp dir: %w", err)
	}
	return start(ctx, dir, false)
}

// StartIn starts a server on the cluster in dir, initialising it first if
// dir holds none, and keeps dir when it stops: for benchmarks whose data
// takes long to generate (see Named). The cluster runs without
// fsync, so a server killed while writing may leave it unusable: remove
// dir then.
func StartIn(ctx context.Context, dir string) (*Server, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	return start(ctx, dir, true)
}

func start(ctx context.Context, dir string, keep bool) (*Server, error) {
	removeDir := func() {
		if !keep {
			os.RemoveAll(dir)
		}
	}
	bin, err := BinDir()
	if err != nil {
		removeDir()
		return nil, err
	}
	cred, err := credential(dir)
	if err != nil {
		removeDir()
		return nil, err
	}
	data := filepath.Join(dir, "data")
	if _, err := os.Stat(filepath.Join(data, "PG_VERSION")); err != nil {
		initdb := exec.CommandContext(ctx, filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres",
			"--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync")
		initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGKILL}
		if out, err := initdb.CombinedOutput(); err != nil {
			removeDir()
			return nil, fmt.Errorf("initdb: %w: %s", err, out)
		}
	}
	port, err := freePort()
	if err != nil {
		removeDir()
		return nil, err
	}
	s := &Server{Port: port, dir: dir, keep: keep, exit: make(chan struct{})}
	// Durability settings are off: a test database is thrown away.
	s.cmd = exec.Command(filepath.Join(bin, "postgres"), "-D", data,
		"-c", "listen_addresses=127.0.0.1", "-c", "port="+strconv.Itoa(port),
		"-c", "unix_socket_directories="+dir, "-c", "fsync=off",
		"-c", "synchronous_commit=off", "-c", "full_page_writes=off",
		"-c", "max_connections=200", "-c", "shared_buffers=64MB")
	if os.Getenv("TRAILMAP_PG_STATEMENTS") != "" {
		s.statements = true
		s.cmd.Args = append(s.cmd.Args, "-c", "shared_preload_libraries=pg_stat_statements")
	}
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGKILL}
	s.cmd.Stdout, s.cmd.Stderr = &s.log, &s.log
	if err := s.cmd.Start(); err != nil {
		removeDir()
		return nil, fmt.Errorf("start postgres: %w", err)
	}
	go func() { s.cmd.Wait(); close(s.exit) }()

	admin, err := sql.Open("pgx", s.url("postgres"))
	if err != nil {
		s.Stop()
		return nil, fmt.Errorf("open admin connection: %w", err)
	}
	s.admin = admin
	deadline := time.Now().Add(readyTimeout)
	for {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err = admin.PingContext(pctx)
		cancel()
		if err == nil {
			return s, nil
		}
		select {
		case <-s.exit:
			log := s.log.String()
			s.Stop()
			return nil, fmt.Errorf("postgres exited at start: %s", log)
		default:
		}
		if time.Now().After(deadline) {
			log := s.log.String()
			s.Stop()
			return nil, fmt.Errorf("postgres not ready after %s: %w: %s", readyTimeout, err, log)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// URL is the connection URL of database name on s.
func (s *Server) url(name string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", s.Port, name)
}

// Database creates a fresh, empty database, dropped when t ends, and
// returns its postgres:// URL.
func (s *Server) Database(t testing.TB) string {
	t.Helper()
	name := s.create(t, "t_")
	t.Cleanup(func() {
		// WITH (FORCE) ends connections a test left open.
		if _, err := s.admin.ExecContext(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("pgtest: drop database: %v", err)
		}
	})
	return s.url(name)
}

// SharedDatabase creates a fresh, empty database kept until the server
// stops (for data that several tests or benchmarks of one binary share),
// and returns its postgres:// URL.
func (s *Server) SharedDatabase(t testing.TB) string {
	t.Helper()
	return s.url(s.create(t, "k_"))
}

// Named returns the URL of database name, and whether it exists; Rename
// renames one (a benchmark generates its data under a temporary name and
// renames it when complete, so an interrupted run leaves no half database
// under the final name).
func (s *Server) Named(ctx context.Context, name string) (url string, exists bool, err error) {
	err = s.admin.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists)
	return s.url(name), exists, err
}

// Create creates database name (dropping one left by an interrupted run)
// and returns its URL.
func (s *Server) Create(ctx context.Context, name string) (string, error) {
	if _, err := s.admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
		return "", err
	}
	if _, err := s.admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		return "", err
	}
	return s.url(name), nil
}

// Rename renames database from to to.
func (s *Server) Rename(ctx context.Context, from, to string) error {
	_, err := s.admin.ExecContext(ctx, "ALTER DATABASE "+from+" RENAME TO "+to)
	return err
}

// create makes a database named prefix and random hex, and returns its name.
func (s *Server) create(t testing.TB, prefix string) string {
	t.Helper()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := prefix + hex.EncodeToString(b)
	if _, err := s.admin.ExecContext(context.Background(), "CREATE DATABASE "+name); err != nil {
		t.Fatalf("pgtest: create database: %v", err)
	}
	return name
}

// Stop stops the server and removes its directory.
func (s *Server) Stop() {
	if s.admin != nil {
		s.admin.Close()
	}
	if s.cmd != nil && s.cmd.Process != nil {
		// SIGINT is PostgreSQL's fast shutdown.
		_ = s.cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-s.exit:
		case <-time.After(10 * time.Second):
			_ = s.cmd.Process.Kill()
			<-s.exit
		}
	}
	if !s.keep {
		os.RemoveAll(s.dir)
	}
}

// credential is the unprivileged user the server runs as when the tests run
// as root (nil otherwise); dir is handed to that user.
func credential(dir string) (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("nobody")
	if err != nil {
		return nil, fmt.Errorf("running as root and no user nobody to run PostgreSQL as: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if err := os.Chown(dir, uid, gid); err != nil {
		return nil, fmt.Errorf("hand %s to nobody: %w", dir, err)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Package miniotest runs a real MinIO server for tests.
//
// The server is the pinned MinIO build that `make test` installs into
// $(go env GOPATH)/bin/minio (or wherever TRAILMAP_MINIO_BIN or MINIO_BIN
// point). A missing binary fails the test; it never skips, so a green run
// always means the S3 code was exercised.
//
// Start(t) gives one test a server of its own, stopped in t.Cleanup; it costs
// about a second, so keep it for tests that stop or disturb the server
// (Down takes it away, keeping its data; Up brings it back on the same
// address).
// Everything else shares one server per test binary, started on first use by
// Shared and stopped by Main after the last test, each test in a fresh
// bucket:
//
//	func TestMain(m *testing.M) { miniotest.Main(m) }
//
//	func TestSomething(t *testing.T) {
//		cfg := miniotest.Shared(t).Config(t) // a bucket name no other test uses
//		client, err := s3.New(t.Context(), cfg) // creates the bucket
//		...
//	}
//
// Servers listen on free loopback ports only, keep their data in a temporary
// directory that is removed when they stop, and on Linux die with the test
// binary even when it is killed.
package miniotest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/trailmap/trailmap/storage/s3"
)

// The MinIO build `make test` installs; named in failure messages.
const minioModule = "github.com/minio/minio@v0.0.0-20260212201848-7aac2a2c5b7c"

// Credentials of every test server.
const (
	AccessKey = "trailmap-test"
	SecretKey = "trailmap-test-secret"
)

const (
	readyTimeout = 60 * time.Second // first start on a busy 2-core box can be slow
	stopTimeout  = 10 * time.Second
)

// Server is a running MinIO server.
type Server struct {
	Endpoint  string // "127.0.0.1:port", for s3.Config.Endpoint
	AccessKey string
	SecretKey string

	bin     string
	console string // the console's address, kept for Up
	dir     string
	log     *tailBuffer

	mu      sync.Mutex
	cmd     *exec.Cmd
	done    chan struct{} // closed when the current process has exited
	stopped bool

	stopOnce sync.Once
}

// Start starts a server for t alone and stops it (and removes its data) when
// t ends. It fails t if MinIO is not installed or does not become ready.
func Start(t testing.TB) *Server {
	t.Helper()
	s, err := start()
	if err != nil {
		t.Fatalf("miniotest: %v", err)
	}
	t.Cleanup(s.Stop)
	return s
}

// shared is the server of one test binary; see Main and Shared. This is
// the package's only global: TestMain is the only hook that outlives
// every test of a binary.
var shared struct {
	mu     sync.Mutex
	inMain bool
	srv    *Server
	err    error
}

// Main runs the tests of m, then stops the shared server if a test started
// one, and exits with the tests' exit code. Call it from TestMain.
func Main(m interface{ Run() int }) {
	shared.mu.Lock()
	shared.inMain = true
	shared.mu.Unlock()

	code := m.Run()

	shared.mu.Lock()
	if shared.srv != nil {
		shared.srv.Stop()
	}
	shared.mu.Unlock()
	os.Exit(code)
}

// Shared returns the test binary's server, starting it on first use. It
// needs TestMain to call Main, which stops the server at the end, and fails
// t otherwise. If the server could not start, every caller fails.
func Shared(t testing.TB) *Server {
	t.Helper()
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if !shared.inMain {
		t.Fatal("miniotest: Shared needs TestMain to call miniotest.Main(m)")
	}
	if shared.srv == nil && shared.err == nil {
		shared.srv, shared.err = start()
	}
	if shared.err != nil {
		t.Fatalf("miniotest: %v", shared.err)
	}
	return shared.srv
}

// Config returns an s3.Config for this server with a bucket name no other
// test uses. The bucket does not exist yet: s3.New creates it.
func (s *Server) Config(t testing.TB) s3.Config {
	return s3.Config{
		Endpoint:  s.Endpoint,
		Bucket:    bucketName(t.Name()),
		AccessKey: s.AccessKey,
		SecretKey: s.SecretKey,
	}
}

// bucketName makes a valid, unique bucket name that still shows which test
// made it: "tm-teststore-putget-1f2e3d4c5b6a".
func bucketName(testName string) string {
	var b strings.Builder
	dash := true
	for _, r := range strings.ToLower(testName) {
		if b.Len() >= 40 {
			break
		}
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
			dash = false
		} else if !dash {
			b.WriteByte('-')
			dash = true
		}
	}
	var rnd [6]byte
	rand.Read(rnd[:])
	name := "tm-"
	if n := strings.Trim(b.String(), "-"); n != "" {
		name += n + "-"
	}
	return name + hex.EncodeToString(rnd[:])
}

// Binary returns the path of the MinIO binary tests run: TRAILMAP_MINIO_BIN
// or MINIO_BIN (which `make test` sets), else $(go env GOPATH)/bin/minio.
func Binary() string {
	for _, env := range []string{"TRAILMAP_MINIO_BIN", "MINIO_BIN"} {
		if p := os.Getenv(env); p != "" {
			return p
		}
	}
	gopath := ""
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		gopath, _, _ = strings.Cut(strings.TrimSpace(string(out)), string(os.PathListSeparator))
	}
	if gopath == "" {
		home, _ := os.UserHomeDir()
		gopath = filepath.Join(home, "go")
	}
	return filepath.Join(gopath, "bin", "minio")
}

func start() (*Server, error) {
	bin := Binary()
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("MinIO binary not found at %s (%v): run `make test`, which installs it "+
			"(go install %s), or set TRAILMAP_MINIO_BIN", bin, err, minioModule)
	}
	var err error
	// Ports are picked free and then released, so another process may take
	// one before MinIO binds it; try again with new ones.
	for range 3 {
		var s *Server
		s, err = launch(bin)
		if err == nil {
			return s, nil
		}
		if !errors.Is(err, errExited) {
			return nil, err
		}
	}
	return nil, err
}

var errExited = errors.New("minio exited before it was ready")

func launch(bin string) (*Server, error) {
	api, err := freeAddr()
	if err != nil {
		return nil, err
	}
	console, err := freeAddr()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "trailmap-minio-*")
	if err != nil {
		return nil, err
	}
	s := &Server{
		Endpoint:  api,
		AccessKey: AccessKey,
		SecretKey: SecretKey,
		bin:       bin,
		console:   console,
		dir:       dir,
		log:       &tailBuffer{max: 64 << 10},
	}
	if err := s.run(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if err := s.waitReady(); err != nil {
		s.Stop()
		return nil, fmt.Errorf("%w\n--- minio output ---\n%s", err, s.log.String())
	}
	return s, nil
}

// run starts the MinIO process on s's addresses and data.
func (s *Server) run() error {
	cmd := exec.Command(s.bin, "server", filepath.Join(s.dir, "data"),
		"--address", s.Endpoint, "--console-address", s.console, "--quiet")
	cmd.Env = append(withoutMinIOEnv(os.Environ()),
		"MINIO_ROOT_USER="+AccessKey,
		"MINIO_ROOT_PASSWORD="+SecretKey,
		"MINIO_BROWSER=off",
		"MINIO_UPDATE=off",
		"MINIO_CI_CD=1", // no root-disk or other production checks
	)
	cmd.Stdout = s.log
	cmd.Stderr = s.log
	cmd.SysProcAttr = sysProcAttr()
	done := make(chan struct{})

	// On Linux the child gets SIGKILL when the thread that started it exits
	// (Pdeathsig), so a test binary killed by -timeout leaves no MinIO behind.
	// Pinning this goroutine to its thread until MinIO exits keeps that
	// thread, and so MinIO, alive exactly as long as it should be.
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		cmd.Wait()
		close(done)
	}()
	if err := <-started; err != nil {
		return fmt.Errorf("start minio: %w", err)
	}
	s.mu.Lock()
	s.cmd, s.done = cmd, done
	s.mu.Unlock()
	return nil
}

// proc returns the current process and its done channel.
func (s *Server) proc() (*exec.Cmd, chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cmd, s.done
}

// Down stops the server process (SIGTERM, then SIGKILL after ten seconds)
// and keeps its data, as when the object store goes away for a while:
// requests to Endpoint fail until Up. Only for a server of Start: the shared
// one serves other tests.
func (s *Server) Down(t testing.TB) {
	t.Helper()
	s.mu.Lock()
	stopped := s.stopped
	s.mu.Unlock()
	if stopped {
		t.Fatal("miniotest: Down after Stop")
	}
	s.terminate()
}

// Up starts the server again after Down, on the same address with the same
// data, and waits until it is ready.
func (s *Server) Up(t testing.TB) {
	t.Helper()
	_, done := s.proc()
	select {
	case <-done:
	default:
		t.Fatal("miniotest: Up while the server runs")
	}
	// The old process's port may take a moment to be free for a new listener.
	var err error
	for range 3 {
		if err = s.run(); err != nil {
			break
		}
		if err = s.waitReady(); err == nil {
			return
		}
		s.terminate()
		if !errors.Is(err, errExited) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Fatalf("miniotest: restart: %v\n--- minio output ---\n%s", err, s.log.String())
}

// terminate ends the process and waits for it.
func (s *Server) terminate() {
	cmd, done := s.proc()
	select {
	case <-done:
		return
	default:
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(stopTimeout):
		cmd.Process.Kill()
		<-done
	}
}

// waitReady polls MinIO's cluster health check until it answers 200. The
// readiness check (/minio/health/ready) is not enough: it answers 200 as soon
// as the listener is up, before the object layer and IAM are initialised,
// and requests made then fail with "Server not initialized yet".
func (s *Server) waitReady() error {
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	client := &http.Client{Timeout: 2 * time.Second}
	url := "http://" + s.Endpoint + "/minio/health/cluster"
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	cmd, done := s.proc()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-done:
			return fmt.Errorf("%w (%v)", errExited, cmd.ProcessState)
		case <-ctx.Done():
			return fmt.Errorf("minio at %s not ready after %v", s.Endpoint, readyTimeout)
		case <-tick.C:
		}
	}
}

// Stop sends MinIO SIGTERM, kills it if it has not exited within ten
// seconds, and removes its data. Start and Main call it; call it yourself to
// test what happens when the server goes away. It is safe to call twice.
func (s *Server) Stop() {
	s.stopOnce.Do(func() {
		s.mu.Lock()
		s.stopped = true
		s.mu.Unlock()
		s.terminate()
		os.RemoveAll(s.dir)
	})
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find free port: %w", err)
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// withoutMinIOEnv drops MINIO_* settings of the developer's shell, which
// could point the server at other volumes or turn on features.
func withoutMinIOEnv(env []string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, "MINIO_") {
			out = append(out, kv)
		}
	}
	return out
}

// tailBuffer keeps the last max bytes written to it, for error messages.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf bytes.Buffer
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Write(p)
	if over := b.buf.Len() - b.max; over > 0 {
		b.buf.Next(over)
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

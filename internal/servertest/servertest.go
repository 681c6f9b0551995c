// Package servertest runs the real trailmap binary as a child process on a
// loopback port, for end-to-end, crash and browser tests.
package servertest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/trailmap/trailmap/internal/pgtest"
)

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
)

// Bin returns the trailmap binary: $TRAILMAP_BIN (set by `make test`), or one
// built once per test process.
func Bin(t testing.TB) string {
	t.Helper()
	if b := os.Getenv("TRAILMAP_BIN"); b != "" {
		return b
	}
	buildOnce.Do(func() {
		out, err := exec.Command("go", "env", "GOMOD").Output()
		if err != nil {
			buildErr = fmt.Errorf("go env GOMOD: %w", err)
			return
		}
		root := filepath.Dir(strings.TrimSpace(string(out)))
		dir, err := os.MkdirTemp("", "trailmap-bin-")
		if err != nil {
			buildErr = err
			return
		}
		builtBin = filepath.Join(dir, "trailmap")
		cmd := exec.Command("go", "build", "-o", builtBin, "./cmd/trailmap")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %w\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatalf("build trailmap: %v", buildErr)
	}
	return builtBin
}

// Server is a running `trailmap serve`.
type Server struct {
	URL       string // http://127.0.0.1:port
	Addr      string
	DataDir   string
	WriteKey  string // of project "test"
	ProjectID int64
	Token     string // dashboard API token
	IndexURL  string // the index of the server and its admin commands ("": in DataDir)

	bin  string
	args []string
	mu   sync.Mutex
	cmd  *exec.Cmd
	logs *syncBuffer
	done chan struct{}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Start creates a data dir with project "test" and a token, and starts the
// server with extra flags (e.g. "--s3-endpoint", ...). It is stopped when the
// test ends.
func Start(t testing.TB, extra ...string) *Server {
	t.Helper()
	return StartOn(t, "", extra...)
}

// EachIndex runs fn as the subtests "sqlite" and "postgres" with the index
// URL to start the server on: "" (the data directory's SQLite index) and a
// fresh database of pgtest's shared PostgreSQL (so the test binary's
// TestMain must stop it: pgtest.Main).
func EachIndex(t *testing.T, fn func(t *testing.T, indexURL string)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) { fn(t, "") })
	t.Run("postgres", func(t *testing.T) { fn(t, pgtest.Shared(t).Database(t)) })
}

// StartOn is Start with the index at indexURL (a postgres:// URL, or a
// SQLite path; "" for the data directory's), passed to the server and to
// every admin command as --index-url.
func StartOn(t testing.TB, indexURL string, extra ...string) *Server {
	t.Helper()
	s := &Server{bin: Bin(t), DataDir: t.TempDir(), IndexURL: indexURL, logs: &syncBuffer{}}
	var p struct {
		ID       int64  `json:"id"`
		WriteKey string `json:"write_key"`
	}
	s.admin(t, &p, "project", "create", "test")
	s.WriteKey, s.ProjectID = p.WriteKey, p.ID
	var tok struct {
		Token string `json:"token"`
	}
	s.admin(t, &tok, "token", "create", "test")
	s.Token = tok.Token
	s.launch(t, extra)
	return s
}

// SelfURL, as the value of an extra flag, is replaced by the server's own
// URL (a cluster node's --advertise-url).
const SelfURL = "{self}"

// launch starts s on a free address with the extra flags and stops it when
// the test ends.
func (s *Server) launch(t testing.TB, extra []string) {
	t.Helper()
	s.Addr = FreeAddr(t)
	s.URL = "http://" + s.Addr
	s.args = append([]string{"serve", "--data", s.DataDir, "--addr", s.Addr, "--log-format", "text",
		"--rate-per-ip", "0", "--rate-per-key", "0"}, s.indexArgs()...)
	for _, f := range extra {
		if f == SelfURL {
			f = s.URL
		}
		s.args = append(s.args, f)
	}
	s.start(t)
	t.Cleanup(func() {
		s.Stop(t)
		if dir := os.Getenv("TRAILMAP_SERVER_LOGS"); dir != "" {
			// every server's whole log, passing or not (CI shows a tail)
			name := strings.NewReplacer("/", "_", ":", "_").Replace(t.Name() + "-" + s.Addr)
			if err := os.WriteFile(filepath.Join(dir, name+".log"), []byte(s.logs.String()), 0o644); err != nil {
				t.Logf("server log: %v", err)
			}
		}
		if t.Failed() {
			t.Logf("server logs:\n%s", tail(s.logs.String(), 8000))
		}
	})
}

// JoinOn starts another node of first's cluster: its own data directory
// (write-ahead log), first's index, project and token, and the extra
// flags (first's blob store flags among them, for a shared bucket).
func JoinOn(t testing.TB, first *Server, extra ...string) *Server {
	t.Helper()
	s := &Server{bin: Bin(t), DataDir: t.TempDir(), IndexURL: first.IndexURL, logs: &syncBuffer{},
		WriteKey: first.WriteKey, ProjectID: first.ProjectID, Token: first.Token}
	s.launch(t, extra)
	return s
}

// indexArgs is the --index-url flag of the server's index, if it has one.
func (s *Server) indexArgs() []string {
	if s.IndexURL == "" {
		return nil
	}
	return []string{"--index-url", s.IndexURL}
}

// Admin runs `trailmap <args...> --data DIR [--index-url URL]` and decodes its JSON output into out.
func (s *Server) Admin(t testing.TB, out any, args ...string) {
	t.Helper()
	s.admin(t, out, args...)
}

func (s *Server) admin(t testing.TB, out any, args ...string) {
	t.Helper()
	cmd := exec.Command(s.bin, append(append(args, "--data", s.DataDir), s.indexArgs()...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	b, err := cmd.Output()
	if err != nil {
		t.Fatalf("trailmap %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("trailmap %s: output %q: %v", strings.Join(args, " "), b, err)
		}
	}
}

func (s *Server) start(t testing.TB) {
	t.Helper()
	cmd := exec.Command(s.bin, s.args...)
	cmd.Stdout, cmd.Stderr = s.logs, s.logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("start trailmap: %v", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	s.mu.Lock()
	s.cmd, s.done = cmd, done
	s.mu.Unlock()
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-done:
			t.Fatalf("trailmap exited during start:\n%s", tail(s.logs.String(), 8000))
		default:
		}
		resp, err := http.Get(s.URL + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("trailmap not ready after 60s:\n%s", tail(s.logs.String(), 8000))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Kill ends the server with SIGKILL, as a crash would.
func (s *Server) Kill(t testing.TB) {
	t.Helper()
	s.signal(t, syscall.SIGKILL, 10*time.Second)
}

// Stop ends the server with SIGTERM and waits for its graceful shutdown.
func (s *Server) Stop(t testing.TB) {
	t.Helper()
	s.signal(t, syscall.SIGTERM, 60*time.Second)
}

func (s *Server) signal(t testing.TB, sig syscall.Signal, wait time.Duration) {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	select {
	case <-done:
		return
	default:
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-done:
	case <-time.After(wait):
		_ = cmd.Process.Kill()
		<-done
		t.Errorf("trailmap did not stop within %s after %v", wait, sig)
	}
}

// Resume starts the server again on the same data dir and address after
// Kill.
func (s *Server) Resume(t testing.TB) {
	t.Helper()
	s.start(t)
}

// Restart starts the server again on the same data dir and address.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.Stop(t)
	s.start(t)
}

// PID is the process id of the running server, for tests that disturb the
// process itself (signals, resource limits, /proc).
func (s *Server) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cmd.Process.Pid
}

// CPUSeconds is the CPU time (user and system) the server's process used
// over its whole life, once it has ended (Stop, Kill).
func (s *Server) CPUSeconds() (float64, error) {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.mu.Unlock()
	select {
	case <-done:
	default:
		return 0, errors.New("servertest: the server is still running")
	}
	st := cmd.ProcessState
	return (st.UserTime() + st.SystemTime()).Seconds(), nil
}

// Logs returns what the server has logged so far.
func (s *Server) Logs() string { return s.logs.String() }

// Request makes an authenticated dashboard API request.
func (s *Server) Request(t testing.TB, method, path string, body []byte) *http.Response {
	t.Helper()
	var rd *bytes.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	} else {
		rd = bytes.NewReader(nil)
	}
	req, err := http.NewRequest(method, s.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+s.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return resp
}

// GetJSON GETs an authenticated API path and decodes a 200 answer into out.
func (s *Server) GetJSON(t testing.TB, path string, out any) {
	t.Helper()
	resp := s.Request(t, http.MethodGet, path, nil)
	defer resp.Body.Close()
	var buf bytes.Buffer
	buf.ReadFrom(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, buf.String())
	}
	if err := json.Unmarshal(buf.Bytes(), out); err != nil {
		t.Fatalf("GET %s: %v in %q", path, err, tail(buf.String(), 500))
	}
}

// FreeAddr is a free loopback address (host:port).
func FreeAddr(t testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

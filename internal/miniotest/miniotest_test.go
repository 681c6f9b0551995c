package miniotest

import (
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/trailmap/trailmap/storage/s3"
)

func TestMain(m *testing.M) { Main(m) }

func TestStart(t *testing.T) {
	s := Start(t)
	if !strings.HasPrefix(s.Endpoint, "127.0.0.1:") {
		t.Fatalf("Endpoint = %q, want a loopback address", s.Endpoint)
	}
	resp, err := http.Get("http://" + s.Endpoint + "/minio/health/cluster")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("health = %s", resp.Status)
	}
	if _, err := s3.New(t.Context(), s.Config(t)); err != nil {
		t.Fatalf("s3.New: %v", err)
	}

	s.Stop()
	s.Stop() // twice is fine
	if _, err := os.Stat(s.dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("data dir left behind: %v", err)
	}
	if _, err := http.Get("http://" + s.Endpoint + "/minio/health/live"); err == nil {
		t.Error("server still answers after Stop")
	}
}

// TestDownUp: after Down requests fail; after Up the same server answers
// on the same address with the objects it had.
func TestDownUp(t *testing.T) {
	s := Start(t)
	ctx := t.Context()
	c, err := s3.New(ctx, s.Config(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Put(ctx, "a/b", strings.NewReader("kept"), 4); err != nil {
		t.Fatal(err)
	}
	s.Down(t)
	if err := c.Put(ctx, "a/c", strings.NewReader("lost"), 4); err == nil {
		t.Fatal("Put succeeded while the server was down")
	}
	s.Up(t)
	rc, err := c.Get(ctx, "a/b", 0, -1)
	if err != nil {
		t.Fatalf("Get after Up: %v", err)
	}
	b, _ := io.ReadAll(rc)
	rc.Close()
	if string(b) != "kept" {
		t.Fatalf("Get after Up = %q", b)
	}
	if err := c.Put(ctx, "a/c", strings.NewReader("back"), 4); err != nil {
		t.Fatalf("Put after Up: %v", err)
	}
}

func TestShared(t *testing.T) {
	a, b := Shared(t), Shared(t)
	if a != b {
		t.Fatal("Shared returned two servers")
	}
	ca, cb := a.Config(t), a.Config(t)
	if ca.Bucket == cb.Bucket {
		t.Fatalf("Config gave bucket %q twice", ca.Bucket)
	}
	for _, cfg := range []s3.Config{ca, cb} {
		if _, err := s3.New(t.Context(), cfg); err != nil {
			t.Fatalf("s3.New(%s): %v", cfg.Bucket, err)
		}
	}
}

func TestBucketName(t *testing.T) {
	valid := regexp.MustCompile(`^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$`)
	tests := []struct {
		name     string
		testName string
	}{
		{"plain", "TestClient"},
		{"subtests", "TestClient/PutGet/spaces_and_unicode"},
		{"odd characters", "Test__Ü§/--x--/"},
		{"long", strings.Repeat("TestVeryLongName/", 20)},
		{"empty", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := bucketName(tt.testName)
			if !valid.MatchString(got) || strings.Contains(got, "--") {
				t.Fatalf("bucketName(%q) = %q, not a valid bucket name", tt.testName, got)
			}
			if err := (s3.Config{Endpoint: "x:1", Bucket: got, AccessKey: "a", SecretKey: "s"}).Validate(); err != nil {
				t.Fatalf("bucketName(%q) = %q: %v", tt.testName, got, err)
			}
		})
	}
}

func TestStartFailures(t *testing.T) {
	exits := filepath.Join(t.TempDir(), "minio")
	os.WriteFile(exits, []byte("#!/bin/sh\necho 'no drives found' >&2\nexit 1\n"), 0o755)
	tests := []struct {
		name string
		bin  string
		want []string
	}{
		{"missing binary", filepath.Join(t.TempDir(), "nope"), []string{"not found", "make test", minioModule}},
		{"exits at once", exits, []string{"exited before it was ready", "no drives found"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("TRAILMAP_MINIO_BIN", tt.bin)
			s, err := start()
			if err == nil {
				s.Stop()
				t.Fatal("start succeeded")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

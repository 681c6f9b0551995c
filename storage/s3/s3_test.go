package s3_test

import (
	"bytes"
	"io"
	"strconv"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/trailmap/trailmap/internal/miniotest"
	"github.com/trailmap/trailmap/storage"
	"github.com/trailmap/trailmap/storage/s3"
	"github.com/trailmap/trailmap/storage/storagetest"
)

func TestMain(m *testing.M) { miniotest.Main(m) }

func newClient(t testing.TB) *s3.Client {
	t.Helper()
	c, err := s3.New(t.Context(), miniotest.Shared(t).Config(t))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

func TestClient(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Blobs { return newClient(t) })
}

func TestConfig_Validate(t *testing.T) {
	good := s3.Config{Endpoint: "127.0.0.1:9000", Bucket: "trailmap", AccessKey: "ak", SecretKey: "sk"}
	tests := []struct {
		name    string
		edit    func(*s3.Config)
		wantErr string // substring; "" means valid
	}{
		{name: "good", edit: func(*s3.Config) {}},
		{name: "aws host", edit: func(c *s3.Config) { c.Endpoint = "s3.eu-west-1.amazonaws.com"; c.UseSSL = true }},
		{name: "no endpoint", edit: func(c *s3.Config) { c.Endpoint = "" }, wantErr: "endpoint is required"},
		{name: "endpoint with scheme", edit: func(c *s3.Config) { c.Endpoint = "http://127.0.0.1:9000" }, wantErr: "without a scheme"},
		{name: "endpoint with path", edit: func(c *s3.Config) { c.Endpoint = "minio:9000/bucket" }, wantErr: "without a path"},
		{name: "no bucket", edit: func(c *s3.Config) { c.Bucket = "" }, wantErr: "bucket is required"},
		{name: "bad bucket", edit: func(c *s3.Config) { c.Bucket = "Bad_Bucket" }, wantErr: `bucket "Bad_Bucket"`},
		{name: "no access key", edit: func(c *s3.Config) { c.AccessKey = "" }, wantErr: "access key is required"},
		{name: "no secret key", edit: func(c *s3.Config) { c.SecretKey = "" }, wantErr: "secret key is required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := good
			tt.edit(&cfg)
			err := cfg.Validate()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Validate = %v, want nil", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("Validate = %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
	t.Run("all problems at once", func(t *testing.T) {
		err := s3.Config{}.Validate()
		for _, want := range []string{"endpoint", "bucket", "access key", "secret key"} {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("Validate = %v, want it to mention %s", err, want)
			}
		}
	})
}

// admin is a plain minio-go client for checking and disturbing the server
// behind the Client's back.
func admin(t testing.TB, srv *miniotest.Server) *minio.Client {
	t.Helper()
	mc, err := minio.New(srv.Endpoint, &minio.Options{
		Creds:        credentials.NewStaticV4(srv.AccessKey, srv.SecretKey, ""),
		BucketLookup: minio.BucketLookupPath,
	})
	if err != nil {
		t.Fatal(err)
	}
	return mc
}

func TestNew(t *testing.T) {
	srv := miniotest.Shared(t)
	cfg := srv.Config(t)
	ctx := t.Context()

	t.Run("creates bucket", func(t *testing.T) {
		if _, err := s3.New(ctx, cfg); err != nil {
			t.Fatal(err)
		}
		if ok, err := admin(t, srv).BucketExists(ctx, cfg.Bucket); err != nil || !ok {
			t.Fatalf("bucket not created: %v, %v", ok, err)
		}
	})
	t.Run("existing bucket", func(t *testing.T) {
		c, err := s3.New(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if c.Bucket() != cfg.Bucket {
			t.Fatalf("Bucket = %q, want %q", c.Bucket(), cfg.Bucket)
		}
	})
	t.Run("wrong secret", func(t *testing.T) {
		bad := cfg
		bad.SecretKey = "not-the-secret"
		if _, err := s3.New(ctx, bad); err == nil {
			t.Fatal("New with a wrong secret key succeeded")
		}
	})
	t.Run("invalid config", func(t *testing.T) {
		if _, err := s3.New(ctx, s3.Config{}); err == nil {
			t.Fatal("New with an empty config succeeded")
		}
	})
	t.Run("nobody listening", func(t *testing.T) {
		down := cfg
		down.Endpoint = "127.0.0.1:1"
		if _, err := s3.New(ctx, down); err == nil {
			t.Fatal("New against a closed port succeeded")
		}
	})
}

func TestClient_Ready(t *testing.T) {
	srv := miniotest.Shared(t)
	c := newClient(t)
	ctx := t.Context()
	if err := c.Ready(ctx); err != nil {
		t.Fatalf("Ready: %v", err)
	}
	if err := admin(t, srv).RemoveBucket(ctx, c.Bucket()); err != nil {
		t.Fatal(err)
	}
	err := c.Ready(ctx)
	if err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("Ready after the bucket was removed = %v, want a does-not-exist error", err)
	}
}

// TestClient_Ready_serverDown stops a server of its own.
func TestClient_Ready_serverDown(t *testing.T) {
	srv := miniotest.Start(t)
	c, err := s3.New(t.Context(), srv.Config(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Ready(t.Context()); err != nil {
		t.Fatalf("Ready: %v", err)
	}
	srv.Stop()
	if err := c.Ready(t.Context()); err == nil {
		t.Fatal("Ready succeeded with the server stopped")
	}
}

// TestClient_Put_multipart checks that a large Put really went up in parts,
// so the conformance suite's large objects exercise multipart uploads.
func TestClient_Put_multipart(t *testing.T) {
	srv := miniotest.Shared(t)
	c := newClient(t)
	ctx := t.Context()
	data := bytes.Repeat([]byte("0123456789abcdef"), (20<<20)/16)
	if err := c.Put(ctx, "mp/obj", bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	info, err := admin(t, srv).StatObject(ctx, c.Bucket(), "mp/obj", minio.StatObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// A multipart ETag ends in "-<number of parts>".
	if _, parts, ok := strings.Cut(info.ETag, "-"); !ok || parts != "2" {
		t.Fatalf("ETag = %q, want a 2-part multipart upload", info.ETag)
	}
}

func BenchmarkClient_Put(b *testing.B) {
	for _, size := range []int{64 << 10, 4 << 20} {
		b.Run(sizeName(size), func(b *testing.B) {
			c := newClient(b)
			data := bytes.Repeat([]byte("trailmap"), size/8)
			b.SetBytes(int64(size))
			for i := 0; b.Loop(); i++ {
				if err := c.Put(b.Context(), "bench/"+strconv.Itoa(i%16), bytes.NewReader(data), int64(size)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkClient_Get(b *testing.B) {
	for _, size := range []int{64 << 10, 4 << 20} {
		b.Run(sizeName(size), func(b *testing.B) {
			c := newClient(b)
			data := bytes.Repeat([]byte("trailmap"), size/8)
			if err := c.Put(b.Context(), "bench/obj", bytes.NewReader(data), int64(size)); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(size))
			for b.Loop() {
				rc, err := c.Get(b.Context(), "bench/obj", 0, -1)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := io.Copy(io.Discard, rc); err != nil {
					b.Fatal(err)
				}
				rc.Close()
			}
		})
	}
}

func sizeName(n int) string {
	if n >= 1<<20 {
		return strconv.Itoa(n>>20) + "MiB"
	}
	return strconv.Itoa(n>>10) + "KiB"
}

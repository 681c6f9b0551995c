package index_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/trailmap/trailmap/internal/pgtest"
	"github.com/trailmap/trailmap/storage/index"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func TestOpen_MigratesTwice(t *testing.T) {
	for _, b := range []struct{ name, url string }{
		{"sqlite", filepath.Join(t.TempDir(), "index.db")},
		{"postgres", pgtest.Shared(t).Database(t)},
	} {
		t.Run(b.name, func(t *testing.T) {
			for range 2 {
				db, err := index.Open(context.Background(), b.url)
				if err != nil {
					t.Fatalf("open: %v", err)
				}
				if err := db.Ping(context.Background()); err != nil {
					t.Fatal(err)
				}
				db.Close()
			}
		})
	}
}

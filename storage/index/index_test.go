package index_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/trailmap/trailmap/storage/index"
)

func TestOpen_MigratesTwice(t *testing.T) {
	path := filepath.Join(t.TempDir(), "index.db")
	for range 2 {
		db, err := index.Open(context.Background(), path)
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		if err := db.Ping(context.Background()); err != nil {
			t.Fatal(err)
		}
		db.Close()
	}
}

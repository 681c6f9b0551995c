package main

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/trailmap/trailmap/accounts"
	"github.com/trailmap/trailmap/audit"
	"github.com/trailmap/trailmap/heatmap"
	"github.com/trailmap/trailmap/journey"
	"github.com/trailmap/trailmap/storage/index"
	"github.com/trailmap/trailmap/storage/sqldb"
)

// schemas are every table owner's migrations.
var schemas = []sqldb.Schema{heatmap.Schema, accounts.Schema, journey.Schema, audit.Schema}

// openIndex opens the index at url (empty: dataDir/index.db) with every
// owner's tables migrated.
func openIndex(ctx context.Context, dataDir, url string) (*index.DB, error) {
	if url == "" {
		url = filepath.Join(dataDir, "index.db")
	}
	db, err := index.Open(ctx, url, schemas...)
	if err != nil {
		return nil, fmt.Errorf("open index: %w", err)
	}
	return db, nil
}

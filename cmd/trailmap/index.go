package main

import (
	"context"
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

// openIndex opens the index in dataDir with every owner's tables migrated.
func openIndex(ctx context.Context, dataDir string) (*index.DB, error) {
	return index.Open(ctx, filepath.Join(dataDir, "index.db"), schemas...)
}

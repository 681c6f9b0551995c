package heatmap

import (
	"embed"

	"github.com/trailmap/trailmap/storage/sqldb"
)

//go:embed migrations
var migrations embed.FS

// Schema is the heatmap tables' migrations (0010–0019), for sqldb.Open.
var Schema = sqldb.NewSchema("heatmap", 10, 19, migrations)

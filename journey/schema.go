package journey

import (
	"embed"

	"github.com/trailmap/trailmap/storage/sqldb"
)

//go:embed migrations
var migrations embed.FS

// Schema is the journey tables' migrations (0030–0039), for sqldb.Open.
var Schema = sqldb.NewSchema("journey", 30, 39, migrations)

package heatmap

import (
	"embed"
	"io/fs"

	"github.com/trailmap/trailmap/storage/sqldb"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Schema is the heatmap tables' migrations (0010–0019), for sqldb.Open.
var Schema = sqldb.Schema{Owner: "heatmap", Min: 10, Max: 19, FS: sub(migrations)}

func sub(f embed.FS) fs.FS {
	s, err := fs.Sub(f, "migrations")
	if err != nil {
		panic(err) // the directory is embedded above
	}
	return s
}

package journey

import (
	"embed"
	"io/fs"

	"github.com/trailmap/trailmap/storage/sqldb"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Schema is the journey tables' migrations (0030–0039), for sqldb.Open.
var Schema = sqldb.Schema{Owner: "journey", Min: 30, Max: 39, FS: sub(migrations)}

func sub(f embed.FS) fs.FS {
	s, err := fs.Sub(f, "migrations")
	if err != nil {
		panic(err) // the directory is embedded above
	}
	return s
}

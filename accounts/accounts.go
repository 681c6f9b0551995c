// Package accounts owns the dashboard's people and what they share: users,
// their projects, login sessions, share links and notes on recordings.
package accounts

import (
	"embed"
	"io/fs"

	"github.com/trailmap/trailmap/storage/sqldb"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Schema is the accounts tables' migrations (0020–0029), for sqldb.Open.
var Schema = sqldb.Schema{Owner: "accounts", Min: 20, Max: 29, FS: sub(migrations)}

func sub(f embed.FS) fs.FS {
	s, err := fs.Sub(f, "migrations")
	if err != nil {
		panic(err) // the directory is embedded above
	}
	return s
}

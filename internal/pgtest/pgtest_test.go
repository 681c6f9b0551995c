package pgtest_test

import (
	"database/sql"
	"testing"

	"github.com/trailmap/trailmap/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func TestShared_Database(t *testing.T) {
	srv := pgtest.Shared(t)
	a, b := srv.Database(t), srv.Database(t)
	if a == b {
		t.Fatalf("two databases share one URL %s", a)
	}
	db, err := sql.Open("pgx", a)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(t.Context(), `CREATE TABLE x (id BIGINT PRIMARY KEY)`); err != nil {
		t.Fatal(err)
	}
	var v string
	if err := db.QueryRowContext(t.Context(), `SHOW server_version`).Scan(&v); err != nil {
		t.Fatal(err)
	}
	t.Logf("PostgreSQL %s", v)
}

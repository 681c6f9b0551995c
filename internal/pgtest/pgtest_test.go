package pgtest_test

import (
	"database/sql"
	"testing"
	"time"

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

// TestDelayed: a database through the delaying proxy answers as it does
// directly, each round trip no sooner than twice the delay.
func TestDelayed(t *testing.T) {
	const oneWay, trips = 5 * time.Millisecond, 10
	db, err := sql.Open("pgx", pgtest.Delayed(t, pgtest.Shared(t).Database(t), oneWay))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if err := db.PingContext(t.Context()); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for i := range trips {
		var n int
		if err := db.QueryRowContext(t.Context(), `SELECT $1::int + 1`, i).Scan(&n); err != nil || n != i+1 {
			t.Fatalf("query %d: %d, %v", i, n, err)
		}
	}
	if d := time.Since(start); d < trips*2*oneWay {
		t.Errorf("%d round trips in %v, under %v each way", trips, d, oneWay)
	}
}

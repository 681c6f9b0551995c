package journey

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/trailmap/trailmap/heatmap"
	"github.com/trailmap/trailmap/internal/pgtest"
	"github.com/trailmap/trailmap/storage/index/indextest"
	"github.com/trailmap/trailmap/storage/sqldb"
)

// The tests of this file are about PostgreSQL's locks between the
// transactions of several nodes; SQLite has one writer.

func pgFixture(t *testing.T) *fixture {
	t.Helper()
	f := newFixtureOn(t, indextest.Open(t, pgtest.Shared(t).Database(t), heatmap.Schema, Schema))
	f.noPack = true
	return f
}

// hang bounds a wait that only a lock held too long would make: the
// answers below come in milliseconds.
const hang = 30 * time.Second

// openDerive derives the sessions ids in a transaction that stays open,
// holding what the derive locked, until release is called; release
// commits it and returns the commit's error.
func openDerive(t *testing.T, f *fixture, ids ...int64) (release func() error) {
	t.Helper()
	ctx := context.Background()
	held, done := make(chan error, 1), make(chan error, 1)
	proceed := make(chan struct{})
	go func() {
		done <- f.db.SQL().InSharedTx(ctx, func(tx *sqldb.Tx) error {
			for _, id := range ids {
				if err := f.svc.SessionClosed(ctx, tx, id); err != nil {
					held <- err
					return err
				}
			}
			err := tx.Flush(ctx)
			held <- err
			if err != nil {
				return err
			}
			<-proceed
			return nil
		})
	}()
	if err := <-held; err != nil {
		t.Fatalf("derive: %v", err)
	}
	return func() error {
		close(proceed)
		return <-done
	}
}

// waitingForAdvisoryLock waits until a connection of f's database waits
// for an advisory lock, or done (the awaited transaction finished without
// waiting) is ready; it reports whether one waits. It fails the test after
// hang.
func waitingForAdvisoryLock(t *testing.T, f *fixture, done <-chan error) (waits bool) {
	t.Helper()
	deadline := time.Now().Add(hang)
	for {
		if len(done) > 0 {
			return false
		}
		var n int
		err := f.db.SQL().Read().QueryRow(`SELECT COUNT(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock' AND wait_event = 'advisory'`).Scan(&n)
		if err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			return true
		}
		if time.Now().After(deadline) {
			t.Fatal("nothing waits for the lock, and nothing finished")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// derive derives the sessions ids in a transaction of their own, in the
// background; the channel gets its error.
func deriveAsync(f *fixture, ids ...int64) <-chan error {
	ctx := context.Background()
	done := make(chan error, 1)
	go func() {
		done <- f.db.SQL().InSharedTx(ctx, func(tx *sqldb.Tx) error {
			for _, id := range ids {
				if err := f.svc.SessionClosed(ctx, tx, id); err != nil {
					return err
				}
			}
			return nil
		})
	}()
	return done
}

// TestDerive_SideBySide checks that the derives of different sessions on
// different nodes do not wait for each other (until 2026-12-05 every
// derive took the cluster's timelines lock exclusive, from its first page
// view to its commit), and that a pack still waits for an open derive.
func TestDerive_SideBySide(t *testing.T) {
	f := pgFixture(t)
	ctx := context.Background()
	s1 := f.session("v1", "desktop", at(0, "10:00"), pg(0, "/"), pg(mins(1), "/cart"))
	s2 := f.session("v2", "mobile", at(0, "11:00"), pg(0, "/"), ev(mins(1), "signup"))
	f.sync() // their keys and visitors exist: the derives below add nothing shared

	release := openDerive(t, f, s1.row)
	select {
	case err := <-deriveAsync(f, s2.row):
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(hang):
		t.Fatal("a derive of another session waited for an open derive")
	}

	// A pack waits for the open derive: it could otherwise seal a
	// timeline the derive is replacing.
	packed := make(chan error, 1)
	go func() {
		n, err := f.svc.Pack(ctx, true)
		if err == nil && n != 2 {
			err = fmt.Errorf("packed %d sessions, want 2", n)
		}
		packed <- err
	}()
	if !waitingForAdvisoryLock(t, f, packed) {
		t.Fatalf("a pack ran beside an open derive: %v", <-packed)
	}
	if err := release(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-packed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(hang):
		t.Fatal("the pack did not run after the derive committed")
	}
}

// TestDerive_NewKeysInIDOrder checks that a project's new keys become
// visible in id order when two nodes add some at once: every process
// caches the dictionary by reading ids above the last it saw, so a key
// committed after a higher one would never be read.
func TestDerive_NewKeysInIDOrder(t *testing.T) {
	f := pgFixture(t)
	ctx := context.Background()
	s1 := f.session("v1", "desktop", at(0, "10:00"), pg(0, "/first-new"))
	s2 := f.session("v2", "desktop", at(0, "10:05"), pg(0, "/second-new"))

	release := openDerive(t, f, s1.row) // "/first-new" numbered, not committed
	second := deriveAsync(f, s2.row)    // "/second-new": a higher id
	var secondErr error
	early := !waitingForAdvisoryLock(t, f, second)
	if early {
		// Only a missing lock lets it commit first; read the dictionary
		// as a funnel would, then see whether the lower id is lost.
		secondErr = <-second
		t.Error("the second derive committed while the first was open")
	}
	if _, err := f.svc.dictionary(ctx, f.project); err != nil {
		t.Fatal(err)
	}
	if err := release(); err != nil {
		t.Fatal(err)
	}
	if !early {
		select {
		case secondErr = <-second:
		case <-time.After(hang):
			t.Fatal("the second derive did not finish")
		}
	}
	if secondErr != nil {
		t.Fatal(secondErr)
	}
	if _, err := f.svc.dictionary(ctx, f.project); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/first-new", "/second-new"} {
		if _, ok := f.svc.knownKey(f.project, kindPage, path); !ok {
			t.Errorf("the dictionary cache never read %q", path)
		}
	}
}

// TestDerive_ConcurrentNewRows runs derives of several sessions each on
// eight connections at once, all adding the same new visitors (and, in
// the first round, keys) in different orders: none may fail (a deadlock
// would fail one) and every session gets its timeline.
func TestDerive_ConcurrentNewRows(t *testing.T) {
	f := pgFixture(t)
	const workers, perTx, rounds = 8, 4, 3
	rng := rand.New(rand.NewPCG(1, 2))
	ctx := context.Background()
	seeded := 0
	for r := range rounds {
		if r > 0 {
			// From the second round on the keys exist, so the derives
			// do not take the keys lock, which would make them one at a
			// time: only the visitors are new.
			var items []item
			for p := range 6 {
				items = append(items, pg(mins(float64(p)), fmt.Sprintf("/r%d/p%d", r, p)))
			}
			for e := range 3 {
				items = append(items, ev(mins(7), fmt.Sprintf("r%d-event-%d", r, e)))
			}
			if err := <-deriveAsync(f, f.session("seed", "desktop", at(0, "09:00"), items...).row); err != nil {
				t.Fatal(err)
			}
			seeded++
		}
		var ids [workers][]int64
		for w := range workers {
			for range perTx {
				var items []item
				for i, p := range rng.Perm(6) {
					items = append(items, pg(mins(float64(i)), fmt.Sprintf("/r%d/p%d", r, p)))
				}
				items = append(items, ev(mins(7), fmt.Sprintf("r%d-event-%d", r, rng.IntN(3))))
				s := f.session(fmt.Sprintf("r%d-v%d", r, rng.IntN(6)), "desktop", at(0, "10:00").Add(time.Duration(w)*time.Second), items...)
				ids[w] = append(ids[w], s.row)
			}
		}
		var wg sync.WaitGroup
		errs := make(chan error, workers)
		for w := range workers {
			wg.Go(func() {
				select {
				case err := <-deriveAsync(f, ids[w]...):
					errs <- err
				case <-time.After(hang):
					errs <- fmt.Errorf("worker %d: derive did not finish", w)
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Errorf("round %d: %v", r, err)
			}
		}
	}
	var n int
	if err := f.db.SQL().Read().QueryRowContext(ctx, `SELECT COUNT(*) FROM journey_sessions`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != workers*perTx*rounds+seeded {
		t.Errorf("%d sessions derived, want %d", n, workers*perTx*rounds+seeded)
	}
}

// BenchmarkDerive_Nodes derives sessions on PostgreSQL ~0.5 ms away (a
// proxy on loopback), from 1 and from 4 connections at once, as 1 and 4
// nodes' facts stages would: one session per transaction, its keys and
// visitor known (the usual batch with a page view). It reports derives
// per second (of at least 200); with every derive holding the cluster's
// timelines lock exclusive from its first statement to its commit, 4
// nodes derived no faster than one.
func BenchmarkDerive_Nodes(b *testing.B) {
	for _, nodes := range []int{1, 4} {
		b.Run(fmt.Sprintf("nodes=%d", nodes), func(b *testing.B) {
			url := pgtest.Delayed(b, pgtest.Shared(b).Database(b), 250*time.Microsecond)
			f := newFixtureOn(b, indextest.Open(b, url, heatmap.Schema, Schema))
			f.noPack = true
			ids := make([][]int64, nodes)
			for n := range nodes {
				for i := range 8 {
					s := f.session(fmt.Sprintf("v%d-%d", n, i), "desktop", at(0, "10:00").Add(time.Duration(i)*time.Minute),
						pg(0, "/"), pg(mins(1), "/cart"), ev(mins(2), "signup"))
					ids[n] = append(ids[n], s.row)
				}
			}
			f.sync()
			b.ResetTimer()
			start := time.Now()
			var wg sync.WaitGroup
			errs := make(chan error, nodes)
			// At least 200 derives, so that -benchtime 1x (make bench)
			// measures something; derives/s is the figure, not ns/op.
			total := max(b.N, 200)
			for n := range nodes {
				count := total / nodes
				if n < total%nodes {
					count++
				}
				wg.Go(func() {
					for i := range count {
						if err := <-deriveAsync(f, ids[n][i%len(ids[n])]); err != nil {
							errs <- err
							return
						}
					}
				})
			}
			wg.Wait()
			b.StopTimer()
			close(errs)
			for err := range errs {
				b.Fatal(err)
			}
			b.ReportMetric(float64(total)/time.Since(start).Seconds(), "derives/s")
		})
	}
}

package render_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/trailmap/trailmap/accounts"
	"github.com/trailmap/trailmap/heatmap"
	"github.com/trailmap/trailmap/internal/pgtest"
	"github.com/trailmap/trailmap/journey"
	"github.com/trailmap/trailmap/render"
	"github.com/trailmap/trailmap/storage/index"
	"github.com/trailmap/trailmap/storage/index/indextest"
	"github.com/trailmap/trailmap/storage/sqldb"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// eachStore runs fn on SQLite (every owner's schema, as the server opens
// it) and on PostgreSQL.
func eachStore(t *testing.T, fn func(t *testing.T, st *render.Store, db *index.DB, clock *time.Time)) {
	indextest.EachWith(t, func(d sqldb.Dialect) []sqldb.Schema {
		if d == sqldb.Postgres {
			return []sqldb.Schema{accounts.Schema, render.Schema}
		}
		return []sqldb.Schema{heatmap.Schema, accounts.Schema, journey.Schema, render.Schema}
	}, func(t *testing.T, db *index.DB) {
		now := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
		fn(t, render.NewStore(db.SQL(), func() time.Time { return now }), db, &now)
	})
}

func addSession(t *testing.T, db *index.DB, projectID int64, id string) int64 {
	t.Helper()
	var rowID int64
	err := db.SQL().Write().QueryRowContext(context.Background(), `INSERT INTO sessions (project_id, public_id, visitor_id, started_at, ended_at, last_received, closed)
		VALUES (?, ?, 'v1', 0, 60000, 0, 1) RETURNING id`, projectID, id).Scan(&rowID)
	if err != nil {
		t.Fatal(err)
	}
	return rowID
}

func TestStore_Queue(t *testing.T) {
	eachStore(t, func(t *testing.T, st *render.Store, db *index.DB, clock *time.Time) {
		ctx := context.Background()
		p, _ := db.CreateProject(ctx, "shop", *clock)
		row := addSession(t, db, p.ID, "s1")
		opts := render.Options{EndMS: 5000, Format: "mp4", Size: "720p", FPS: 10, Speed: 1}
		job := render.Job{ProjectID: p.ID, SessionRow: row, SessionID: "s1", Owner: "user:1", Options: opts}

		a, err := st.Create(ctx, job, 2)
		if err != nil || a.Status != render.StatusQueued {
			t.Fatalf("create: %+v %v", a, err)
		}
		// The same owner asking again gets the same job; a second range a
		// new one; a third job is over the limit.
		if again, err := st.Create(ctx, job, 2); err != nil || again.ID != a.ID {
			t.Fatalf("same request: %+v %v, want %s", again, err, a.ID)
		}
		*clock = clock.Add(time.Second)
		job2 := job
		job2.Options.StartMS = 1000
		b, err := st.Create(ctx, job2, 2)
		if err != nil || b.ID == a.ID {
			t.Fatalf("second: %+v %v", b, err)
		}
		job3 := job
		job3.Options.FPS = 20
		if _, err := st.Create(ctx, job3, 2); !errors.Is(err, render.ErrTooMany) {
			t.Fatalf("third in flight: %v, want ErrTooMany", err)
		}

		// Claim the oldest; a second worker gets the other; none is left.
		c1, err := st.Claim(ctx, "w1", 30*time.Second)
		if err != nil || c1.ID != a.ID || c1.Status != render.StatusRunning || c1.Attempts != 1 {
			t.Fatalf("claim: %+v %v", c1, err)
		}
		c2, err := st.Claim(ctx, "w2", 30*time.Second)
		if err != nil || c2.ID != b.ID {
			t.Fatalf("claim 2: %+v %v", c2, err)
		}
		if _, err := st.Claim(ctx, "w3", 30*time.Second); !errors.Is(err, render.ErrNotFound) {
			t.Fatalf("claim 3: %v", err)
		}
		if err := st.Renew(ctx, a.ID, "w1", 40, 5*time.Second, 30*time.Second); err != nil {
			t.Fatal(err)
		}
		if got, _ := st.Get(ctx, a.ID); got.Progress != 40 || got.ETAMS != 5000 {
			t.Errorf("progress %d eta %d", got.Progress, got.ETAMS)
		}
		// w1 dies: once its lease ran out w3 takes the job over, and w1
		// may neither renew nor finish it.
		*clock = clock.Add(31 * time.Second)
		if err := st.Renew(ctx, b.ID, "w2", 10, 0, 30*time.Second); err != nil {
			t.Fatal(err)
		}
		c3, err := st.Claim(ctx, "w3", 30*time.Second)
		if err != nil || c3.ID != a.ID || c3.Attempts != 2 {
			t.Fatalf("take over: %+v %v", c3, err)
		}
		if err := st.Renew(ctx, a.ID, "w1", 50, 0, 30*time.Second); !errors.Is(err, render.ErrLost) {
			t.Errorf("renew by the old holder: %v", err)
		}
		if err := st.Finish(ctx, a.ID, "w1", "1/renders/old.mp4", 10); !errors.Is(err, render.ErrLost) {
			t.Errorf("finish by the old holder: %v", err)
		}
		if err := st.Finish(ctx, a.ID, "w3", "1/renders/a.mp4", 1234); err != nil {
			t.Fatal(err)
		}
		done, _ := st.Get(ctx, a.ID)
		if done.Status != render.StatusDone || done.SizeBytes != 1234 || done.BlobKey != "1/renders/a.mp4" || done.Progress != 100 {
			t.Fatalf("done: %+v", done)
		}
		// Canceling a running job: its worker loses it.
		if c, err := st.Cancel(ctx, b.ID); err != nil || c.Status != render.StatusCanceled {
			t.Fatalf("cancel: %+v %v", c, err)
		}
		if err := st.Renew(ctx, b.ID, "w2", 60, 0, 30*time.Second); !errors.Is(err, render.ErrLost) {
			t.Errorf("renew after cancel: %v", err)
		}

		// An equal request of another user is done at once with the same
		// file; withdrawing one job's file keeps it for the other.
		other := job
		other.Owner = "user:2"
		o, err := st.Create(ctx, other, 2)
		if err != nil || o.Status != render.StatusDone || o.BlobKey != "1/renders/a.mp4" {
			t.Fatalf("cached: %+v %v", o, err)
		}
		if _, err := st.Cancel(ctx, a.ID); err != nil {
			t.Fatal(err)
		}
		trash, _ := st.Trash(ctx, 10)
		used, _ := st.InUse(ctx, "1/renders/a.mp4")
		if len(trash) != 1 || !used {
			t.Errorf("after withdrawing one of two: trash %v, in use %v", trash, used)
		}
		st.ClearTrash(ctx, "1/renders/a.mp4")
		// The session goes (retention, erasure): its jobs go, their file
		// to the trash.
		if _, err := db.SQL().Write().ExecContext(ctx, `DELETE FROM sessions WHERE id = ?`, row); err != nil {
			t.Fatal(err)
		}
		if _, err := st.Get(ctx, o.ID); !errors.Is(err, render.ErrNotFound) {
			t.Errorf("job of a deleted session: %v", err)
		}
		trash, _ = st.Trash(ctx, 10)
		used, _ = st.InUse(ctx, "1/renders/a.mp4")
		if len(trash) != 1 || trash[0] != "1/renders/a.mp4" || used {
			t.Errorf("after the session went: trash %v, in use %v", trash, used)
		}
	})
}

func TestStore_ReleaseAndExpire(t *testing.T) {
	eachStore(t, func(t *testing.T, st *render.Store, db *index.DB, clock *time.Time) {
		ctx := context.Background()
		p, _ := db.CreateProject(ctx, "shop", *clock)
		row := addSession(t, db, p.ID, "s1")
		j, err := st.Create(ctx, render.Job{ProjectID: p.ID, SessionRow: row, SessionID: "s1", Owner: "user:1",
			Options: render.Options{EndMS: 5000, Format: "gif", Size: "720p", FPS: 10, Speed: 1}}, 0)
		if err != nil {
			t.Fatal(err)
		}
		c, _ := st.Claim(ctx, "w1", time.Minute)
		// Shutting down: the job goes back to the queue, and its next start
		// is not counted twice.
		if err := st.Release(ctx, c.ID, "w1"); err != nil {
			t.Fatal(err)
		}
		c, err = st.Claim(ctx, "w2", time.Minute)
		if err != nil || c.ID != j.ID || c.Attempts != 1 {
			t.Fatalf("after release: %+v %v", c, err)
		}
		if err := st.Fail(ctx, c.ID, "w2", "no snapshot"); err != nil {
			t.Fatal(err)
		}
		*clock = clock.Add(8 * 24 * time.Hour)
		if n, err := st.Expire(ctx, clock.Add(-7*24*time.Hour)); err != nil || n != 1 {
			t.Fatalf("expire: %d %v", n, err)
		}
	})
}

// memBlobs is a blob store in memory.
type memBlobs struct{ m map[string][]byte }

func (b *memBlobs) Put(_ context.Context, key string, r io.Reader, _ int64) error {
	data, err := io.ReadAll(r)
	b.m[key] = data
	return err
}
func (b *memBlobs) Get(_ context.Context, key string, _, _ int64) (io.ReadCloser, error) {
	data, ok := b.m[key]
	if !ok {
		return nil, errors.New("not found")
	}
	return io.NopCloser(bytes.NewReader(data)), nil
}
func (b *memBlobs) Delete(_ context.Context, key string) error { delete(b.m, key); return nil }

// The sweep deletes the files of jobs whose session went (retention,
// erasure) and of jobs that ended longer ago than Keep; a file another job
// still names stays.
func TestService_Sweep(t *testing.T) {
	eachStore(t, func(t *testing.T, st *render.Store, db *index.DB, clock *time.Time) {
		ctx := context.Background()
		p, _ := db.CreateProject(ctx, "shop", *clock)
		gone := addSession(t, db, p.ID, "s1")
		kept := addSession(t, db, p.ID, "s2")
		blobs := &memBlobs{m: map[string][]byte{}}
		cfg := render.DefaultConfig()
		svc := render.New(cfg, st, blobs, nil, nil, nil, slog.New(slog.DiscardHandler))
		finish := func(row int64, sid, key string) *render.Job {
			j, err := st.Create(ctx, render.Job{ProjectID: p.ID, SessionRow: row, SessionID: sid, Owner: "user:1",
				Options: render.Options{EndMS: 5000, Format: "mp4", Size: "720p", FPS: 10, Speed: 1}}, 0)
			if err != nil {
				t.Fatal(err)
			}
			c, err := st.Claim(ctx, "w", time.Minute)
			if err != nil || c.ID != j.ID {
				t.Fatalf("claim: %+v %v", c, err)
			}
			blobs.m[key] = []byte("video")
			if err := st.Finish(ctx, j.ID, "w", key, 5); err != nil {
				t.Fatal(err)
			}
			return j
		}
		finish(gone, "s1", "1/renders/a.mp4")
		old := finish(kept, "s2", "1/renders/b.mp4")
		if _, err := db.SQL().Write().ExecContext(ctx, `DELETE FROM sessions WHERE id = ?`, gone); err != nil {
			t.Fatal(err)
		}
		if err := svc.Sweep(ctx); err != nil {
			t.Fatal(err)
		}
		if _, ok := blobs.m["1/renders/a.mp4"]; ok {
			t.Error("the file of a deleted session's render is still stored")
		}
		if _, ok := blobs.m["1/renders/b.mp4"]; !ok {
			t.Fatal("a live render's file was deleted")
		}
		// An equal request made later shares b's file; when the first job
		// ages out the file stays for the second, then goes with it.
		*clock = clock.Add(5 * 24 * time.Hour)
		twin, err := st.Create(ctx, render.Job{ProjectID: p.ID, SessionRow: kept, SessionID: "s2", Owner: "user:2",
			Options: old.Options}, 0)
		if err != nil || twin.Status != render.StatusDone {
			t.Fatalf("cached: %+v %v", twin, err)
		}
		*clock = clock.Add(3 * 24 * time.Hour) // old is 8 days old, twin 3
		svc2 := render.New(cfg, render.NewStore(db.SQL(), func() time.Time { return *clock }), blobs, nil, nil, nil, slog.New(slog.DiscardHandler))
		if err := svc2.Sweep(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := st.Get(ctx, old.ID); !errors.Is(err, render.ErrNotFound) {
			t.Errorf("an 8-day-old job: %v", err)
		}
		if _, ok := blobs.m["1/renders/b.mp4"]; !ok {
			t.Fatal("a file another job names was deleted")
		}
		*clock = clock.Add(5 * 24 * time.Hour)
		if err := svc2.Sweep(ctx); err != nil {
			t.Fatal(err)
		}
		if len(blobs.m) != 0 {
			t.Errorf("files left: %v", blobs.m)
		}
	})
}

// A node without ffmpeg takes no job (another node may render it).
func TestService_UnavailableNodeTakesNoJob(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	t.Setenv("FFMPEG_BIN", "")
	eachStore(t, func(t *testing.T, st *render.Store, db *index.DB, clock *time.Time) {
		ctx := context.Background()
		p, _ := db.CreateProject(ctx, "shop", *clock)
		row := addSession(t, db, p.ID, "s1")
		j, err := st.Create(ctx, render.Job{ProjectID: p.ID, SessionRow: row, SessionID: "s1", Owner: "user:1",
			Options: render.Options{EndMS: 5000, Format: "mp4", Size: "720p", FPS: 10, Speed: 1}}, 0)
		if err != nil {
			t.Fatal(err)
		}
		cfg := render.DefaultConfig()
		cfg.Workers, cfg.Poll = 2, 20*time.Millisecond
		svc := render.New(cfg, st, &memBlobs{m: map[string][]byte{}}, nil, nil, nil, slog.New(slog.DiscardHandler))
		rctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		svc.Run(rctx)
		cancel()
		if got, _ := st.Get(ctx, j.ID); got.Status != render.StatusQueued || got.Attempts != 0 {
			t.Errorf("job on a node that cannot render: %+v", got)
		}
	})
}

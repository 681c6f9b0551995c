// Package retention deletes recorded sessions once they are older than the
// configured retention: their segment objects, their index rows (batches,
// pages, custom events, segments; heatmap clicks and signals, journey
// timelines, shares and notes go with them by cascade or trigger), and the
// visitors left without sessions. Aggregates (heatmap cells, page and
// scroll counts per day and month) hold no per-visitor data and are kept.
//
// Sessions that closed short of their project's keep rule
// ("min_duration_ms", "require_interaction"; the recorder marks them when
// they close) are deleted by every sweep, the same way, whatever the
// retention.
//
// A session expires once it is closed and its last batch was received
// (server clock; client clocks are not trusted) longer ago than its
// project's retention: "retention_days" in the project's settings, or else
// MaxAge. Sessions whose events are not all in stored segments yet, or with
// a batch whose observers have not run, wait for the next sweep. Rows go
// first, in transactions of Chunk sessions that also record the sessions'
// object keys in blob_trash; objects are deleted after the commit, and keys
// left in blob_trash by a crash are deleted by the next sweep. A session
// that received a batch again between the selection and the delete is not
// deleted, and an object whose key a segment row holds again (a late batch
// of a deleted session, stored anew) leaves the trash without being
// deleted.
package retention

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/trailmap/trailmap/storage/index"
)

// Blobs is what retention needs of the blob store.
type Blobs interface {
	// Delete removes key; deleting a missing key is not an error.
	Delete(ctx context.Context, key string) error
}

// Config says how long sessions are kept and how the sweep runs.
type Config struct {
	// MaxAge is how long a session is kept after its last batch was
	// received, unless its project says otherwise; 0 keeps sessions
	// forever.
	MaxAge time.Duration
	// Every is the time between sweeps.
	Every time.Duration
	// First is how long after Run starts the first sweep runs (after a
	// minute when 0).
	First time.Duration
	// Chunk is how many sessions one index transaction deletes: the index
	// has a single writer, which ingest shares.
	Chunk int
	// Pause is the rest between two chunks, leaving the writer to ingest.
	Pause time.Duration
}

// DefaultConfig keeps sessions forever (unless a project sets its own
// retention); it sweeps hourly, 100 sessions per transaction.
func DefaultConfig() Config {
	return Config{Every: time.Hour, Chunk: 100, Pause: 20 * time.Millisecond}
}

// Validate reports settings that cannot work.
func (c Config) Validate() error {
	if c.MaxAge < 0 {
		return errors.New("retention must not be negative")
	}
	if c.MaxAge > 0 && c.MaxAge < 24*time.Hour {
		return fmt.Errorf("retention %v is under a day", c.MaxAge)
	}
	if c.Every <= 0 || c.Chunk < 1 || c.Pause < 0 {
		return errors.New("retention sweep interval and chunk size must be positive")
	}
	return nil
}

// Result counts what a sweep deleted.
type Result struct {
	Sessions  int // session rows, expired or discarded
	Discarded int // of which closed short of their project's keep rule
	Objects   int // segment objects
	Visitors  int // visitor rows left without sessions
	PageURLs  int // distinct page URLs no page view has any more (PostgreSQL)
}

// Index is what retention needs of the core index.
type Index interface {
	// Projects lists every project.
	Projects(ctx context.Context) ([]index.Project, error)
	// ExpiredSessions lists up to limit sessions of a project expired at
	// cutoff (Unix ms), oldest first.
	ExpiredSessions(ctx context.Context, projectID, cutoff int64, limit int) ([]int64, error)
	// DeleteExpiredSessions deletes in one transaction those of ids still
	// expired at cutoff, their rows and the visitors left without
	// sessions, putting their object keys in the blob trash.
	DeleteExpiredSessions(ctx context.Context, ids []int64, cutoff, now int64) (sessions, visitors int, err error)
	// DiscardedSessions lists up to limit sessions that closed short of
	// their project's keep rule and may be deleted at now (Unix ms).
	DiscardedSessions(ctx context.Context, now int64, limit int) ([]int64, error)
	// DeleteDiscardedSessions deletes those of ids still discarded at now,
	// as DeleteExpiredSessions does.
	DeleteDiscardedSessions(ctx context.Context, ids []int64, now int64) (sessions, visitors int, err error)
	// BlobTrash lists up to limit keys of objects to delete.
	BlobTrash(ctx context.Context, limit int) ([]string, error)
	// SegmentKeyInUse tells whether a segment row holds key.
	SegmentKeyInUse(ctx context.Context, key string) (bool, error)
	// ClearBlobTrash takes keys out of the blob trash.
	ClearBlobTrash(ctx context.Context, keys []string) error
	// PrunePageURLs removes the distinct page URLs (the sessions list's
	// page pattern filter) that no page view has any more.
	PrunePageURLs(ctx context.Context, now time.Time) (int, error)
}

var _ Index = (*index.DB)(nil)

// Cluster runs a job on one node of a cluster once per period
// (cluster.Jobs).
type Cluster interface {
	Once(ctx context.Context, job string, period time.Duration, fn func(context.Context) error) (bool, error)
}

// Sweeper deletes expired sessions.
type Sweeper struct {
	db      Index
	blobs   Blobs
	cfg     Config
	log     *slog.Logger
	deleted *prometheus.CounterVec
	cluster Cluster // nil: every sweep runs here
	// local runs on every node at each sweep (node-local data: a node's
	// quarantine), also when another node runs the sweep.
	local []func(ctx context.Context, now time.Time, keep Keep) error
}

// OnEveryNode adds fn to what each sweep runs on every node of a cluster
// (for data only the node holds), with the projects' retention.
func (s *Sweeper) OnEveryNode(fn func(ctx context.Context, now time.Time, keep Keep) error) *Sweeper {
	s.local = append(s.local, fn)
	return s
}

// InCluster makes Run sweep once per cfg.Every across the nodes of c.
func (s *Sweeper) InCluster(c Cluster) *Sweeper {
	s.cluster = c
	return s
}

// New returns a sweeper; it does nothing until Run or Sweep. With reg its
// counters are registered there.
func New(db Index, blobs Blobs, cfg Config, reg prometheus.Registerer, logger *slog.Logger) *Sweeper {
	s := &Sweeper{db: db, blobs: blobs, cfg: cfg, log: logger.With("component", "retention"),
		deleted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trailmap_retention_deleted_total",
			Help: "What retention deleted: expired sessions, sessions discarded by their project's keep rule, their objects, visitors left without sessions.",
		}, []string{"what"})}
	for _, w := range []string{"sessions", "discarded", "objects", "visitors"} {
		s.deleted.WithLabelValues(w)
	}
	if reg != nil {
		reg.MustRegister(s.deleted)
	}
	return s
}

// Run sweeps cfg.First (a minute) after the start and then every
// cfg.Every, until ctx ends.
func (s *Sweeper) Run(ctx context.Context) {
	wait := s.cfg.First
	if wait <= 0 {
		wait = time.Minute
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = s.cfg.Every
		start := time.Now()
		// Every project's retention is read once per round, for the
		// node-local sweeps and this node's share of the cluster's, so an
		// unreadable setting is warned about once.
		ages, err := s.ages(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			s.log.Error("retention sweep", slog.Any("error", err))
			continue
		}
		for _, fn := range s.local {
			if err := fn(ctx, start, ages.keep); err != nil {
				s.log.Error("node-local retention", slog.Any("error", err))
			}
		}
		var res Result
		if s.cluster != nil {
			var ran bool
			ran, err = s.cluster.Once(ctx, "retention", s.cfg.Every, func(ctx context.Context) error {
				var serr error
				res, serr = s.sweep(ctx, start, ages)
				return serr
			})
			if err == nil && !ran {
				s.log.Debug("retention sweep left to the node running it, or run within its period")
				continue
			}
		} else {
			res, err = s.sweep(ctx, start, ages)
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			s.log.Error("retention sweep", slog.Any("error", err), "sessions", res.Sessions, "objects", res.Objects)
			continue
		}
		if res.Sessions > 0 || res.Objects > 0 || res.PageURLs > 0 {
			s.log.Info("retention sweep", "sessions", res.Sessions, "discarded", res.Discarded, "objects", res.Objects, "visitors", res.Visitors,
				"page_urls", res.PageURLs, "took", time.Since(start).Round(time.Millisecond))
		}
	}
}

// ProjectDays reads "retention_days" from a project's settings JSON: 0 when
// absent (the server's retention applies), else a whole number of days, at
// least 1.
func ProjectDays(settings json.RawMessage) (int, error) {
	if len(settings) == 0 {
		return 0, nil
	}
	var v struct {
		Days json.RawMessage `json:"retention_days"`
	}
	if err := json.Unmarshal(settings, &v); err != nil {
		return 0, fmt.Errorf("project settings: %w", err)
	}
	if v.Days == nil {
		return 0, nil
	}
	n, err := strconv.ParseInt(string(v.Days), 10, 64)
	if err != nil || n < 1 || n > 100*365 {
		return 0, fmt.Errorf("retention_days must be a whole number of days from 1 to 36500, not %s", v.Days)
	}
	return int(n), nil
}

// maxAge is how long a project's sessions are kept: its own
// retention_days, else the server's (0: for ever).
func (s *Sweeper) maxAge(p index.Project) time.Duration {
	days, err := ProjectDays(p.Settings)
	if err != nil {
		s.log.Warn("project retention setting unreadable, using the server's", "project", p.ID, slog.Any("error", err))
	} else if days > 0 {
		return time.Duration(days) * 24 * time.Hour
	}
	return s.cfg.MaxAge
}

// Keep tells how long a project's data is kept (0: for ever); ok is false
// for a project that does not exist (any more).
type Keep func(projectID int64) (maxAge time.Duration, ok bool)

// Keep reads every project's retention now.
func (s *Sweeper) Keep(ctx context.Context) (Keep, error) {
	ages, err := s.ages(ctx)
	if err != nil {
		return nil, err
	}
	return ages.keep, nil
}

// projectAges is every project's retention (0: for ever), read at once.
type projectAges map[int64]time.Duration

func (a projectAges) keep(id int64) (time.Duration, bool) {
	age, ok := a[id]
	return age, ok
}

// ages reads every project's retention, warning once about each project
// whose setting is unreadable.
func (s *Sweeper) ages(ctx context.Context) (projectAges, error) {
	projects, err := s.db.Projects(ctx)
	if err != nil {
		return nil, fmt.Errorf("retention: %w", err)
	}
	ages := make(projectAges, len(projects))
	for _, p := range projects {
		ages[p.ID] = s.maxAge(p)
	}
	return ages, nil
}

// Sweep deletes every session expired at now, project by project and chunk
// by chunk, and the objects of those sessions and of earlier interrupted
// sweeps.
func (s *Sweeper) Sweep(ctx context.Context, now time.Time) (Result, error) {
	ages, err := s.ages(ctx)
	if err != nil {
		return Result{}, err
	}
	return s.sweep(ctx, now, ages)
}

// sweep is Sweep with every project's retention read before.
func (s *Sweeper) sweep(ctx context.Context, now time.Time, ages projectAges) (Result, error) {
	var res Result
	if err := s.emptyTrash(ctx, &res); err != nil {
		return res, err
	}
	if err := s.sweepDiscarded(ctx, now, &res); err != nil {
		return res, err
	}
	ids := make([]int64, 0, len(ages))
	for id := range ages {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		maxAge := ages[id]
		if maxAge <= 0 {
			continue
		}
		if err := s.sweepProject(ctx, id, now.Add(-maxAge).UnixMilli(), now, &res); err != nil {
			return res, err
		}
	}
	// Also the URLs of sessions deleted on request (forget) since the
	// last sweep.
	n, err := s.db.PrunePageURLs(ctx, now)
	if err != nil {
		return res, fmt.Errorf("retention: %w", err)
	}
	res.PageURLs = n
	return res, nil
}

// sweepProject deletes a project's sessions expired at cutoff.
func (s *Sweeper) sweepProject(ctx context.Context, project, cutoff int64, now time.Time, res *Result) error {
	return s.sweepChunks(ctx, "sessions", res,
		func(ctx context.Context) ([]int64, error) {
			return s.db.ExpiredSessions(ctx, project, cutoff, s.cfg.Chunk)
		},
		func(ctx context.Context, ids []int64) (int, int, error) {
			// The index checks again inside its transaction: the writer
			// serialises with ingest.
			return s.db.DeleteExpiredSessions(ctx, ids, cutoff, now.UnixMilli())
		})
}

// sweepDiscarded deletes the sessions that closed short of their
// project's keep rule.
func (s *Sweeper) sweepDiscarded(ctx context.Context, now time.Time, res *Result) error {
	return s.sweepChunks(ctx, "discarded", res,
		func(ctx context.Context) ([]int64, error) {
			return s.db.DiscardedSessions(ctx, now.UnixMilli(), s.cfg.Chunk)
		},
		func(ctx context.Context, ids []int64) (int, int, error) {
			return s.db.DeleteDiscardedSessions(ctx, ids, now.UnixMilli())
		})
}

// sweepChunks deletes, chunk by chunk, the sessions list finds: delete
// removes those of ids that still qualify, with everything that refers to
// them, and the visitors they leave without sessions (their object keys go
// to blob_trash, emptied after each chunk). what labels the sessions in
// the metrics ("sessions": expired, or "discarded").
func (s *Sweeper) sweepChunks(ctx context.Context, what string, res *Result,
	list func(context.Context) ([]int64, error), del func(context.Context, []int64) (int, int, error)) error {
	for {
		ids, err := list(ctx)
		if err != nil {
			return fmt.Errorf("retention: %w", err)
		}
		if len(ids) == 0 {
			return nil
		}
		n, v, err := del(ctx, ids)
		if err != nil {
			return fmt.Errorf("retention: %w", err)
		}
		res.Sessions += n
		if what == "discarded" {
			res.Discarded += n
		}
		res.Visitors += v
		s.deleted.WithLabelValues(what).Add(float64(n))
		s.deleted.WithLabelValues("visitors").Add(float64(v))
		if err := s.emptyTrash(ctx, res); err != nil {
			return err
		}
		if n == 0 {
			// Every candidate changed under us (received a batch again):
			// the next sweep sees them anew.
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(s.cfg.Pause):
		}
	}
}

// emptyTrash deletes the objects listed in blob_trash, and their entries.
func (s *Sweeper) emptyTrash(ctx context.Context, res *Result) error {
	return emptyTrash(ctx, s.db, s.blobs, func(n int) {
		res.Objects += n
		s.deleted.WithLabelValues("objects").Add(float64(n))
	})
}

// trash is what emptying the blob trash needs of the index.
type trash interface {
	BlobTrash(ctx context.Context, limit int) ([]string, error)
	SegmentKeyInUse(ctx context.Context, key string) (bool, error)
	ClearBlobTrash(ctx context.Context, keys []string) error
}

// emptyTrash deletes the objects listed in blob_trash and their entries,
// calling deleted with the number of objects of each batch of keys.
func emptyTrash(ctx context.Context, db trash, blobs Blobs, deleted func(int)) error {
	for {
		keys, err := db.BlobTrash(ctx, 500)
		if err != nil {
			return fmt.Errorf("retention: %w", err)
		}
		if len(keys) == 0 {
			return nil
		}
		n := 0
		for _, k := range keys {
			// A late batch of a deleted session may have been stored again
			// under the same key: its segment row owns the object now.
			live, err := db.SegmentKeyInUse(ctx, k)
			if err != nil {
				return fmt.Errorf("retention: %w", err)
			}
			if live {
				continue
			}
			if err := blobs.Delete(ctx, k); err != nil {
				return fmt.Errorf("retention: delete object %s: %w", k, err)
			}
			n++
		}
		if err := db.ClearBlobTrash(ctx, keys); err != nil {
			return fmt.Errorf("retention: %w", err)
		}
		deleted(n)
	}
}

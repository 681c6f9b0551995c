package cluster

import (
	"context"
	"fmt"
	"time"

	"github.com/trailmap/trailmap/storage/sqldb"
)

// Jobs runs the cluster-wide jobs — the retention sweep, the training of
// segment dictionaries — once per period across the nodes that share an
// index: every node ticks at the period, and the first whose tick comes
// after the period since the job last started runs it (cluster_jobs); the
// others skip that round. A PostgreSQL advisory lock (sqldb.DB.Once) keeps
// two runs of a job from overlapping when one takes longer than its
// period. A node that dies mid-run leaves the job to the next tick after
// the period, on whichever node. On SQLite (one process) the same rule
// keeps a restarted node from sweeping again before its period is over.
type Jobs struct {
	db   *sqldb.DB
	self string
	now  func() time.Time
}

// NewJobs returns the jobs of node self (its advertise URL, or any name
// for an operator to read in cluster_jobs) on db, whose schemas include
// Schema.
func NewJobs(db *sqldb.DB, self string) *Jobs {
	return &Jobs{db: db, self: self, now: time.Now}
}

// slack is the share of a period by which a node's tick may come early and
// still run the job: nodes tick at the period from their own start, and a
// tick a little early must not skip a whole period.
const slack = 10

// Once runs fn as the job named job unless a node started it less than
// period ago or runs it now, and tells whether it ran.
func (j *Jobs) Once(ctx context.Context, job string, period time.Duration, fn func(context.Context) error) (bool, error) {
	ran := false
	locked, err := j.db.Once(ctx, job, func(ctx context.Context) error {
		now := j.now().UnixMilli()
		due := now - (period - period/slack).Milliseconds()
		res, err := j.db.Write().ExecContext(ctx, `INSERT INTO cluster_jobs (name, node, started_at) VALUES (?, ?, ?)
			ON CONFLICT (name) DO UPDATE SET node = excluded.node, started_at = excluded.started_at
			WHERE cluster_jobs.started_at <= ?`, job, j.self, now, due)
		if err != nil {
			return fmt.Errorf("job %s: claim: %w", job, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nil // run within the period, on this node or another
		}
		ran = true
		return fn(ctx)
	})
	return locked && ran, err
}

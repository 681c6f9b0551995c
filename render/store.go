package render

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/trailmap/trailmap/storage/sqldb"
)

// Job statuses.
const (
	StatusQueued   = "queued"
	StatusRunning  = "running"
	StatusDone     = "done"
	StatusFailed   = "failed"
	StatusCanceled = "canceled"
)

// Job is one render: what was asked and how far it got.
type Job struct {
	ID         string    `json:"id"`
	ProjectID  int64     `json:"project_id"`
	SessionRow int64     `json:"-"`
	SessionID  string    `json:"session_id"`
	ShareID    int64     `json:"share_id,omitempty"`
	Owner      string    `json:"-"`
	Options    Options   `json:"options"`
	Status     string    `json:"status"`
	Progress   int       `json:"progress"`
	ETAMS      int64     `json:"eta_ms,omitempty"`
	Error      string    `json:"error,omitempty"`
	BlobKey    string    `json:"-"`
	SizeBytes  int64     `json:"size_bytes,omitempty"`
	Attempts   int       `json:"attempts"`
	CreatedAt  time.Time `json:"created_at"`
	UpdatedAt  time.Time `json:"updated_at"`
	FinishedAt time.Time `json:"finished_at,omitzero"`

	cacheKey   string
	leaseOwner string
}

// Store holds the render tables' SQL: the persistent queue. It is safe on
// SQLite and PostgreSQL and across nodes sharing one database: a running
// job is held under a lease that its worker renews; a job whose lease ran
// out (its process died) is claimed again.
type Store struct {
	db  *sqldb.DB
	now func() time.Time
}

// NewStore is the job store on db, whose schemas include Schema; now is the
// clock (nil: time.Now).
func NewStore(db *sqldb.DB, now func() time.Time) *Store {
	if now == nil {
		now = time.Now
	}
	return &Store{db: db, now: now}
}

const jobColumns = `id, project_id, session_row, session_id, COALESCE(share_id, 0), owner, options, cache_key, status,
	progress, eta_ms, error, blob_key, size_bytes, attempts, lease_owner, created_at, updated_at, finished_at`

func scanJob(row interface{ Scan(...any) error }) (*Job, error) {
	var j Job
	var opts string
	var created, updated, finished int64
	err := row.Scan(&j.ID, &j.ProjectID, &j.SessionRow, &j.SessionID, &j.ShareID, &j.Owner, &opts, &j.cacheKey, &j.Status,
		&j.Progress, &j.ETAMS, &j.Error, &j.BlobKey, &j.SizeBytes, &j.Attempts, &j.leaseOwner, &created, &updated, &finished)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(opts), &j.Options); err != nil {
		return nil, fmt.Errorf("render job %s options: %w", j.ID, err)
	}
	j.CreatedAt, j.UpdatedAt = time.UnixMilli(created).UTC(), time.UnixMilli(updated).UTC()
	if finished > 0 {
		j.FinishedAt = time.UnixMilli(finished).UTC()
	}
	return &j, nil
}

func newID() string {
	var b [15]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return "r" + strings.ToLower(base32.StdEncoding.EncodeToString(b[:]))
}

// nullID is id as a nullable column value (0: NULL).
func nullID(id int64) any {
	if id == 0 {
		return nil
	}
	return id
}

// Create makes a job for j's session, share, owner and options and returns
// it with its id. A request equal to one already done (same session, range
// and options) is done at once, sharing its file; the same owner asking
// again while an equal job is queued or running gets that job. Otherwise
// the job is queued, unless owner already has limit jobs queued or running
// (ErrTooMany; limit <= 0: no limit).
func (s *Store) Create(ctx context.Context, j Job, limit int) (*Job, error) {
	opts, err := json.Marshal(j.Options)
	if err != nil {
		return nil, err
	}
	key := j.Options.cacheKey(j.SessionRow)
	now := s.now().UnixMilli()
	id := newID()
	err = s.db.InTx(ctx, func(tx *sql.Tx) error {
		var same string
		err := tx.QueryRowContext(ctx, `SELECT id FROM render_jobs WHERE cache_key = ? AND owner = ?
			AND status IN ('queued', 'running') AND COALESCE(share_id, 0) = ? ORDER BY created_at LIMIT 1`, key, j.Owner, j.ShareID).Scan(&same)
		if err == nil {
			id = same
			return nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		var blob string
		var size int64
		err = tx.QueryRowContext(ctx, `SELECT blob_key, size_bytes FROM render_jobs WHERE cache_key = ? AND status = 'done'
			AND blob_key <> '' ORDER BY finished_at DESC LIMIT 1`, key).Scan(&blob, &size)
		if err == nil {
			_, err = tx.ExecContext(ctx, `INSERT INTO render_jobs (id, project_id, session_row, session_id, share_id, owner, options,
				cache_key, status, progress, blob_key, size_bytes, created_at, updated_at, finished_at)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'done', 100, ?, ?, ?, ?, ?)`,
				id, j.ProjectID, j.SessionRow, j.SessionID, nullID(j.ShareID), j.Owner, string(opts), key, blob, size, now, now, now)
			return err
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if limit > 0 {
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM render_jobs WHERE owner = ? AND status IN ('queued', 'running')`, j.Owner).Scan(&n); err != nil {
				return err
			}
			if n >= limit {
				return fmt.Errorf("%w: %d renders are already queued or running for you (at most %d); wait for one to finish or cancel one", ErrTooMany, n, limit)
			}
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO render_jobs (id, project_id, session_row, session_id, share_id, owner, options,
			cache_key, status, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'queued', ?, ?)`,
			id, j.ProjectID, j.SessionRow, j.SessionID, nullID(j.ShareID), j.Owner, string(opts), key, now, now)
		return err
	})
	if errors.Is(err, ErrTooMany) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("create render job: %w", err)
	}
	return s.Get(ctx, id)
}

// Get returns job id (ErrNotFound).
func (s *Store) Get(ctx context.Context, id string) (*Job, error) {
	j, err := scanJob(s.db.Read().QueryRowContext(ctx, `SELECT `+jobColumns+` FROM render_jobs WHERE id = ?`, id))
	if err != nil {
		return nil, fmt.Errorf("render %s: %w", id, err)
	}
	return j, nil
}

// Pending counts the jobs queued or running, cluster-wide.
func (s *Store) Pending(ctx context.Context) (int, error) {
	var n int
	err := s.db.Read().QueryRowContext(ctx, `SELECT COUNT(*) FROM render_jobs WHERE status IN ('queued', 'running')`).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count render jobs: %w", err)
	}
	return n, nil
}

// Claim takes the oldest job that is queued, or running under a lease that
// ran out, for worker until now+lease. It returns ErrNotFound when there is
// none. Taking a job is a compare-and-swap on its row: of two nodes racing
// for one job, one wins and the other tries the next.
func (s *Store) Claim(ctx context.Context, worker string, lease time.Duration) (*Job, error) {
	for range 5 {
		now := s.now().UnixMilli()
		var id string
		err := s.db.Read().QueryRowContext(ctx, `SELECT id FROM render_jobs
			WHERE status = 'queued' OR (status = 'running' AND lease_until < ?)
			ORDER BY created_at, id LIMIT 1`, now).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, ErrNotFound
		}
		if err != nil {
			return nil, fmt.Errorf("claim render job: %w", err)
		}
		res, err := s.db.Write().ExecContext(ctx, `UPDATE render_jobs
			SET status = 'running', attempts = attempts + 1, progress = 0, eta_ms = 0, lease_owner = ?, lease_until = ?, updated_at = ?
			WHERE id = ? AND (status = 'queued' OR (status = 'running' AND lease_until < ?))`,
			worker, now+lease.Milliseconds(), now, id, now)
		if err != nil {
			return nil, fmt.Errorf("claim render job %s: %w", id, err)
		}
		if n, _ := res.RowsAffected(); n == 1 {
			return s.Get(ctx, id)
		}
	}
	return nil, ErrNotFound
}

// Renew records progress (0–100) and the time left of a job worker holds
// and extends its lease. It returns ErrLost when the job is no longer the
// worker's to run: canceled, or taken over after the lease ran out.
func (s *Store) Renew(ctx context.Context, id, worker string, progress int, eta time.Duration, lease time.Duration) error {
	now := s.now().UnixMilli()
	return s.update(ctx, id, `UPDATE render_jobs SET progress = ?, eta_ms = ?, lease_until = ?, updated_at = ?
		WHERE id = ? AND status = 'running' AND lease_owner = ?`, progress, eta.Milliseconds(), now+lease.Milliseconds(), now, id, worker)
}

// Finish commits a job's file: from now on it is served. ErrLost: the job
// was canceled or taken over meanwhile (the caller deletes its file).
func (s *Store) Finish(ctx context.Context, id, worker, key string, size int64) error {
	now := s.now().UnixMilli()
	return s.update(ctx, id, `UPDATE render_jobs SET status = 'done', progress = 100, eta_ms = 0, blob_key = ?, size_bytes = ?,
		lease_owner = '', lease_until = 0, updated_at = ?, finished_at = ?
		WHERE id = ? AND status = 'running' AND lease_owner = ?`, key, size, now, now, id, worker)
}

// Fail ends a job the worker holds with an error message for the user.
func (s *Store) Fail(ctx context.Context, id, worker, msg string) error {
	now := s.now().UnixMilli()
	if len(msg) > 1000 {
		msg = strings.ToValidUTF8(msg[:1000], "")
	}
	return s.update(ctx, id, `UPDATE render_jobs SET status = 'failed', error = ?, eta_ms = 0, lease_owner = '', lease_until = 0,
		updated_at = ?, finished_at = ? WHERE id = ? AND status = 'running' AND lease_owner = ?`, msg, now, now, id, worker)
}

// Cancel ends a queued or running job, or withdraws a finished one's file
// (from this job; other jobs sharing it keep it). Canceling a canceled,
// failed or withdrawn job changes nothing.
func (s *Store) Cancel(ctx context.Context, id string) (*Job, error) {
	now := s.now().UnixMilli()
	_, err := s.db.Write().ExecContext(ctx, `UPDATE render_jobs SET status = 'canceled', blob_key = '', eta_ms = 0, lease_owner = '',
		lease_until = 0, updated_at = ?, finished_at = ? WHERE id = ? AND status IN ('queued', 'running', 'done')`, now, now, id)
	if err != nil {
		return nil, fmt.Errorf("cancel render %s: %w", id, err)
	}
	return s.Get(ctx, id)
}

// Expire deletes jobs that ended before cutoff (their files go to the
// trash), so the table and the bucket do not grow without end.
func (s *Store) Expire(ctx context.Context, cutoff time.Time) (int64, error) {
	res, err := s.db.Write().ExecContext(ctx, `DELETE FROM render_jobs WHERE status IN ('done', 'failed', 'canceled') AND finished_at < ?`,
		cutoff.UnixMilli())
	if err != nil {
		return 0, fmt.Errorf("expire render jobs: %w", err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}

// Trash lists up to limit files no longer named by the job that made them.
func (s *Store) Trash(ctx context.Context, limit int) ([]string, error) {
	rows, err := s.db.Read().QueryContext(ctx, `SELECT blob_key FROM render_trash ORDER BY added_at LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("render trash: %w", err)
	}
	defer rows.Close()
	var keys []string
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			return nil, fmt.Errorf("render trash: %w", err)
		}
		keys = append(keys, k)
	}
	return keys, rows.Err()
}

// InUse tells whether a job still names key (a file shared by equal
// requests stays while one of them does).
func (s *Store) InUse(ctx context.Context, key string) (bool, error) {
	var n int
	err := s.db.Read().QueryRowContext(ctx, `SELECT COUNT(*) FROM render_jobs WHERE blob_key = ?`, key).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("render file %s: %w", key, err)
	}
	return n > 0, nil
}

// ClearTrash takes key out of the trash.
func (s *Store) ClearTrash(ctx context.Context, key string) error {
	if _, err := s.db.Write().ExecContext(ctx, `DELETE FROM render_trash WHERE blob_key = ?`, key); err != nil {
		return fmt.Errorf("render trash %s: %w", key, err)
	}
	return nil
}

func (s *Store) update(ctx context.Context, id, query string, args ...any) error {
	res, err := s.db.Write().ExecContext(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("update render %s: %w", id, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("update render %s: %w", id, err)
	} else if n == 0 {
		return fmt.Errorf("render %s: %w", id, ErrLost)
	}
	return nil
}

// Release gives a job the worker holds back to the queue (the node is
// shutting down): any node takes it next, from the start.
func (s *Store) Release(ctx context.Context, id, worker string) error {
	now := s.now().UnixMilli()
	return s.update(ctx, id, `UPDATE render_jobs SET status = 'queued', progress = 0, eta_ms = 0, attempts = attempts - 1,
		lease_owner = '', lease_until = 0, updated_at = ? WHERE id = ? AND status = 'running' AND lease_owner = ?`, now, id, worker)
}

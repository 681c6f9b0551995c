package index

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// expired is the condition on a sessions row (aliased s) for deletion by
// retention: closed, quiet since the cutoff, all its events in stored
// segments and every batch observed.
const expired = `s.closed = 1 AND s.last_received < ?
	AND (SELECT COALESCE(SUM(g.events), 0) FROM segments g WHERE g.session_id = s.id AND g.state = 'done') >= s.event_count
	AND NOT EXISTS (SELECT 1 FROM batches b WHERE b.session_id = s.id AND b.observed = 0)`

// ExpiredSessions lists up to limit sessions of a project that may be
// deleted because they received nothing since cutoff (Unix milliseconds),
// oldest first, from the read pool.
func (db *DB) ExpiredSessions(ctx context.Context, projectID, cutoff int64, limit int) ([]int64, error) {
	rows, err := db.db.Read().QueryContext(ctx, `SELECT s.id FROM sessions s WHERE s.project_id = ? AND `+expired+` ORDER BY s.last_received, s.id LIMIT ?`,
		projectID, cutoff, limit)
	if err != nil {
		return nil, fmt.Errorf("find expired sessions: %w", err)
	}
	defer rows.Close()
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("find expired sessions: %w", err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("find expired sessions: %w", err)
	}
	return ids, nil
}

// DeleteExpiredSessions deletes, in one transaction, the sessions of ids
// that are still expired at cutoff when it runs (ingest may have given one
// a batch since it was listed), with their batches, pages, custom events
// and segment rows (the other owners' rows follow by cascade or trigger),
// and the visitors left without sessions. The segments' object keys go to
// the blob trash, added at now (Unix milliseconds), in the same
// transaction. It returns how many sessions and visitors it deleted.
func (db *DB) DeleteExpiredSessions(ctx context.Context, ids []int64, cutoff, now int64) (sessions, visitors int, err error) {
	return db.deleteSessionsWhere(ctx, expired, cutoff, ids, now)
}

// discarded is the condition on a sessions row (aliased s) for deletion as
// discarded: closed short of its project's keep rule, still closed and
// settled (as for retention, with cutoff the time of the check).
const discarded = `s.discarded = 1 AND ` + expired

// DiscardedSessions lists up to limit sessions that closed short of their
// project's keep rule and may be deleted at now (Unix milliseconds), from
// the read pool.
func (db *DB) DiscardedSessions(ctx context.Context, now int64, limit int) ([]int64, error) {
	rows, err := db.db.Read().QueryContext(ctx, `SELECT s.id FROM sessions s WHERE `+discarded+` ORDER BY s.id LIMIT ?`, now, limit)
	if err != nil {
		return nil, fmt.Errorf("find discarded sessions: %w", err)
	}
	defer rows.Close()
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("find discarded sessions: %w", err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("find discarded sessions: %w", err)
	}
	return ids, nil
}

// DeleteDiscardedSessions deletes, as DeleteExpiredSessions does, the
// sessions of ids that are still discarded and settled at now (one that
// received a batch since is open again, and judged again when it closes).
func (db *DB) DeleteDiscardedSessions(ctx context.Context, ids []int64, now int64) (sessions, visitors int, err error) {
	return db.deleteSessionsWhere(ctx, discarded, now, ids, now)
}

// deleteSessionsWhere deletes the sessions of ids for which cond (with its
// one parameter arg) holds inside the transaction; see
// DeleteExpiredSessions.
func (db *DB) deleteSessionsWhere(ctx context.Context, cond string, arg int64, ids []int64, now int64) (sessions, visitors int, err error) {
	if len(ids) == 0 {
		return 0, 0, nil
	}
	err = db.db.InTx(ctx, func(tx *sql.Tx) error {
		sessions, visitors = 0, 0
		args := []any{arg}
		for _, id := range ids {
			args = append(args, id)
		}
		rows, err := tx.QueryContext(ctx, `SELECT s.id, s.project_id, s.visitor_id FROM sessions s WHERE `+cond+` AND s.id IN `+List(len(ids)), args...)
		if err != nil {
			return fmt.Errorf("recheck sessions: %w", err)
		}
		type visitor struct {
			project int64
			id      string
		}
		var gone []any
		seen := map[visitor]bool{}
		var owners []visitor
		for rows.Next() {
			var id int64
			var v visitor
			if err := rows.Scan(&id, &v.project, &v.id); err != nil {
				rows.Close()
				return fmt.Errorf("recheck sessions: %w", err)
			}
			gone = append(gone, id)
			if !seen[v] {
				seen[v] = true
				owners = append(owners, v)
			}
		}
		if err := rows.Close(); err != nil {
			return fmt.Errorf("recheck sessions: %w", err)
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("recheck sessions: %w", err)
		}
		if len(gone) == 0 {
			return nil
		}
		in := List(len(gone))
		trash := db.pick(
			`INSERT OR IGNORE INTO blob_trash (key, added_at) SELECT key, ? FROM segments WHERE session_id IN `+in,
			`INSERT INTO blob_trash (key, added_at) SELECT key, CAST(? AS BIGINT) FROM segments WHERE session_id IN `+in+` ON CONFLICT DO NOTHING`)
		if _, err := tx.ExecContext(ctx, trash, append([]any{now}, gone...)...); err != nil {
			return fmt.Errorf("note segment objects: %w", err)
		}
		// Tables without ON DELETE CASCADE first; the rest (heatmap,
		// journey, shares, notes) follows the sessions rows.
		for _, table := range []string{"custom_events", "pages", "batches", "segments", "sessions"} {
			col := "session_id"
			if table == "sessions" {
				col = "id"
			}
			if _, err := tx.ExecContext(ctx, `DELETE FROM `+table+` WHERE `+col+` IN `+in, gone...); err != nil {
				return fmt.Errorf("delete %s: %w", table, err)
			}
		}
		for _, v := range owners {
			res, err := tx.ExecContext(ctx, `DELETE FROM visitors WHERE project_id = ? AND id = ?
				AND NOT EXISTS (SELECT 1 FROM sessions WHERE project_id = ? AND visitor_id = ?)`, v.project, v.id, v.project, v.id)
			if err != nil {
				return fmt.Errorf("delete visitor: %w", err)
			}
			n, _ := res.RowsAffected()
			visitors += int(n)
		}
		sessions = len(gone)
		return nil
	})
	if err != nil {
		return 0, 0, err
	}
	return sessions, visitors, nil
}

// BlobTrash lists up to limit keys of objects whose index rows are gone
// and which are still to be deleted, in key order.
func (db *DB) BlobTrash(ctx context.Context, limit int) ([]string, error) {
	rows, err := db.db.Read().QueryContext(ctx, `SELECT key FROM blob_trash ORDER BY key LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("read blob trash: %w", err)
	}
	defer rows.Close()
	var keys []string
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			return nil, fmt.Errorf("read blob trash: %w", err)
		}
		keys = append(keys, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read blob trash: %w", err)
	}
	return keys, nil
}

// SegmentKeyInUse tells whether a segment row holds key (again: a late
// batch of a deleted session stored anew under the same key).
func (db *DB) SegmentKeyInUse(ctx context.Context, key string) (bool, error) {
	var n int
	if err := db.db.Read().QueryRowContext(ctx, `SELECT COUNT(*) FROM segments WHERE key = ?`, key).Scan(&n); err != nil {
		return false, fmt.Errorf("check object %s: %w", key, err)
	}
	return n > 0, nil
}

// ClearBlobTrash takes keys out of the blob trash.
func (db *DB) ClearBlobTrash(ctx context.Context, keys []string) error {
	if len(keys) == 0 {
		return nil
	}
	args := make([]any, len(keys))
	for i, k := range keys {
		args[i] = k
	}
	return db.db.InTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM blob_trash WHERE key IN `+List(len(keys)), args...); err != nil {
			return fmt.Errorf("clear blob trash: %w", err)
		}
		return nil
	})
}

// SessionDays tells which of days (unix days, UTC) a project has a
// session starting on, from sessions_list: what asset copies of those
// days are still kept for.
func (db *DB) SessionDays(ctx context.Context, projectID int64, days []int64) (map[int64]bool, error) {
	out := map[int64]bool{}
	for _, d := range days {
		var one int
		err := db.db.Read().QueryRowContext(ctx, `SELECT 1 FROM sessions WHERE project_id = ? AND started_at >= ? AND started_at < ? LIMIT 1`,
			projectID, d*86_400_000, (d+1)*86_400_000).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("session days: %w", err)
		}
		out[d] = true
	}
	return out, nil
}

// LatestSessionStart is the start (Unix ms) of a project's latest
// session; 0 when it has none.
func (db *DB) LatestSessionStart(ctx context.Context, projectID int64) (int64, error) {
	var ts sql.NullInt64
	if err := db.db.Read().QueryRowContext(ctx, `SELECT MAX(started_at) FROM sessions WHERE project_id = ?`, projectID).Scan(&ts); err != nil {
		return 0, fmt.Errorf("latest session: %w", err)
	}
	return ts.Int64, nil
}

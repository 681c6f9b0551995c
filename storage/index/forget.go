package index

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"github.com/trailmap/trailmap/storage/sqldb"
)

// Forgetting a person (erasure on request) deletes every session of the
// person's visitors with the rows that belong to them; the retention package
// orchestrates it over the owners. The core's part is below: it opens the
// transaction the owners share, lists the sessions that may go, deletes its
// own rows and notes the segment objects in blob_trash in that transaction.

// settled is the condition on a sessions row (aliased s) for deletion on
// request: closed, all its events in stored segments and every batch
// observed, as for retention but without the age. A session still
// recording is left for a later run: deleting its rows under the recorder,
// which still buffers and observes it, would break its next segment.
const settled = `s.closed = 1
	AND (SELECT COALESCE(SUM(g.events), 0) FROM segments g WHERE g.session_id = s.id AND g.state = 'done') >= s.event_count
	AND NOT EXISTS (SELECT 1 FROM batches b WHERE b.session_id = s.id AND b.observed = 0)`

// ForgetTables are the core tables that hold a person's rows, in the order
// the core deletes them.
var ForgetTables = []string{"custom_events", "pages", "batches", "segments", "sessions", "visitors"}

// UserVisitors returns the ids of the visitors of a project identified as
// userID: one per device or browser the person used.
func (db *DB) UserVisitors(ctx context.Context, projectID int64, userID string) ([]string, error) {
	rows, err := db.db.Read().QueryContext(ctx, `SELECT id FROM visitors WHERE project_id = ? AND user_id = ? ORDER BY id`, projectID, userID)
	if err != nil {
		return nil, fmt.Errorf("find visitors of user: %w", err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("find visitors of user: %w", err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("find visitors of user: %w", err)
	}
	return ids, nil
}

// InSharedTx runs fn in one write transaction that other owners take part
// in (sqldb.Tx), committing if fn returns nil.
func (db *DB) InSharedTx(ctx context.Context, fn func(*sqldb.Tx) error) error {
	return db.db.InSharedTx(ctx, fn)
}

func visitorArgs(projectID int64, visitors []string) []any {
	args := make([]any, 0, len(visitors)+1)
	args = append(args, projectID)
	for _, v := range visitors {
		args = append(args, v)
	}
	return args
}

// SettledSessionsOf lists, inside tx, up to limit sessions of a project's
// visitors that may be deleted now (closed, stored and observed).
func (db *DB) SettledSessionsOf(ctx context.Context, tx *sqldb.Tx, projectID int64, visitors []string, limit int) ([]int64, error) {
	if len(visitors) == 0 {
		return nil, nil
	}
	rows, err := tx.SQL().QueryContext(ctx, `SELECT s.id FROM sessions s WHERE s.project_id = ? AND s.visitor_id IN `+List(len(visitors))+
		` AND `+settled+` ORDER BY s.id LIMIT ?`, append(visitorArgs(projectID, visitors), limit)...)
	if err != nil {
		return nil, fmt.Errorf("find sessions to forget: %w", err)
	}
	defer rows.Close()
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("find sessions to forget: %w", err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("find sessions to forget: %w", err)
	}
	return ids, nil
}

// UnsettledSessionsOf counts the sessions of a project's visitors that
// cannot be deleted yet: still recording, or with events not yet in
// stored segments or not yet observed.
func (db *DB) UnsettledSessionsOf(ctx context.Context, projectID int64, visitors []string) (int, error) {
	if len(visitors) == 0 {
		return 0, nil
	}
	var n int
	err := db.db.Read().QueryRowContext(ctx, `SELECT COUNT(*) FROM sessions s WHERE s.project_id = ? AND s.visitor_id IN `+List(len(visitors))+
		` AND NOT (`+settled+`)`, visitorArgs(projectID, visitors)...).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count sessions still recording: %w", err)
	}
	return n, nil
}

// DeleteSessions deletes, inside tx, the sessions ids with their custom
// events, pages, batches and segment rows, and notes the segments' object
// keys in the blob trash (added at now, Unix ms) so they are deleted after
// the commit, or by a later run if that fails. Other owners delete their
// rows of these sessions first, in the same transaction. It returns how
// many rows it deleted per table (every table of ForgetTables but
// visitors) and how many object keys it noted.
func (db *DB) DeleteSessions(ctx context.Context, tx *sqldb.Tx, ids []int64, now int64) (map[string]int, int, error) {
	counts := map[string]int{}
	for _, t := range ForgetTables[:len(ForgetTables)-1] {
		counts[t] = 0
	}
	if len(ids) == 0 {
		return counts, 0, nil
	}
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	in := List(len(ids))
	trash := db.pick(
		`INSERT OR IGNORE INTO blob_trash (key, added_at) SELECT key, ? FROM segments WHERE session_id IN `+in,
		`INSERT INTO blob_trash (key, added_at) SELECT key, CAST(? AS BIGINT) FROM segments WHERE session_id IN `+in+` ON CONFLICT DO NOTHING`)
	res, err := tx.SQL().ExecContext(ctx, trash, append([]any{now}, args...)...)
	if err != nil {
		return nil, 0, fmt.Errorf("note segment objects: %w", err)
	}
	noted, _ := res.RowsAffected()
	if err := db.tombstone(ctx, tx, in, args, now); err != nil {
		return nil, 0, err
	}
	for _, table := range ForgetTables[:len(ForgetTables)-1] {
		col := "session_id"
		if table == "sessions" {
			col = "id"
		}
		res, err := tx.SQL().ExecContext(ctx, `DELETE FROM `+table+` WHERE `+col+` IN `+in, args...)
		if err != nil {
			return nil, 0, fmt.Errorf("delete %s: %w", table, err)
		}
		n, _ := res.RowsAffected()
		counts[table] = int(n)
	}
	return counts, int(noted), nil
}

// tombstone notes the sessions of ids (the placeholder list in) as
// forgotten, by the hash of their public id.
func (db *DB) tombstone(ctx context.Context, tx *sqldb.Tx, in string, ids []any, now int64) error {
	rows, err := tx.SQL().QueryContext(ctx, `SELECT project_id, public_id FROM sessions WHERE id IN `+in, ids...)
	if err != nil {
		return fmt.Errorf("read forgotten sessions: %w", err)
	}
	type tomb struct {
		project int64
		hash    string
	}
	var tombs []tomb
	for rows.Next() {
		var p int64
		var id string
		if err := rows.Scan(&p, &id); err != nil {
			rows.Close()
			return fmt.Errorf("read forgotten sessions: %w", err)
		}
		tombs = append(tombs, tomb{p, sessionHash(id)})
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read forgotten sessions: %w", err)
	}
	ins := db.pick(
		`INSERT OR IGNORE INTO forgotten_sessions (project_id, session_hash, forgotten_at) VALUES (?, ?, ?)`,
		`INSERT INTO forgotten_sessions (project_id, session_hash, forgotten_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`)
	for _, tb := range tombs {
		if _, err := tx.SQL().ExecContext(ctx, ins, tb.project, tb.hash, now); err != nil {
			return fmt.Errorf("note forgotten session: %w", err)
		}
	}
	return nil
}

func sessionHash(publicID string) string {
	h := sha256.Sum256([]byte(publicID))
	return hex.EncodeToString(h[:])
}

// ForgottenSessions returns which of the public ids of a project's
// sessions were deleted by forgetting a person: batches of theirs replayed
// from the write-ahead log must not be recorded again.
func (db *DB) ForgottenSessions(ctx context.Context, projectID int64, publicIDs []string) (map[string]bool, error) {
	out := map[string]bool{}
	if len(publicIDs) == 0 {
		return out, nil
	}
	args := []any{projectID}
	byHash := map[string]string{}
	for _, id := range publicIDs {
		h := sessionHash(id)
		byHash[h] = id
		args = append(args, h)
	}
	rows, err := db.db.Read().QueryContext(ctx,
		`SELECT session_hash FROM forgotten_sessions WHERE project_id = ? AND session_hash IN `+List(len(publicIDs)), args...)
	if err != nil {
		return nil, fmt.Errorf("forgotten sessions: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var h string
		if err := rows.Scan(&h); err != nil {
			return nil, fmt.Errorf("forgotten sessions: %w", err)
		}
		out[byHash[h]] = true
	}
	return out, rows.Err()
}

// DeleteVisitorsWithoutSessions deletes, inside tx, the rows of those of a
// project's visitors that have no session left. It returns how many rows it
// deleted and which of visitors have no session left (with or without a
// row), whose other owners' rows may go too.
func (db *DB) DeleteVisitorsWithoutSessions(ctx context.Context, tx *sqldb.Tx, projectID int64, visitors []string) (int, []string, error) {
	deleted := 0
	var idle []string
	for _, v := range visitors {
		var n int
		if err := tx.SQL().QueryRowContext(ctx, `SELECT COUNT(*) FROM sessions WHERE project_id = ? AND visitor_id = ?`, projectID, v).Scan(&n); err != nil {
			return 0, nil, fmt.Errorf("count sessions of visitor: %w", err)
		}
		if n > 0 {
			continue
		}
		idle = append(idle, v)
		res, err := tx.SQL().ExecContext(ctx, `DELETE FROM visitors WHERE project_id = ? AND id = ?`, projectID, v)
		if err != nil {
			return 0, nil, fmt.Errorf("delete visitor: %w", err)
		}
		n64, _ := res.RowsAffected()
		deleted += int(n64)
	}
	return deleted, idle, nil
}

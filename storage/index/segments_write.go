package index

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
)

// SessionRow finds the row id and start (Unix milliseconds) of a session by
// its public id; ErrNotFound when it has no row.
func (db *DB) SessionRow(ctx context.Context, projectID int64, publicID string) (id, startedAt int64, err error) {
	err = db.db.Read().QueryRowContext(ctx,
		`SELECT id, started_at FROM sessions WHERE project_id = ? AND public_id = ?`, projectID, publicID).Scan(&id, &startedAt)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, 0, fmt.Errorf("find session row: %w", ErrNotFound)
	}
	if err != nil {
		return 0, 0, fmt.Errorf("find session row: %w", err)
	}
	return id, startedAt, nil
}

// NewSegment is a segment object about to be stored. Seqs and Snapshots
// are JSON, as in Segment.
type NewSegment struct {
	SessionID         int64
	Key               string
	FirstSeq, LastSeq int64
	Seqs, Snapshots   []byte
	Events            int
	RawBytes, Stored  int64
	FirstTS, LastTS   int64
	CreatedAt         int64
}

// AddPendingSegment records a segment whose object is about to be PUT, as
// pending until MarkSegmentDone; it returns the row id.
func (db *DB) AddPendingSegment(ctx context.Context, s NewSegment) (int64, error) {
	var id int64
	err := db.db.Write().QueryRowContext(ctx, `
		INSERT INTO segments (session_id, key, first_seq, last_seq, seqs, events, raw_bytes, stored_bytes, first_ts, last_ts, snapshots, state, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?) RETURNING id`,
		s.SessionID, s.Key, s.FirstSeq, s.LastSeq, string(s.Seqs), s.Events, s.RawBytes, s.Stored,
		s.FirstTS, s.LastTS, string(s.Snapshots), s.CreatedAt).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("insert segment row: %w", err)
	}
	return id, nil
}

// MarkSegmentDone records that a pending segment's object is stored.
func (db *DB) MarkSegmentDone(ctx context.Context, id int64) error {
	if _, err := db.db.Write().ExecContext(ctx, `UPDATE segments SET state = 'done' WHERE id = ?`, id); err != nil {
		return fmt.Errorf("mark segment done: %w", err)
	}
	return nil
}

// DropPendingSegment deletes a segment row that is still pending (its PUT
// failed); a done row stays.
func (db *DB) DropPendingSegment(ctx context.Context, id int64) error {
	if _, err := db.db.Write().ExecContext(ctx, `DELETE FROM segments WHERE id = ? AND state = 'pending'`, id); err != nil {
		return fmt.Errorf("drop pending segment row: %w", err)
	}
	return nil
}

// DeleteSegment deletes a segment row, pending or done.
func (db *DB) DeleteSegment(ctx context.Context, id int64) error {
	if _, err := db.db.Write().ExecContext(ctx, `DELETE FROM segments WHERE id = ?`, id); err != nil {
		return fmt.Errorf("delete segment row: %w", err)
	}
	return nil
}

// SegmentState is a segment row as recovery sees it.
type SegmentState struct {
	ID      int64
	Key     string
	Seqs    [][2]int64 // [seq, events] in stored order
	Pending bool       // its object may not be stored
}

// SegmentStates lists all segment rows of a session, pending or done, in
// the order they were written.
func (db *DB) SegmentStates(ctx context.Context, sessionID int64) ([]SegmentState, error) {
	rows, err := db.db.Read().QueryContext(ctx, `SELECT id, key, seqs, state FROM segments WHERE session_id = ? ORDER BY id`, sessionID)
	if err != nil {
		return nil, fmt.Errorf("read segments: %w", err)
	}
	defer rows.Close()
	var out []SegmentState
	for rows.Next() {
		var sg SegmentState
		var seqs, state string
		if err := rows.Scan(&sg.ID, &sg.Key, &seqs, &state); err != nil {
			return nil, fmt.Errorf("scan segment: %w", err)
		}
		if err := json.Unmarshal([]byte(seqs), &sg.Seqs); err != nil {
			return nil, fmt.Errorf("segment %d seqs: %w", sg.ID, err)
		}
		sg.Pending = state == "pending"
		out = append(out, sg)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read segments: %w", err)
	}
	return out, nil
}

// RecentSegmentKeys lists the keys of up to limit of a project's stored
// segments, newest first (dictionary training samples), from the read
// pool.
func (db *DB) RecentSegmentKeys(ctx context.Context, projectID int64, limit int) ([]string, error) {
	rows, err := db.db.Read().QueryContext(ctx, `
		SELECT g.key FROM segments g JOIN sessions s ON s.id = g.session_id
		WHERE s.project_id = ? AND g.state = 'done' ORDER BY g.id DESC LIMIT ?`, projectID, limit)
	if err != nil {
		return nil, fmt.Errorf("list recent segments: %w", err)
	}
	defer rows.Close()
	var keys []string
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			return nil, fmt.Errorf("list recent segments: %w", err)
		}
		keys = append(keys, k)
	}
	return keys, rows.Err()
}

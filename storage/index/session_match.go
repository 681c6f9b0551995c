package index

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// SessionByRowID finds a session by its sessions row id (Session.RowID).
func (db *DB) SessionByRowID(ctx context.Context, id int64) (*Session, error) {
	s, err := scanSession(db.db.Read().QueryRowContext(ctx, `SELECT `+sessionCols+` FROM sessions s
		LEFT JOIN visitors v ON v.project_id = s.project_id AND v.id = s.visitor_id
		WHERE s.id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("session %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get session: %w", err)
	}
	return s, nil
}

// MatchSessions returns those of ids (sessions row ids) whose session
// satisfies m (e.g. a journey segment), in ascending order. The ids go in as
// one argument (see inIDs), so there is no limit on their number.
func (db *DB) MatchSessions(ctx context.Context, ids []int64, m Match) ([]int64, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	var args []any
	in := inIDs(db.dialect(), "s.id", false, ids, &args)
	cond := "TRUE"
	if !m.IsZero() {
		c, err := matchSQL(db.dialect(), &m, "s", &args)
		if err != nil {
			return nil, err
		}
		cond = c
	}
	rows, err := db.db.Read().QueryContext(ctx, `SELECT s.id FROM sessions s
		WHERE `+in+` AND (`+cond+`) ORDER BY s.id`,
		args...)
	if err != nil {
		return nil, fmt.Errorf("match sessions: %w", err)
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("match sessions: %w", err)
		}
		out = append(out, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("match sessions: %w", err)
	}
	return out, nil
}

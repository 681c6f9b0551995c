package index

import (
	"context"
	"fmt"
)

// SessionPublicIDs maps session row ids to their public ids, for owners of
// tables that refer to sessions by row id. Row ids of sessions that no
// longer exist are left out of the map.
func (db *DB) SessionPublicIDs(ctx context.Context, rowIDs []int64) (map[int64]string, error) {
	out := make(map[int64]string, len(rowIDs))
	if len(rowIDs) == 0 {
		return out, nil
	}
	args := make([]any, len(rowIDs))
	for i, id := range rowIDs {
		args[i] = id
	}
	rows, err := db.db.Read().QueryContext(ctx, `SELECT id, public_id FROM sessions WHERE id IN `+List(len(rowIDs)), args...)
	if err != nil {
		return nil, fmt.Errorf("session public ids: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var pub string
		if err := rows.Scan(&id, &pub); err != nil {
			return nil, fmt.Errorf("scan session public id: %w", err)
		}
		out[id] = pub
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("session public ids: %w", err)
	}
	return out, nil
}

// SessionRowIDs lists the row ids of the sessions whose public id is
// publicID in projectIDs (nil: any project; a public id is unique only
// within its project). Both ways probe the (project_id, public_id) index.
func (db *DB) SessionRowIDs(ctx context.Context, projectIDs []int64, publicID string) ([]int64, error) {
	q := `SELECT id FROM sessions WHERE project_id IN (SELECT id FROM projects) AND public_id = ? ORDER BY id`
	args := []any{publicID}
	if projectIDs != nil {
		if len(projectIDs) == 0 {
			return []int64{}, nil
		}
		q = `SELECT id FROM sessions WHERE project_id IN ` + List(len(projectIDs)) + ` AND public_id = ? ORDER BY id`
		args = args[:0]
		for _, p := range projectIDs {
			args = append(args, p)
		}
		args = append(args, publicID)
	}
	rows, err := db.db.Read().QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("session row ids: %w", err)
	}
	defer rows.Close()
	out := []int64{}
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("scan session row id: %w", err)
		}
		out = append(out, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("session row ids: %w", err)
	}
	return out, nil
}

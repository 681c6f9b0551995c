package journey

import (
	"context"
	"database/sql"
	"fmt"
)

// syncChunk is how many sessions one backfill transaction derives; small
// enough that the recorder's writer never waits long.
const syncChunk = 500

// Sync derives the timelines of sessions that have none and returns how
// many it derived. The recorder observer keeps new sessions current, so
// this is for sessions recorded before journey existed, rows written
// directly (tests, benchmarks, imports) and a crash between the two.
func (s *Service) Sync(ctx context.Context) (int, error) {
	total := 0
	var after int64
	for {
		ids, err := s.sessionIDs(ctx, `
			SELECT s.id FROM sessions s
			WHERE s.id > ? AND NOT EXISTS (SELECT 1 FROM journey_sessions j WHERE j.session_id = s.id)
			ORDER BY s.id LIMIT ?`, after, syncChunk)
		if err != nil {
			return total, err
		}
		if len(ids) == 0 {
			return total, nil
		}
		if err := s.db.Tx(ctx, func(tx *sql.Tx) error { return s.derive(ctx, tx, ids) }); err != nil {
			return total, fmt.Errorf("backfill journey: %w", err)
		}
		total += len(ids)
		after = ids[len(ids)-1]
	}
}

// Rebuild derives every session of a project again (after a settings
// change: search parameters, conversions).
func (s *Service) Rebuild(ctx context.Context, projectID int64) error {
	var after int64
	for {
		ids, err := s.sessionIDs(ctx, `SELECT id FROM sessions WHERE project_id = ? AND id > ? ORDER BY id LIMIT ?`,
			projectID, after, syncChunk)
		if err != nil {
			return err
		}
		if len(ids) == 0 {
			return nil
		}
		if err := s.db.Tx(ctx, func(tx *sql.Tx) error { return s.derive(ctx, tx, ids) }); err != nil {
			return fmt.Errorf("rebuild journey: %w", err)
		}
		after = ids[len(ids)-1]
	}
}

// rebuildLoop rebuilds a project until no settings change arrived during
// the last pass.
func (s *Service) rebuildLoop(ctx context.Context, projectID int64) error {
	for {
		s.bgMu.Lock()
		gen := s.rebuilds[projectID]
		s.bgMu.Unlock()
		err := s.Rebuild(ctx, projectID)
		s.bgMu.Lock()
		done := err != nil || s.rebuilds[projectID] == gen
		if done {
			delete(s.rebuilds, projectID)
		}
		s.bgMu.Unlock()
		if done {
			return err
		}
	}
}

func (s *Service) sessionIDs(ctx context.Context, q string, args ...any) ([]int64, error) {
	rows, err := s.db.Read().QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list sessions to derive: %w", err)
	}
	defer rows.Close()
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("scan session id: %w", err)
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

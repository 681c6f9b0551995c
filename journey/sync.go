package journey

import (
	"context"
	"fmt"

	"github.com/trailmap/trailmap/storage/sqldb"
)

// syncChunk is how many sessions one backfill transaction derives; small
// enough that the recorder's writer never waits long.
const syncChunk = 500

// syncPage is how many session ids Sync asks the index for at a time.
const syncPage = 5000

// Sync derives the timelines of sessions that have none and returns how
// many it derived. The recorder observer keeps new sessions current, so
// this is for sessions recorded before journey existed, rows written
// directly (tests, benchmarks, imports) and a crash between the two.
func (s *Service) Sync(ctx context.Context) (int, error) {
	total := 0
	var after int64
	var todo []int64
	flush := func() error {
		if len(todo) == 0 {
			return nil
		}
		if err := s.deriveIn(ctx, todo); err != nil {
			return fmt.Errorf("backfill journey: %w", err)
		}
		total += len(todo)
		todo = todo[:0]
		return nil
	}
	for {
		ids, err := s.core.SessionIDsAfter(ctx, 0, after, syncPage)
		if err != nil {
			return total, err
		}
		if len(ids) == 0 {
			return total, flush()
		}
		after = ids[len(ids)-1]
		missing, err := s.underived(ctx, ids)
		if err != nil {
			return total, err
		}
		for _, id := range missing {
			todo = append(todo, id)
			if len(todo) == syncChunk {
				if err := flush(); err != nil {
					return total, err
				}
			}
		}
	}
}

// underived returns the ones of ids (ascending) that have no timeline.
func (s *Service) underived(ctx context.Context, ids []int64) ([]int64, error) {
	in, list := s.db.InIDs("session_id", ids)
	rows, err := s.db.Read().QueryContext(ctx, `SELECT session_id FROM journey_sessions WHERE `+in, list)
	if err != nil {
		return nil, fmt.Errorf("list sessions to derive: %w", err)
	}
	defer rows.Close()
	have := map[int64]bool{}
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("scan session id: %w", err)
		}
		have[id] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list sessions to derive: %w", err)
	}
	var out []int64
	for _, id := range ids {
		if !have[id] {
			out = append(out, id)
		}
	}
	return out, nil
}

// deriveIn derives sessions in a transaction of its own.
func (s *Service) deriveIn(ctx context.Context, ids []int64) error {
	return s.db.InSharedTx(ctx, func(tx *sqldb.Tx) error { return s.derive(ctx, tx, ids) })
}

// Rebuild derives every session of a project again (after a settings
// change: search parameters, conversions).
func (s *Service) Rebuild(ctx context.Context, projectID int64) error {
	var after int64
	for {
		ids, err := s.core.SessionIDsAfter(ctx, projectID, after, syncChunk)
		if err != nil {
			return err
		}
		if len(ids) == 0 {
			return nil
		}
		if err := s.deriveIn(ctx, ids); err != nil {
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

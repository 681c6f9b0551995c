package journey

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/trailmap/trailmap/storage/sqldb"
)

// ForgetTables are the journey tables that hold a person's rows.
//
// journey_sessions (a session's timeline), journey_searches (its site
// searches) and journey_visitors (the visitor's number) are the person's.
// A chunk (journey_chunks) that packs one of their sessions with others is
// dissolved: its other sessions become loose again and are packed anew.
// journey_keys is the project's dictionary of page paths and event names,
// shared by every session that saw them, and is kept: it is append-only
// (every process caches it by growing id, see dict), so a deleted key
// could be handed out again from a cache for another visit.
var ForgetTables = []string{"journey_searches", "journey_sessions", "journey_chunks", "journey_visitors"}

// ForgetSessions deletes, inside tx, the derived rows of the sessions ids
// and dissolves the chunks that hold any of them; it returns how many rows
// it deleted per table (journey_chunks: chunks dissolved). The trigger on
// sessions would do the same when they are deleted; this does not rely on
// it, and counts.
func (s *Service) ForgetSessions(ctx context.Context, tx *sqldb.Tx, ids []int64) (map[string]int, error) {
	counts := map[string]int{"journey_searches": 0, "journey_sessions": 0, "journey_chunks": 0}
	if len(ids) == 0 {
		return counts, nil
	}
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	if err := s.lockTimelines(ctx, tx.SQL(), lockExclusive); err != nil {
		return nil, fmt.Errorf("journey: forget: %w", err)
	}
	in := sqldb.List(len(ids))
	var chunks int
	err := tx.SQL().QueryRowContext(ctx, `SELECT COUNT(DISTINCT chunk) FROM journey_sessions WHERE chunk IS NOT NULL AND session_id IN `+in, args...).Scan(&chunks)
	if err != nil {
		return nil, fmt.Errorf("journey: forget: count chunks: %w", err)
	}
	query := func(_ *sql.Stmt, many string) (*sql.Rows, error) {
		return tx.SQL().QueryContext(ctx, many+in, args...)
	}
	if err := unpack(ctx, tx.SQL(), nil, query); err != nil {
		return nil, fmt.Errorf("journey: forget: %w", err)
	}
	counts["journey_chunks"] = chunks
	for _, t := range []string{"journey_searches", "journey_sessions"} {
		res, err := tx.SQL().ExecContext(ctx, `DELETE FROM `+t+` WHERE session_id IN `+in, args...)
		if err != nil {
			return nil, fmt.Errorf("journey: forget %s: %w", t, err)
		}
		n, _ := res.RowsAffected()
		counts[t] = int(n)
	}
	return counts, nil
}

// ForgetVisitors deletes, inside tx, the journey numbers of a project's
// visitors that have no session left, and returns how many it deleted.
func (s *Service) ForgetVisitors(ctx context.Context, tx *sqldb.Tx, projectID int64, visitors []string) (map[string]int, error) {
	counts := map[string]int{"journey_visitors": 0}
	if len(visitors) == 0 {
		return counts, nil
	}
	args := make([]any, 0, len(visitors)+1)
	args = append(args, projectID)
	for _, v := range visitors {
		args = append(args, v)
	}
	res, err := tx.SQL().ExecContext(ctx, `DELETE FROM journey_visitors WHERE project_id = ? AND visitor_id IN `+sqldb.List(len(visitors)), args...)
	if err != nil {
		return nil, fmt.Errorf("journey: forget visitors: %w", err)
	}
	n, _ := res.RowsAffected()
	counts["journey_visitors"] = int(n)
	return counts, nil
}

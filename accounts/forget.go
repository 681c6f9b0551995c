package accounts

import (
	"context"
	"fmt"

	"github.com/trailmap/trailmap/storage/sqldb"
)

// ForgetTables are the accounts tables that hold rows of recorded
// sessions: share links and timeline notes.
var ForgetTables = []string{"shares", "notes"}

// ForgetSessions deletes, inside tx, the share links and notes of the
// sessions ids and returns how many it deleted per table. They would also
// go by cascade with their sessions; deleting them here first makes the
// report count them and keeps them from depending on the foreign keys.
func (s *Store) ForgetSessions(ctx context.Context, tx *sqldb.Tx, ids []int64) (map[string]int, error) {
	counts := map[string]int{}
	for _, t := range ForgetTables {
		counts[t] = 0
	}
	if len(ids) == 0 {
		return counts, nil
	}
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	in := sqldb.List(len(ids))
	for _, t := range ForgetTables {
		res, err := tx.SQL().ExecContext(ctx, `DELETE FROM `+t+` WHERE session_id IN `+in, args...)
		if err != nil {
			return nil, fmt.Errorf("forget %s: %w", t, err)
		}
		n, _ := res.RowsAffected()
		counts[t] = int(n)
	}
	return counts, nil
}

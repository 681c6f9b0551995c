package heatmap

import (
	"context"
	"fmt"

	"github.com/trailmap/trailmap/storage/sqldb"
)

// ForgetTables are the heatmap tables that hold rows of one session, in
// the order ForgetSessions deletes them.
//
// What is per person: a session's page views, its placed clicks and its
// frustration signals (they carry the session id, times and coordinates
// of one visit). What is not: the aggregates (heat_grid_*, heat_elem_*,
// heat_page_day, heat_scroll_day), which sum every visitor of a page per
// day or month and cannot be traced back to anyone; the page keys and
// element selectors (heat_pages, heat_selectors), the site's vocabulary;
// and the last box seen of an element (heat_elem_box), the page's layout.
// They are kept, so heatmaps of a period still render after a person is
// forgotten, as after retention.
var ForgetTables = []string{"heat_signals", "heat_clicks", "heat_pageviews"}

// ForgetSessions deletes, inside tx, the per-session heatmap rows of the
// sessions ids and returns how many it deleted per table. The rows would
// also go by cascade with their sessions; they are deleted here, before
// the sessions, so a change of the foreign keys cannot leave any behind
// and the report counts them.
func (s *Service) ForgetSessions(ctx context.Context, tx *sqldb.Tx, ids []int64) (map[string]int, error) {
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
			return nil, fmt.Errorf("heatmap: forget %s: %w", t, err)
		}
		n, _ := res.RowsAffected()
		counts[t] = int(n)
	}
	return counts, nil
}

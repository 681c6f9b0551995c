package index

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/trailmap/trailmap/storage/sqldb"
)

// Lock order of sessions rows on PostgreSQL. The ingest's stages write
// sessions rows in transactions that run at once, on one node and across
// nodes: stage 1 the rows of the batches it records, stage 2 (the
// observers) the frustration and conversion counts it derives, the idle
// sweep the rows it closes. A row stays locked until its transaction
// commits, so two transactions that lock two rows in opposite orders
// deadlock, and PostgreSQL breaks that only after deadlock_timeout (a
// second), failing one of them. Every writer therefore locks sessions rows
// in one order, by (project id, public id), compared byte by byte (COLLATE
// "C" here, Go's string order in the recorder's stage 1): stage 1 takes a
// group's batches in that order (its caller sorts them), IdleSessions
// returns sessions in it, and stage 2's writes wait in sessionWrites until
// the end of the transaction, where they lock their rows in it in one
// statement.

// sessionWrites holds a shared transaction's writes of observers' counts
// to sessions rows (PostgreSQL): frustration added, conversions set.
type sessionWrites struct {
	rows map[int64]*sessionWrite
}

type sessionWrite struct {
	rage, dead, errs int64
	counts           bool  // rage, dead or errs to add
	conversions      int64 // -1: not set
}

type sessionWritesKey struct{}

// sessionWritesOf returns tx's buffer of sessions row writes.
func sessionWritesOf(tx *sqldb.Tx) *sessionWrites {
	return tx.Buffer(sessionWritesKey{}, func() sqldb.Buffer { return &sessionWrites{rows: map[int64]*sessionWrite{}} }).(*sessionWrites)
}

func (b *sessionWrites) row(id int64) *sessionWrite {
	w := b.rows[id]
	if w == nil {
		w = &sessionWrite{conversions: -1}
		b.rows[id] = w
	}
	return w
}

// FlushRank implements sqldb.Ranked: the sessions rows are written after
// the observers' own buffers (journey's derive sets conversions here while
// it flushes).
func (b *sessionWrites) FlushRank() int { return sqldb.RankSessionRows }

// Flush locks the rows that change, in the order above, and writes them.
func (b *sessionWrites) Flush(ctx context.Context, tx *sqldb.Tx) error {
	if len(b.rows) == 0 {
		return nil
	}
	ids := slices.Sorted(maps.Keys(b.rows))
	convs, counts := make([]int64, len(ids)), make([]bool, len(ids))
	for i, id := range ids {
		convs[i], counts[i] = b.rows[id].conversions, b.rows[id].counts
	}
	rows, err := tx.SQL().QueryContext(ctx, `
		SELECT s.id FROM sessions s JOIN unnest(?::bigint[], ?::bigint[], ?::boolean[]) AS u(id, conv, counts) ON s.id = u.id
		WHERE u.counts OR (u.conv >= 0 AND s.conversions <> u.conv)
		ORDER BY s.project_id, s.public_id COLLATE "C"
		FOR NO KEY UPDATE OF s`, ids, convs, counts)
	if err != nil {
		return fmt.Errorf("lock sessions: %w", err)
	}
	var locked []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return fmt.Errorf("lock sessions: %w", err)
		}
		locked = append(locked, id)
	}
	if err := rows.Close(); err != nil {
		return fmt.Errorf("lock sessions: %w", err)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("lock sessions: %w", err)
	}
	if len(locked) == 0 {
		clear(b.rows)
		return nil
	}
	rage, dead, errs, conv := make([]int64, len(locked)), make([]int64, len(locked)), make([]int64, len(locked)), make([]int64, len(locked))
	for i, id := range locked {
		w := b.rows[id]
		rage[i], dead[i], errs[i], conv[i] = w.rage, w.dead, w.errs, w.conversions
	}
	clear(b.rows)
	_, err = tx.SQL().ExecContext(ctx, `
		UPDATE sessions s SET rage_clicks = s.rage_clicks + u.rage, dead_clicks = s.dead_clicks + u.dead,
			error_clicks = s.error_clicks + u.errs,
			conversions = CASE WHEN u.conv >= 0 THEN u.conv ELSE s.conversions END
		FROM unnest(?::bigint[], ?::bigint[], ?::bigint[], ?::bigint[], ?::bigint[]) AS u(id, rage, dead, errs, conv)
		WHERE s.id = u.id`, locked, rage, dead, errs, conv)
	if err != nil {
		return fmt.Errorf("write sessions: %w", err)
	}
	return nil
}

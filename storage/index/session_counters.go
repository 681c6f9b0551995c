package index

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/trailmap/trailmap/storage/sqldb"
)

// SessionState is what an observer of the ingest reads of a session inside
// the shared transaction.
type SessionState struct {
	ProjectID int64
	Device    string
	// Observed is how many of the session's batches have been given to the
	// observers, the one being observed included.
	Observed int64
}

// SessionCounters reads and bumps a session's row inside the ingest's
// shared transaction, with statements prepared once on the writer: it is on
// the ingest path, called for every batch.
type SessionCounters struct {
	state, frustration *sql.Stmt
	postgres           bool // frustration waits in sessionWrites
}

// PrepareSessionCounters prepares the statements of SessionCounters. The
// index must have been opened with heatmap's schema too (it adds the
// error_clicks column). Close releases them.
func (db *DB) PrepareSessionCounters(ctx context.Context) (*SessionCounters, error) {
	w := db.db.Write()
	state, err := w.PrepareContext(ctx, `
		SELECT s.project_id, s.device, COALESCE(o.observed_count, 0)
		FROM sessions s LEFT JOIN session_observed o ON o.session_id = s.id WHERE s.id = ?`)
	if err != nil {
		return nil, fmt.Errorf("prepare session state: %w", err)
	}
	frustration, err := w.PrepareContext(ctx, `
		UPDATE sessions SET rage_clicks = rage_clicks + ?, dead_clicks = dead_clicks + ?, error_clicks = error_clicks + ?
		WHERE id = ?`)
	if err != nil {
		state.Close()
		return nil, fmt.Errorf("prepare session frustration: %w", err)
	}
	return &SessionCounters{state: state, frustration: frustration, postgres: db.dialect() == sqldb.Postgres}, nil
}

// Close releases the prepared statements.
func (c *SessionCounters) Close() error {
	return errors.Join(c.state.Close(), c.frustration.Close())
}

// SessionState reads session id (the sessions row id) in tx. A session
// that does not exist is ErrNotFound.
func (c *SessionCounters) SessionState(ctx context.Context, tx *sqldb.Tx, id int64) (SessionState, error) {
	if known, ok := tx.Lookup(observedKey{}).(observedStates); ok {
		if s, ok := known[id]; ok {
			return s, nil
		}
	}
	var s SessionState
	err := tx.SQL().StmtContext(ctx, c.state).QueryRowContext(ctx, id).Scan(&s.ProjectID, &s.Device, &s.Observed)
	if errors.Is(err, sql.ErrNoRows) {
		return s, fmt.Errorf("session %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return s, fmt.Errorf("read session state: %w", err)
	}
	return s, nil
}

// AddFrustration adds to session id's counts of rage, dead and error clicks
// in tx. On PostgreSQL the row is written when tx is flushed (see
// sessionWrites).
func (c *SessionCounters) AddFrustration(ctx context.Context, tx *sqldb.Tx, id int64, rage, dead, errorClicks int) error {
	if c.postgres {
		w := sessionWritesOf(tx).row(id)
		w.rage, w.dead, w.errs = w.rage+int64(rage), w.dead+int64(dead), w.errs+int64(errorClicks)
		w.counts = true
		return nil
	}
	if _, err := tx.SQL().StmtContext(ctx, c.frustration).ExecContext(ctx, rage, dead, errorClicks, id); err != nil {
		return fmt.Errorf("count session frustration: %w", err)
	}
	return nil
}

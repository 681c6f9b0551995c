package index

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// Usage is what a project recorded on one UTC day: sessions started, events
// and raw event bytes.
type Usage struct {
	Sessions, Events, Bytes int64
}

// Add returns u plus v.
func (u Usage) Add(v Usage) Usage {
	return Usage{u.Sessions + v.Sessions, u.Events + v.Events, u.Bytes + v.Bytes}
}

// Sub returns u minus v.
func (u Usage) Sub(v Usage) Usage {
	return Usage{u.Sessions - v.Sessions, u.Events - v.Events, u.Bytes - v.Bytes}
}

// UsageOn returns a project's recorded usage on day (days since 1970-01-01
// UTC); zero when it recorded nothing that day.
func (db *DB) UsageOn(ctx context.Context, projectID, day int64) (Usage, error) {
	var u Usage
	err := db.db.Read().QueryRowContext(ctx,
		`SELECT sessions, events, bytes FROM ingest_usage WHERE project_id = ? AND day = ?`, projectID, day).
		Scan(&u.Sessions, &u.Events, &u.Bytes)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return Usage{}, fmt.Errorf("usage of project %d: %w", projectID, err)
	}
	return u, nil
}

// AddUsage adds u to a project's usage on day, in the ingest's
// transaction, for batches recorded the first time in it.
func (t *IngestTx) AddUsage(ctx context.Context, projectID, day int64, u Usage) error {
	_, err := t.tx.ExecContext(ctx, `
		INSERT INTO ingest_usage (project_id, day, sessions, events, bytes) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (project_id, day) DO UPDATE SET
			sessions = ingest_usage.sessions + excluded.sessions, events = ingest_usage.events + excluded.events,
			bytes = ingest_usage.bytes + excluded.bytes`,
		projectID, day, u.Sessions, u.Events, u.Bytes)
	if err != nil {
		return fmt.Errorf("add usage: %w", err)
	}
	return nil
}

// SetIdentitySecret replaces the secret a project's backend signs user ids
// with; "" removes it.
func (db *DB) SetIdentitySecret(ctx context.Context, projectID int64, secret string) error {
	res, err := db.db.Write().ExecContext(ctx, `UPDATE projects SET identity_secret = ? WHERE id = ?`, secret, projectID)
	if err != nil {
		return fmt.Errorf("set identity secret: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("project %d: %w", projectID, ErrNotFound)
	}
	return nil
}

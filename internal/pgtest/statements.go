package pgtest

import (
	"context"
	"fmt"
)

// Statement is what pg_stat_statements counted for one statement.
type Statement struct {
	Query   string
	Calls   int64
	TotalMS float64 // time spent executing it, in milliseconds
}

// Statements returns the statements run in database db (its name, the
// last element of Database's URL) since the last ResetStatements, most
// called first. With TRAILMAP_PG_STATEMENTS set in the environment the
// server loads pg_stat_statements when it starts; without it, Statements
// returns nil: a benchmark can tell where a database's time goes, say which
// statements of an ingest run most often per batch.
func (s *Server) Statements(ctx context.Context, db string) ([]Statement, error) {
	if !s.statements {
		return nil, nil
	}
	if err := s.statementsView(ctx); err != nil {
		return nil, err
	}
	rows, err := s.admin.QueryContext(ctx, `
		SELECT st.query, st.calls, st.total_exec_time
		FROM pg_stat_statements st JOIN pg_database d ON d.oid = st.dbid
		WHERE d.datname = $1 ORDER BY st.calls DESC, st.query`, db)
	if err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	defer rows.Close()
	var out []Statement
	for rows.Next() {
		var st Statement
		if err := rows.Scan(&st.Query, &st.Calls, &st.TotalMS); err != nil {
			return nil, fmt.Errorf("pgtest: %w", err)
		}
		out = append(out, st)
	}
	return out, rows.Err()
}

// ResetStatements starts the counts of Statements afresh (for every
// database of the server).
func (s *Server) ResetStatements(ctx context.Context) error {
	if !s.statements {
		return nil
	}
	if err := s.statementsView(ctx); err != nil {
		return err
	}
	if _, err := s.admin.ExecContext(ctx, `SELECT pg_stat_statements_reset()`); err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	return nil
}

// statementsView creates the extension's view and functions in the admin
// database (the library itself is loaded at start).
func (s *Server) statementsView(ctx context.Context) error {
	if _, err := s.admin.ExecContext(ctx, `CREATE EXTENSION IF NOT EXISTS pg_stat_statements`); err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	return nil
}

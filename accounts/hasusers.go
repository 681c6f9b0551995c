package accounts

import (
	"context"
	"fmt"
)

// HasUsers says whether any user exists (a fresh install has none until
// its first admin is made).
func (s *Store) HasUsers(ctx context.Context) (bool, error) {
	var exists bool
	if err := s.db.Read().QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM users)`).Scan(&exists); err != nil {
		return false, fmt.Errorf("any user: %w", err)
	}
	return exists, nil
}

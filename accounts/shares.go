package accounts

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/trailmap/trailmap/storage/sqldb"
)

// HintLen is how many first characters of a share token are kept in clear,
// to tell links apart in lists.
const HintLen = 4

// Share is a stored share link: it plays [StartMS, EndMS] of one session.
// The token itself is never stored, only its hash and Hint.
type Share struct {
	ID            int64
	Hint          string
	ProjectID     int64
	SessionRowID  int64 // the session's row id in the index
	StartMS       int64
	EndMS         int64
	Title         string
	Note          string
	CreatedBy     int64 // user id; 0 for an API token or a deleted user
	CreatedByName string
	CreatedAt     time.Time
	ExpiresAt     time.Time
	RevokedAt     *time.Time
	Views         int
	LastViewedAt  *time.Time
	// AllowVideo lets the link's viewers download the clip as a video.
	AllowVideo bool
}

// CreateShare stores sh under the hash of token (at least HintLen long) and
// sets its ID and Hint.
func (s *Store) CreateShare(ctx context.Context, token string, sh *Share) error {
	if len(token) < HintLen {
		return fmt.Errorf("create share: token too short")
	}
	sh.Hint = token[:HintLen]
	err := s.db.Write().QueryRowContext(ctx, `
		INSERT INTO shares (token_hash, token_hint, project_id, session_id, start_ms, end_ms, title, note, created_by, created_by_name, created_at, expires_at, allow_video)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
		hashSecret(token), sh.Hint, sh.ProjectID, sh.SessionRowID, sh.StartMS, sh.EndMS, sh.Title, sh.Note,
		nullID(sh.CreatedBy), sh.CreatedByName, sh.CreatedAt.UnixMilli(), sh.ExpiresAt.UnixMilli(), boolInt(sh.AllowVideo)).Scan(&sh.ID)
	if err != nil {
		return fmt.Errorf("create share: %w", err)
	}
	return nil
}

const shareCols = `id, token_hint, project_id, session_id, start_ms, end_ms, title, note,
	COALESCE(created_by, 0), created_by_name, created_at, expires_at, revoked_at, views, last_viewed_at, allow_video`

func scanShare(sc interface{ Scan(...any) error }) (*Share, error) {
	var sh Share
	var created, expires int64
	var revoked, viewed sql.NullInt64
	var video int
	if err := sc.Scan(&sh.ID, &sh.Hint, &sh.ProjectID, &sh.SessionRowID, &sh.StartMS, &sh.EndMS, &sh.Title, &sh.Note,
		&sh.CreatedBy, &sh.CreatedByName, &created, &expires, &revoked, &sh.Views, &viewed, &video); err != nil {
		return nil, err
	}
	sh.AllowVideo = video != 0
	sh.CreatedAt = time.UnixMilli(created).UTC()
	sh.ExpiresAt = time.UnixMilli(expires).UTC()
	if revoked.Valid {
		t := time.UnixMilli(revoked.Int64).UTC()
		sh.RevokedAt = &t
	}
	if viewed.Valid {
		t := time.UnixMilli(viewed.Int64).UTC()
		sh.LastViewedAt = &t
	}
	return &sh, nil
}

// ShareByToken finds the share of a token by the token's hash, revoked and
// expired ones included; an unknown token wraps ErrNotFound.
func (s *Store) ShareByToken(ctx context.Context, token string) (*Share, error) {
	sh, err := scanShare(s.db.Read().QueryRowContext(ctx, `SELECT `+shareCols+` FROM shares WHERE token_hash = ?`, hashSecret(token)))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("share: %w", ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get share: %w", err)
	}
	return sh, nil
}

// ShareByID loads a share; an unknown id wraps ErrNotFound.
func (s *Store) ShareByID(ctx context.Context, id int64) (*Share, error) {
	sh, err := scanShare(s.db.Read().QueryRowContext(ctx, `SELECT `+shareCols+` FROM shares WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("share %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get share: %w", err)
	}
	return sh, nil
}

// ShareFilter narrows Shares.
type ShareFilter struct {
	ProjectIDs    []int64 // nil: every project
	SessionRowIDs []int64 // nil: every session
	Limit         int     // at most this many (0: 500)
}

// Shares lists share links newest first.
func (s *Store) Shares(ctx context.Context, f ShareFilter) ([]Share, error) {
	if (f.ProjectIDs != nil && len(f.ProjectIDs) == 0) || (f.SessionRowIDs != nil && len(f.SessionRowIDs) == 0) {
		return []Share{}, nil
	}
	q := `SELECT ` + shareCols + ` FROM shares WHERE 1=1`
	var args []any
	if f.ProjectIDs != nil {
		q += ` AND project_id IN ` + sqldb.List(len(f.ProjectIDs))
		for _, p := range f.ProjectIDs {
			args = append(args, p)
		}
	}
	if f.SessionRowIDs != nil {
		q += ` AND session_id IN ` + sqldb.List(len(f.SessionRowIDs))
		for _, id := range f.SessionRowIDs {
			args = append(args, id)
		}
	}
	if f.Limit <= 0 {
		f.Limit = 500
	}
	q += ` ORDER BY created_at DESC, id DESC LIMIT ?`
	args = append(args, f.Limit)
	rows, err := s.db.Read().QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list shares: %w", err)
	}
	defer rows.Close()
	out := []Share{}
	for rows.Next() {
		sh, err := scanShare(rows)
		if err != nil {
			return nil, fmt.Errorf("scan share: %w", err)
		}
		out = append(out, *sh)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list shares: %w", err)
	}
	return out, nil
}

// CountShareView records that a share link was opened at.
func (s *Store) CountShareView(ctx context.Context, id int64, at time.Time) error {
	if _, err := s.db.Write().ExecContext(ctx, `UPDATE shares SET views = views + 1, last_viewed_at = ? WHERE id = ?`, at.UnixMilli(), id); err != nil {
		return fmt.Errorf("count share view: %w", err)
	}
	return nil
}

// RevokeShare ends a share link at; a link revoked before keeps its time.
func (s *Store) RevokeShare(ctx context.Context, id int64, at time.Time) error {
	if _, err := s.db.Write().ExecContext(ctx, `UPDATE shares SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL`, at.UnixMilli(), id); err != nil {
		return fmt.Errorf("revoke share: %w", err)
	}
	return nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

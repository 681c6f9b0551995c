package ui

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/trailmap/trailmap/storage/index"
)

// Share is a link that plays one range of one session to anyone holding it.
// Its token is only known when it is created; the index keeps its hash.
type Share struct {
	ID        int64  `json:"id"`
	Hint      string `json:"hint"` // first characters of the token
	ProjectID int64  `json:"project_id"`
	SessionID string `json:"session_id"` // public id (never shown on the public page)
	StartMS   int64  `json:"start_ms"`
	EndMS     int64  `json:"end_ms"`
	Title     string `json:"title"`
	Note      string `json:"note"`
	CreatedBy string `json:"created_by"`
	// State is "active", "expired" or "revoked".
	State        string     `json:"state"`
	CreatedAt    time.Time  `json:"created_at"`
	ExpiresAt    time.Time  `json:"expires_at"`
	RevokedAt    *time.Time `json:"revoked_at,omitempty"`
	Views        int        `json:"views"`
	LastViewedAt *time.Time `json:"last_viewed_at,omitempty"`
}

// ShareInput is what a new share link is made of.
type ShareInput struct {
	Session       *index.Session
	StartMS       int64
	EndMS         int64
	Title         string
	Note          string
	ExpiresIn     time.Duration // 0: DefaultShareExpiry
	CreatedBy     int64         // user id, 0 for an API token
	CreatedByName string
}

// Share link limits.
const (
	DefaultShareExpiry = 30 * 24 * time.Hour
	MaxShareExpiry     = 366 * 24 * time.Hour
	maxTitle           = 200
	maxNote            = 4000
	shareTokenBytes    = 24 // 192 bits
	hintLen            = 4
)

// CreateShare stores a share link and returns it with its secret token.
func (s *Service) CreateShare(ctx context.Context, in ShareInput) (*Share, string, error) {
	if in.Session == nil {
		return nil, "", invalid("session is required")
	}
	dur := in.Session.DurationMS
	switch {
	case in.StartMS < 0:
		return nil, "", invalid("start_ms must not be negative")
	case in.EndMS <= in.StartMS:
		return nil, "", invalid("end_ms must be after start_ms")
	case in.StartMS >= dur && dur > 0:
		return nil, "", invalid(fmt.Sprintf("start_ms must be before the end of the recording (%d ms)", dur))
	}
	if in.EndMS > dur && !in.Session.Live {
		in.EndMS = dur
	}
	in.Title = strings.TrimSpace(in.Title)
	if in.Title == "" {
		in.Title = "Clip at " + FormatOffset(in.StartMS)
	}
	if utf8.RuneCountInString(in.Title) > maxTitle {
		return nil, "", invalid(fmt.Sprintf("title must be at most %d characters", maxTitle))
	}
	in.Note = strings.TrimSpace(in.Note)
	if utf8.RuneCountInString(in.Note) > maxNote {
		return nil, "", invalid(fmt.Sprintf("note must be at most %d characters", maxNote))
	}
	if in.ExpiresIn == 0 {
		in.ExpiresIn = DefaultShareExpiry
	}
	if in.ExpiresIn < time.Minute || in.ExpiresIn > MaxShareExpiry {
		return nil, "", invalid("expiry must be from 1 minute to 366 days")
	}
	now := s.now().UTC().Truncate(time.Millisecond)
	token := index.NewSecret(shareTokenBytes)
	sh := &Share{
		Hint: token[:hintLen], ProjectID: in.Session.ProjectID, SessionID: in.Session.ID,
		StartMS: in.StartMS, EndMS: in.EndMS, Title: in.Title, Note: in.Note, CreatedBy: in.CreatedByName,
		State: "active", CreatedAt: now, ExpiresAt: now.Add(in.ExpiresIn),
	}
	var createdBy any
	if in.CreatedBy != 0 {
		createdBy = in.CreatedBy
	}
	res, err := s.db.Write().ExecContext(ctx, `
		INSERT INTO shares (token_hash, token_hint, project_id, session_id, start_ms, end_ms, title, note, created_by, created_by_name, created_at, expires_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		hashSecret(token), sh.Hint, sh.ProjectID, in.Session.RowID, sh.StartMS, sh.EndMS, sh.Title, sh.Note,
		createdBy, sh.CreatedBy, now.UnixMilli(), sh.ExpiresAt.UnixMilli())
	if err != nil {
		return nil, "", fmt.Errorf("create share: %w", err)
	}
	sh.ID, _ = res.LastInsertId()
	return sh, token, nil
}

const shareCols = `sh.id, sh.token_hint, sh.project_id, s.public_id, sh.start_ms, sh.end_ms, sh.title, sh.note,
	sh.created_by_name, sh.created_at, sh.expires_at, sh.revoked_at, sh.views, sh.last_viewed_at`

func (s *Service) scanShare(sc interface{ Scan(...any) error }) (*Share, error) {
	var sh Share
	var created, expires int64
	var revoked, viewed sql.NullInt64
	if err := sc.Scan(&sh.ID, &sh.Hint, &sh.ProjectID, &sh.SessionID, &sh.StartMS, &sh.EndMS, &sh.Title, &sh.Note,
		&sh.CreatedBy, &created, &expires, &revoked, &sh.Views, &viewed); err != nil {
		return nil, err
	}
	sh.CreatedAt = time.UnixMilli(created).UTC()
	sh.ExpiresAt = time.UnixMilli(expires).UTC()
	sh.State = "active"
	if !sh.ExpiresAt.After(s.now()) {
		sh.State = "expired"
	}
	if revoked.Valid {
		t := time.UnixMilli(revoked.Int64).UTC()
		sh.RevokedAt, sh.State = &t, "revoked"
	}
	if viewed.Valid {
		t := time.UnixMilli(viewed.Int64).UTC()
		sh.LastViewedAt = &t
	}
	return &sh, nil
}

// ShareByToken finds the share of a token. Every token takes the same path:
// it is hashed and looked up by hash, never compared as text. An unknown
// token wraps index.ErrNotFound; a revoked or expired one returns the share
// and ErrGone.
func (s *Service) ShareByToken(ctx context.Context, token string) (*Share, error) {
	row := s.db.Read().QueryRowContext(ctx, `SELECT `+shareCols+` FROM shares sh JOIN sessions s ON s.id = sh.session_id
		WHERE sh.token_hash = ?`, hashSecret(token))
	sh, err := s.scanShare(row)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("share: %w", index.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get share: %w", err)
	}
	if sh.State != "active" {
		return sh, ErrGone
	}
	return sh, nil
}

// CountView records that a share link was opened.
func (s *Service) CountView(ctx context.Context, id int64) error {
	if _, err := s.db.Write().ExecContext(ctx, `UPDATE shares SET views = views + 1, last_viewed_at = ? WHERE id = ?`, s.now().UnixMilli(), id); err != nil {
		return fmt.Errorf("count share view: %w", err)
	}
	return nil
}

// ShareFilter narrows Shares.
type ShareFilter struct {
	ProjectIDs []int64 // nil: every project
	SessionID  string  // public id; empty: every session
}

// Shares lists share links newest first (at most 500).
func (s *Service) Shares(ctx context.Context, f ShareFilter) ([]Share, error) {
	q := `SELECT ` + shareCols + ` FROM shares sh JOIN sessions s ON s.id = sh.session_id WHERE 1=1`
	var args []any
	if f.ProjectIDs != nil {
		if len(f.ProjectIDs) == 0 {
			return []Share{}, nil
		}
		q += ` AND sh.project_id IN ` + index.List(len(f.ProjectIDs))
		for _, p := range f.ProjectIDs {
			args = append(args, p)
		}
	}
	if f.SessionID != "" {
		q += ` AND s.public_id = ?`
		args = append(args, f.SessionID)
	}
	q += ` ORDER BY sh.created_at DESC, sh.id DESC LIMIT 500`
	rows, err := s.db.Read().QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list shares: %w", err)
	}
	defer rows.Close()
	out := []Share{}
	for rows.Next() {
		sh, err := s.scanShare(rows)
		if err != nil {
			return nil, fmt.Errorf("scan share: %w", err)
		}
		out = append(out, *sh)
	}
	return out, rows.Err()
}

// ShareByID loads a share of one of projectIDs (nil: any project).
func (s *Service) ShareByID(ctx context.Context, projectIDs []int64, id int64) (*Share, error) {
	sh, err := s.scanShare(s.db.Read().QueryRowContext(ctx, `SELECT `+shareCols+` FROM shares sh JOIN sessions s ON s.id = sh.session_id WHERE sh.id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) || (err == nil && projectIDs != nil && !containsID(projectIDs, sh.ProjectID)) {
		return nil, fmt.Errorf("share %d: %w", id, index.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get share: %w", err)
	}
	return sh, nil
}

// RevokeShare ends a share link now; revoking twice is not an error.
func (s *Service) RevokeShare(ctx context.Context, projectIDs []int64, id int64) (*Share, error) {
	if _, err := s.ShareByID(ctx, projectIDs, id); err != nil {
		return nil, err
	}
	if _, err := s.db.Write().ExecContext(ctx, `UPDATE shares SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL`, s.now().UnixMilli(), id); err != nil {
		return nil, fmt.Errorf("revoke share: %w", err)
	}
	return s.ShareByID(ctx, projectIDs, id)
}

func containsID(ids []int64, id int64) bool {
	for _, v := range ids {
		if v == id {
			return true
		}
	}
	return false
}

// FormatOffset writes ms as m:ss (or h:mm:ss).
func FormatOffset(ms int64) string {
	sec := ms / 1000
	if sec >= 3600 {
		return fmt.Sprintf("%d:%02d:%02d", sec/3600, sec/60%60, sec%60)
	}
	return fmt.Sprintf("%d:%02d", sec/60, sec%60)
}

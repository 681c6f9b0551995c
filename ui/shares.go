package ui

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/trailmap/trailmap/accounts"
	"github.com/trailmap/trailmap/storage/index"
)

// Share is a link that plays one range of one session to anyone holding it,
// as the API shows it. Its token is only known when it is created; the
// accounts store keeps its hash.
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
	// AllowVideo lets the link's viewers download the clip as a video
	// or GIF.
	AllowVideo bool `json:"allow_video"`
	// SessionRowID is the session's row in the index.
	SessionRowID int64 `json:"-"`
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
	AllowVideo    bool // viewers may download a video of the clip
}

// Share link limits.
const (
	DefaultShareExpiry = 30 * 24 * time.Hour
	MaxShareExpiry     = 366 * 24 * time.Hour
	maxTitle           = 200
	maxNote            = 4000
	shareTokenBytes    = 24 // 192 bits
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
	row := &accounts.Share{
		ProjectID: in.Session.ProjectID, SessionRowID: in.Session.RowID,
		StartMS: in.StartMS, EndMS: in.EndMS, Title: in.Title, Note: in.Note,
		CreatedBy: in.CreatedBy, CreatedByName: in.CreatedByName,
		CreatedAt: now, ExpiresAt: now.Add(in.ExpiresIn), AllowVideo: in.AllowVideo,
	}
	if err := s.acc.CreateShare(ctx, token, row); err != nil {
		return nil, "", err
	}
	return s.share(row, in.Session.ID), token, nil
}

// share is a stored share as the API shows it, with its state as of now.
func (s *Service) share(row *accounts.Share, sessionID string) *Share {
	sh := &Share{
		ID: row.ID, Hint: row.Hint, ProjectID: row.ProjectID, SessionID: sessionID,
		StartMS: row.StartMS, EndMS: row.EndMS, Title: row.Title, Note: row.Note, CreatedBy: row.CreatedByName,
		State: "active", CreatedAt: row.CreatedAt, ExpiresAt: row.ExpiresAt, RevokedAt: row.RevokedAt,
		Views: row.Views, LastViewedAt: row.LastViewedAt, AllowVideo: row.AllowVideo, SessionRowID: row.SessionRowID,
	}
	if !sh.ExpiresAt.After(s.now()) {
		sh.State = "expired"
	}
	if sh.RevokedAt != nil {
		sh.State = "revoked"
	}
	return sh
}

// shares turns stored shares into the API's, leaving out those whose
// session no longer exists.
func (s *Service) shares(ctx context.Context, rows []accounts.Share) ([]Share, error) {
	ids := make([]int64, 0, len(rows))
	for _, r := range rows {
		ids = append(ids, r.SessionRowID)
	}
	pub, err := s.sessions.SessionPublicIDs(ctx, ids)
	if err != nil {
		return nil, err
	}
	out := make([]Share, 0, len(rows))
	for i := range rows {
		if id, ok := pub[rows[i].SessionRowID]; ok {
			out = append(out, *s.share(&rows[i], id))
		}
	}
	return out, nil
}

// one is the API's share of a stored one; a share of a deleted session is
// not found.
func (s *Service) one(ctx context.Context, row *accounts.Share) (*Share, error) {
	list, err := s.shares(ctx, []accounts.Share{*row})
	if err != nil {
		return nil, err
	}
	if len(list) == 0 {
		return nil, fmt.Errorf("share %d: %w", row.ID, accounts.ErrNotFound)
	}
	return &list[0], nil
}

// ShareByToken finds the share of a token. Every token takes the same path:
// it is hashed and looked up by hash, never compared as text. An unknown
// token wraps accounts.ErrNotFound; a revoked or expired one returns the
// share and ErrGone.
func (s *Service) ShareByToken(ctx context.Context, token string) (*Share, error) {
	row, err := s.acc.ShareByToken(ctx, token)
	if err != nil {
		return nil, err
	}
	sh, err := s.one(ctx, row)
	if err != nil {
		return nil, err
	}
	if sh.State != "active" {
		return sh, ErrGone
	}
	return sh, nil
}

// CountView records that a share link was opened.
func (s *Service) CountView(ctx context.Context, id int64) error {
	return s.acc.CountShareView(ctx, id, s.now())
}

// ShareFilter narrows Shares.
type ShareFilter struct {
	ProjectIDs []int64 // nil: every project
	SessionID  string  // public id; empty: every session
}

// Shares lists share links newest first (at most 500).
func (s *Service) Shares(ctx context.Context, f ShareFilter) ([]Share, error) {
	af := accounts.ShareFilter{ProjectIDs: f.ProjectIDs, Limit: 500}
	if f.SessionID != "" {
		ids, err := s.sessions.SessionRowIDs(ctx, f.ProjectIDs, f.SessionID)
		if err != nil {
			return nil, err
		}
		af.SessionRowIDs = ids
	}
	rows, err := s.acc.Shares(ctx, af)
	if err != nil {
		return nil, err
	}
	return s.shares(ctx, rows)
}

// ShareByID loads a share of one of projectIDs (nil: any project).
func (s *Service) ShareByID(ctx context.Context, projectIDs []int64, id int64) (*Share, error) {
	row, err := s.acc.ShareByID(ctx, id)
	if err != nil {
		return nil, err
	}
	if projectIDs != nil && !containsID(projectIDs, row.ProjectID) {
		return nil, fmt.Errorf("share %d: %w", id, accounts.ErrNotFound)
	}
	return s.one(ctx, row)
}

// RevokeShare ends a share link now; revoking twice is not an error.
func (s *Service) RevokeShare(ctx context.Context, projectIDs []int64, id int64) (*Share, error) {
	if _, err := s.ShareByID(ctx, projectIDs, id); err != nil {
		return nil, err
	}
	if err := s.acc.RevokeShare(ctx, id, s.now()); err != nil {
		return nil, err
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

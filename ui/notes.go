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

// AddNote pins a note at offsetMS of a session.
func (s *Service) AddNote(ctx context.Context, sess *index.Session, offsetMS int64, body string, authorID int64, author string) (*accounts.Note, error) {
	body = strings.TrimSpace(body)
	if body == "" {
		return nil, invalid("note must not be empty")
	}
	if utf8.RuneCountInString(body) > maxNote {
		return nil, invalid(fmt.Sprintf("note must be at most %d characters", maxNote))
	}
	if offsetMS < 0 {
		return nil, invalid("offset_ms must not be negative")
	}
	n := &accounts.Note{OffsetMS: offsetMS, Body: body, Author: author, AuthorID: authorID, CreatedAt: s.now().UTC().Truncate(time.Millisecond)}
	if err := s.acc.AddNote(ctx, sess.RowID, n); err != nil {
		return nil, err
	}
	return n, nil
}

// Notes lists a session's notes in timeline order.
func (s *Service) Notes(ctx context.Context, sess *index.Session) ([]accounts.Note, error) {
	return s.acc.Notes(ctx, sess.RowID)
}

// DeleteNote removes a note of sess; only its author or an admin may.
func (s *Service) DeleteNote(ctx context.Context, sess *index.Session, id int64, u *accounts.User) error {
	n, err := s.acc.NoteByID(ctx, sess.RowID, id)
	if err != nil {
		return err
	}
	if u == nil || (u.Role != accounts.RoleAdmin && (n.AuthorID == 0 || n.AuthorID != u.ID)) {
		return fmt.Errorf("%w: only the note's author or an admin may delete it", ErrNotAllowed)
	}
	return s.acc.DeleteNote(ctx, id)
}

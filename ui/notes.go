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

// Note is a comment pinned to a moment of a recording, seen by the team.
type Note struct {
	ID        int64     `json:"id"`
	OffsetMS  int64     `json:"offset_ms"`
	Body      string    `json:"body"`
	Author    string    `json:"author"`
	AuthorID  int64     `json:"author_id,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// AddNote pins a note at offsetMS of a session.
func (s *Service) AddNote(ctx context.Context, sess *index.Session, offsetMS int64, body string, authorID int64, author string) (*Note, error) {
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
	n := &Note{OffsetMS: offsetMS, Body: body, Author: author, AuthorID: authorID, CreatedAt: s.now().UTC().Truncate(time.Millisecond)}
	var aid any
	if authorID != 0 {
		aid = authorID
	}
	res, err := s.db.Write().ExecContext(ctx, `INSERT INTO notes (session_id, offset_ms, body, author_id, author, created_at) VALUES (?, ?, ?, ?, ?, ?)`,
		sess.RowID, offsetMS, body, aid, author, n.CreatedAt.UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("add note: %w", err)
	}
	n.ID, _ = res.LastInsertId()
	return n, nil
}

// Notes lists a session's notes in timeline order.
func (s *Service) Notes(ctx context.Context, sess *index.Session) ([]Note, error) {
	rows, err := s.db.Read().QueryContext(ctx, `SELECT id, offset_ms, body, author, COALESCE(author_id, 0), created_at
		FROM notes WHERE session_id = ? ORDER BY offset_ms, id LIMIT 2000`, sess.RowID)
	if err != nil {
		return nil, fmt.Errorf("list notes: %w", err)
	}
	defer rows.Close()
	out := []Note{}
	for rows.Next() {
		var n Note
		var created int64
		if err := rows.Scan(&n.ID, &n.OffsetMS, &n.Body, &n.Author, &n.AuthorID, &created); err != nil {
			return nil, fmt.Errorf("scan note: %w", err)
		}
		n.CreatedAt = time.UnixMilli(created).UTC()
		out = append(out, n)
	}
	return out, rows.Err()
}

// DeleteNote removes a note of sess; only its author or an admin may.
func (s *Service) DeleteNote(ctx context.Context, sess *index.Session, id int64, u *User) error {
	var author sql.NullInt64
	err := s.db.Read().QueryRowContext(ctx, `SELECT author_id FROM notes WHERE id = ? AND session_id = ?`, id, sess.RowID).Scan(&author)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("note %d: %w", id, index.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("get note: %w", err)
	}
	if u == nil || (u.Role != "admin" && (!author.Valid || author.Int64 != u.ID)) {
		return fmt.Errorf("%w: only the note's author or an admin may delete it", ErrNotAllowed)
	}
	if _, err := s.db.Write().ExecContext(ctx, `DELETE FROM notes WHERE id = ?`, id); err != nil {
		return fmt.Errorf("delete note: %w", err)
	}
	return nil
}

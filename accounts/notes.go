package accounts

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Note is a comment pinned to a moment of a recording, seen by the team.
type Note struct {
	ID       int64  `json:"id"`
	OffsetMS int64  `json:"offset_ms"`
	Body     string `json:"body"`
	Author   string `json:"author"`
	// AuthorID is the author's user id; 0 for an API token or a deleted user.
	AuthorID  int64     `json:"author_id,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// AddNote stores n on the session of row id sessionRowID and sets n.ID.
func (s *Store) AddNote(ctx context.Context, sessionRowID int64, n *Note) error {
	err := s.db.Write().QueryRowContext(ctx, `INSERT INTO notes (session_id, offset_ms, body, author_id, author, created_at) VALUES (?, ?, ?, ?, ?, ?) RETURNING id`,
		sessionRowID, n.OffsetMS, n.Body, nullID(n.AuthorID), n.Author, n.CreatedAt.UnixMilli()).Scan(&n.ID)
	if err != nil {
		return fmt.Errorf("add note: %w", err)
	}
	return nil
}

const noteCols = `id, offset_ms, body, author, COALESCE(author_id, 0), created_at`

func scanNote(sc interface{ Scan(...any) error }) (*Note, error) {
	var n Note
	var created int64
	if err := sc.Scan(&n.ID, &n.OffsetMS, &n.Body, &n.Author, &n.AuthorID, &created); err != nil {
		return nil, err
	}
	n.CreatedAt = time.UnixMilli(created).UTC()
	return &n, nil
}

// Notes lists the notes of a session in timeline order (at most 2000).
func (s *Store) Notes(ctx context.Context, sessionRowID int64) ([]Note, error) {
	rows, err := s.db.Read().QueryContext(ctx, `SELECT `+noteCols+` FROM notes WHERE session_id = ? ORDER BY offset_ms, id LIMIT 2000`, sessionRowID)
	if err != nil {
		return nil, fmt.Errorf("list notes: %w", err)
	}
	defer rows.Close()
	out := []Note{}
	for rows.Next() {
		n, err := scanNote(rows)
		if err != nil {
			return nil, fmt.Errorf("scan note: %w", err)
		}
		out = append(out, *n)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list notes: %w", err)
	}
	return out, nil
}

// NoteByID loads note id of the session of row id sessionRowID; a note of
// another session, or none, wraps ErrNotFound.
func (s *Store) NoteByID(ctx context.Context, sessionRowID, id int64) (*Note, error) {
	n, err := scanNote(s.db.Read().QueryRowContext(ctx, `SELECT `+noteCols+` FROM notes WHERE id = ? AND session_id = ?`, id, sessionRowID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("note %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get note: %w", err)
	}
	return n, nil
}

// DeleteNote deletes a note; an unknown one is no error.
func (s *Store) DeleteNote(ctx context.Context, id int64) error {
	if _, err := s.db.Write().ExecContext(ctx, `DELETE FROM notes WHERE id = ?`, id); err != nil {
		return fmt.Errorf("delete note: %w", err)
	}
	return nil
}

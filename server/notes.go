package server

import (
	"context"
	"fmt"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/trailmap/trailmap/accounts"
	"github.com/trailmap/trailmap/storage/index"
)

// Notes is what the server needs of timeline notes.
type Notes interface {
	AddNote(ctx context.Context, sess *index.Session, offsetMS int64, body string, authorID int64, author string) (*accounts.Note, error)
	Notes(ctx context.Context, sess *index.Session) ([]accounts.Note, error)
	// DeleteNote returns ui.ErrNotAllowed unless u wrote the note or is an admin.
	DeleteNote(ctx context.Context, sess *index.Session, id int64, u *accounts.User) error
}

type noteHandlers struct {
	s     *Server
	notes Notes
}

// noteView is a note with whether the caller may delete it.
type noteView struct {
	accounts.Note
	CanDelete bool `json:"can_delete"`
}

// actor is the caller as the notes see it: API tokens act as admins.
func actor(p *Principal) *accounts.User {
	if p.Kind == "user" {
		role := "member"
		if p.ProjectIDs == nil {
			role = "admin"
		}
		return &accounts.User{ID: p.UserID, Email: p.Name, Role: role}
	}
	return &accounts.User{Email: "API token " + p.Name, Role: "admin"}
}

func (h *noteHandlers) list(c echo.Context) error {
	sess, err := h.s.session(c)
	if err != nil {
		return err
	}
	list, err := h.notes.Notes(c.Request().Context(), sess)
	if err != nil {
		return err
	}
	me := actor(principal(c))
	out := make([]noteView, 0, len(list))
	for _, n := range list {
		out = append(out, noteView{n, me.Role == "admin" || (me.ID != 0 && n.AuthorID == me.ID)})
	}
	return c.JSON(http.StatusOK, map[string]any{"notes": out})
}

func (h *noteHandlers) add(c echo.Context) error {
	sess, err := h.s.session(c)
	if err != nil {
		return err
	}
	var in struct {
		OffsetMS *int64 `json:"offset_ms"`
		Body     string `json:"body"`
	}
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	if in.OffsetMS == nil {
		return badRequest{"offset_ms is required"}
	}
	me := actor(principal(c))
	n, err := h.notes.AddNote(c.Request().Context(), sess, *in.OffsetMS, in.Body, me.ID, me.Email)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, noteView{*n, true})
}

func (h *noteHandlers) remove(c echo.Context) error {
	sess, err := h.s.session(c)
	if err != nil {
		return err
	}
	id, err := strconv.ParseInt(c.Param("note"), 10, 64)
	if err != nil || id <= 0 {
		return badRequest{"note id must be a positive number"}
	}
	if err := h.notes.DeleteNote(c.Request().Context(), sess, id, actor(principal(c))); err != nil {
		return err
	}
	h.s.audit(c, "note.delete", fmt.Sprintf("note %d of session %s", id, sess.ID), sess.ProjectID, nil)
	return c.NoContent(http.StatusNoContent)
}

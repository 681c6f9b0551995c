package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/trailmap/trailmap/journey"
)

// Audiences keeps audiences (saved segments) and computes their members
// (journey). Bad input wraps journey.ErrInvalid; a missing audience wraps
// index.ErrNotFound.
type Audiences interface {
	CreateAudience(ctx context.Context, a journey.Audience) (*journey.Audience, error)
	UpdateAudience(ctx context.Context, a journey.Audience) (*journey.Audience, error)
	Audience(ctx context.Context, id int64) (*journey.Audience, error)
	Audiences(ctx context.Context, projectID int64) ([]journey.Audience, error)
	DeleteAudience(ctx context.Context, id int64) error
	Members(ctx context.Context, a *journey.Audience) (*journey.AudienceMembers, error)
}

// audienceBody is an audience as clients send it.
type audienceBody struct {
	Project    projectRef      `json:"project"`
	Name       string          `json:"name"`
	Segment    json.RawMessage `json:"segment"`
	WindowDays int             `json:"window_days"`
}

func (b audienceBody) audience() (journey.Audience, error) {
	a := journey.Audience{Name: b.Name, WindowDays: b.WindowDays}
	if len(b.Segment) > 0 && string(b.Segment) != "null" {
		seg, err := segmentParam(string(b.Segment))
		if err != nil {
			return a, err
		}
		a.Segment = seg
	}
	return a, nil
}

func (s *Server) listAudiences(c echo.Context) error {
	id, err := s.projectFor(c, c.QueryParam("project"))
	if err != nil {
		return err
	}
	as, err := s.deps.Extra.Audiences.Audiences(c.Request().Context(), id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"audiences": as})
}

func (s *Server) createAudience(c echo.Context) error {
	var b audienceBody
	if err := bindJSON(c, &b); err != nil {
		return err
	}
	id, err := s.projectFor(c, string(b.Project))
	if err != nil {
		return err
	}
	a, err := b.audience()
	if err != nil {
		return err
	}
	a.ProjectID = id
	out, err := s.deps.Extra.Audiences.CreateAudience(c.Request().Context(), a)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, out)
}

func (s *Server) audience(c echo.Context) (*journey.Audience, error) {
	id, err := idParam(c)
	if err != nil {
		return nil, err
	}
	a, err := s.deps.Extra.Audiences.Audience(c.Request().Context(), id)
	if err != nil {
		return nil, err
	}
	return a, visible(c, a.ProjectID, "audience", id)
}

func (s *Server) getAudience(c echo.Context) error {
	a, err := s.audience(c)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, a)
}

func (s *Server) updateAudience(c echo.Context) error {
	a, err := s.audience(c)
	if err != nil {
		return err
	}
	var b audienceBody
	if err := bindJSON(c, &b); err != nil {
		return err
	}
	if b.Project != "" {
		return badRequest{"an audience cannot move to another project"}
	}
	na, err := b.audience()
	if err != nil {
		return err
	}
	na.ID, na.ProjectID = a.ID, a.ProjectID
	out, err := s.deps.Extra.Audiences.UpdateAudience(c.Request().Context(), na)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}

func (s *Server) deleteAudience(c echo.Context) error {
	a, err := s.audience(c)
	if err != nil {
		return err
	}
	if err := s.deps.Extra.Audiences.DeleteAudience(c.Request().Context(), a.ID); err != nil {
		return err
	}
	s.audit(c, "audience.delete", fmt.Sprintf("audience %d %s", a.ID, a.Name), a.ProjectID, nil)
	return c.NoContent(http.StatusNoContent)
}

func (s *Server) audienceMembers(c echo.Context) error {
	a, err := s.audience(c)
	if err != nil {
		return err
	}
	limit, err := intParam(c, "limit", 100, 1, 1000)
	if err != nil {
		return err
	}
	m, err := s.deps.Extra.Audiences.Members(c.Request().Context(), a)
	if err != nil {
		return err
	}
	total := len(m.Members)
	if len(m.Members) > limit {
		m.Members = m.Members[:limit]
	}
	return c.JSON(http.StatusOK, map[string]any{"audience": a, "people": m.People, "visitors": total, "members": m.Members})
}

func (s *Server) audienceMembersCSV(c echo.Context) error {
	a, err := s.audience(c)
	if err != nil {
		return err
	}
	m, err := s.deps.Extra.Audiences.Members(c.Request().Context(), a)
	if err != nil {
		return err
	}
	h := c.Response().Header()
	h.Set(echo.HeaderContentType, "text/csv; charset=utf-8")
	h.Set("Cache-Control", "private, no-store")
	h.Set(echo.HeaderContentDisposition, fmt.Sprintf(`attachment; filename="audience-%d.csv"`, a.ID))
	c.Response().WriteHeader(http.StatusOK)
	return journey.WriteMembersCSV(c.Response(), m.Members)
}

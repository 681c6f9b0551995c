package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/trailmap/trailmap/journey"
)

// Funnels runs funnels and keeps saved ones (journey). Bad input wraps
// journey.ErrInvalid; a missing saved funnel wraps index.ErrNotFound.
type Funnels interface {
	RunFunnel(ctx context.Context, q journey.FunnelQuery) (*journey.FunnelResult, error)
	FunnelSessions(ctx context.Context, q journey.FunnelSessionsQuery) (*journey.SessionPage, error)
	CreateFunnel(ctx context.Context, projectID int64, name string, def journey.FunnelDef) (*journey.Funnel, error)
	UpdateFunnel(ctx context.Context, id int64, name string, def journey.FunnelDef) (*journey.Funnel, error)
	Funnel(ctx context.Context, id int64) (*journey.Funnel, error)
	Funnels(ctx context.Context, projectID int64) ([]journey.Funnel, error)
	DeleteFunnel(ctx context.Context, id int64) error
}

// funnelBody is a saved funnel as clients send it.
type funnelBody struct {
	Project projectRef `json:"project"`
	Name    string     `json:"name"`
	journey.FunnelDef
}

func (s *Server) listFunnels(c echo.Context) error {
	id, err := s.projectFor(c, c.QueryParam("project"))
	if err != nil {
		return err
	}
	fs, err := s.deps.Extra.Funnels.Funnels(c.Request().Context(), id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"funnels": fs})
}

func (s *Server) createFunnel(c echo.Context) error {
	var b funnelBody
	if err := bindJSON(c, &b); err != nil {
		return err
	}
	id, err := s.projectFor(c, string(b.Project))
	if err != nil {
		return err
	}
	f, err := s.deps.Extra.Funnels.CreateFunnel(c.Request().Context(), id, b.Name, b.FunnelDef)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, f)
}

// funnel loads the :id funnel if the caller may see it.
func (s *Server) funnel(c echo.Context) (*journey.Funnel, error) {
	id, err := idParam(c)
	if err != nil {
		return nil, err
	}
	f, err := s.deps.Extra.Funnels.Funnel(c.Request().Context(), id)
	if err != nil {
		return nil, err
	}
	return f, visible(c, f.ProjectID, "funnel", id)
}

func (s *Server) getFunnel(c echo.Context) error {
	f, err := s.funnel(c)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, f)
}

func (s *Server) updateFunnel(c echo.Context) error {
	f, err := s.funnel(c)
	if err != nil {
		return err
	}
	var b funnelBody
	if err := bindJSON(c, &b); err != nil {
		return err
	}
	if b.Project != "" {
		return badRequest{"a funnel cannot move to another project"}
	}
	f, err = s.deps.Extra.Funnels.UpdateFunnel(c.Request().Context(), f.ID, b.Name, b.FunnelDef)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, f)
}

func (s *Server) deleteFunnel(c echo.Context) error {
	f, err := s.funnel(c)
	if err != nil {
		return err
	}
	if err := s.deps.Extra.Funnels.DeleteFunnel(c.Request().Context(), f.ID); err != nil {
		return err
	}
	s.audit(c, "funnel.delete", fmt.Sprintf("funnel %d %s", f.ID, f.Name), f.ProjectID, nil)
	return c.NoContent(http.StatusNoContent)
}

// funnelQueryParams reads from, to, split and segment of a saved funnel's
// results and sessions.
func (s *Server) funnelQueryParams(c echo.Context, f *journey.Funnel) (journey.FunnelQuery, error) {
	q := journey.FunnelQuery{ProjectID: f.ProjectID, Def: f.FunnelDef, Split: c.QueryParam("split")}
	var err error
	if q.From, q.To, err = s.timeRange(c.QueryParam("from"), c.QueryParam("to")); err != nil {
		return q, err
	}
	if q.Segment, err = segmentParam(c.QueryParam("segment")); err != nil {
		return q, err
	}
	return q, nil
}

func (s *Server) funnelResults(c echo.Context) error {
	f, err := s.funnel(c)
	if err != nil {
		return err
	}
	q, err := s.funnelQueryParams(c, f)
	if err != nil {
		return err
	}
	res, err := s.deps.Extra.Funnels.RunFunnel(c.Request().Context(), q)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, struct {
		Funnel *journey.Funnel `json:"funnel"`
		*journey.FunnelResult
	}{f, res})
}

func (s *Server) funnelSessions(c echo.Context) error {
	f, err := s.funnel(c)
	if err != nil {
		return err
	}
	fq, err := s.funnelQueryParams(c, f)
	if err != nil {
		return err
	}
	q := journey.FunnelSessionsQuery{FunnelQuery: fq, Status: c.QueryParam("status"), Cursor: c.QueryParam("cursor")}
	if q.Step, err = intParam(c, "step", 0, 1, 100); err != nil {
		return err
	}
	if q.Step == 0 {
		return badRequest{"step is required (1 for the first step)"}
	}
	if q.Limit, err = intParam(c, "limit", 50, 1, 500); err != nil {
		return err
	}
	if v, ok := c.QueryParams()["split_value"]; ok && len(v) > 0 {
		q.SplitValue = &v[0]
	}
	page, err := s.deps.Extra.Funnels.FunnelSessions(c.Request().Context(), q)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, page)
}

// adHocFunnel is the body of POST /funnels/query and /funnels/query/sessions.
type adHocFunnel struct {
	Project projectRef `json:"project"`
	journey.FunnelDef
	From    string          `json:"from"`
	To      string          `json:"to"`
	Split   string          `json:"split"`
	Segment json.RawMessage `json:"segment"`
	// For /funnels/query/sessions:
	Step       int     `json:"step"`
	Status     string  `json:"status"`
	SplitValue *string `json:"split_value"`
	Limit      int     `json:"limit"`
	Cursor     string  `json:"cursor"`
}

func (s *Server) adHocQuery(c echo.Context) (journey.FunnelQuery, *adHocFunnel, error) {
	var b adHocFunnel
	var q journey.FunnelQuery
	if err := bindJSON(c, &b); err != nil {
		return q, nil, err
	}
	id, err := s.projectFor(c, string(b.Project))
	if err != nil {
		return q, nil, err
	}
	q = journey.FunnelQuery{ProjectID: id, Def: b.FunnelDef, Split: b.Split}
	if q.From, q.To, err = s.timeRange(b.From, b.To); err != nil {
		return q, nil, err
	}
	if len(b.Segment) > 0 && string(b.Segment) != "null" {
		if q.Segment, err = segmentParam(string(b.Segment)); err != nil {
			return q, nil, err
		}
	}
	return q, &b, nil
}

func (s *Server) queryFunnel(c echo.Context) error {
	q, _, err := s.adHocQuery(c)
	if err != nil {
		return err
	}
	res, err := s.deps.Extra.Funnels.RunFunnel(c.Request().Context(), q)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, res)
}

func (s *Server) queryFunnelSessions(c echo.Context) error {
	fq, b, err := s.adHocQuery(c)
	if err != nil {
		return err
	}
	if b.Step == 0 {
		return badRequest{"step is required (1 for the first step)"}
	}
	if b.Limit < 0 || b.Limit > 500 {
		return badRequest{"limit must be from 1 to 500"}
	}
	q := journey.FunnelSessionsQuery{FunnelQuery: fq, Step: b.Step, Status: b.Status, SplitValue: b.SplitValue, Limit: b.Limit, Cursor: b.Cursor}
	page, err := s.deps.Extra.Funnels.FunnelSessions(c.Request().Context(), q)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, page)
}

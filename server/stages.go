package server

import (
	"context"
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/trailmap/trailmap/journey"
)

// Stages keeps journey stages and reports the flow between them (journey).
// Bad input wraps journey.ErrInvalid; a missing stage wraps
// index.ErrNotFound.
type Stages interface {
	CreateStage(ctx context.Context, st journey.Stage) (*journey.Stage, error)
	UpdateStage(ctx context.Context, st journey.Stage) (*journey.Stage, error)
	Stage(ctx context.Context, id int64) (*journey.Stage, error)
	Stages(ctx context.Context, projectID int64) ([]journey.Stage, error)
	DeleteStage(ctx context.Context, id int64) error
	StageFlowReport(ctx context.Context, q journey.StageFlowQuery) (*journey.StageFlow, error)
}

// stageBody is a stage as clients send it.
type stageBody struct {
	Project  projectRef     `json:"project"`
	Name     string         `json:"name"`
	Position int            `json:"position"`
	Rules    []journey.Step `json:"rules"`
}

func (s *Server) listStages(c echo.Context) error {
	id, err := s.projectFor(c, c.QueryParam("project"))
	if err != nil {
		return err
	}
	ss, err := s.deps.Extra.Stages.Stages(c.Request().Context(), id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"stages": ss})
}

func (s *Server) createStage(c echo.Context) error {
	var b stageBody
	if err := bindJSON(c, &b); err != nil {
		return err
	}
	id, err := s.projectFor(c, string(b.Project))
	if err != nil {
		return err
	}
	st, err := s.deps.Extra.Stages.CreateStage(c.Request().Context(), journey.Stage{ProjectID: id, Name: b.Name, Position: b.Position, Rules: b.Rules})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, st)
}

func (s *Server) stage(c echo.Context) (*journey.Stage, error) {
	id, err := idParam(c)
	if err != nil {
		return nil, err
	}
	st, err := s.deps.Extra.Stages.Stage(c.Request().Context(), id)
	if err != nil {
		return nil, err
	}
	return st, visible(c, st.ProjectID, "stage", id)
}

func (s *Server) getStage(c echo.Context) error {
	st, err := s.stage(c)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, st)
}

func (s *Server) updateStage(c echo.Context) error {
	st, err := s.stage(c)
	if err != nil {
		return err
	}
	var b stageBody
	if err := bindJSON(c, &b); err != nil {
		return err
	}
	if b.Project != "" {
		return badRequest{"a stage cannot move to another project"}
	}
	st, err = s.deps.Extra.Stages.UpdateStage(c.Request().Context(), journey.Stage{ID: st.ID, ProjectID: st.ProjectID, Name: b.Name, Position: b.Position, Rules: b.Rules})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, st)
}

func (s *Server) deleteStage(c echo.Context) error {
	st, err := s.stage(c)
	if err != nil {
		return err
	}
	if err := s.deps.Extra.Stages.DeleteStage(c.Request().Context(), st.ID); err != nil {
		return err
	}
	s.audit(c, "stage.delete", fmt.Sprintf("stage %d %s", st.ID, st.Name), st.ProjectID, nil)
	return c.NoContent(http.StatusNoContent)
}

func (s *Server) stageFlow(c echo.Context) error {
	id, err := s.projectFor(c, c.QueryParam("project"))
	if err != nil {
		return err
	}
	q := journey.StageFlowQuery{ProjectID: id}
	if q.From, q.To, err = s.timeRange(c.QueryParam("from"), c.QueryParam("to")); err != nil {
		return err
	}
	if q.Segment, err = segmentParam(c.QueryParam("segment")); err != nil {
		return err
	}
	res, err := s.deps.Extra.Stages.StageFlowReport(c.Request().Context(), q)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, res)
}

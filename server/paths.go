package server

import (
	"context"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/trailmap/trailmap/journey"
)

// Paths answers page-path (Sankey) queries (journey). Bad input wraps
// journey.ErrInvalid.
type Paths interface {
	Paths(ctx context.Context, q journey.PathQuery) (*journey.PathResult, error)
}

func (s *Server) paths(c echo.Context) error {
	id, err := s.projectFor(c, c.QueryParam("project"))
	if err != nil {
		return err
	}
	q := journey.PathQuery{ProjectID: id, Page: c.QueryParam("page"), Direction: c.QueryParam("direction")}
	if q.Page == "" {
		return badRequest{"page is required (a path such as /pricing, * for any run of characters)"}
	}
	if q.Depth, err = intParam(c, "depth", 3, 1, 5); err != nil {
		return err
	}
	if q.Top, err = intParam(c, "top", 6, 1, 20); err != nil {
		return err
	}
	if q.From, q.To, err = s.timeRange(c.QueryParam("from"), c.QueryParam("to")); err != nil {
		return err
	}
	if q.Segment, err = segmentParam(c.QueryParam("segment")); err != nil {
		return err
	}
	res, err := s.deps.Extra.Paths.Paths(c.Request().Context(), q)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, res)
}

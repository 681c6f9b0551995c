package server

import (
	"context"
	"fmt"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/trailmap/trailmap/heatmap"
)

// Heatmaps is what the server needs of the heatmap service. It has more
// than the usual few methods because each is one endpoint of the viewer
// (maps and their JSON twins, the page picker, the page snapshot, the
// player's signal markers); splitting it would only split the wiring.
type Heatmaps interface {
	// ClickMap and ClickPNG return a click map (JSON twin, PNG overlay);
	// errors wrap heatmap.ErrBadQuery for queries that cannot be answered.
	ClickMap(ctx context.Context, q heatmap.Query) (*heatmap.ClickMap, error)
	ClickPNG(ctx context.Context, q heatmap.Query) ([]byte, error)
	// ScrollMap and ScrollPNG return the scroll map of a page.
	ScrollMap(ctx context.Context, q heatmap.Query) (*heatmap.ScrollMap, error)
	ScrollPNG(ctx context.Context, q heatmap.Query) ([]byte, error)
	// Pages lists a project's pages with counts.
	Pages(ctx context.Context, q heatmap.Query) ([]heatmap.PageStat, error)
	// Snapshot finds a recent full snapshot of a page (heatmap.ErrNoData
	// when there is none).
	Snapshot(ctx context.Context, q heatmap.Query) (*heatmap.Snapshot, error)
	// Signals lists a session's frustration signals (sessions row id).
	Signals(ctx context.Context, sessionID int64) ([]heatmap.Signal, error)
}

// heatmapQuery reads the common parameters: project (id or name; may be
// left out when the caller can see exactly one project), url, device,
// from, to, width, height, mode, limit, and segment (a journey segment:
// the maps then count only the sessions it matches).
func (s *Server) heatmapQuery(c echo.Context) (heatmap.Query, error) {
	var q heatmap.Query
	id, err := s.projectFor(c, c.QueryParam("project"))
	if err != nil {
		return q, err
	}
	q.ProjectID = id
	q.URL = c.QueryParam("url")
	q.Device = c.QueryParam("device")
	q.Mode = c.QueryParam("mode")
	if q.From, err = parseTime("from", c.QueryParam("from")); err != nil {
		return q, err
	}
	if q.To, err = parseTime("to", c.QueryParam("to")); err != nil {
		return q, err
	}
	for _, p := range []struct {
		name string
		dst  *int
	}{{"width", &q.Width}, {"height", &q.Height}, {"limit", &q.Limit}} {
		v := c.QueryParam(p.name)
		if v == "" {
			continue
		}
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			return q, badRequest{fmt.Sprintf("%s %q: want a positive whole number", p.name, v)}
		}
		*p.dst = n
	}
	m, err := s.segmentMatch(c, []int64{id})
	if err != nil {
		return q, err
	}
	if !m.IsZero() {
		q.Segment = &m
	}
	return q, nil
}

func (s *Server) heatmapClicks(c echo.Context) error {
	q, err := s.heatmapQuery(c)
	if err != nil {
		return err
	}
	m, err := s.deps.Extra.Heatmaps.ClickMap(c.Request().Context(), q)
	if err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "private, max-age=30")
	return c.JSON(http.StatusOK, m)
}

func (s *Server) heatmapClicksPNG(c echo.Context) error {
	q, err := s.heatmapQuery(c)
	if err != nil {
		return err
	}
	b, err := s.deps.Extra.Heatmaps.ClickPNG(c.Request().Context(), q)
	if err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "private, max-age=30")
	return c.Blob(http.StatusOK, "image/png", b)
}

func (s *Server) heatmapScroll(c echo.Context) error {
	q, err := s.heatmapQuery(c)
	if err != nil {
		return err
	}
	m, err := s.deps.Extra.Heatmaps.ScrollMap(c.Request().Context(), q)
	if err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "private, max-age=30")
	return c.JSON(http.StatusOK, m)
}

func (s *Server) heatmapScrollPNG(c echo.Context) error {
	q, err := s.heatmapQuery(c)
	if err != nil {
		return err
	}
	b, err := s.deps.Extra.Heatmaps.ScrollPNG(c.Request().Context(), q)
	if err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "private, max-age=30")
	return c.Blob(http.StatusOK, "image/png", b)
}

func (s *Server) heatmapPages(c echo.Context) error {
	q, err := s.heatmapQuery(c)
	if err != nil {
		return err
	}
	pages, err := s.deps.Extra.Heatmaps.Pages(c.Request().Context(), q)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"pages": pages})
}

func (s *Server) heatmapSnapshot(c echo.Context) error {
	q, err := s.heatmapQuery(c)
	if err != nil {
		return err
	}
	sn, err := s.deps.Extra.Heatmaps.Snapshot(c.Request().Context(), q)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, sn)
}

// sessionSignals lists a session's rage, dead and error clicks with their
// offsets, for the player's timeline.
func (s *Server) sessionSignals(c echo.Context) error {
	sess, err := s.session(c)
	if err != nil {
		return err
	}
	sig, err := s.deps.Extra.Heatmaps.Signals(c.Request().Context(), sess.RowID)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"signals": sig})
}

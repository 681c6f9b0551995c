package server

import (
	"context"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/trailmap/trailmap/journey"
)

// Intent answers site-search and conversion reports and keeps the
// project's journey settings (journey). Bad input wraps journey.ErrInvalid.
type Intent interface {
	SearchTerms(ctx context.Context, q journey.IntentQuery) (*journey.SearchTermsResult, error)
	ConversionStats(ctx context.Context, q journey.IntentQuery) (*journey.ConversionStats, error)
	// Settings returns the settings and whether derived data is being
	// rebuilt after a change.
	Settings(ctx context.Context, projectID int64) (journey.Settings, bool, error)
	SetSettings(ctx context.Context, projectID int64, st journey.Settings) error
}

func (s *Server) intentQuery(c echo.Context) (journey.IntentQuery, error) {
	var q journey.IntentQuery
	id, err := s.projectFor(c, c.QueryParam("project"))
	if err != nil {
		return q, err
	}
	q.ProjectID = id
	if q.From, q.To, err = s.timeRange(c.QueryParam("from"), c.QueryParam("to")); err != nil {
		return q, err
	}
	if q.Segment, err = segmentParam(c.QueryParam("segment")); err != nil {
		return q, err
	}
	if q.Limit, err = intParam(c, "limit", 50, 1, 500); err != nil {
		return q, err
	}
	q.ConversionEvent, q.ConversionPage = c.QueryParam("conversion_event"), c.QueryParam("conversion_page")
	return q, nil
}

func (s *Server) searchTerms(c echo.Context) error {
	q, err := s.intentQuery(c)
	if err != nil {
		return err
	}
	res, err := s.deps.Extra.Intent.SearchTerms(c.Request().Context(), q)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, res)
}

func (s *Server) conversionStats(c echo.Context) error {
	q, err := s.intentQuery(c)
	if err != nil {
		return err
	}
	res, err := s.deps.Extra.Intent.ConversionStats(c.Request().Context(), q)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, res)
}

func (s *Server) journeySettings(c echo.Context) error {
	id, err := s.projectFor(c, c.QueryParam("project"))
	if err != nil {
		return err
	}
	st, rebuilding, err := s.deps.Extra.Intent.Settings(c.Request().Context(), id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, struct {
		Project int64 `json:"project"`
		journey.Settings
		Rebuilding bool `json:"rebuilding"`
	}{id, st, rebuilding})
}

func (s *Server) setJourneySettings(c echo.Context) error {
	id, err := s.projectFor(c, c.QueryParam("project"))
	if err != nil {
		return err
	}
	var st journey.Settings
	if err := bindJSON(c, &st); err != nil {
		return err
	}
	if err := s.deps.Extra.Intent.SetSettings(c.Request().Context(), id, st); err != nil {
		return err
	}
	s.audit(c, "journey.settings", "", id, st)
	return s.journeySettings(c)
}

package server

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

// ingestConfig gives the browser script its project's recording rules:
// GET /api/v1/ingest/config?key=WRITE_KEY. Write keys are public, and so
// are the rules (they are applied in the visitor's browser).
func (s *Server) ingestConfig(c echo.Context) error {
	rules, err := s.deps.Recorder.RecordingRules(c.Request().Context(), c.QueryParam("key"))
	if err != nil {
		return err
	}
	// Short: a settings change reaches new page views within a minute.
	c.Response().Header().Set("Cache-Control", "public, max-age=60")
	return c.JSON(http.StatusOK, rules)
}

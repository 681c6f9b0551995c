package server

import (
	"net/http"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// routes is the one place every route is registered.
func (s *Server) routes(e *echo.Echo) {
	e.Use(middleware.Recover())

	e.GET("/healthz", s.healthz)
	e.GET("/readyz", s.readyz)
	if s.deps.Registry != nil {
		e.GET("/metrics", echo.WrapHandler(promhttp.HandlerFor(s.deps.Registry, promhttp.HandlerOpts{})), s.metricsAccess)
	}

	// Ingest: public write keys, any origin, cached preflight.
	ingest := e.Group("/api/v1/ingest", middleware.CORSWithConfig(middleware.CORSConfig{
		AllowOrigins:  []string{"*"},
		AllowMethods:  []string{http.MethodPost, http.MethodOptions},
		AllowHeaders:  []string{"Content-Type", "Content-Encoding", "X-Trailmap-Key"},
		ExposeHeaders: []string{"Retry-After"},
		MaxAge:        86400,
	}))
	ingest.POST("", s.ingest)
	ingest.GET("/config", s.ingestConfig)
	ingest.OPTIONS("", func(c echo.Context) error { return c.NoContent(http.StatusNoContent) })

	// Dashboard API: bearer token or the UI's login cookie.
	api := e.Group("/api/v1", apiHeaders, s.requireAuth)
	api.GET("/projects", s.listProjects)
	api.GET("/sessions", s.listSessions)
	api.GET("/sessions/:id", s.getSession)
	api.GET("/sessions/:id/events", s.sessionEvents)

	s.scriptRoutes(e)
	s.heatmapRoutes(api)
	s.journeyRoutes(api)
	s.uiRoutes(e, api)
}

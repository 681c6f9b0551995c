package server

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
)

// healthz says the process is up.
func (s *Server) healthz(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

// readyz checks the index, the blob store and the recorder. A failing
// check answers "unavailable" and is logged: its error may name hosts,
// paths or credentials' owners, and /readyz answers anyone.
func (s *Server) readyz(c echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), 5*time.Second)
	defer cancel()
	checks := map[string]string{}
	ok := true
	check := func(name string, err error) {
		if err != nil {
			s.log.Warn("not ready", "check", name, slog.Any("error", err))
			checks[name], ok = "unavailable", false
			return
		}
		checks[name] = "ok"
	}
	check("index", s.deps.Index.Ping(ctx))
	for name, ch := range s.deps.Ready {
		check(name, ch.Ready(ctx))
	}
	status := http.StatusOK
	if !ok {
		status = http.StatusServiceUnavailable
	}
	return c.JSON(status, map[string]any{"ready": ok, "checks": checks})
}

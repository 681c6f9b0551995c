package server

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/labstack/echo/v4"
)

// apiHeaders marks dashboard API answers: never sniffed as another type, and
// not kept by browsers or proxies (they hold visitors' data), unless a
// handler sets its own caching (images that are immutable by their query).
func apiHeaders(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Response().Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Cache-Control", "no-store")
		return next(c)
	}
}

// metricsAccess lets a scraper on this machine (the TCP peer, never a
// forwarded address) read /metrics, and anyone else only with a dashboard
// bearer token: counters name projects and reveal traffic.
func (s *Server) metricsAccess(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		c.Response().Header().Set("X-Content-Type-Options", "nosniff")
		if peerIsLoopback(c) && c.Request().Header.Get("X-Forwarded-For") == "" {
			return next(c)
		}
		if _, err := s.authenticate(c); err != nil {
			return fmt.Errorf("%w: /metrics answers loopback or a bearer token", err)
		}
		return next(c)
	}
}

func peerIsLoopback(c echo.Context) bool {
	host, _, err := net.SplitHostPort(c.Request().RemoteAddr)
	if err != nil {
		return false
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}

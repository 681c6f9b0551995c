package server

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/labstack/echo/v4"
)

// utf8Only refuses (400) a request whose path, query, write key or form
// fields are not UTF-8 once percent-decoded: every one of them may reach
// the index, and PostgreSQL refuses such text (it answered 500 before),
// while SQLite would only find nothing. JSON bodies need no check:
// encoding/json and the ingest's scanner take care of theirs.
func utf8Only(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		bad := ""
		switch {
		case !utf8.ValidString(r.URL.Path):
			bad = "path"
		case !utf8.ValidString(r.Header.Get("X-Trailmap-Key")):
			bad = "X-Trailmap-Key header"
		case !validValues(c.QueryParams()):
			bad = "query"
		case (r.Method == http.MethodPost || r.Method == http.MethodPut) &&
			strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded"):
			form, err := c.FormParams()
			if err != nil {
				return badRequest{"the form cannot be read: " + err.Error()}
			}
			if !validValues(form) {
				bad = "form"
			}
		}
		if bad != "" {
			return badRequest{"the request's " + bad + " is not UTF-8"}
		}
		return next(c)
	}
}

func validValues(v map[string][]string) bool {
	for k, vs := range v {
		if !utf8.ValidString(k) {
			return false
		}
		for _, x := range vs {
			if !utf8.ValidString(x) {
				return false
			}
		}
	}
	return true
}

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

// readWait bounds how long a read waits for the index to hold what this
// node acknowledged.
const readWait = 2 * time.Second

// readYourWrites makes a request wait until the index holds every batch
// this node acknowledged before it (up to readWait): the 202 of a batch
// waits only for the write-ahead log, its index rows follow within
// milliseconds, and a read, or a deletion (forget), right after it must
// find them. Ingest, the script, health and metrics do not wait.
func (s *Server) readYourWrites(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		switch p := r.URL.Path; {
		case s.deps.Recorder == nil, r.Method == http.MethodOptions, r.Method == http.MethodPost && strings.HasPrefix(p, "/api/v1/assets"), // preflights, asset uploads
			strings.HasPrefix(p, "/api/v1/ingest"), strings.HasPrefix(p, "/recorder."),
			p == "/healthz", p == "/readyz", p == "/metrics", strings.HasPrefix(p, "/assets/"):
			return next(c)
		}
		ctx, cancel := context.WithTimeout(r.Context(), readWait)
		err := s.deps.Recorder.CaughtUp(ctx)
		cancel()
		if err != nil && r.Context().Err() != nil {
			return r.Context().Err()
		}
		return next(c) // after readWait: answer with what the index has
	}
}

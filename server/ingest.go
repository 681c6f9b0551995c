package server

import (
	"fmt"
	"mime"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/trailmap/trailmap/recorder"
)

// ingest takes one batch of rrweb events (DESIGN.md, ingest contract v1).
func (s *Server) ingest(c echo.Context) error {
	r := c.Request()
	key := r.Header.Get("X-Trailmap-Key")
	beacon := false // the key in the URL: sendBeacon or a keepalive fetch, which cannot retry
	if key == "" {
		key, beacon = c.QueryParam("key"), true
	}
	enc := r.Header.Get("Content-Encoding")
	if enc == "" {
		enc = c.QueryParam("encoding")
	}
	switch ct := r.Header.Get("Content-Type"); {
	case ct == "", hasMediaType(ct, "application/json"), hasMediaType(ct, "text/plain"):
	default:
		return echo.NewHTTPError(http.StatusUnsupportedMediaType,
			fmt.Sprintf("Content-Type %q not accepted: send application/json or text/plain", ct))
	}
	res, err := s.deps.Recorder.Ingest(r.Context(), recorder.Request{
		Key:       key,
		Encoding:  enc,
		Body:      r.Body,
		UserAgent: r.UserAgent(),
		RemoteIP:  c.RealIP(),
		Beacon:    beacon,
	})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusAccepted, res)
}

func hasMediaType(ct, want string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && mt == want
}

package server

import (
	"errors"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/trailmap/trailmap/recorder"
)

// scriptHandlers serve the browser recorder: /recorder.js (revalidated every
// 5 minutes, for the one-line install) and /recorder.<hash>.js (immutable,
// for sites that pin a version). Any origin may load it. When the script is
// missing from the build, both answer 503 not_built.
func (s *Server) scriptHandlers(sc *recorder.Script, err error) (latest, pinned echo.HandlerFunc) {
	if err != nil {
		if !errors.Is(err, recorder.ErrScriptNotBuilt) {
			s.log.Error("load recorder script", "error", err)
		} else {
			s.log.Warn("recorder script not built; /recorder.js answers 503 (run make js)")
		}
		notBuilt := func(c echo.Context) error {
			c.Response().Header().Set("Access-Control-Allow-Origin", "*")
			c.Response().Header().Set("Cache-Control", "no-store")
			return c.JSON(http.StatusServiceUnavailable, apiError{apiErrorBody{Code: "not_built", Message: err.Error()}})
		}
		return notBuilt, notBuilt
	}
	latest = func(c echo.Context) error {
		return serveScript(c, sc, "public, max-age=300")
	}
	pinned = func(c echo.Context) error {
		if c.Param("version") != sc.Hash+".js" {
			return echo.NewHTTPError(http.StatusNotFound, "no recorder script with this version; use /recorder.js")
		}
		return serveScript(c, sc, "public, max-age=31536000, immutable")
	}
	return latest, pinned
}

// scriptMethods are those the script answers to: HEAD too, for caches and checks.
var scriptMethods = []string{http.MethodGet, http.MethodHead}

func serveScript(c echo.Context, sc *recorder.Script, cacheControl string) error {
	h := c.Response().Header()
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("Cache-Control", cacheControl)
	h.Set("ETag", sc.ETag)
	h.Set("X-Trailmap-Script", sc.Hash)
	h.Add("Vary", "Accept-Encoding")
	if etagMatch(c.Request().Header.Get("If-None-Match"), sc.ETag) {
		return c.NoContent(http.StatusNotModified)
	}
	body := sc.JS
	if acceptsGzip(c.Request().Header.Get("Accept-Encoding")) {
		h.Set("Content-Encoding", "gzip")
		body = sc.Gzip
	}
	return c.Blob(http.StatusOK, "text/javascript; charset=utf-8", body)
}

// etagMatch reports whether an If-None-Match list names etag (weak
// comparison, as RFC 9110 asks for If-None-Match).
func etagMatch(header, etag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == "*" || t == etag {
			return true
		}
	}
	return false
}

// acceptsGzip reports whether an Accept-Encoding header allows gzip.
func acceptsGzip(header string) bool {
	for _, p := range strings.Split(header, ",") {
		name, params, _ := strings.Cut(strings.TrimSpace(p), ";")
		if strings.EqualFold(strings.TrimSpace(name), "gzip") || strings.TrimSpace(name) == "*" {
			q := strings.ReplaceAll(strings.TrimSpace(params), " ", "")
			return q != "q=0" && q != "q=0.0" && q != "q=0.00" && q != "q=0.000"
		}
	}
	return false
}

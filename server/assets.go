package server

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/trailmap/trailmap/assets"
	"github.com/trailmap/trailmap/storage/index"
)

// Assets reads the stored copies of recorded pages' images, fonts and
// style sheets (assets.Reader).
type Assets interface {
	// Open returns a project's copy by content hash (assets.ErrNotFound);
	// a style sheet's own references are pointed at copies with link.
	Open(ctx context.Context, projectID int64, sha string, link func(sha string) string) (io.ReadCloser, assets.Copy, error)
	// OpenOnDay is Open among the copies of one day (and the day-0 ones):
	// what a share of a session of that day may serve.
	OpenOnDay(ctx context.Context, projectID, day int64, sha string, link func(sha string) string) (io.ReadCloser, assets.Copy, error)
	// NewRewriter maps a session's events to the copies of its day.
	NewRewriter(projectID, day int64, link func(sha string) string) *assets.Rewriter
}

// assetLink is where the dashboard serves a project's copy, under base
// (empty: a path). Events get absolute links: a replayed page may carry
// its own <base>, against which a path would resolve to the recorded site.
func assetLink(base string, projectID int64) func(sha string) string {
	prefix := base + "/api/v1/assets/" + strconv.FormatInt(projectID, 10) + "/"
	return func(sha string) string { return prefix + sha }
}

// shareAssetLink is where a share link serves the copies of its session:
// under the share's own path, so the address shows no project or session.
func shareAssetLink(base, token string) func(sha string) string {
	prefix := base + "/s/" + token + "/a/"
	return func(sha string) string { return prefix + sha }
}

// getAsset serves a stored copy to a user who may see its project: its own
// content type, never sniffed, cached for good (the address is its hash),
// readable cross-origin (fonts need CORS; no credentials go with "*"), and
// sandboxed so an SVG opened on its own runs no script on this origin.
func (s *Server) getAsset(c echo.Context) error {
	id, err := strconv.ParseInt(c.Param("project"), 10, 64)
	if err != nil || id <= 0 {
		return badRequest{"project must be a project id"}
	}
	if !principal(c).CanAccess(id) {
		return fmt.Errorf("%w: project %d", ErrForbidden, id)
	}
	r, cp, err := s.deps.Extra.Assets.Open(c.Request().Context(), id, c.Param("sha256"), assetLink("", id))
	if err != nil {
		return err
	}
	return serveCopy(c, r, cp)
}

// serveCopy writes a copy with the headers every copy gets (kept out of
// shared caches, so a revoked share's copies are not served from one).
func serveCopy(c echo.Context, r io.ReadCloser, cp assets.Copy) error {
	defer r.Close()
	h := c.Response().Header()
	h.Set(echo.HeaderContentType, cp.ContentType)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "private, max-age=31536000, immutable")
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; sandbox")
	h.Set("Cross-Origin-Resource-Policy", "cross-origin")
	h.Set(echo.HeaderContentLength, strconv.FormatInt(cp.Size, 10))
	c.Response().WriteHeader(http.StatusOK)
	_, err := io.Copy(c.Response(), r)
	return err
}

// rewritingWriter passes events through an assets.Rewriter.
type rewritingWriter struct {
	ctx  context.Context
	rw   *assets.Rewriter
	next interface{ WriteEvent([]byte) error }
}

func (w *rewritingWriter) WriteEvent(ev []byte) error {
	out, err := w.rw.Event(w.ctx, ev)
	if err != nil {
		return err
	}
	return w.next.WriteEvent(out)
}

// sessionDay is the UTC day (unix days) whose copies a session plays with.
func sessionDay(sess *index.Session) int64 { return sess.StartedAt.Unix() / 86400 }

// Uploads takes the assets browsers upload (assets.Service).
type Uploads interface {

	// Offer answers which offered assets a project lacks (their hashes);
	// from is the request's Origin.
	Offer(ctx context.Context, project int64, from string, offers []assets.Offered) ([]string, error)
	// Upload stores one asset's bytes as the copy of url for today.
	Upload(ctx context.Context, project int64, from, url, ctype string, body io.Reader) (assets.Copy, error)
}

// uploadProject resolves the write key of an upload request (header or
// ?key=) as ingest does: the client address's rate limit before the key is
// looked up, unknown keys cached.
func (s *Server) uploadProject(c echo.Context) (int64, error) {
	key := c.Request().Header.Get("X-Trailmap-Key")
	if key == "" {
		key = c.QueryParam("key")
	}
	return s.deps.Recorder.WriteKeyProject(c.Request().Context(), key, c.RealIP())
}

// offerAssets is POST /api/v1/assets/offer: {"assets": [{url, sha256,
// size}]} → {"need": [sha256...]}, what the browser should upload.
func (s *Server) offerAssets(c echo.Context) error {
	project, err := s.uploadProject(c)
	if err != nil {
		return err
	}
	var in struct {
		Assets []assets.Offered `json:"assets"`
	}
	dec := json.NewDecoder(io.LimitReader(c.Request().Body, 256<<10))
	if err := dec.Decode(&in); err != nil {
		return badRequest{"body: {\"assets\": [{\"url\", \"sha256\", \"size\"}]} as JSON"}
	}
	need, err := s.deps.Extra.Uploads.Offer(c.Request().Context(), project, c.Request().Header.Get("Origin"), in.Assets)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"need": need})
}

// uploadAsset is POST /api/v1/assets?url=: the body is the asset's bytes,
// with the Content-Type the page was served.
func (s *Server) uploadAsset(c echo.Context) error {
	project, err := s.uploadProject(c)
	if err != nil {
		return err
	}
	cp, err := s.deps.Extra.Uploads.Upload(c.Request().Context(), project, c.Request().Header.Get("Origin"), c.QueryParam("url"),
		c.Request().Header.Get("Content-Type"), c.Request().Body)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, map[string]any{"sha256": cp.SHA256, "size": cp.Size, "content_type": cp.ContentType})
}

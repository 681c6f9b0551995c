package server

import (
	"bufio"
	"compress/gzip"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/labstack/echo/v4"

	"github.com/trailmap/trailmap/assets"
	"github.com/trailmap/trailmap/journey"
	"github.com/trailmap/trailmap/replay"
	"github.com/trailmap/trailmap/storage/index"
)

// listProjects lists the projects the caller may see.
func (s *Server) listProjects(c echo.Context) error {
	ps, err := s.deps.Index.Projects(c.Request().Context())
	if err != nil {
		return err
	}
	p := principal(c)
	type project struct {
		ID        int64     `json:"id"`
		Name      string    `json:"name"`
		WriteKey  string    `json:"write_key"`
		CreatedAt time.Time `json:"created_at"`
	}
	out := []project{}
	for _, pr := range ps {
		if p.CanAccess(pr.ID) {
			out = append(out, project{pr.ID, pr.Name, pr.WriteKey, pr.CreatedAt})
		}
	}
	return c.JSON(http.StatusOK, map[string]any{"projects": out})
}

// sessionFilter reads the DESIGN.md filters of GET /api/v1/sessions.
func (s *Server) sessionFilter(c echo.Context) (index.SessionFilter, error) {
	p := principal(c)
	f := index.SessionFilter{
		ProjectIDs: p.ProjectIDs,
		URL:        c.QueryParam("url"),
		Device:     c.QueryParam("device"),
		Visitor:    c.QueryParam("visitor"),
		Cursor:     c.QueryParam("cursor"),
	}
	if v := c.QueryParam("project"); v != "" {
		id, err := s.projectFor(c, v)
		if err != nil {
			return f, err
		}
		f.ProjectIDs = []int64{id}
	}
	var err error
	if f.From, err = parseTime("from", c.QueryParam("from")); err != nil {
		return f, err
	}
	if f.To, err = parseTime("to", c.QueryParam("to")); err != nil {
		return f, err
	}
	if v := c.QueryParam("min_duration"); v != "" {
		d, err := parseDuration(v)
		if err != nil {
			return f, badRequest{fmt.Sprintf("min_duration %q: want seconds or a duration like 30s or 2m", v)}
		}
		f.MinDuration = d
	}
	if v := c.QueryParam("playable"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return f, badRequest{fmt.Sprintf("playable %q: want true or false", v)}
		}
		f.Playable = b
	}
	if v := c.QueryParam("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 200 {
			return f, badRequest{"limit must be a number from 1 to 200"}
		}
		f.Limit = n
	}
	if f.Match, err = s.segmentMatch(c, f.ProjectIDs); err != nil {
		return f, err
	}
	for _, h := range c.QueryParams()["has"] {
		for _, part := range strings.Split(h, ",") {
			if part = strings.TrimSpace(part); part != "" {
				f.Has = append(f.Has, part)
			}
		}
	}
	return f, nil
}

// Segments turns a journey segment into the index's typed session
// condition for the sessions of projectIDs (nil: every project); journey
// resolves the conditions on its own data (site searches) to session sets.
type Segments interface {
	SessionMatch(ctx context.Context, projectIDs []int64, seg journey.Segment) (index.Match, error)
}

// segmentMatch reads the segment query parameter (a journey segment as
// JSON) as a condition on the sessions of projectIDs; the zero Match when
// there is none.
func (s *Server) segmentMatch(c echo.Context, projectIDs []int64) (index.Match, error) {
	v := c.QueryParam("segment")
	if v == "" {
		return index.Match{}, nil
	}
	seg, err := journey.ParseSegment([]byte(v))
	if err != nil {
		return index.Match{}, badRequest{err.Error()}
	}
	if seg.IsEmpty() {
		return index.Match{}, nil
	}
	var m index.Match
	if s.deps.Extra.Segments != nil {
		m, err = s.deps.Extra.Segments.SessionMatch(c.Request().Context(), projectIDs, seg)
	} else {
		m, err = seg.Match()
	}
	if err != nil {
		return index.Match{}, err
	}
	return m, nil
}

// projectFor resolves a project given by id or name (query parameter or
// body field) and checks access: unknown is 404, another's 403. It may be
// left out when the caller can see exactly one project.
func (s *Server) projectFor(c echo.Context, v string) (int64, error) {
	p := principal(c)
	if v == "" {
		ps, err := s.deps.Index.Projects(c.Request().Context())
		if err != nil {
			return 0, err
		}
		var ids []int64
		for _, pr := range ps {
			if p.CanAccess(pr.ID) {
				ids = append(ids, pr.ID)
			}
		}
		if len(ids) != 1 {
			return 0, badRequest{"project is required (its id or name)"}
		}
		return ids[0], nil
	}
	id, err := s.projectID(c, v)
	if err != nil {
		return 0, err
	}
	if !p.CanAccess(id) {
		return 0, fmt.Errorf("%w: project %s", ErrForbidden, v)
	}
	return id, nil
}

// projectID resolves a project given by id or name.
func (s *Server) projectID(c echo.Context, v string) (int64, error) {
	if id, err := strconv.ParseInt(v, 10, 64); err == nil {
		if _, err := s.deps.Index.ProjectByID(c.Request().Context(), id); err != nil {
			return 0, err
		}
		return id, nil
	}
	pr, err := s.deps.Index.ProjectByName(c.Request().Context(), v)
	if err != nil {
		return 0, err
	}
	return pr.ID, nil
}

func parseTime(name, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		if d, derr := time.Parse(time.DateOnly, v); derr == nil {
			return d, nil
		}
		return time.Time{}, badRequest{fmt.Sprintf("%s %q: want RFC 3339 (2026-11-29T10:00:00Z) or a date (2026-11-29)", name, v)}
	}
	return t, nil
}

func parseDuration(v string) (time.Duration, error) {
	if n, err := strconv.ParseFloat(v, 64); err == nil && n >= 0 {
		return time.Duration(n * float64(time.Second)), nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("bad duration")
	}
	return d, nil
}

// listSessions lists sessions newest first with cursor paging.
func (s *Server) listSessions(c echo.Context) error {
	f, err := s.sessionFilter(c)
	if err != nil {
		return err
	}
	list, next, err := s.deps.Index.ListSessions(c.Request().Context(), f)
	if err != nil {
		return err
	}
	if list == nil {
		list = []index.Session{}
	}
	return c.JSON(http.StatusOK, map[string]any{"sessions": list, "next_cursor": next})
}

// session loads the :id session if the caller may see it.
func (s *Server) session(c echo.Context) (*index.Session, error) {
	return s.deps.Index.SessionByPublicID(c.Request().Context(), principal(c).ProjectIDs, c.Param("id"))
}

// getSession returns a session's metadata with its pages and custom events.
func (s *Server) getSession(c echo.Context) error {
	sess, err := s.session(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	pages, err := s.deps.Index.SessionPages(ctx, sess)
	if err != nil {
		return err
	}
	custom, err := s.deps.Index.SessionCustomEvents(ctx, sess)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, struct {
		*index.Session
		PageList []index.Page        `json:"pages"`
		Custom   []index.CustomEvent `json:"custom_events"`
	}{sess, pages, custom})
}

// sessionEvents streams a session's rrweb events as a JSON array.
func (s *Server) sessionEvents(c echo.Context) error {
	sess, err := s.session(c)
	if err != nil {
		return err
	}
	rg, err := parseRange(c)
	if err != nil {
		return err
	}
	var rw *assets.Rewriter
	switch c.QueryParam("assets") {
	case "", "original":
	case "copies":
		if s.deps.Extra.Assets != nil {
			rw = s.deps.Extra.Assets.NewRewriter(sess.ProjectID, sessionDay(sess), assetLink(s.baseURL(c), sess.ProjectID))
		}
	default:
		return badRequest{"assets must be original or copies"}
	}
	return s.streamEvents(c, sess, rg, rw)
}

func parseRange(c echo.Context) (replay.Range, error) {
	rg := replay.All
	for _, p := range []struct {
		name string
		dst  *int64
	}{{"from_ms", &rg.FromMS}, {"to_ms", &rg.ToMS}} {
		if v := c.QueryParam(p.name); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 {
				return rg, badRequest{p.name + " must be a whole number of milliseconds from the session start"}
			}
			*p.dst = n
		}
	}
	if rg.FromMS >= 0 && rg.ToMS >= 0 && rg.ToMS < rg.FromMS {
		return rg, badRequest{"to_ms must not be before from_ms"}
	}
	return rg, nil
}

// streamEvents writes the events of sess in rg, compressed as the client
// accepts (zstd, then gzip).
// With rw, asset URLs are mapped to stored copies on the way.
func (s *Server) streamEvents(c echo.Context, sess *index.Session, rg replay.Range, rw *assets.Rewriter) error {
	w := c.Response()
	h := w.Header()
	h.Set(echo.HeaderContentType, echo.MIMEApplicationJSON)
	h.Set("Cache-Control", "private, no-store")
	h.Add("Vary", "Accept-Encoding")
	var out interface {
		Write([]byte) (int, error)
	} = w
	var closeEnc func() error
	switch enc := acceptEncoding(c.Request().Header.Get("Accept-Encoding")); enc {
	case "zstd":
		zw, err := zstd.NewWriter(w, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
		if err != nil {
			return err
		}
		h.Set("Content-Encoding", "zstd")
		out, closeEnc = zw, zw.Close
	case "gzip":
		gw, _ := gzip.NewWriterLevel(w, gzip.BestSpeed)
		h.Set("Content-Encoding", "gzip")
		out, closeEnc = gw, gw.Close
	}
	bw := bufio.NewWriterSize(out, 64<<10)
	w.WriteHeader(http.StatusOK)
	aw := &replay.ArrayWriter{W: bw}
	var ew replay.EventWriter = aw
	if rw != nil {
		ew = &rewritingWriter{ctx: c.Request().Context(), rw: rw, next: aw}
	}
	err := s.deps.Replay.Stream(c.Request().Context(), sess, rg, ew)
	if err == nil {
		err = aw.Close()
	}
	if err == nil {
		err = bw.Flush()
	}
	if closeEnc != nil {
		if cerr := closeEnc(); err == nil {
			err = cerr
		}
	}
	return err
}

// acceptEncoding picks zstd or gzip from an Accept-Encoding header, or "".
func acceptEncoding(h string) string {
	best, bestQ := "", 0.0
	for _, part := range strings.Split(h, ",") {
		name, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		q := 1.0
		if v, ok := strings.CutPrefix(strings.TrimSpace(params), "q="); ok {
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				q = f
			}
		}
		name = strings.ToLower(strings.TrimSpace(name))
		if (name == "zstd" || name == "gzip") && q > 0 && (q > bestQ || (q == bestQ && name == "zstd")) {
			best, bestQ = name, q
		}
	}
	return best
}

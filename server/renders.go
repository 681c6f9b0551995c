package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/trailmap/trailmap/render"
	"github.com/trailmap/trailmap/replay"
	"github.com/trailmap/trailmap/storage/index"
	"github.com/trailmap/trailmap/ui"
)

// Renders turns clips into video files on the server (see render).
type Renders interface {
	// Available is nil when this machine can render, else an error
	// wrapping render.ErrUnavailable that says what to install.
	Available() error
	Submit(ctx context.Context, j render.Job) (*render.Job, error)
	Job(ctx context.Context, id string) (*render.Job, error)
	Open(ctx context.Context, j *render.Job) (io.ReadCloser, error)
	Cancel(ctx context.Context, id string) (*render.Job, error)
}

type renderHandlers struct {
	s       *Server
	renders Renders
	shares  Shares // nil: no renders of shares
}

// renderRequest is the body of POST /api/v1/renders (and of a share page's
// request, which names no session or range: the share's are used).
type renderRequest struct {
	SessionID      string `json:"session_id"`
	Share          int64  `json:"share"` // a share link's id: its session and range
	StartMS        *int64 `json:"start_ms"`
	EndMS          *int64 `json:"end_ms"`
	Format         string `json:"format"`
	Size           string `json:"size"`
	FPS            int    `json:"fps"`
	Speed          int    `json:"speed"`
	SkipInactivity bool   `json:"skip_inactivity"`
	Caption        bool   `json:"caption"`
	Title          string `json:"title"`
}

// renderView is a job as the API shows it.
type renderView struct {
	*render.Job
	StatusURL string `json:"status_url"`
	FileURL   string `json:"file_url,omitempty"`
	FileName  string `json:"file_name,omitempty"`
}

func (h *renderHandlers) view(j *render.Job, base string) renderView {
	v := renderView{Job: j, StatusURL: base + "/" + j.ID}
	if j.Status == render.StatusDone {
		v.FileURL = v.StatusURL + "/file"
		v.FileName = render.FileName(j)
	}
	return v
}

func (in renderRequest) options() render.Options {
	o := render.Options{Format: in.Format, Size: in.Size, FPS: in.FPS, Speed: in.Speed,
		SkipInactivity: in.SkipInactivity, Caption: in.Caption, Title: strings.TrimSpace(in.Title)}
	if in.StartMS != nil {
		o.StartMS = *in.StartMS
	}
	if in.EndMS != nil {
		o.EndMS = *in.EndMS
	}
	return o
}

// forSession completes a job for a range of sess: the range is cut to what
// was recorded, the frame is portrait for portrait screens, and the caption
// title defaults to the recording's date.
func forSession(j *render.Job, sess *index.Session) error {
	o := &j.Options
	if o.EndMS > sess.DurationMS {
		o.EndMS = sess.DurationMS
	}
	if o.StartMS >= o.EndMS {
		return badRequest{fmt.Sprintf("the range must lie within the recording (0–%d ms)", sess.DurationMS)}
	}
	o.Portrait = sess.ViewportW > 0 && sess.ViewportH > sess.ViewportW
	if o.Caption && o.Title == "" {
		o.Title = "Recording of " + sess.StartedAt.UTC().Format("2 January 2006")
	}
	j.ProjectID, j.SessionRow, j.SessionID = sess.ProjectID, sess.RowID, sess.ID
	return nil
}

func owner(p *Principal) string {
	if p.Kind == "user" {
		return "user:" + strconv.FormatInt(p.UserID, 10)
	}
	return "token:" + p.Name
}

func (h *renderHandlers) create(c echo.Context) error {
	var in renderRequest
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	if err := h.renders.Available(); err != nil {
		return err
	}
	p := principal(c)
	ctx := c.Request().Context()
	j := render.Job{Owner: owner(p), Options: in.options()}
	var sess *index.Session
	switch {
	case in.Share != 0 && in.SessionID != "":
		return badRequest{"give session_id or share, not both"}
	case in.Share != 0:
		if h.shares == nil {
			return badRequest{"this server has no share links"}
		}
		sh, err := h.shares.ShareByID(ctx, p.ProjectIDs, in.Share)
		if err != nil {
			return err
		}
		if sh.State != "active" {
			return fmt.Errorf("share %d is %s: %w", sh.ID, sh.State, ui.ErrGone)
		}
		if sess, err = h.s.deps.Index.SessionByPublicID(ctx, p.ProjectIDs, sh.SessionID); err != nil {
			return err
		}
		// A share's render shows the share's range and nothing else.
		j.ShareID = sh.ID
		j.Options.StartMS, j.Options.EndMS = sh.StartMS, sh.EndMS
		if j.Options.Title == "" {
			j.Options.Title = sh.Title
		}
	case in.SessionID != "":
		if in.StartMS == nil || in.EndMS == nil {
			return badRequest{"start_ms and end_ms are required"}
		}
		var err error
		if sess, err = h.s.deps.Index.SessionByPublicID(ctx, p.ProjectIDs, in.SessionID); err != nil {
			return err
		}
	default:
		return badRequest{"session_id (with start_ms and end_ms) or share is required"}
	}
	if err := forSession(&j, sess); err != nil {
		return err
	}
	job, err := h.renders.Submit(ctx, j)
	if err != nil {
		return err
	}
	h.s.audit(c, "render.create", "render "+job.ID, job.ProjectID, map[string]any{"session": job.SessionID,
		"start_ms": job.Options.StartMS, "end_ms": job.Options.EndMS, "format": job.Options.Format})
	return c.JSON(http.StatusAccepted, h.view(job, "/api/v1/renders"))
}

// job finds a render the caller may see: one of their projects', and, for
// one made from a share link, only while the link is active.
func (h *renderHandlers) job(c echo.Context) (*render.Job, error) {
	ctx := c.Request().Context()
	p := principal(c)
	j, err := h.renders.Job(ctx, c.Param("rid"))
	if errors.Is(err, render.ErrNotFound) || (err == nil && !p.CanAccess(j.ProjectID)) {
		return nil, fmt.Errorf("render %q: %w", c.Param("rid"), index.ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	if j.ShareID != 0 && h.shares != nil {
		sh, err := h.shares.ShareByID(ctx, p.ProjectIDs, j.ShareID)
		if err != nil {
			return nil, err
		}
		if sh.State != "active" {
			return nil, fmt.Errorf("the share link of render %s is %s: %w", j.ID, sh.State, ui.ErrGone)
		}
	}
	return j, nil
}

func (h *renderHandlers) get(c echo.Context) error {
	j, err := h.job(c)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, h.view(j, "/api/v1/renders"))
}

func (h *renderHandlers) file(c echo.Context) error {
	j, err := h.job(c)
	if err != nil {
		return err
	}
	return h.serveFile(c, j)
}

func (h *renderHandlers) cancel(c echo.Context) error {
	j, err := h.job(c)
	if err != nil {
		return err
	}
	j, err = h.renders.Cancel(c.Request().Context(), j.ID)
	if err != nil {
		return err
	}
	h.s.audit(c, "render.cancel", "render "+j.ID, j.ProjectID, nil)
	return c.JSON(http.StatusOK, h.view(j, "/api/v1/renders"))
}

func (h *renderHandlers) serveFile(c echo.Context, j *render.Job) error {
	r, err := h.renders.Open(c.Request().Context(), j)
	if err != nil {
		return err
	}
	defer r.Close()
	hd := c.Response().Header()
	hd.Set(echo.HeaderContentType, render.ContentType(j.Options.Format))
	hd.Set(echo.HeaderContentDisposition, `attachment; filename="`+unsafeName.ReplaceAllString(render.FileName(j), "-")+`"`)
	hd.Set(echo.HeaderContentLength, strconv.FormatInt(j.SizeBytes, 10))
	hd.Set("Cache-Control", "private, max-age=3600")
	hd.Set("X-Content-Type-Options", "nosniff")
	c.Response().WriteHeader(http.StatusOK)
	_, err = io.Copy(c.Response(), r)
	return err
}

// Public routes of a share link whose creator allowed video downloads.

// shareRender answers for a share link: the share (active, allowing
// video) and its session.
func (h *renderHandlers) shareFor(c echo.Context, sh *shareHandlers) (*ui.Share, *index.Session, error) {
	s, sess, status, err := sh.byToken(c)
	if err != nil {
		if status >= 500 {
			return nil, nil, err
		}
		if status == http.StatusGone {
			return nil, nil, echo.NewHTTPError(status, "this link was revoked or has expired")
		}
		return nil, nil, echo.NewHTTPError(status, "no clip at this address")
	}
	if !s.AllowVideo {
		return nil, nil, echo.NewHTTPError(http.StatusForbidden, "whoever shared this clip did not allow video downloads")
	}
	return s, sess, nil
}

func (h *renderHandlers) shareCreate(sh *shareHandlers) echo.HandlerFunc {
	return func(c echo.Context) error {
		s, sess, err := h.shareFor(c, sh)
		if err != nil {
			return err
		}
		var in renderRequest
		if err := decodeJSON(c, &in); err != nil {
			return err
		}
		if err := h.renders.Available(); err != nil {
			return err
		}
		j := render.Job{ShareID: s.ID, Owner: "share:" + strconv.FormatInt(s.ID, 10), Options: in.options()}
		j.Options.StartMS, j.Options.EndMS, j.Options.Title = s.StartMS, s.EndMS, s.Title
		if err := forSession(&j, sess); err != nil {
			return err
		}
		job, err := h.renders.Submit(c.Request().Context(), j)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusAccepted, h.view(job, "/s/"+c.Param("token")+"/renders"))
	}
}

func (h *renderHandlers) shareJob(c echo.Context, sh *shareHandlers) (*render.Job, error) {
	s, _, err := h.shareFor(c, sh)
	if err != nil {
		return nil, err
	}
	j, err := h.renders.Job(c.Request().Context(), c.Param("rid"))
	if errors.Is(err, render.ErrNotFound) || (err == nil && j.ShareID != s.ID) {
		return nil, echo.NewHTTPError(http.StatusNotFound, "no such video for this clip")
	}
	return j, err
}

func (h *renderHandlers) shareGet(sh *shareHandlers) echo.HandlerFunc {
	return func(c echo.Context) error {
		j, err := h.shareJob(c, sh)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, h.view(j, "/s/"+c.Param("token")+"/renders"))
	}
}

func (h *renderHandlers) shareFile(sh *shareHandlers) echo.HandlerFunc {
	return func(c echo.Context) error {
		j, err := h.shareJob(c, sh)
		if err != nil {
			return err
		}
		c.Response().Header().Set("Referrer-Policy", "no-referrer")
		return h.serveFile(c, j)
	}
}

// RenderPage is the page that shows a render job's clip (render.Clips):
// the range's events with the asset copies inlined (the page fetches
// nothing), its frustration signals, and the caption.
func (s *Server) RenderPage(ctx context.Context, j *render.Job) (render.Page, int64, error) {
	sess, err := s.deps.Index.SessionByRowID(ctx, j.SessionRow)
	if err != nil {
		return nil, 0, fmt.Errorf("render %s: %w", j.ID, err)
	}
	web, err := ui.NewWeb()
	if err != nil {
		return nil, 0, err
	}
	from, to := j.Options.StartMS, min(j.Options.EndMS, sess.DurationMS)
	if to <= from {
		return nil, 0, fmt.Errorf("%w: the range holds no recording", render.ErrInvalid)
	}
	clip := ui.RenderClip{StartTS: sess.StartedAt.UnixMilli() + from, DurationMS: to - from}
	if j.Options.Caption {
		clip.Caption = &ui.RenderCaption{Title: j.Options.Title}
	}
	if hm := s.deps.Extra.Heatmaps; hm != nil {
		sig, err := hm.Signals(ctx, sess.RowID)
		if err != nil {
			return nil, 0, fmt.Errorf("render %s: %w", j.ID, err)
		}
		for _, g := range sig {
			if g.OffsetMS >= from-2000 && g.OffsetMS <= to {
				clip.Signals = append(clip.Signals, ui.RenderSignal{Type: g.Type, TS: sess.StartedAt.UnixMilli() + g.OffsetMS, X: g.X, Y: g.Y})
			}
		}
	}
	events, _ := s.clipEvents(ctx, sess, replay.Range{FromMS: from, ToMS: to, Trim: true})
	return func(w io.Writer) error { return web.WriteRender(w, clip, events) }, to - from, nil
}

package server

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/trailmap/trailmap/assets"
	"github.com/trailmap/trailmap/replay"
	"github.com/trailmap/trailmap/storage/index"
	"github.com/trailmap/trailmap/ui"
)

// Shares is what the server needs to make and play share links.
type Shares interface {
	CreateShare(ctx context.Context, in ui.ShareInput) (*ui.Share, string, error)
	// ShareByToken wraps index.ErrNotFound for an unknown token and returns
	// ui.ErrGone (with the share) for a revoked or expired one.
	ShareByToken(ctx context.Context, token string) (*ui.Share, error)
	Shares(ctx context.Context, f ui.ShareFilter) ([]ui.Share, error)
	ShareByID(ctx context.Context, projectIDs []int64, id int64) (*ui.Share, error)
	RevokeShare(ctx context.Context, projectIDs []int64, id int64) (*ui.Share, error)
	CountView(ctx context.Context, id int64) error
}

// shareCSP lets a clip load the recorded page's images and styles and
// nothing else; embeds may be framed by any site.
const shareCSP = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline' *; img-src * data: blob:; font-src * data:; media-src * data: blob:; connect-src 'self'; base-uri 'none'; form-action 'none'; object-src 'none'; frame-ancestors "

type shareHandlers struct {
	s      *Server
	web    *ui.Web
	shares Shares
}

// shareView is a share as the dashboard API shows it, with its links when
// they are known (only at creation: the token is not stored).
type shareView struct {
	Share    *ui.Share `json:"share"`
	Token    string    `json:"token,omitempty"`
	URL      string    `json:"url,omitempty"`
	EmbedURL string    `json:"embed_url,omitempty"`
}

func (s *Server) baseURL(c echo.Context) string {
	if s.cfg.PublicURL != "" {
		return strings.TrimRight(s.cfg.PublicURL, "/")
	}
	return c.Scheme() + "://" + c.Request().Host
}

func decodeJSON(c echo.Context, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(c.Response(), c.Request().Body, 64<<10))
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return err
		}
		return badRequest{"request body must be a JSON object: " + err.Error()}
	}
	return nil
}

func (h *shareHandlers) create(c echo.Context) error {
	var in struct {
		SessionID     string  `json:"session_id"`
		StartMS       *int64  `json:"start_ms"`
		EndMS         *int64  `json:"end_ms"`
		Title         string  `json:"title"`
		Note          string  `json:"note"`
		ExpiresInDays float64 `json:"expires_in_days"`
		ExpiresAt     string  `json:"expires_at"`
		AllowVideo    bool    `json:"allow_video"`
	}
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	if in.SessionID == "" || in.StartMS == nil || in.EndMS == nil {
		return badRequest{"session_id, start_ms and end_ms are required"}
	}
	p := principal(c)
	ctx := c.Request().Context()
	sess, err := h.s.deps.Index.SessionByPublicID(ctx, p.ProjectIDs, in.SessionID)
	if err != nil {
		return err
	}
	var ttl time.Duration
	switch {
	case in.ExpiresAt != "":
		t, err := time.Parse(time.RFC3339, in.ExpiresAt)
		if err != nil {
			return badRequest{"expires_at must be an RFC 3339 time"}
		}
		ttl = t.Sub(h.s.now())
		if ttl <= 0 {
			return badRequest{"expires_at must be in the future"}
		}
	case in.ExpiresInDays < 0:
		return badRequest{"expires_in_days must be positive"}
	case in.ExpiresInDays > 0:
		ttl = time.Duration(in.ExpiresInDays * float64(24*time.Hour))
	}
	by := p.Name
	if p.Kind == "token" {
		by = "API token " + p.Name
	}
	share, token, err := h.shares.CreateShare(ctx, ui.ShareInput{
		Session: sess, StartMS: *in.StartMS, EndMS: *in.EndMS, Title: in.Title, Note: in.Note,
		ExpiresIn: ttl, CreatedBy: p.UserID, CreatedByName: by, AllowVideo: in.AllowVideo,
	})
	if err != nil {
		return err
	}
	h.s.audit(c, "share.create", fmt.Sprintf("share %d", share.ID), share.ProjectID,
		map[string]any{"session": in.SessionID, "start_ms": *in.StartMS, "end_ms": *in.EndMS})
	base := h.s.baseURL(c)
	return c.JSON(http.StatusCreated, shareView{Share: share, Token: token, URL: base + "/s/" + token, EmbedURL: base + "/s/" + token + "/embed"})
}

func (h *shareHandlers) list(c echo.Context) error {
	list, err := h.shares.Shares(c.Request().Context(), ui.ShareFilter{ProjectIDs: principal(c).ProjectIDs, SessionID: c.QueryParam("session")})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"shares": list})
}

func shareID(c echo.Context) (int64, error) {
	id, err := strconv.ParseInt(c.Param("sid"), 10, 64)
	if err != nil || id <= 0 {
		return 0, badRequest{"share id must be a positive number"}
	}
	return id, nil
}

func (h *shareHandlers) get(c echo.Context) error {
	id, err := shareID(c)
	if err != nil {
		return err
	}
	sh, err := h.shares.ShareByID(c.Request().Context(), principal(c).ProjectIDs, id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, shareView{Share: sh})
}

func (h *shareHandlers) revoke(c echo.Context) error {
	id, err := shareID(c)
	if err != nil {
		return err
	}
	sh, err := h.shares.RevokeShare(c.Request().Context(), principal(c).ProjectIDs, id)
	if err != nil {
		return err
	}
	h.s.audit(c, "share.revoke", fmt.Sprintf("share %d", sh.ID), sh.ProjectID, nil)
	return c.JSON(http.StatusOK, shareView{Share: sh})
}

// byToken resolves a public token. Every token takes the same path (hash,
// look up by hash); unknown tokens get 404, revoked or expired ones 410.
func (h *shareHandlers) byToken(c echo.Context) (*ui.Share, *index.Session, int, error) {
	ctx := c.Request().Context()
	sh, err := h.shares.ShareByToken(ctx, c.Param("token"))
	switch {
	case errors.Is(err, ui.ErrGone):
		return sh, nil, http.StatusGone, err
	case errors.Is(err, index.ErrNotFound):
		return nil, nil, http.StatusNotFound, err
	case err != nil:
		return nil, nil, http.StatusInternalServerError, err
	}
	sess, err := h.s.deps.Index.SessionByPublicID(ctx, []int64{sh.ProjectID}, sh.SessionID)
	if errors.Is(err, index.ErrNotFound) {
		return nil, nil, http.StatusGone, ui.ErrGone // the recording was deleted
	}
	if err != nil {
		return nil, nil, http.StatusInternalServerError, err
	}
	return sh, sess, http.StatusOK, nil
}

type goneView struct{ Heading, Message string }

func (h *shareHandlers) publicError(c echo.Context, status int, sh *ui.Share, err error) error {
	if status >= 500 {
		return err
	}
	v := goneView{Heading: "Link not found", Message: "There is no clip at this address. Check that the link was copied whole."}
	if status == http.StatusGone {
		v = goneView{Heading: "This link is no longer available", Message: "The clip behind this link was removed."}
		if sh != nil && sh.State == "revoked" {
			v.Message = "Whoever shared this clip has revoked the link."
		} else if sh != nil && sh.State == "expired" {
			v.Message = "This link expired on " + sh.ExpiresAt.Format("2 January 2006") + "."
		}
	}
	var b strings.Builder
	if err := h.web.Render(&b, "gone", v); err != nil {
		return err
	}
	pageHeaders(c, shareCSP+"'none'")
	return c.HTML(status, b.String())
}

type shareView2 struct {
	Title, Note, Length, Recorded, PageURL string
	Embed                                  bool
	Data                                   any // for the player; html/template writes it as JSON safe in a script element
}

func (h *shareHandlers) page(embed bool) echo.HandlerFunc {
	return func(c echo.Context) error {
		sh, sess, status, err := h.byToken(c)
		if err != nil {
			return h.publicError(c, status, sh, err)
		}
		if err := h.shares.CountView(c.Request().Context(), sh.ID); err != nil {
			h.s.log.Warn("count share view", "error", err)
		}
		token := c.Param("token")
		data := map[string]any{
			"title": sh.Title, "duration_ms": sh.EndMS - sh.StartMS, "start_ts": sess.StartedAt.UnixMilli() + sh.StartMS,
			"events_url": "/s/" + token + "/events", "embed": embed,
		}
		if sh.AllowVideo && h.s.deps.Extra.Renders != nil && h.s.deps.Extra.Renders.Available() == nil {
			data["renders_url"] = "/s/" + token + "/renders"
		}
		ancestors := "'none'"
		if embed {
			ancestors = "*"
		}
		pageHeaders(c, shareCSP+ancestors)
		var b strings.Builder
		err = h.web.Render(&b, "share", shareView2{
			Title: sh.Title, Note: sh.Note, Length: humanLength(sh.EndMS - sh.StartMS),
			Recorded: sess.StartedAt.Format("2 January 2006"), PageURL: "/s/" + token, Embed: embed, Data: data,
		})
		if err != nil {
			return notBuilt(c, err)
		}
		return c.HTML(http.StatusOK, b.String())
	}
}

// events streams the clip: from the full snapshot at or before its start
// (needed to draw its first frame; the player fast-forwards through that
// lead-in without showing it) to its end, and nothing after the end.
func (h *shareHandlers) events(c echo.Context) error {
	sh, sess, status, err := h.byToken(c)
	if err != nil {
		if status >= 500 {
			return err
		}
		msg := "no clip at this address"
		if status == http.StatusGone {
			msg = "this link was revoked or has expired"
		}
		return echo.NewHTTPError(status, msg)
	}
	c.Response().Header().Set("Referrer-Policy", "no-referrer")
	var rw *assets.Rewriter
	if a := h.s.deps.Extra.Assets; a != nil {
		rw = a.NewRewriter(sess.ProjectID, sessionDay(sess), shareAssetLink(h.s.baseURL(c), c.Param("token")))
	}
	return h.s.streamEvents(c, sess, replay.Range{FromMS: sh.StartMS, ToMS: sh.EndMS, Trim: true}, rw)
}

// asset serves a share's copy of an image, font or style sheet: to anyone
// holding the token, among the copies of its session's day only.
func (h *shareHandlers) asset(c echo.Context) error {
	_, sess, status, err := h.byToken(c)
	if err != nil {
		if status >= 500 {
			return err
		}
		return echo.NewHTTPError(status, "no clip at this address")
	}
	r, cp, err := h.s.deps.Extra.Assets.OpenOnDay(c.Request().Context(), sess.ProjectID, sessionDay(sess), c.Param("sha256"),
		shareAssetLink("", c.Param("token")))
	if err != nil {
		return err
	}
	c.Response().Header().Set("Referrer-Policy", "no-referrer")
	return serveCopy(c, r, cp)
}

func (h *shareHandlers) download(c echo.Context) error {
	sh, sess, status, err := h.byToken(c)
	if err != nil {
		return h.publicError(c, status, sh, err)
	}
	return h.writeClip(c, sess, replay.Range{FromMS: sh.StartMS, ToMS: sh.EndMS, Trim: true}, sh.Title, sh.Note)
}

// export downloads a range of a session as a self-contained HTML file.
func (h *shareHandlers) export(c echo.Context) error {
	sess, err := h.s.session(c)
	if err != nil {
		return err
	}
	rg, err := parseRange(c)
	if err != nil {
		return err
	}
	rg.Trim = true // a clip carries nothing of what came before its start but the page
	title := strings.TrimSpace(c.QueryParam("title"))
	if title == "" {
		title = "Recording of " + sess.StartedAt.Format("2 January 2006 15:04 MST")
	}
	h.s.audit(c, "export", "session "+sess.ID, sess.ProjectID, map[string]any{"from_ms": rg.FromMS, "to_ms": rg.ToMS})
	return h.writeClip(c, sess, rg, title, c.QueryParam("note"))
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

func (h *shareHandlers) writeClip(c echo.Context, sess *index.Session, rg replay.Range, title, note string) error {
	from, to := max(rg.FromMS, 0), rg.ToMS
	if to < 0 || to > sess.DurationMS {
		to = sess.DurationMS
	}
	if runes := []rune(title); len(runes) > 200 {
		title = string(runes[:200])
	}
	slug := strings.Trim(unsafeName.ReplaceAllString(title, "-"), "-")
	if len(slug) > 60 {
		slug = slug[:60]
	}
	name := "trailmap-clip-" + sess.StartedAt.Format("2006-01-02")
	if slug != "" {
		name += "-" + slug
	}
	hd := c.Response().Header()
	hd.Set(echo.HeaderContentType, echo.MIMETextHTMLCharsetUTF8)
	hd.Set(echo.HeaderContentDisposition, fmt.Sprintf(`attachment; filename="%s.html"`, name))
	hd.Set("Cache-Control", "private, no-store")
	hd.Set("X-Content-Type-Options", "nosniff")
	bw := bufio.NewWriterSize(c.Response(), 64<<10)
	clip := ui.Clip{Title: title, Note: note, StartTS: sess.StartedAt.UnixMilli() + from, DurationMS: max(to-from, 1),
		Recorded: sess.StartedAt.Format("2 January 2006")}
	events, omitted := h.s.clipEvents(c.Request().Context(), sess, rg)
	clip.Omitted = omitted
	c.Response().WriteHeader(http.StatusOK)
	err := h.web.WriteExport(bw, clip, events)
	if err != nil {
		return err
	}
	return bw.Flush()
}

// clipEvents writes the events of rg as a JSON array for an offline clip,
// with every asset copy they reference inlined (the file plays with the
// network off; its policy forbids any request), and says afterwards what
// the size budget left out ("" for nothing).
func (s *Server) clipEvents(ctx context.Context, sess *index.Session, rg replay.Range) (events func(io.Writer) error, omitted func() string) {
	a := s.deps.Extra.Assets
	var in *clipInliner
	if a != nil {
		in = &clipInliner{ctx: ctx, assets: a, project: sess.ProjectID, day: sessionDay(sess), budget: clipAssetBudget,
			urls: map[string]string{}, visiting: map[string]bool{}}
	}
	events = func(w io.Writer) error {
		aw := &replay.ArrayWriter{W: w}
		var ew replay.EventWriter = aw
		if in != nil {
			ew = &rewritingWriter{ctx: ctx, rw: a.NewRewriter(sess.ProjectID, sessionDay(sess), in.link), next: aw}
		}
		if err := s.deps.Replay.Stream(ctx, sess, rg, ew); err != nil {
			return err
		}
		return aw.Close()
	}
	omitted = func() string {
		if in == nil {
			return ""
		}
		return in.omittedNote()
	}
	return events, omitted
}

// clipAssetBudget bounds the asset copies inlined into an offline clip.
const clipAssetBudget = 50 << 20

// clipInliner turns the asset copies of an offline clip into data: URLs,
// each once, until the budget is spent; the rest keep their original URLs
// (which the clip's policy does not load) and are named in a note.
type clipInliner struct {
	ctx          context.Context
	assets       Assets
	project, day int64
	budget, used int64
	urls         map[string]string // sha → data: URL, "" when left out
	visiting     map[string]bool   // style sheets being inlined (an @import loop)
	omitted      int
	omittedBytes int64
}

// link is the rewriter's link: the copy as a data: URL, "" to leave the
// original URL. A style sheet's own references are inlined into it first.
func (in *clipInliner) link(sha string) string {
	if u, ok := in.urls[sha]; ok {
		return u
	}
	if in.visiting[sha] {
		return ""
	}
	in.visiting[sha] = true
	defer delete(in.visiting, sha)
	r, cp, err := in.assets.OpenOnDay(in.ctx, in.project, in.day, sha, in.link)
	if err != nil {
		in.urls[sha] = ""
		return ""
	}
	defer r.Close()
	size := base64.StdEncoding.EncodedLen(int(cp.Size)) + len(cp.ContentType) + 13
	if in.used+int64(size) > in.budget {
		in.omitted++
		in.omittedBytes += cp.Size
		in.urls[sha] = ""
		return ""
	}
	b, err := io.ReadAll(io.LimitReader(r, cp.Size+1))
	if err != nil || int64(len(b)) != cp.Size {
		in.urls[sha] = ""
		return ""
	}
	u := "data:" + cp.ContentType + ";base64," + base64.StdEncoding.EncodeToString(b)
	in.used += int64(len(u))
	in.urls[sha] = u
	return u
}

// omittedNote says what the budget left out ("" when nothing was).
func (in *clipInliner) omittedNote() string {
	if in.omitted == 0 {
		return ""
	}
	return fmt.Sprintf("%d image, font or style sheet copies (%.1f MB) are not in this file: it holds at most %d MB of them, and it loads nothing from the network.",
		in.omitted, float64(in.omittedBytes)/(1<<20), in.budget>>20)
}

func humanLength(ms int64) string {
	d := time.Duration(ms) * time.Millisecond
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%d-second", int(d.Round(time.Second)/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%s-minute", strconv.FormatFloat(float64(d.Round(6*time.Second))/float64(time.Minute), 'f', -1, 64))
	}
	return fmt.Sprintf("%s-hour", strconv.FormatFloat(float64(d.Round(6*time.Minute))/float64(time.Hour), 'f', -1, 64))
}

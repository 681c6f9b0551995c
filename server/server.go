// Package server wires Trailmap's HTTP surface with echo: routes, auth,
// CORS, limits, errors, metrics and the server lifecycle. Domain logic lives
// in the recorder, replay, heatmap and journey packages.
package server

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/trailmap/trailmap/assets"
	"github.com/trailmap/trailmap/audit"
	"github.com/trailmap/trailmap/heatmap"
	"github.com/trailmap/trailmap/journey"
	"github.com/trailmap/trailmap/recorder"
	"github.com/trailmap/trailmap/render"
	"github.com/trailmap/trailmap/replay"
	"github.com/trailmap/trailmap/retention"
	"github.com/trailmap/trailmap/storage/index"
	"github.com/trailmap/trailmap/storage/sqldb"
	"github.com/trailmap/trailmap/ui"
)

// Config holds the HTTP settings.
type Config struct {
	Addr string
	// TrustProxy takes the client IP from X-Forwarded-For (behind a proxy);
	// otherwise the TCP peer address is used.
	TrustProxy bool
	// SecureCookies marks cookies Secure (serve over HTTPS).
	SecureCookies bool
	// PublicURL is the externally visible base URL, used in share links; empty
	// means the request's own host.
	PublicURL string
}

// Validate reports settings that cannot work.
func (c Config) Validate() error {
	if c.Addr == "" {
		return errors.New("server: listen address is required")
	}
	return nil
}

// Ingester is what the server needs of the recorder.
type Ingester interface {
	Ingest(ctx context.Context, req recorder.Request) (recorder.Result, error)
	// RecordingRules returns the recording rules of a write key's project
	// (recorder.ErrUnknownKey).
	RecordingRules(ctx context.Context, key string) (recorder.Rules, error)
	// ProjectChanged drops what is cached of a project whose settings
	// changed.
	ProjectChanged(projectID int64)
	// WriteKeyProject is the project of a write-key request that is not a
	// batch, behind ingest's address limit and key caches
	// (recorder.RateLimitError, recorder.ErrUnknownKey).
	WriteKeyProject(ctx context.Context, key, remoteIP string) (int64, error)
	// CaughtUp waits until the index holds every batch this node
	// acknowledged before the call (or ctx ends).
	CaughtUp(ctx context.Context) error
	// MaxBody is the largest ingest body taken, as sent.
	MaxBody() int64
	// SessionOf reads the session id of a body as sent (recorder errors).
	SessionOf(body []byte, encoding string) (string, error)
}

// Streamer is what the server needs of replay.
type Streamer interface {
	Stream(ctx context.Context, sess *index.Session, rg replay.Range, w replay.EventWriter) error
}

// Checker is something /readyz asks.
type Checker interface {
	Ready(ctx context.Context) error
}

// CheckFunc makes a function a Checker.
type CheckFunc func(ctx context.Context) error

// Ready calls f.
func (f CheckFunc) Ready(ctx context.Context) error { return f(ctx) }

// Deps are the parts the server connects; cmd/trailmap builds them.
type Deps struct {
	Index    *index.DB
	Recorder Ingester
	Replay   Streamer
	Extra    Extras // domain services added by later packages
	Registry *prometheus.Registry
	Ready    map[string]Checker // name → check, for /readyz
	Logger   *slog.Logger
	Now      func() time.Time
}

// Server is the HTTP server.
type Server struct {
	cfg  Config
	deps Deps
	log  *slog.Logger
	now  func() time.Time
	echo *echo.Echo

	// Refusals for overload come in floods: logged once per
	// refusedLogEvery with their count (/metrics counts each).
	refusedMu   sync.Mutex
	refused     int
	refusedLast time.Time
}

const refusedLogEvery = 10 * time.Second

// noteRefused logs refusals for overload at most once per refusedLogEvery.
func (s *Server) noteRefused(err error) {
	s.refusedMu.Lock()
	s.refused++
	now := s.now()
	if now.Sub(s.refusedLast) < refusedLogEvery {
		s.refusedMu.Unlock()
		return
	}
	n := s.refused
	s.refused, s.refusedLast = 0, now
	s.refusedMu.Unlock()
	reason := "overloaded"
	switch {
	case errors.Is(err, recorder.ErrStorageFull):
		reason = "storage full"
	case errors.Is(err, errOwnerUnreachable):
		reason = "the session's node is unreachable"
	}
	s.log.Warn("ingest refused: "+reason, "refused", n, slog.Any("error", err))
}

// New builds the server and its routes.
func New(cfg Config, deps Deps) *Server {
	if deps.Now == nil {
		deps.Now = time.Now
	}
	s := &Server{cfg: cfg, deps: deps, log: deps.Logger.With("component", "server"), now: deps.Now}
	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	e.HTTPErrorHandler = s.handleError
	if cfg.TrustProxy {
		e.IPExtractor = echo.ExtractIPFromXFFHeader()
	} else {
		e.IPExtractor = echo.ExtractIPDirect()
	}
	s.echo = e
	s.routes(e)
	return s
}

// Handler is the root HTTP handler.
func (s *Server) Handler() http.Handler { return s.echo }

// Serve answers on l's connections until ctx ends, then shuts down
// gracefully within the grace period.
func (s *Server) Serve(ctx context.Context, srv *http.Server, grace time.Duration, serve func() error) error {
	errc := make(chan error, 1)
	go func() { errc <- serve() }()
	select {
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), grace)
	defer cancel()
	err := srv.Shutdown(sctx)
	<-errc
	return err
}

// apiError is the JSON error body every failure gets.
type apiError struct {
	Error apiErrorBody `json:"error"`
}

type apiErrorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	// Field names the input that was wrong, where one was (a recording
	// rule), so a form can show the message beside it.
	Field string `json:"field,omitempty"`
}

// Errors of the dashboard side.
var (
	ErrUnauthorized = errors.New("authentication required")
	ErrForbidden    = errors.New("not allowed")
)

// handleError maps errors to a status, a code a client can act on, and a
// message; unexpected errors are logged and answered without details.
func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		if !errors.Is(err, context.Canceled) {
			s.log.Warn("error after response started", "path", c.Path(), slog.Any("error", err))
		}
		return
	}
	status, code, msg := s.classify(err)
	if errors.Is(err, recorder.ErrOverloaded) || errors.Is(err, recorder.ErrStorageFull) || errors.Is(err, errOwnerUnreachable) {
		s.noteRefused(err) // refusals come in floods: logged once in a while
	} else if status >= 500 {
		s.log.Error("request failed", "method", c.Request().Method, "path", c.Path(), slog.Any("error", err))
	}
	var rl *recorder.RateLimitError
	var qe *recorder.QuotaError
	switch {
	case errors.As(err, &rl):
		c.Response().Header().Set("Retry-After", strconv.Itoa(int(rl.RetryAfter/time.Second)+1))
	case errors.As(err, &qe): // until the next UTC day
		c.Response().Header().Set("Retry-After", strconv.Itoa(int((qe.RetryAfter+time.Second-1)/time.Second)))
	case errors.Is(err, errOwnerUnreachable):
		c.Response().Header().Set("Retry-After", "1")
	case errors.Is(err, recorder.ErrOverloaded):
		// Spread the retries of the many clients refused at once.
		c.Response().Header().Set("Retry-After", strconv.Itoa(1+rand.IntN(5)))
	case status == http.StatusServiceUnavailable:
		c.Response().Header().Set("Retry-After", "5")
	}
	if c.Request().Method == http.MethodHead {
		err = c.NoContent(status)
	} else {
		body := apiErrorBody{Code: code, Message: msg}
		var re *recorder.RuleError
		if errors.As(err, &re) && status == http.StatusBadRequest {
			body.Field = re.Field
		}
		err = c.JSON(status, apiError{body})
	}
	if err != nil {
		s.log.Warn("write error response", slog.Any("error", err))
	}
}

func (s *Server) classify(err error) (int, string, string) {
	var he *echo.HTTPError
	if errors.As(err, &he) {
		msg := http.StatusText(he.Code)
		if m, ok := he.Message.(string); ok {
			msg = m
		}
		return he.Code, statusCode(he.Code), msg
	}
	if status, code, ok := recorder.Code(err); ok {
		return status, code, err.Error()
	}
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return http.StatusRequestEntityTooLarge, "too_large", "request body too large"
	case errors.Is(err, errOwnerUnreachable):
		return http.StatusServiceUnavailable, "node_unreachable", errOwnerUnreachable.Error()
	case errors.Is(err, recorder.ErrShuttingDown):
		return http.StatusServiceUnavailable, "shutting_down", err.Error()
	case errors.Is(err, recorder.ErrOverloaded):
		return http.StatusServiceUnavailable, "overloaded", err.Error()
	case errors.Is(err, recorder.ErrStorageFull):
		// The error names paths of the data dir: not for the client.
		return http.StatusServiceUnavailable, "storage_full", "the server's disk is full; nothing was kept, retry later"
	case errors.Is(err, ErrUnauthorized):
		return http.StatusUnauthorized, "unauthorized", err.Error()
	case errors.Is(err, ErrForbidden):
		return http.StatusForbidden, "forbidden", err.Error()
	case errors.Is(err, index.ErrNotFound), errors.Is(err, assets.ErrNotFound):
		return http.StatusNotFound, "not_found", err.Error()
	case errors.Is(err, index.ErrBadFilter):
		return http.StatusBadRequest, "bad_request", err.Error()
	case errors.Is(err, index.ErrExists):
		return http.StatusConflict, "exists", err.Error()
	// The domains' own errors, mapped here and nowhere else.
	case errors.Is(err, heatmap.ErrBadQuery), errors.Is(err, journey.ErrInvalid), errors.Is(err, ui.ErrInvalid):
		return http.StatusBadRequest, "bad_request", err.Error()
	case errors.Is(err, heatmap.ErrNoData):
		return http.StatusNotFound, "not_found", err.Error()
	case errors.Is(err, ui.ErrNotAllowed):
		return http.StatusForbidden, "forbidden", err.Error()
	case errors.Is(err, ui.ErrGone):
		return http.StatusGone, "gone", err.Error()
	case errors.Is(err, errRendererUnavailable), errors.Is(err, render.ErrUnavailable):
		return http.StatusServiceUnavailable, "renderer_unavailable", err.Error()
	case errors.Is(err, render.ErrInvalid):
		return http.StatusBadRequest, "bad_request", err.Error()
	case errors.Is(err, render.ErrTooMany):
		return http.StatusTooManyRequests, "too_many_renders", err.Error()
	case errors.Is(err, render.ErrNotReady):
		return http.StatusConflict, "not_ready", err.Error()
	case errors.Is(err, render.ErrNotFound):
		return http.StatusNotFound, "not_found", err.Error()
	case errors.Is(err, assets.ErrUploadInvalid):
		return http.StatusBadRequest, "invalid_asset", err.Error()
	case errors.Is(err, assets.ErrUploadOrigin):
		return http.StatusForbidden, "asset_origin", err.Error()
	case errors.Is(err, assets.ErrUploadTooLarge):
		return http.StatusRequestEntityTooLarge, "too_large", err.Error()
	case errors.Is(err, assets.ErrUploadQuota):
		return http.StatusTooManyRequests, "quota_exceeded", err.Error()
	case errors.Is(err, audit.ErrBadFilter), errors.Is(err, retention.ErrBadPerson):
		return http.StatusBadRequest, "bad_request", err.Error()
	case sqldb.IsBadText(err):
		// What a JSON body decodes to may hold a NUL ("\u0000"); other
		// text that is not UTF-8 is refused before (utf8Only).
		return http.StatusBadRequest, "bad_request", "a text in the request holds a character that cannot be stored (NUL)"
	case errors.Is(err, context.Canceled):
		return 499, "canceled", "request canceled"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return http.StatusBadRequest, "malformed", "request body ended early"
	}
	var be badRequest
	if errors.As(err, &be) {
		return http.StatusBadRequest, "bad_request", be.msg
	}
	return http.StatusInternalServerError, "internal", "internal error"
}

// badRequest is a 400 with a message for the client.
type badRequest struct{ msg string }

func (b badRequest) Error() string { return b.msg }

func statusCode(status int) string {
	switch status {
	case http.StatusNotFound:
		return "not_found"
	case http.StatusMethodNotAllowed:
		return "method_not_allowed"
	case http.StatusUnauthorized:
		return "unauthorized"
	case http.StatusForbidden:
		return "forbidden"
	case http.StatusRequestEntityTooLarge:
		return "too_large"
	case http.StatusUnsupportedMediaType:
		return "unsupported_media_type"
	case http.StatusTooManyRequests:
		return "rate_limited"
	case http.StatusGone:
		return "gone"
	}
	if status >= 500 {
		return "internal"
	}
	return "bad_request"
}

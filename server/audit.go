package server

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/trailmap/trailmap/audit"
	"github.com/trailmap/trailmap/recorder"
)

// Auditor keeps the audit log (audit.Log).
type Auditor interface {
	Record(ctx context.Context, e audit.Entry) error
	List(ctx context.Context, f audit.Filter) ([]audit.Entry, string, error)
}

// audit records what the request's principal did. A failure to record is
// logged, not answered: the action itself has happened.
func (s *Server) audit(c echo.Context, action, target string, projectID int64, detail any) {
	a := s.deps.Extra.Audit
	if a == nil {
		return
	}
	e := audit.Entry{ActorKind: audit.ActorAnonymous, Action: action, Target: target, ProjectID: projectID,
		IP: recorder.AnonymizeIP(c.RealIP())}
	if p := principal(c); p != nil {
		e.ActorKind, e.Actor = audit.ActorToken, p.Name
		if p.Kind == "user" {
			e.ActorKind = audit.ActorUser
		}
	}
	if detail != nil {
		if b, err := json.Marshal(detail); err == nil {
			e.Detail = b
		}
	}
	s.record(c.Request().Context(), e)
}

// auditAs records an action whose actor the handler knows (a login).
func (s *Server) auditAs(c echo.Context, kind, actor, action, target string) {
	if s.deps.Extra.Audit == nil {
		return
	}
	s.record(c.Request().Context(), audit.Entry{ActorKind: kind, Actor: actor, Action: action, Target: target,
		IP: recorder.AnonymizeIP(c.RealIP())})
}

func (s *Server) record(ctx context.Context, e audit.Entry) {
	if err := s.deps.Extra.Audit.Record(context.WithoutCancel(ctx), e); err != nil {
		s.log.Error("record audit entry", "action", e.Action, slog.Any("error", err))
	}
}

// listAudit is GET /api/v1/audit, for admins (and API tokens): who did
// what, newest first.
func (s *Server) listAudit(c echo.Context) error {
	if p := principal(c); p == nil || p.ProjectIDs != nil {
		return fmt.Errorf("%w: the audit log is for admins", ErrForbidden)
	}
	q := c.QueryParams()
	f := audit.Filter{Action: q.Get("action"), Actor: q.Get("actor"), Cursor: q.Get("cursor")}
	for _, p := range []struct {
		name string
		dst  *time.Time
	}{{"since", &f.Since}, {"till", &f.Till}} {
		if v := q.Get(p.name); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				return badRequest{fmt.Sprintf("%s %q: want an RFC 3339 time", p.name, v)}
			}
			*p.dst = t
		}
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return badRequest{fmt.Sprintf("limit %q: want a whole number", v)}
		}
		f.Limit = n
	}
	entries, next, err := s.deps.Extra.Audit.List(c.Request().Context(), f)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"entries": entries, "next_cursor": next})
}

package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/trailmap/trailmap/cluster"
	"github.com/trailmap/trailmap/recorder"
)

// Router sends an ingest request to the node of a cluster that owns its
// session (see package cluster).
type Router interface {
	// Route returns the owner's answer, or nil when this node is to
	// handle the request (took: it took the session over just now).
	Route(ctx context.Context, req cluster.Request) (resp *http.Response, took bool, err error)
	// Forwarded reports whether r was forwarded by another node, and the
	// client address it carries.
	Forwarded(r *http.Request) (clientIP string, ok bool)
	// Misdirected reports whether this node knows another owns session.
	Misdirected(ctx context.Context, session string) bool
}

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
	req := recorder.Request{
		Key:       key,
		Encoding:  enc,
		Body:      r.Body,
		UserAgent: r.UserAgent(),
		RemoteIP:  c.RealIP(),
		Beacon:    beacon,
	}
	if rt := s.deps.Extra.Router; rt != nil {
		done, err := s.route(c, rt, &req)
		if done || err != nil {
			return err
		}
	}
	res, err := s.deps.Recorder.Ingest(r.Context(), req)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusAccepted, res)
}

// errOwnerUnreachable answers a batch whose session's node is down and not
// yet taken over (503, retried by the client).
var errOwnerUnreachable = errors.New("the node recording this session is not reachable; retry shortly")

// route sends the request to the node that owns its session, relaying
// that node's answer (done), or readies req for this node: the body read,
// the session it was routed by and, when another node forwarded it, the
// client's address.
func (s *Server) route(c echo.Context, rt Router, req *recorder.Request) (done bool, err error) {
	r := c.Request()
	ctx := r.Context()
	session := c.QueryParam("session")
	if ip, ok := rt.Forwarded(r); ok {
		req.RemoteIP = ip
		if recorder.ValidSession(session) && rt.Misdirected(ctx, session) {
			return true, c.JSON(http.StatusMisdirectedRequest, apiError{apiErrorBody{Code: "not_owner", Message: "this node does not record session " + session}})
		}
		req.Session = session
		return false, nil
	}
	max := s.deps.Recorder.MaxBody()
	body, err := io.ReadAll(io.LimitReader(r.Body, max+1))
	if err != nil {
		return false, err
	}
	req.Body = bytes.NewReader(body)
	if int64(len(body)) > max {
		return false, nil // too large: the recorder refuses it
	}
	if !recorder.ValidSession(session) {
		if session, err = s.deps.Recorder.SessionOf(body, req.Encoding); err != nil {
			return false, nil // the recorder refuses it with the same error
		}
	}
	req.Session = session
	resp, took, err := rt.Route(ctx, cluster.Request{Session: session, ClientIP: req.RemoteIP, HTTP: r, Body: body})
	req.TakenOver = took
	if errors.Is(err, cluster.ErrOwnerUnreachable) {
		return true, fmt.Errorf("%w (%w)", errOwnerUnreachable, err)
	}
	if err != nil {
		s.log.Warn("route ingest request, taking it here", "session", session, "error", err)
		return false, nil // the index may be down too: the recorder answers
	}
	if resp == nil {
		return false, nil
	}
	defer resp.Body.Close()
	h := c.Response().Header()
	for _, k := range []string{"Content-Type", "Retry-After"} {
		if v := resp.Header.Get(k); v != "" {
			h.Set(k, v)
		}
	}
	c.Response().WriteHeader(resp.StatusCode)
	_, err = io.Copy(c.Response(), io.LimitReader(resp.Body, 1<<20))
	return true, err
}

func hasMediaType(ct, want string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && mt == want
}

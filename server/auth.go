package server

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/trailmap/trailmap/storage/index"
)

// Principal is who a dashboard request acts for.
type Principal struct {
	Kind string // "token" or "user"
	Name string
	// UserID is set for UI users.
	UserID int64
	// ProjectIDs limits access to these projects; nil means every project.
	ProjectIDs []int64
}

// CanAccess reports whether p may read project id.
func (p *Principal) CanAccess(id int64) bool {
	return p.ProjectIDs == nil || slices.Contains(p.ProjectIDs, id)
}

// CookieAuth authenticates a request by the UI's login cookie. It returns
// (nil, nil) when the request carries no such cookie.
type CookieAuth interface {
	AuthenticateCookie(r *http.Request) (*Principal, error)
}

const principalKey = "trailmap.principal"

// requireAuth admits requests with a valid bearer token or login cookie.
func (s *Server) requireAuth(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		p, err := s.authenticate(c)
		if err != nil {
			return err
		}
		c.Set(principalKey, p)
		return next(c)
	}
}

func (s *Server) authenticate(c echo.Context) (*Principal, error) {
	r := c.Request()
	if h := r.Header.Get("Authorization"); h != "" {
		tok, ok := strings.CutPrefix(h, "Bearer ")
		if !ok || strings.TrimSpace(tok) == "" {
			return nil, fmt.Errorf("%w: Authorization must be \"Bearer <token>\"", ErrUnauthorized)
		}
		t, err := s.deps.Index.TokenByValue(r.Context(), strings.TrimSpace(tok))
		if errors.Is(err, index.ErrNotFound) {
			return nil, fmt.Errorf("%w: unknown token", ErrUnauthorized)
		}
		if err != nil {
			return nil, err
		}
		return &Principal{Kind: "token", Name: t.Name}, nil
	}
	if s.deps.Extra.Cookies != nil {
		p, err := s.deps.Extra.Cookies.AuthenticateCookie(r)
		if err != nil {
			return nil, err
		}
		if p != nil {
			return p, nil
		}
	}
	return nil, fmt.Errorf("%w: send Authorization: Bearer <token> (trailmap token create NAME) or log in", ErrUnauthorized)
}

// principal returns the authenticated principal of a request.
func principal(c echo.Context) *Principal {
	p, _ := c.Get(principalKey).(*Principal)
	if p == nil {
		return &Principal{ProjectIDs: []int64{}} // nothing: should not happen behind requireAuth
	}
	return p
}

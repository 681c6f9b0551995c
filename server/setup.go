package server

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/trailmap/trailmap/accounts"
	"github.com/trailmap/trailmap/internal/ratelimit"
	"github.com/trailmap/trailmap/recorder"
	"github.com/trailmap/trailmap/storage/index"
	"github.com/trailmap/trailmap/ui"
)

// SetupUsers is what the first-run setup needs of the UI's users.
type SetupUsers interface {
	// HasUsers says whether any user exists.
	HasUsers(ctx context.Context) (bool, error)
	// CreateUser makes a user (projectIDs nil: an admin); bad input wraps
	// ui.ErrInvalid.
	CreateUser(ctx context.Context, email, password string, projectIDs []int64) (*accounts.User, error)
}

// FirstRun lets the first person who opens the UI of a fresh install make
// its admin account with a one-time token from the server's log.
type FirstRun struct {
	// Token is the setup token, kept in memory only; empty when a user
	// existed at start (then there is no setup page).
	Token string
	Users SetupUsers
}

const (
	setupCSRFCookie   = "trailmap_setup_csrf"
	setupFailuresIP   = 5 // burst of wrong setup tokens per client address
	setupFailuresRate = 1.0 / 12
)

// setupHandlers serve /setup until the first user exists.
type setupHandlers struct {
	h     *uiHandlers
	token string
	users SetupUsers
	// done is set once a user exists: from then on /setup is gone, without
	// asking the index again.
	done atomic.Bool
	// mu makes the check "no user yet" and the creation one step, so two
	// right answers at once make one admin.
	mu       sync.Mutex
	failures *ratelimit.Limiter
}

func (h *uiHandlers) newSetupHandlers(fr FirstRun) *setupHandlers {
	st := &setupHandlers{h: h, token: fr.Token, users: fr.Users,
		failures: ratelimit.New(setupFailuresRate, setupFailuresIP, 10000, h.s.now)}
	if st.token == "" || st.users == nil {
		st.done.Store(true)
	}
	return st
}

// open says whether the install still waits for its first user.
func (st *setupHandlers) open(ctx context.Context) (bool, error) {
	if st.done.Load() {
		return false, nil
	}
	exists, err := st.users.HasUsers(ctx)
	if err != nil {
		return false, err
	}
	if exists {
		st.done.Store(true)
		return false, nil
	}
	return true, nil
}

// toSetup sends the visitors of a fresh install to /setup.
func (st *setupHandlers) toSetup(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		open, err := st.open(c.Request().Context())
		if err != nil {
			return err
		}
		if open {
			return c.Redirect(http.StatusSeeOther, "/setup")
		}
		return next(c)
	}
}

type setupView struct {
	CSRF, Email, Error string
	MinPassword        int
}

func (st *setupHandlers) page(c echo.Context) error {
	open, err := st.open(c.Request().Context())
	if err != nil {
		return err
	}
	if !open {
		return echo.ErrNotFound
	}
	return st.show(c, http.StatusOK, setupView{})
}

// show renders the form with a fresh anti-forgery token in a cookie of its
// own, as the login form does.
func (st *setupHandlers) show(c echo.Context, status int, v setupView) error {
	v.CSRF = index.NewSecret(18)
	v.MinPassword = ui.MinPasswordLen
	c.SetCookie(st.h.cookie(setupCSRFCookie, v.CSRF, st.h.s.now().Add(2*time.Hour), true, "/setup", http.SameSiteStrictMode))
	return st.h.render(c, status, "setup", v)
}

func (st *setupHandlers) create(c echo.Context) error {
	ctx := c.Request().Context()
	open, err := st.open(ctx)
	if err != nil {
		return err
	}
	if !open {
		return echo.ErrNotFound
	}
	email := strings.TrimSpace(c.FormValue("email"))
	v := setupView{Email: email}
	ck, err := c.Cookie(setupCSRFCookie)
	form := c.FormValue("csrf")
	if err != nil || ck.Value == "" || len(form) != len(ck.Value) || subtle.ConstantTimeCompare([]byte(form), []byte(ck.Value)) != 1 {
		v.Error = "Your setup form expired. Please try again."
		return st.show(c, http.StatusForbidden, v)
	}
	client := clientKey(c.RealIP())
	if ok, wait := st.failures.Check(client); !ok {
		secs := int(wait/time.Second) + 1
		c.Response().Header().Set("Retry-After", strconv.Itoa(secs))
		v.Error = fmt.Sprintf("Too many wrong setup tokens. Try again in %d seconds.", secs)
		return st.show(c, http.StatusTooManyRequests, v)
	}
	given := c.FormValue("token")
	if subtle.ConstantTimeCompare([]byte(given), []byte(st.token)) != 1 {
		st.failures.Allow(client)
		st.h.s.log.Warn("setup: wrong setup token", "client", recorder.AnonymizeIP(c.RealIP()))
		v.Error = "Wrong setup token. It is in the server's log, printed when it started last."
		return st.show(c, http.StatusUnauthorized, v)
	}

	u, err := st.createAdmin(ctx, email, c.FormValue("password"))
	if errors.Is(err, ui.ErrInvalid) {
		v.Error = capitalize(err.Error()) + "."
		return st.show(c, http.StatusBadRequest, v)
	}
	if err != nil {
		return err
	}
	if u == nil { // someone else was first
		return echo.ErrNotFound
	}
	st.h.s.log.Info("setup: admin created; the setup token is spent", "user", u.Email)
	l, err := st.h.users.StartLogin(ctx, u)
	if err != nil {
		return err
	}
	c.SetCookie(st.h.cookie(sessionCookie, l.Token, l.ExpiresAt, true, "/", http.SameSiteLaxMode))
	c.SetCookie(st.h.cookie(setupCSRFCookie, "", time.Time{}, true, "/setup", http.SameSiteStrictMode))
	return c.Redirect(http.StatusSeeOther, "/sessions")
}

// createAdmin makes the first admin and spends the token; nil when a user
// exists already.
func (st *setupHandlers) createAdmin(ctx context.Context, email, password string) (*accounts.User, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	open, err := st.open(ctx)
	if err != nil || !open {
		return nil, err
	}
	u, err := st.users.CreateUser(ctx, email, password, nil)
	if err != nil {
		return nil, err
	}
	st.done.Store(true)
	return u, nil
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

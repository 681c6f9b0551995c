package server

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/trailmap/trailmap/accounts"
	"github.com/trailmap/trailmap/audit"
	"github.com/trailmap/trailmap/internal/ratelimit"
	"github.com/trailmap/trailmap/recorder"
	"github.com/trailmap/trailmap/storage/index"
	"github.com/trailmap/trailmap/ui"
)

// UIUsers is what the server needs of the UI's users and login sessions.
type UIUsers interface {
	// Authenticate returns ui.ErrBadLogin for a wrong email or password.
	Authenticate(ctx context.Context, email, password string) (*accounts.User, error)
	StartLogin(ctx context.Context, u *accounts.User) (*ui.Login, error)
	// LoginByToken wraps index.ErrNotFound for an unknown or expired login.
	LoginByToken(ctx context.Context, token string) (*accounts.User, error)
	EndLogin(ctx context.Context, token string) error
}

// Cookie names of the UI.
const (
	sessionCookie       = "trailmap_session"
	loginCSRFCookie     = "trailmap_login_csrf"
	csrfHeader          = "X-CSRF-Token"
	loginUserKey        = "trailmap.user"
	loginTokenKey       = "trailmap.login"
	dashboardCSP        = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline' *; img-src * data: blob:; font-src * data:; media-src * data: blob:; connect-src 'self'; base-uri 'none'; form-action 'self'; object-src 'none'; frame-ancestors 'none'"
	loginAttemptsIP     = 10  // burst of login attempts per client address (IPv6: per /64)
	loginFailuresKey    = 5   // burst of failed logins per email and client address
	loginFailuresGlobal = 100 // burst of failed logins per email from everywhere
)

// newUIHandlers builds the UI's handlers: its pages, login and logout.
func (s *Server) newUIHandlers(users UIUsers) *uiHandlers {
	web, err := ui.NewWeb()
	if err != nil {
		// The templates are embedded: this is a programming error.
		panic(fmt.Sprintf("ui templates: %v", err))
	}
	if !web.Built() {
		s.log.Warn("web UI assets missing from this build; run `make js` and build again")
	}
	return &uiHandlers{s: s, web: web, users: users,
		ipLimit:     ratelimit.New(1.0/6, loginAttemptsIP, 10000, s.now),
		emailLimit:  ratelimit.New(1.0/12, loginFailuresKey, 10000, s.now),
		globalLimit: ratelimit.New(1.0/30, loginFailuresGlobal, 10000, s.now),
	}
}

type uiHandlers struct {
	s     *Server
	web   *ui.Web
	users UIUsers
	// ipLimit counts every attempt of a client address (each costs a
	// bcrypt); emailLimit counts failures per email from one client address,
	// so guessing from one place cannot lock the owner out from another;
	// globalLimit bounds failures per email from everywhere.
	ipLimit, emailLimit, globalLimit *ratelimit.Limiter
}

// pageHeaders are the security headers of every HTML page of the dashboard.
func pageHeaders(c echo.Context, csp string) {
	h := c.Response().Header()
	h.Set("Content-Security-Policy", csp)
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Robots-Tag", "noindex, nofollow")
	if strings.Contains(csp, "frame-ancestors 'none'") {
		h.Set("X-Frame-Options", "DENY")
	}
}

func (h *uiHandlers) render(c echo.Context, status int, name string, data any) error {
	var b strings.Builder
	if err := h.web.Render(&b, name, data); err != nil {
		return notBuilt(c, err)
	}
	pageHeaders(c, dashboardCSP)
	return c.HTML(status, b.String())
}

// notBuilt answers when the bundles are missing (a `go build` without `make js`).
func notBuilt(c echo.Context, err error) error {
	if errors.Is(err, ui.ErrNotBuilt) && !c.Response().Committed {
		return c.String(http.StatusServiceUnavailable, err.Error())
	}
	return err
}

// requireLogin admits page requests with a valid login cookie and sends
// everyone else to the login page.
func (h *uiHandlers) requireLogin(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		u, tok := h.loggedIn(c)
		if u == nil {
			return c.Redirect(http.StatusSeeOther, "/login?next="+url.QueryEscape(c.Request().URL.RequestURI()))
		}
		c.Set(loginUserKey, u)
		c.Set(loginTokenKey, tok)
		return next(c)
	}
}

func (h *uiHandlers) loggedIn(c echo.Context) (*accounts.User, string) {
	ck, err := c.Cookie(sessionCookie)
	if err != nil || ck.Value == "" {
		return nil, ""
	}
	u, err := h.users.LoginByToken(c.Request().Context(), ck.Value)
	if err != nil {
		if !errors.Is(err, index.ErrNotFound) {
			h.s.log.Error("check login", slog.Any("error", err))
		}
		return nil, ""
	}
	return u, ck.Value
}

func (h *uiHandlers) page(p *ui.Page) echo.HandlerFunc {
	return func(c echo.Context) error {
		u := c.Get(loginUserKey).(*accounts.User)
		tok := c.Get(loginTokenKey).(string)
		params := map[string]string{}
		for i, n := range c.ParamNames() {
			params[n] = c.ParamValues()[i]
		}
		pageHeaders(c, dashboardCSP)
		var b strings.Builder
		if err := h.web.RenderPage(&b, ui.PageData{Page: p, User: u, CSRF: ui.CSRFToken(tok), Params: params}); err != nil {
			return notBuilt(c, err)
		}
		return c.HTML(http.StatusOK, b.String())
	}
}

type loginView struct {
	CSRF, Next, Email, Error string
}

// safeNext keeps a post-login redirect on this site: a path starting with
// one slash, with no backslash and no control character anywhere (browsers
// drop tabs and newlines from URLs, so "/\t/evil.example" is
// "//evil.example"), that parses to no scheme and no host.
func safeNext(v string) string {
	const fallback = "/sessions"
	if !strings.HasPrefix(v, "/") || strings.HasPrefix(v, "//") || strings.ContainsRune(v, '\\') {
		return fallback
	}
	for i := 0; i < len(v); i++ {
		if v[i] < 0x20 || v[i] == 0x7f {
			return fallback
		}
	}
	u, err := url.Parse(v)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || strings.HasPrefix(u.Path, "//") {
		return fallback
	}
	return v
}

// clientKey is the rate-limit key of a client address: IPv4 whole, IPv6 by
// its /64 (one subscriber's prefix holds more addresses than anyone could
// try).
func clientKey(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	a = a.Unmap()
	if a.Is4() {
		return a.String()
	}
	p, _ := a.Prefix(64)
	return p.String()
}

func (h *uiHandlers) cookie(name, value string, expires time.Time, httpOnly bool, path string, same http.SameSite) *http.Cookie {
	ck := &http.Cookie{Name: name, Value: value, Path: path, HttpOnly: httpOnly, Secure: h.s.cfg.SecureCookies, SameSite: same}
	if value == "" {
		ck.MaxAge = -1
	} else if !expires.IsZero() {
		ck.Expires = expires
	}
	return ck
}

func (h *uiHandlers) loginPage(c echo.Context) error {
	next := safeNext(c.QueryParam("next"))
	if u, _ := h.loggedIn(c); u != nil {
		return c.Redirect(http.StatusSeeOther, next)
	}
	return h.showLogin(c, http.StatusOK, loginView{Next: next})
}

// showLogin renders the form with a fresh login anti-forgery token, kept in
// a cookie of its own (double submit: another site can neither read the
// cookie nor set the field).
func (h *uiHandlers) showLogin(c echo.Context, status int, v loginView) error {
	v.CSRF = index.NewSecret(18)
	c.SetCookie(h.cookie(loginCSRFCookie, v.CSRF, h.s.now().Add(2*time.Hour), true, "/login", http.SameSiteStrictMode))
	return h.render(c, status, "login", v)
}

func (h *uiHandlers) login(c echo.Context) error {
	r := c.Request()
	email := strings.TrimSpace(c.FormValue("email"))
	v := loginView{Next: safeNext(c.FormValue("next")), Email: email}
	ck, err := c.Cookie(loginCSRFCookie)
	form := c.FormValue("csrf")
	if err != nil || ck.Value == "" || len(form) != len(ck.Value) || subtle.ConstantTimeCompare([]byte(form), []byte(ck.Value)) != 1 {
		v.Error = "Your login form expired. Please try again."
		return h.showLogin(c, http.StatusForbidden, v)
	}
	client := clientKey(c.RealIP())
	lowered := strings.ToLower(email)
	tooMany := func(wait time.Duration) error {
		secs := int(wait/time.Second) + 1
		c.Response().Header().Set("Retry-After", strconv.Itoa(secs))
		v.Error = fmt.Sprintf("Too many login attempts. Try again in %d seconds.", secs)
		return h.showLogin(c, http.StatusTooManyRequests, v)
	}
	// Failures are checked now and charged only when the password is wrong.
	if ok, wait := h.emailLimit.Check(lowered + "\x00" + client); !ok {
		return tooMany(wait)
	}
	if ok, wait := h.globalLimit.Check(lowered); !ok {
		return tooMany(wait)
	}
	if ok, wait := h.ipLimit.Allow(client); !ok {
		return tooMany(wait)
	}
	u, err := h.users.Authenticate(r.Context(), email, c.FormValue("password"))
	if errors.Is(err, ui.ErrBadLogin) {
		h.emailLimit.Allow(lowered + "\x00" + client)
		h.globalLimit.Allow(lowered)
		h.s.log.Warn("login failed", "email", email, "client", recorder.AnonymizeIP(c.RealIP()))
		h.s.auditAs(c, audit.ActorAnonymous, "", "login.failed", email)
		v.Error = "Wrong email or password."
		return h.showLogin(c, http.StatusUnauthorized, v)
	}
	if err != nil {
		return err
	}
	l, err := h.users.StartLogin(r.Context(), u)
	if err != nil {
		return err
	}
	c.SetCookie(h.cookie(sessionCookie, l.Token, l.ExpiresAt, true, "/", http.SameSiteLaxMode))
	c.SetCookie(h.cookie(loginCSRFCookie, "", time.Time{}, true, "/login", http.SameSiteStrictMode))
	h.s.log.Info("login", "user", u.Email)
	h.s.auditAs(c, audit.ActorUser, u.Email, "login", u.Email)
	return c.Redirect(http.StatusSeeOther, v.Next)
}

func (h *uiHandlers) logout(c echo.Context) error {
	ck, err := c.Cookie(sessionCookie)
	if err != nil || ck.Value == "" {
		return c.Redirect(http.StatusSeeOther, "/login")
	}
	if !ui.CheckCSRF(ck.Value, c.FormValue("csrf")) {
		return fmt.Errorf("%w: missing or wrong anti-forgery token", ErrForbidden)
	}
	u, _ := h.loggedIn(c)
	if err := h.users.EndLogin(c.Request().Context(), ck.Value); err != nil {
		return err
	}
	if u != nil {
		h.s.auditAs(c, audit.ActorUser, u.Email, "logout", u.Email)
	}
	c.SetCookie(h.cookie(sessionCookie, "", time.Time{}, true, "/", http.SameSiteLaxMode))
	return c.Redirect(http.StatusSeeOther, "/login")
}

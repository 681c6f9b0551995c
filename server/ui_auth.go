package server

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/trailmap/trailmap/storage/index"
	"github.com/trailmap/trailmap/ui"
)

// LoginCookies authenticates dashboard API calls made by the UI with its
// login cookie. Calls that change state must also carry the login's
// anti-forgery token in the X-CSRF-Token header, and, when the browser says
// where they come from, come from this site.
func LoginCookies(users UIUsers) CookieAuth { return loginCookies{users} }

type loginCookies struct{ users UIUsers }

func (l loginCookies) AuthenticateCookie(r *http.Request) (*Principal, error) {
	ck, err := r.Cookie(sessionCookie)
	if err != nil || ck.Value == "" {
		return nil, nil
	}
	u, err := l.users.LoginByToken(r.Context(), ck.Value)
	if errors.Is(err, index.ErrNotFound) {
		return nil, fmt.Errorf("%w: your login has ended, log in again", ErrUnauthorized)
	}
	if err != nil {
		return nil, err
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
	default:
		if !ui.CheckCSRF(ck.Value, r.Header.Get(csrfHeader)) {
			return nil, fmt.Errorf("%w: missing or wrong %s header", ErrForbidden, csrfHeader)
		}
		if o := r.Header.Get("Origin"); o != "" && o != "null" {
			if ou, err := url.Parse(o); err != nil || ou.Host != r.Host {
				return nil, fmt.Errorf("%w: cross-site request", ErrForbidden)
			}
		}
	}
	return &Principal{Kind: "user", Name: u.Email, UserID: u.ID, ProjectIDs: u.ProjectIDs}, nil
}

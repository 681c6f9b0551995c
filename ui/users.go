package ui

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/trailmap/trailmap/accounts"
	"github.com/trailmap/trailmap/storage/index"
)

// MinPasswordLen is the shortest password accepted.
const MinPasswordLen = 8

// CreateUser stores a user with a bcrypt hash of password. projectIDs nil
// makes an admin who sees every project; otherwise a member of those. A
// taken email wraps accounts.ErrExists.
func (s *Service) CreateUser(ctx context.Context, email, password string, projectIDs []int64) (*accounts.User, error) {
	email = strings.TrimSpace(email)
	if len(email) < 3 || len(email) > 254 || !strings.Contains(email, "@") || strings.ContainsAny(email, " \t\r\n") {
		return nil, invalid(fmt.Sprintf("%q is not an email address", email))
	}
	if len(password) < MinPasswordLen {
		return nil, invalid(fmt.Sprintf("password must be at least %d characters", MinPasswordLen))
	}
	if len(password) > 72 {
		return nil, invalid("password must be at most 72 bytes (a bcrypt limit)")
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), s.cost())
	if err != nil {
		return nil, fmt.Errorf("hash password: %w", err)
	}
	u := &accounts.User{Email: email, Role: accounts.RoleAdmin, CreatedAt: s.now().UTC().Truncate(time.Millisecond)}
	if projectIDs != nil {
		u.Role, u.ProjectIDs = accounts.RoleMember, append([]int64{}, projectIDs...)
	}
	if err := s.acc.CreateUser(ctx, u, string(hash)); err != nil {
		return nil, err
	}
	return u, nil
}

// dummy is compared against when an email is unknown, so that a wrong
// email takes as long as a wrong password.
func (s *Service) dummy() []byte {
	s.dummyOnce.Do(func() {
		s.dummyHash, _ = bcrypt.GenerateFromPassword([]byte("trailmap-no-such-user"), s.cost())
	})
	return s.dummyHash
}

func (s *Service) cost() int {
	if s.bcryptCost == 0 {
		return bcrypt.DefaultCost
	}
	return s.bcryptCost
}

// Authenticate checks an email and password; ErrBadLogin when either is wrong.
func (s *Service) Authenticate(ctx context.Context, email, password string) (*accounts.User, error) {
	id, hash, err := s.acc.PasswordHash(ctx, strings.TrimSpace(email))
	if errors.Is(err, accounts.ErrNotFound) {
		_ = bcrypt.CompareHashAndPassword(s.dummy(), []byte(password))
		return nil, ErrBadLogin
	}
	if err != nil {
		return nil, err
	}
	if bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) != nil {
		return nil, ErrBadLogin
	}
	return s.acc.UserByID(ctx, id)
}

// UserByID loads a user and the projects of a member.
func (s *Service) UserByID(ctx context.Context, id int64) (*accounts.User, error) {
	return s.acc.UserByID(ctx, id)
}

// Login is a logged-in browser: the cookie holds Token, the index its hash.
type Login struct {
	Token     string
	User      *accounts.User
	ExpiresAt time.Time
}

// StartLogin opens a login session for a user and returns its secret token.
func (s *Service) StartLogin(ctx context.Context, u *accounts.User) (*Login, error) {
	now := s.now()
	l := &Login{Token: index.NewSecret(32), User: u, ExpiresAt: now.Add(s.loginTTL)}
	if err := s.acc.StartLogin(ctx, l.Token, u.ID, now, l.ExpiresAt); err != nil {
		return nil, err
	}
	return l, nil
}

// LoginByToken finds the user of a cookie's token; an unknown or expired
// login wraps accounts.ErrNotFound.
func (s *Service) LoginByToken(ctx context.Context, token string) (*accounts.User, error) {
	return s.acc.UserByLogin(ctx, token, s.now())
}

// EndLogin logs a browser out.
func (s *Service) EndLogin(ctx context.Context, token string) error {
	return s.acc.EndLogin(ctx, token)
}

// CSRFToken is the anti-forgery token of a login: derived from its secret
// token, so it needs no storage, and unknowable to another site.
func CSRFToken(loginToken string) string {
	h := hashSecret("csrf\x00" + loginToken)
	return fmt.Sprintf("%x", h[:16])
}

// CheckCSRF compares a presented anti-forgery token in constant time.
func CheckCSRF(loginToken, presented string) bool {
	want := CSRFToken(loginToken)
	return len(presented) == len(want) && subtle.ConstantTimeCompare([]byte(want), []byte(presented)) == 1
}

// HasUsers says whether anyone can log in yet: a fresh install has no user
// until its first admin is made.
func (s *Service) HasUsers(ctx context.Context) (bool, error) {
	return s.acc.HasUsers(ctx)
}

package ui

import (
	"context"
	"crypto/subtle"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/trailmap/trailmap/storage/index"
)

// User is a person who logs in to the UI.
type User struct {
	ID    int64  `json:"id"`
	Email string `json:"email"`
	// Role is "admin" (every project) or "member" (ProjectIDs only).
	Role string `json:"role"`
	// ProjectIDs are the projects a member may see; nil for an admin.
	ProjectIDs []int64   `json:"project_ids"`
	CreatedAt  time.Time `json:"created_at"`
}

// MinPasswordLen is the shortest password accepted.
const MinPasswordLen = 8

// CreateUser stores a user with a bcrypt hash of password. projectIDs nil
// makes an admin who sees every project; otherwise a member of those.
func (s *Service) CreateUser(ctx context.Context, email, password string, projectIDs []int64) (*User, error) {
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
	u := &User{Email: email, Role: "admin", CreatedAt: s.now().UTC().Truncate(time.Millisecond)}
	if projectIDs != nil {
		u.Role, u.ProjectIDs = "member", append([]int64{}, projectIDs...)
	}
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO users (email, password_hash, role, created_at) VALUES (?, ?, ?, ?)`,
			u.Email, string(hash), u.Role, u.CreatedAt.UnixMilli())
		if err != nil {
			if strings.Contains(err.Error(), "UNIQUE") {
				return fmt.Errorf("user %q: %w", email, index.ErrExists)
			}
			return fmt.Errorf("create user: %w", err)
		}
		u.ID, _ = res.LastInsertId()
		for _, p := range u.ProjectIDs {
			if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO user_projects (user_id, project_id) VALUES (?, ?)`, u.ID, p); err != nil {
				return fmt.Errorf("add user to project %d: %w", p, err)
			}
		}
		return nil
	})
	if err != nil {
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
func (s *Service) Authenticate(ctx context.Context, email, password string) (*User, error) {
	var id int64
	var hash string
	err := s.db.Read().QueryRowContext(ctx, `SELECT id, password_hash FROM users WHERE email = ?`, strings.TrimSpace(email)).Scan(&id, &hash)
	if errors.Is(err, sql.ErrNoRows) {
		_ = bcrypt.CompareHashAndPassword(s.dummy(), []byte(password))
		return nil, ErrBadLogin
	}
	if err != nil {
		return nil, fmt.Errorf("find user: %w", err)
	}
	if bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) != nil {
		return nil, ErrBadLogin
	}
	return s.UserByID(ctx, id)
}

// UserByID loads a user and the projects of a member.
func (s *Service) UserByID(ctx context.Context, id int64) (*User, error) {
	var u User
	var created int64
	err := s.db.Read().QueryRowContext(ctx, `SELECT id, email, role, created_at FROM users WHERE id = ?`, id).
		Scan(&u.ID, &u.Email, &u.Role, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("user %d: %w", id, index.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get user: %w", err)
	}
	u.CreatedAt = time.UnixMilli(created).UTC()
	if u.Role != "admin" {
		rows, err := s.db.Read().QueryContext(ctx, `SELECT project_id FROM user_projects WHERE user_id = ? ORDER BY project_id`, id)
		if err != nil {
			return nil, fmt.Errorf("user projects: %w", err)
		}
		defer rows.Close()
		u.ProjectIDs = []int64{}
		for rows.Next() {
			var p int64
			if err := rows.Scan(&p); err != nil {
				return nil, fmt.Errorf("scan user project: %w", err)
			}
			u.ProjectIDs = append(u.ProjectIDs, p)
		}
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("user projects: %w", err)
		}
	}
	return &u, nil
}

// Login is a logged-in browser: the cookie holds Token, the index its hash.
type Login struct {
	Token     string
	User      *User
	ExpiresAt time.Time
}

// StartLogin opens a login session for a user and returns its secret token.
func (s *Service) StartLogin(ctx context.Context, u *User) (*Login, error) {
	now := s.now()
	l := &Login{Token: index.NewSecret(32), User: u, ExpiresAt: now.Add(s.loginTTL)}
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		// Expired logins are dropped here, a cheap place that runs often enough.
		if _, err := tx.ExecContext(ctx, `DELETE FROM login_sessions WHERE expires_at < ?`, now.UnixMilli()); err != nil {
			return fmt.Errorf("drop expired logins: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO login_sessions (token_hash, user_id, created_at, expires_at, last_seen_at) VALUES (?, ?, ?, ?, ?)`,
			hashSecret(l.Token), u.ID, now.UnixMilli(), l.ExpiresAt.UnixMilli(), now.UnixMilli()); err != nil {
			return fmt.Errorf("store login: %w", err)
		}
		_, err := tx.ExecContext(ctx, `UPDATE users SET last_login_at = ? WHERE id = ?`, now.UnixMilli(), u.ID)
		return err
	})
	if err != nil {
		return nil, err
	}
	return l, nil
}

// LoginByToken finds the live login session of a cookie's token.
func (s *Service) LoginByToken(ctx context.Context, token string) (*User, error) {
	var userID, expires int64
	err := s.db.Read().QueryRowContext(ctx, `SELECT user_id, expires_at FROM login_sessions WHERE token_hash = ?`, hashSecret(token)).
		Scan(&userID, &expires)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && expires <= s.now().UnixMilli()) {
		return nil, fmt.Errorf("login: %w", index.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get login: %w", err)
	}
	return s.UserByID(ctx, userID)
}

// EndLogin logs a browser out.
func (s *Service) EndLogin(ctx context.Context, token string) error {
	if _, err := s.db.Write().ExecContext(ctx, `DELETE FROM login_sessions WHERE token_hash = ?`, hashSecret(token)); err != nil {
		return fmt.Errorf("end login: %w", err)
	}
	return nil
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

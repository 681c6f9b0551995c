package accounts

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/trailmap/trailmap/storage/sqldb"
)

// Roles of users.
const (
	// RoleAdmin sees every project.
	RoleAdmin = "admin"
	// RoleMember sees the projects of User.ProjectIDs only.
	RoleMember = "member"
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

// CreateUser stores u with its password's (bcrypt) hash and, for a member,
// its projects, and sets u.ID. A taken email (in any case) wraps ErrExists.
func (s *Store) CreateUser(ctx context.Context, u *User, passwordHash string) error {
	return s.db.InTx(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `INSERT INTO users (email, password_hash, role, created_at) VALUES (?, ?, ?, ?) RETURNING id`,
			u.Email, passwordHash, u.Role, u.CreatedAt.UnixMilli()).Scan(&u.ID)
		if err != nil {
			if sqldb.IsUnique(err) {
				return fmt.Errorf("user %q: %w", u.Email, ErrExists)
			}
			return fmt.Errorf("create user: %w", err)
		}
		add := s.pick(`INSERT OR IGNORE INTO user_projects (user_id, project_id) VALUES (?, ?)`,
			`INSERT INTO user_projects (user_id, project_id) VALUES (?, ?) ON CONFLICT DO NOTHING`)
		for _, p := range u.ProjectIDs {
			if _, err := tx.ExecContext(ctx, add, u.ID, p); err != nil {
				return fmt.Errorf("add user to project %d: %w", p, err)
			}
		}
		return nil
	})
}

// PasswordHash finds the user of an email (in any case) and its password's
// hash; an unknown email wraps ErrNotFound.
func (s *Store) PasswordHash(ctx context.Context, email string) (id int64, hash string, err error) {
	// The email column ignores case on SQLite (COLLATE NOCASE); PostgreSQL's
	// unique index is on lower(email).
	q := s.pick(`SELECT id, password_hash FROM users WHERE email = ?`, `SELECT id, password_hash FROM users WHERE lower(email) = lower(?)`)
	err = s.db.Read().QueryRowContext(ctx, q, email).Scan(&id, &hash)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, "", fmt.Errorf("user %q: %w", email, ErrNotFound)
	}
	if err != nil {
		return 0, "", fmt.Errorf("find user: %w", err)
	}
	return id, hash, nil
}

// UserByID loads a user and the projects of a member.
func (s *Store) UserByID(ctx context.Context, id int64) (*User, error) {
	var u User
	var created int64
	err := s.db.Read().QueryRowContext(ctx, `SELECT id, email, role, created_at FROM users WHERE id = ?`, id).
		Scan(&u.ID, &u.Email, &u.Role, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("user %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get user: %w", err)
	}
	u.CreatedAt = time.UnixMilli(created).UTC()
	if u.Role != RoleAdmin {
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

// StartLogin stores a login session of userID under the hash of token,
// lasting until expires, and notes now as the user's last login. Logins
// that expired before now are dropped on the way: a cheap place that runs
// often enough.
func (s *Store) StartLogin(ctx context.Context, token string, userID int64, now, expires time.Time) error {
	return s.db.InTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM login_sessions WHERE expires_at < ?`, now.UnixMilli()); err != nil {
			return fmt.Errorf("drop expired logins: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO login_sessions (token_hash, user_id, created_at, expires_at, last_seen_at) VALUES (?, ?, ?, ?, ?)`,
			hashSecret(token), userID, now.UnixMilli(), expires.UnixMilli(), now.UnixMilli()); err != nil {
			return fmt.Errorf("store login: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE users SET last_login_at = ? WHERE id = ?`, now.UnixMilli(), userID); err != nil {
			return fmt.Errorf("note last login: %w", err)
		}
		return nil
	})
}

// UserByLogin finds the user of a login session's token; an unknown token,
// or one whose login has expired by now, wraps ErrNotFound.
func (s *Store) UserByLogin(ctx context.Context, token string, now time.Time) (*User, error) {
	var userID, expires int64
	err := s.db.Read().QueryRowContext(ctx, `SELECT user_id, expires_at FROM login_sessions WHERE token_hash = ?`, hashSecret(token)).
		Scan(&userID, &expires)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && expires <= now.UnixMilli()) {
		return nil, fmt.Errorf("login: %w", ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get login: %w", err)
	}
	return s.UserByID(ctx, userID)
}

// EndLogin deletes the login session of token; an unknown one is no error.
func (s *Store) EndLogin(ctx context.Context, token string) error {
	if _, err := s.db.Write().ExecContext(ctx, `DELETE FROM login_sessions WHERE token_hash = ?`, hashSecret(token)); err != nil {
		return fmt.Errorf("end login: %w", err)
	}
	return nil
}

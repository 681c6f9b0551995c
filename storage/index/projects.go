package index

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/trailmap/trailmap/storage/sqldb"
)

// Project is a site or app whose visits are recorded under one write key.
type Project struct {
	ID        int64           `json:"id"`
	Name      string          `json:"name"`
	WriteKey  string          `json:"write_key"`
	Settings  json.RawMessage `json:"settings"`
	CreatedAt time.Time       `json:"created_at"`
	// IdentitySecret signs user ids for identify verification ("" when none
	// was created); never printed after it is made (see SetIdentitySecret).
	IdentitySecret string `json:"-"`
}

// NewSecret returns a URL-safe random string of n random bytes.
func NewSecret(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b)
}

// CreateProject creates a project with a fresh write key.
func (db *DB) CreateProject(ctx context.Context, name string, now time.Time) (*Project, error) {
	name = strings.TrimSpace(name)
	if name == "" || len(name) > 100 {
		return nil, fmt.Errorf("project name must be 1 to 100 characters")
	}
	p := &Project{Name: name, WriteKey: "wk_" + NewSecret(18), Settings: json.RawMessage("{}"), CreatedAt: now.UTC()}
	err := db.db.Write().QueryRowContext(ctx,
		`INSERT INTO projects (name, write_key, settings, created_at) VALUES (?, ?, '{}', ?) RETURNING id`,
		p.Name, p.WriteKey, now.UnixMilli()).Scan(&p.ID)
	if err != nil {
		if isUnique(err) {
			return nil, fmt.Errorf("project %q: %w", name, ErrExists)
		}
		return nil, fmt.Errorf("create project: %w", err)
	}
	return p, nil
}

// ProjectByKey looks a project up by its write key.
func (db *DB) ProjectByKey(ctx context.Context, key string) (*Project, error) {
	return db.project(ctx, `write_key = ?`, key)
}

// ProjectByName looks a project up by name.
func (db *DB) ProjectByName(ctx context.Context, name string) (*Project, error) {
	return db.project(ctx, `name = ?`, name)
}

// ProjectByID looks a project up by id.
func (db *DB) ProjectByID(ctx context.Context, id int64) (*Project, error) {
	return db.project(ctx, `id = ?`, id)
}

func (db *DB) project(ctx context.Context, where string, arg any) (*Project, error) {
	var p Project
	var settings string
	var created int64
	err := db.db.Read().QueryRowContext(ctx,
		`SELECT id, name, write_key, settings, created_at, identity_secret FROM projects WHERE `+where, arg).
		Scan(&p.ID, &p.Name, &p.WriteKey, &settings, &created, &p.IdentitySecret)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("project: %w", ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get project: %w", err)
	}
	p.Settings = json.RawMessage(settings)
	p.CreatedAt = time.UnixMilli(created).UTC()
	return &p, nil
}

// Projects lists all projects by id.
func (db *DB) Projects(ctx context.Context) ([]Project, error) {
	rows, err := db.db.Read().QueryContext(ctx,
		`SELECT id, name, write_key, settings, created_at FROM projects ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list projects: %w", err)
	}
	defer rows.Close()
	var out []Project
	for rows.Next() {
		var p Project
		var settings string
		var created int64
		if err := rows.Scan(&p.ID, &p.Name, &p.WriteKey, &settings, &created); err != nil {
			return nil, fmt.Errorf("scan project: %w", err)
		}
		p.Settings = json.RawMessage(settings)
		p.CreatedAt = time.UnixMilli(created).UTC()
		out = append(out, p)
	}
	return out, rows.Err()
}

// SetProjectSettings replaces a project's settings JSON.
func (db *DB) SetProjectSettings(ctx context.Context, id int64, settings json.RawMessage) error {
	if !json.Valid(settings) {
		return fmt.Errorf("project settings: invalid JSON")
	}
	res, err := db.db.Write().ExecContext(ctx, `UPDATE projects SET settings = ? WHERE id = ?`, string(settings), id)
	if err != nil {
		return fmt.Errorf("set project settings: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("project %d: %w", id, ErrNotFound)
	}
	return nil
}

// UpdateProjectSettings changes a project's settings with fn, which gets
// the stored settings and returns the new ones. The write only lands if
// the settings are still what fn saw, so two writers changing different
// keys (the dashboard and `trailmap project settings`) never lose each
// other's change; fn runs again when they raced. fn's error is returned
// as is.
func (db *DB) UpdateProjectSettings(ctx context.Context, id int64, fn func(old json.RawMessage) (json.RawMessage, error)) (json.RawMessage, error) {
	for attempt := 0; ; attempt++ {
		p, err := db.ProjectByID(ctx, id)
		if err != nil {
			return nil, err
		}
		next, err := fn(p.Settings)
		if err != nil {
			return nil, err
		}
		if !json.Valid(next) {
			return nil, fmt.Errorf("project settings: invalid JSON")
		}
		res, err := db.db.Write().ExecContext(ctx, `UPDATE projects SET settings = ? WHERE id = ? AND settings = ?`, string(next), id, string(p.Settings))
		if err != nil {
			return nil, fmt.Errorf("update project settings: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 1 {
			return next, nil
		}
		if attempt == 10 {
			return nil, fmt.Errorf("update project settings of %d: changed concurrently 10 times in a row", id)
		}
	}
}

// Token is a dashboard API token. Value is only known when it is created.
type Token struct {
	ID        int64     `json:"-"`
	Name      string    `json:"name"`
	Value     string    `json:"token,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

func hashToken(v string) []byte {
	h := sha256.Sum256([]byte(v))
	return h[:]
}

// CreateToken creates an API token; only its hash is stored.
func (db *DB) CreateToken(ctx context.Context, name string, now time.Time) (*Token, error) {
	name = strings.TrimSpace(name)
	if name == "" || len(name) > 100 {
		return nil, fmt.Errorf("token name must be 1 to 100 characters")
	}
	t := &Token{Name: name, Value: "tm_" + NewSecret(32), CreatedAt: now.UTC()}
	err := db.db.Write().QueryRowContext(ctx,
		`INSERT INTO api_tokens (name, token_hash, created_at) VALUES (?, ?, ?) RETURNING id`,
		t.Name, hashToken(t.Value), now.UnixMilli()).Scan(&t.ID)
	if err != nil {
		if isUnique(err) {
			return nil, fmt.Errorf("token %q: %w", name, ErrExists)
		}
		return nil, fmt.Errorf("create token: %w", err)
	}
	return t, nil
}

// TokenByValue finds the token with this secret value.
func (db *DB) TokenByValue(ctx context.Context, value string) (*Token, error) {
	var t Token
	var created int64
	err := db.db.Read().QueryRowContext(ctx,
		`SELECT id, name, created_at FROM api_tokens WHERE token_hash = ?`, hashToken(value)).
		Scan(&t.ID, &t.Name, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("token: %w", ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get token: %w", err)
	}
	t.CreatedAt = time.UnixMilli(created).UTC()
	return &t, nil
}

func isUnique(err error) bool {
	return sqldb.IsUnique(err)
}

// Package ui is Trailmap's web app: the rules about the people who use it
// (users, login sessions, project membership) and what they make (share
// links, timeline notes), and the embedded pages and assets (see web.go).
// The rows live in the accounts package, which ui reaches through the small
// interfaces below. The server package wires it to HTTP; ui never imports
// server.
package ui

import (
	"context"
	"crypto/sha256"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/trailmap/trailmap/accounts"
)

// Errors of the ui package. Lookups that find nothing wrap
// accounts.ErrNotFound (which is an index.ErrNotFound too).
var (
	// ErrBadLogin is a wrong email or password (which one is not said).
	ErrBadLogin = errors.New("wrong email or password")
	// ErrInvalid is input that cannot be stored; the message says why.
	ErrInvalid = errors.New("invalid input")
	// ErrGone is a share link that was revoked or has expired.
	ErrGone = errors.New("link no longer available")
	// ErrNotAllowed is an action on something the caller may not change.
	ErrNotAllowed = errors.New("not allowed")
)

// UserStore keeps users and their login sessions (accounts.Store).
type UserStore interface {
	// CreateUser stores u and sets u.ID; a taken email wraps accounts.ErrExists.
	CreateUser(ctx context.Context, u *accounts.User, passwordHash string) error
	// PasswordHash wraps accounts.ErrNotFound for an unknown email.
	PasswordHash(ctx context.Context, email string) (id int64, hash string, err error)
	// HasUsers says whether any user exists.
	HasUsers(ctx context.Context) (bool, error)
	// UserByID wraps accounts.ErrNotFound for an unknown id.
	UserByID(ctx context.Context, id int64) (*accounts.User, error)
	StartLogin(ctx context.Context, token string, userID int64, now, expires time.Time) error
	// UserByLogin wraps accounts.ErrNotFound for an unknown or expired login.
	UserByLogin(ctx context.Context, token string, now time.Time) (*accounts.User, error)
	EndLogin(ctx context.Context, token string) error
}

// ShareStore keeps share links (accounts.Store).
type ShareStore interface {
	// CreateShare stores sh under the hash of token and sets its ID and Hint.
	CreateShare(ctx context.Context, token string, sh *accounts.Share) error
	// ShareByToken and ShareByID wrap accounts.ErrNotFound for no share.
	ShareByToken(ctx context.Context, token string) (*accounts.Share, error)
	ShareByID(ctx context.Context, id int64) (*accounts.Share, error)
	Shares(ctx context.Context, f accounts.ShareFilter) ([]accounts.Share, error)
	CountShareView(ctx context.Context, id int64, at time.Time) error
	RevokeShare(ctx context.Context, id int64, at time.Time) error
}

// NoteStore keeps timeline notes (accounts.Store).
type NoteStore interface {
	AddNote(ctx context.Context, sessionRowID int64, n *accounts.Note) error
	Notes(ctx context.Context, sessionRowID int64) ([]accounts.Note, error)
	// NoteByID wraps accounts.ErrNotFound for no such note of the session.
	NoteByID(ctx context.Context, sessionRowID, id int64) (*accounts.Note, error)
	DeleteNote(ctx context.Context, id int64) error
}

// Accounts is where the service keeps its rows: *accounts.Store.
type Accounts interface {
	UserStore
	ShareStore
	NoteStore
}

var _ Accounts = (*accounts.Store)(nil)

// Sessions resolves the public ids of sessions that share links name
// (*index.DB).
type Sessions interface {
	// SessionPublicIDs leaves out row ids of sessions that no longer exist.
	SessionPublicIDs(ctx context.Context, rowIDs []int64) (map[int64]string, error)
	// SessionRowIDs lists the sessions of a public id in projectIDs (nil: any).
	SessionRowIDs(ctx context.Context, projectIDs []int64, publicID string) ([]int64, error)
}

// Service holds the rules about users, login sessions, shares and notes.
type Service struct {
	acc        Accounts
	sessions   Sessions
	now        func() time.Time
	log        *slog.Logger
	loginTTL   time.Duration
	bcryptCost int
	dummyOnce  sync.Once
	dummyHash  []byte
}

// Config tunes the service; zero values take defaults.
type Config struct {
	// LoginTTL is how long a login lasts (default 14 days).
	LoginTTL time.Duration
	// BcryptCost is the password hashing cost (default bcrypt.DefaultCost).
	BcryptCost int
}

// New returns the service over the accounts store and the index's sessions.
// now is the clock (nil: time.Now).
func New(acc Accounts, sessions Sessions, cfg Config, now func() time.Time, logger *slog.Logger) *Service {
	if now == nil {
		now = time.Now
	}
	if cfg.LoginTTL <= 0 {
		cfg.LoginTTL = 14 * 24 * time.Hour
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Service{acc: acc, sessions: sessions, now: now, log: logger.With("component", "ui"), loginTTL: cfg.LoginTTL, bcryptCost: cfg.BcryptCost}
}

func hashSecret(v string) []byte {
	h := sha256.Sum256([]byte(v))
	return h[:]
}

func invalid(msg string) error { return &invalidError{msg} }

type invalidError struct{ msg string }

func (e *invalidError) Error() string { return e.msg }
func (e *invalidError) Unwrap() error { return ErrInvalid }

// Package ui is Trailmap's web app: the people who use it (users, login
// sessions, project membership), what they make (share links, timeline
// notes) and the embedded pages and assets (see web.go). The server package
// wires it to HTTP; ui never imports server.
package ui

import (
	"crypto/sha256"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/trailmap/trailmap/storage/index"
)

// Errors of the ui package. Lookups that find nothing wrap index.ErrNotFound.
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

// Service holds users, login sessions, shares and notes in the index.
type Service struct {
	db         *index.DB
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

// New returns the service. now is the clock (nil: time.Now).
func New(db *index.DB, cfg Config, now func() time.Time, logger *slog.Logger) *Service {
	if now == nil {
		now = time.Now
	}
	if cfg.LoginTTL <= 0 {
		cfg.LoginTTL = 14 * 24 * time.Hour
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Service{db: db, now: now, log: logger.With("component", "ui"), loginTTL: cfg.LoginTTL, bcryptCost: cfg.BcryptCost}
}

func hashSecret(v string) []byte {
	h := sha256.Sum256([]byte(v))
	return h[:]
}

func invalid(msg string) error { return &invalidError{msg} }

type invalidError struct{ msg string }

func (e *invalidError) Error() string { return e.msg }
func (e *invalidError) Unwrap() error { return ErrInvalid }

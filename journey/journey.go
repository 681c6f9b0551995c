// Package journey follows visitors across visits and devices: people joined
// by identify, funnels with drop-off, page paths, site-search intent,
// journey stages and audiences, each number leading back to the sessions
// (and so the recordings) behind it.
//
// It owns the journey_* tables (migrations/, Schema): a compact per-session
// timeline of page views and custom events over a per-project dictionary,
// the site searches, settings and saved funnels, stages and audiences. The
// core tables (sessions, visitors, pages, custom_events) are storage/index's:
// journey reads them through the index's typed methods (the core interface
// below) and hands segments to it as index.Match values. The recorder keeps
// the derived tables current through the Observer methods; Sync fills them
// for sessions recorded before (or without) the observer.
package journey

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/trailmap/trailmap/storage/index"
	"github.com/trailmap/trailmap/storage/sqldb"
)

// Errors of the journey package. Bad input wraps ErrInvalid with a message
// for the API client; a missing funnel, audience, stage or person wraps
// index.ErrNotFound.
var (
	ErrInvalid  = errors.New("invalid input")
	ErrNotFound = index.ErrNotFound
)

// core is what journey reads (and the one thing it writes) of the index's
// core tables; *index.DB implements it.
type core interface {
	ScanSessions(ctx context.Context, q index.SessionScan, fn func(id int64, attrs []string) error) error
	SessionsByID(ctx context.Context, ids []int64) ([]index.Session, error)
	ListPeople(ctx context.Context, f index.PeopleFilter) ([]index.VisitorRow, error)
	VisitorsOfUsers(ctx context.Context, projectID int64, users []string) ([]index.VisitorRow, error)
	VisitorsByID(ctx context.Context, projectID int64, ids []string) ([]index.VisitorRow, error)
	IdentifiedVisitors(ctx context.Context, projectID int64, fn func(visitorID, userID string) error) error
	VisitCounts(ctx context.Context, projectID int64, visitors []string) (map[string]int, error)
	VisitTotals(ctx context.Context, projectID int64, visitors []string) (sessions, conversions int, err error)
	VisitorSessions(ctx context.Context, projectID int64, visitors []string, after *index.VisitCursor, limit int) ([]index.Session, error)
	PageViews(ctx context.Context, sessionIDs []int64) ([]index.PageView, error)
	CustomEventsOf(ctx context.Context, sessionIDs []int64) ([]index.EventRow, error)
	MatchingPeopleVisitors(ctx context.Context, projectID int64, since time.Time, m index.Match) ([]index.VisitorVisits, error)
	SessionIDsAfter(ctx context.Context, projectID, after int64, limit int) ([]int64, error)
	SettledSessions(ctx context.Context, tx *sqldb.Tx, ids []int64, receivedBefore int64) (map[int64]bool, error)
	Projects(ctx context.Context) ([]index.Project, error)
}

var _ core = (*index.DB)(nil)

// Service answers journey questions over the index. Create it with New;
// it is safe for concurrent use.
type Service struct {
	db   *sqldb.DB // journey's own tables
	core core
	log  *slog.Logger
	now  func() time.Time

	ws      *writeStmts
	content *index.ContentReader

	dictMu sync.Mutex
	dicts  map[int64]*dict // by project

	bgMu     sync.Mutex
	bgCtx    context.Context
	bgCancel context.CancelFunc
	bg       sync.WaitGroup
	rebuilds map[int64]int // projects being rebuilt after a settings change: generation
}

// New returns a service over idx, whose database must include Schema.
// Close releases it.
func New(ctx context.Context, idx *index.DB, logger *slog.Logger) (*Service, error) {
	db := idx.SQL()
	ws, err := prepareStmts(ctx, db)
	if err != nil {
		return nil, err
	}
	content, err := idx.PrepareContentReader(ctx)
	if err != nil {
		ws.close()
		return nil, err
	}
	bgCtx, cancel := context.WithCancel(context.Background())
	return &Service{
		db:       db,
		core:     idx,
		ws:       ws,
		content:  content,
		log:      logger.With("component", "journey"),
		now:      time.Now,
		dicts:    map[int64]*dict{},
		bgCtx:    bgCtx,
		bgCancel: cancel,
		rebuilds: map[int64]int{},
	}, nil
}

// Start runs the background work: it fills the derived tables for
// sessions that have none (recorded before this version, or while the
// observer was not registered), then packs ended sessions into chunks
// every minute. Close stops it.
func (s *Service) Start() {
	s.goBackground(func(ctx context.Context) {
		if n, err := s.Sync(ctx); err != nil {
			if !errors.Is(err, context.Canceled) {
				s.log.Error("journey backfill", slog.Any("error", err))
			}
		} else if n > 0 {
			s.log.Info("journey backfill done", "sessions", n)
		}
		t := time.NewTicker(time.Minute)
		defer t.Stop()
		for {
			if _, err := s.Pack(ctx, false); err != nil && !errors.Is(err, context.Canceled) {
				s.log.Error("journey pack", slog.Any("error", err))
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	})
}

// Close stops background work (backfill, rebuilds), waits for it and
// releases the prepared statements. Close it after the recorder that
// calls its observer methods.
func (s *Service) Close() error {
	s.bgCancel()
	s.bg.Wait()
	return errors.Join(s.ws.close(), s.content.Close())
}

func (s *Service) goBackground(fn func(ctx context.Context)) {
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		fn(s.bgCtx)
	}()
}

// Settings are a project's journey settings.
type Settings struct {
	// SearchParams are the query parameters of the site's search page
	// (default ["q"]).
	SearchParams []string `json:"search_params"`
	// ConversionEvents are custom event names (patterns) that count as a
	// conversion (default ["purchase"]).
	ConversionEvents []string `json:"conversion_events"`
	// ConversionPages are page path patterns that count as a conversion,
	// e.g. "/checkout/thank-you" (default none).
	ConversionPages []string `json:"conversion_pages"`
}

// DefaultSettings are the settings of a project that has saved none.
func DefaultSettings() Settings {
	return Settings{SearchParams: []string{"q"}, ConversionEvents: []string{"purchase"}, ConversionPages: []string{}}
}

// Validate checks settings from the API.
func (st Settings) Validate() error {
	if len(st.SearchParams) > 10 || len(st.ConversionEvents) > 50 || len(st.ConversionPages) > 50 {
		return invalidf("settings: at most 10 search parameters, 50 conversion events and 50 conversion pages")
	}
	for _, p := range st.SearchParams {
		if p == "" || len(p) > 100 || strings.ContainsAny(p, "&=#?") {
			return invalidf("settings: search parameter %q must be 1 to 100 characters without & = # ?", p)
		}
	}
	for _, e := range st.ConversionEvents {
		if _, err := ParsePattern(e); err != nil {
			return invalidf("settings: conversion event: %v", err)
		}
	}
	for _, p := range st.ConversionPages {
		if !strings.HasPrefix(p, "/") && !strings.HasPrefix(p, "*") {
			return invalidf("settings: conversion page %q must start with / (a path pattern)", p)
		}
		if _, err := ParsePattern(p); err != nil {
			return invalidf("settings: conversion page: %v", err)
		}
	}
	return nil
}

// conversion is a compiled conversion definition.
type conversion struct {
	events, pages []Pattern
}

func (st Settings) conversion() conversion {
	var c conversion
	for _, e := range st.ConversionEvents {
		if p, err := ParsePattern(e); err == nil {
			c.events = append(c.events, p)
		}
	}
	for _, e := range st.ConversionPages {
		if p, err := ParsePattern(e); err == nil {
			c.pages = append(c.pages, p)
		}
	}
	return c
}

func (c conversion) match(kind int, name string) bool {
	ps := c.pages
	if kind == kindEvent {
		ps = c.events
	}
	for _, p := range ps {
		if p.Match(name) {
			return true
		}
	}
	return false
}

type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func loadSettings(ctx context.Context, q querier, projectID int64) (Settings, error) {
	return loadSettingsRow(q.QueryRowContext(ctx, `SELECT settings FROM journey_settings WHERE project_id = ?`, projectID))
}

// loadSettingsRow reads the settings column of a journey_settings row.
func loadSettingsRow(row *sql.Row) (Settings, error) {
	var raw string
	err := row.Scan(&raw)
	if errors.Is(err, sql.ErrNoRows) {
		return DefaultSettings(), nil
	}
	if err != nil {
		return Settings{}, fmt.Errorf("load journey settings: %w", err)
	}
	st := DefaultSettings()
	if err := json.Unmarshal([]byte(raw), &st); err != nil {
		return Settings{}, fmt.Errorf("parse journey settings: %w", err)
	}
	return st, nil
}

// Settings returns a project's journey settings and whether the derived
// data is being rebuilt after a change.
func (s *Service) Settings(ctx context.Context, projectID int64) (Settings, bool, error) {
	st, err := loadSettings(ctx, s.db.Read(), projectID)
	s.bgMu.Lock()
	rebuilding := s.rebuilds[projectID] > 0
	s.bgMu.Unlock()
	return st, rebuilding, err
}

// SetSettings saves a project's settings and, in the background, rebuilds
// the searches and conversions derived with the old ones.
func (s *Service) SetSettings(ctx context.Context, projectID int64, st Settings) error {
	if st.SearchParams == nil {
		st.SearchParams = []string{}
	}
	if st.ConversionEvents == nil {
		st.ConversionEvents = []string{}
	}
	if st.ConversionPages == nil {
		st.ConversionPages = []string{}
	}
	if err := st.Validate(); err != nil {
		return err
	}
	raw, _ := json.Marshal(st)
	_, err := s.db.Write().ExecContext(ctx, `
		INSERT INTO journey_settings (project_id, settings, updated_at) VALUES (?, ?, ?)
		ON CONFLICT (project_id) DO UPDATE SET settings = excluded.settings, updated_at = excluded.updated_at`,
		projectID, string(raw), s.now().UnixMilli())
	if err != nil {
		return fmt.Errorf("save journey settings: %w", err)
	}
	s.bgMu.Lock()
	running := s.rebuilds[projectID] > 0
	s.rebuilds[projectID]++
	s.bgMu.Unlock()
	if running {
		// The running rebuild restarts from the beginning with the new
		// settings (see rebuildLoop).
		return nil
	}
	s.goBackground(func(ctx context.Context) {
		if err := s.rebuildLoop(ctx, projectID); err != nil && !errors.Is(err, context.Canceled) {
			s.log.Error("journey rebuild after settings change", "project", projectID, slog.Any("error", err))
		}
	})
	return nil
}

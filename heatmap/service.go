// Package heatmap turns recorded sessions into heatmaps: at ingest it
// places every click in page coordinates (following the document's scroll,
// or the main scrolling container's), names its target element with a
// selector from a light mirror of the recorded DOM, follows scroll depth,
// and finds frustration signals (rage, dead and error clicks); it keeps
// per-day and per-month aggregates in the index, and renders click,
// element, scroll and frustration maps as PNG overlays and JSON.
//
// # Ingest
//
// [Service] is a recorder observer: it sees each accepted batch inside the
// index's write transaction. Per session it keeps a small tracker in memory
// (bounded: an LRU of MaxSessions trackers and MaxTotalNodes mirrored DOM
// nodes overall; a session's tracker is dropped when it closes). When a
// tracker is missing (evicted, or after a restart) it is resumed from the
// session's last page view row: page, viewport, document size, scroll
// positions and depth carry on, but the DOM mirror is empty until the next
// full snapshot (a new page, or rrweb's periodic checkout). Until then clicks
// are placed correctly but have no selector (element maps skip them), clicks
// inside a main scrolling container are placed as if it were not scrolled,
// and clicks still in their dead-click window are forgotten (never dead).
//
// A transaction that fails (a deadlock, a lost connection, another batch of
// its group refused) is not such a case: before a transaction first follows
// a session the service keeps a checkpoint of its tracker (its page views
// and recent clicks copied, its DOM mirror marked: the mirror keeps the old
// value of what changes in it), and a rollback puts the checkpoint back, so
// the recorder's retry finds what the first attempt found.
//
// # Placement
//
// A click's page position is its clientX/Y plus the document scroll (from
// the full snapshot's initialOffset and Scroll events of the document node),
// plus the scroll of the main container when the target is inside it. The
// main container is the element that scrolled furthest down while the
// document never scrolled (pages whose body is a fixed frame). Clicks are
// kept per document width bucket (16 px); the grid cell is 8 px.
package heatmap

import (
	"container/list"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/trailmap/trailmap/internal/rrweb"
	"github.com/trailmap/trailmap/storage/index"
	"github.com/trailmap/trailmap/storage/sqldb"
)

// Errors of the query side.
var (
	// ErrBadQuery is returned (wrapped) for a query that cannot be answered.
	ErrBadQuery = errors.New("bad heatmap query")
	// ErrNoData is returned (wrapped) when nothing was recorded for a query
	// that needs something (a snapshot of the page).
	ErrNoData = errors.New("no data")
)

// Config holds the service's limits.
type Config struct {
	// MaxSessions is how many session trackers stay in memory (LRU).
	MaxSessions int
	// MaxMirrorNodes bounds one session's DOM mirror; MaxTotalNodes all of
	// them together (the least recently used sessions lose their mirror).
	MaxMirrorNodes int
	MaxTotalNodes  int
	// CacheBytes bounds the rendered-map cache; CacheStale is how long a
	// cached map may be served after new clicks for its project arrived.
	CacheBytes int64
	CacheStale time.Duration
	// Shared says other nodes of a cluster derive facts into the same
	// index: this node does not see their changes, so a cached map is
	// served for CacheStale at most.
	Shared bool
	// SettingsTTL is how long a project's settings are cached.
	SettingsTTL time.Duration
}

// DefaultConfig returns the production defaults: 20k sessions, 50k nodes
// per mirror and 3M overall (about 250 MB at most), a 64 MB map cache whose
// entries go stale 30 s after new data.
func DefaultConfig() Config {
	return Config{
		MaxSessions:    20000,
		MaxMirrorNodes: 50000,
		MaxTotalNodes:  3_000_000,
		CacheBytes:     64 << 20,
		CacheStale:     30 * time.Second,
		SettingsTTL:    10 * time.Second,
	}
}

// Validate reports settings that cannot work.
func (c Config) Validate() error {
	if c.MaxSessions < 1 || c.MaxMirrorNodes < 1 || c.MaxTotalNodes < c.MaxMirrorNodes || c.CacheBytes < 0 {
		return errors.New("heatmap: session, node and cache limits must be positive (total nodes at least the per-session limit)")
	}
	return nil
}

// Index is what the service uses of storage/index, the owner of the
// projects and sessions tables.
type Index interface {
	// ProjectByID returns a project, for its settings; index.ErrNotFound
	// when there is none.
	ProjectByID(ctx context.Context, id int64) (*index.Project, error)
	// SessionByRowID returns a session by its row id; index.ErrNotFound
	// when there is none.
	SessionByRowID(ctx context.Context, id int64) (*index.Session, error)
	// MatchSessions returns those of ids whose session satisfies m.
	MatchSessions(ctx context.Context, ids []int64, m index.Match) ([]int64, error)
	// PrepareSessionCounters prepares what the observer reads and counts
	// of a session inside the ingest transaction.
	PrepareSessionCounters(ctx context.Context) (*index.SessionCounters, error)
}

// Service is the heatmap service: recorder observer and map queries.
type Service struct {
	db  *sqldb.DB // for the heat_* tables
	idx Index
	cfg Config
	log *slog.Logger
	now func() time.Time

	mu       sync.Mutex // guards the trackers' list and the node budget
	sessions map[int64]*list.Element
	lru      *list.List // of *entry, most recent at the front
	nodes    int        // mirrored nodes counted at the end of each batch

	setMu    sync.Mutex
	settings map[int64]settingsEntry

	genMu sync.Mutex
	gen   map[int64]genEntry // per project: changes, for the render cache

	failMu   sync.Mutex
	failures map[int64]int // failed batches in a row, by session

	selMu sync.Mutex
	sels  map[selKey]selEntry // selector rows known committed (selectorID)

	cache    *renderCache
	st       *stmts
	counters *index.SessionCounters

	// For Memory: DOM mirrors dropped for the node budget, and clicks
	// placed without a mirror.
	mirrorsDropped, clicksNoDOM atomic.Int64
	droppedWarned               time.Time // guarded by mu: the last warning about dropped mirrors
}

type entry struct {
	id    int64
	busy  sync.Mutex // held while t follows a batch
	t     *tracker   // guarded by busy
	nodes int        // guarded by Service.mu
}

type settingsEntry struct {
	s      *Settings
	loaded time.Time
}

type genEntry struct {
	n       uint64
	changed time.Time
}

// New builds the service on db, whose schemas must include Schema, and
// idx, the core index on the same database; it prepares its statements on
// the writer.
func New(ctx context.Context, cfg Config, db *sqldb.DB, idx Index, logger *slog.Logger) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Service{
		db:       db,
		idx:      idx,
		cfg:      cfg,
		log:      logger.With("component", "heatmap"),
		now:      time.Now,
		sessions: map[int64]*list.Element{},
		lru:      list.New(),
		settings: map[int64]settingsEntry{},
		gen:      map[int64]genEntry{},
		failures: map[int64]int{},
		sels:     map[selKey]selEntry{},
		cache:    newRenderCache(cfg.CacheBytes),
	}
	var err error
	if s.counters, err = idx.PrepareSessionCounters(ctx); err != nil {
		return nil, fmt.Errorf("heatmap: %w", err)
	}
	if s.st, err = prepare(ctx, db.Write(), db.Dialect()); err != nil {
		s.counters.Close()
		return nil, err
	}
	return s, nil
}

// Close releases the prepared statements.
func (s *Service) Close() error { return errors.Join(s.st.close(), s.counters.Close()) }

// maxFailures is how many times in a row a session's batch may fail before
// the observer gives up on it: the recorder retries a failed transaction
// forever, so a batch that always fails here would stop all ingest.
const maxFailures = 5

// ObserveBatch follows a newly accepted batch of session sessionID (the
// sessions row id) inside the index transaction tx. Batches of a session
// arrive in acceptance order. An error fails the transaction (the recorder
// retries it); after maxFailures failures in a row for one session the
// batch's heatmap facts are rolled back to a savepoint and dropped, logged,
// and the batch goes through without them. The savepoint is only taken for
// a session that failed before, so the usual batch costs no statements for
// it.
func (s *Service) ObserveBatch(ctx context.Context, stx *sqldb.Tx, sessionID int64, events []rrweb.Event) error {
	tx := stx.SQL()
	guard := s.failing(sessionID)
	if guard {
		// What the transaction's other batches left in the buffer is
		// written first: a rollback to the savepoint must not take it
		// (resume flushes the buffer).
		if err := s.flushBuffer(ctx, stx); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `SAVEPOINT heatmap_batch`); err != nil {
			return fmt.Errorf("heatmap: savepoint: %w", err)
		}
	}
	err := s.observe(ctx, stx, sessionID, events, guard)
	if err == nil {
		s.failed(sessionID, false)
		if guard {
			if _, err := tx.ExecContext(ctx, `RELEASE heatmap_batch`); err != nil {
				return fmt.Errorf("heatmap: release savepoint: %w", err)
			}
		}
		return nil
	}
	if !s.failed(sessionID, true) || !guard {
		return err
	}
	s.log.Error("heatmap facts of a batch dropped after repeated failures", "session", sessionID, slog.Any("error", err))
	if _, rerr := tx.ExecContext(ctx, `ROLLBACK TO heatmap_batch`); rerr != nil {
		return errors.Join(err, rerr)
	}
	if _, rerr := tx.ExecContext(ctx, `RELEASE heatmap_batch`); rerr != nil {
		return errors.Join(err, rerr)
	}
	return nil
}

// suspect marks a session as failing without counting a failure: its
// rows were in a transaction's buffer whose writing failed, so its next
// batch is guarded (see ObserveBatch) and a failure of its own shows.
func (s *Service) suspect(sessionID int64) {
	s.failMu.Lock()
	defer s.failMu.Unlock()
	if s.failures[sessionID] == 0 {
		if len(s.failures) > 10000 {
			clear(s.failures)
		}
		s.failures[sessionID] = 1
	}
}

// failing reports whether a session's last batch failed.
func (s *Service) failing(sessionID int64) bool {
	s.failMu.Lock()
	defer s.failMu.Unlock()
	return s.failures[sessionID] > 0
}

// failed counts a session's failures in a row (reset by a success) and
// reports whether it reached maxFailures.
func (s *Service) failed(sessionID int64, failed bool) bool {
	s.failMu.Lock()
	defer s.failMu.Unlock()
	if !failed {
		delete(s.failures, sessionID)
		return false
	}
	if len(s.failures) > 10000 {
		clear(s.failures)
	}
	s.failures[sessionID]++
	if s.failures[sessionID] >= maxFailures {
		delete(s.failures, sessionID)
		return true
	}
	return false
}

// observe follows a batch; guarded (under a savepoint), its new click and
// signal rows are written at once, so that a failure to write them is the
// batch's, rolled back to the savepoint with it.
func (s *Service) observe(ctx context.Context, stx *sqldb.Tx, sessionID int64, events []rrweb.Event, guarded bool) error {
	tx := stx.SQL()
	ss, err := s.counters.SessionState(ctx, stx, sessionID)
	if err != nil {
		return fmt.Errorf("heatmap: read session: %w", err)
	}
	projectID, device, batches := ss.ProjectID, ss.Device, ss.Observed
	set, err := s.projectSettings(ctx, projectID)
	if err != nil {
		return err
	}
	// The service's lock guards the trackers' list; a tracker's own lock
	// is held while it follows a batch, so the recorder's facts workers
	// follow different sessions at once (PostgreSQL), none waiting for
	// another's round trips. Lock order: a tracker's, then the service's.
	s.mu.Lock()
	e := s.tracker(sessionID)
	s.mu.Unlock()
	if e != nil {
		e.busy.Lock()
		if e.t.batches+1 != batches {
			e.busy.Unlock()
			s.mu.Lock()
			s.drop(e)
			s.mu.Unlock()
			e = nil
		}
	}
	buf := s.buffer(stx)
	if e != nil {
		buf.checkpoint(sessionID, e.t)
	} else {
		// New session, evicted tracker, restart, or a transaction whose
		// outcome was not known: the index is the truth.
		buf.checkpoint(sessionID, nil)
		t, err := s.resume(ctx, stx, sessionID, set, batches)
		if err != nil {
			return err
		}
		e = &entry{id: sessionID, t: t}
		e.busy.Lock()
		s.mu.Lock()
		if old := s.tracker(sessionID); old != nil {
			s.drop(old) // not expected: one session is followed by one worker at a time
		}
		s.sessions[sessionID] = s.lru.PushFront(e)
		s.mu.Unlock()
	}
	defer e.busy.Unlock()
	e.t.set = set
	k := &txSink{s: s, ctx: ctx, stx: stx, tx: tx, session: sessionID, project: projectID, device: device, t: e.t, direct: guarded}
	err = e.t.observe(events, k)
	if err == nil {
		err = k.finish()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.drop(e)
		return fmt.Errorf("heatmap: session %d: %w", sessionID, err)
	}
	e.t.batches = batches
	s.clicksNoDOM.Add(int64(e.t.noDOM))
	e.t.noDOM = 0
	s.account(e)
	return nil
}

// SessionClosed forgets a session's tracker once it has ended.
func (s *Service) SessionClosed(ctx context.Context, stx *sqldb.Tx, sessionID int64) error {
	tx := stx.SQL()
	s.mu.Lock()
	e := s.tracker(sessionID)
	if e != nil {
		s.drop(e)
	}
	s.mu.Unlock()
	if e == nil {
		return nil
	}
	e.busy.Lock()
	defer e.busy.Unlock()
	s.buffer(stx).checkpoint(sessionID, e.t) // back if the close is rolled back
	ss, err := s.counters.SessionState(ctx, stx, sessionID)
	if err != nil {
		return fmt.Errorf("heatmap: read session: %w", err)
	}
	projectID, device := ss.ProjectID, ss.Device
	k := &txSink{s: s, ctx: ctx, stx: stx, tx: tx, session: sessionID, project: projectID, device: device, t: e.t}
	err = e.t.closed(k)
	if err == nil {
		err = k.finish()
	}
	if err != nil {
		return fmt.Errorf("heatmap: close session %d: %w", sessionID, err)
	}
	return nil
}

func (s *Service) tracker(id int64) *entry {
	el := s.sessions[id]
	if el == nil {
		return nil
	}
	s.lru.MoveToFront(el)
	return el.Value.(*entry)
}

// drop forgets a tracker (s.mu held); its owner may still be using it.
func (s *Service) drop(e *entry) {
	if el := s.sessions[e.id]; el != nil && el.Value.(*entry) == e {
		s.lru.Remove(el)
		delete(s.sessions, e.id)
	}
	s.nodes -= e.nodes
	e.nodes = 0
}

// kept reports whether e is the tracker kept for its session (s.mu held).
func (s *Service) kept(e *entry) bool {
	el := s.sessions[e.id]
	return el != nil && el.Value.(*entry) == e
}

// account updates the node budget after a batch and evicts: whole
// trackers beyond MaxSessions, mirrors of the least recent sessions beyond
// MaxTotalNodes (not of one another worker is using: it is counted again
// after its batch). s.mu and e's own lock are held.
func (s *Service) account(e *entry) {
	if !s.kept(e) {
		return // evicted while it followed its batch
	}
	n := 0
	if e.t.mirror != nil {
		n = e.t.mirror.size()
	}
	s.nodes += n - e.nodes
	e.nodes = n
	for s.lru.Len() > s.cfg.MaxSessions {
		s.drop(s.lru.Back().Value.(*entry))
	}
	if s.nodes > s.cfg.MaxTotalNodes && s.now().Sub(s.droppedWarned) >= time.Hour {
		s.droppedWarned = s.now()
		s.log.Warn("heatmap: DOM mirrors dropped for the node budget; their sessions' clicks get no element until the next full snapshot: raise --heatmap-dom-nodes",
			"budget", s.cfg.MaxTotalNodes, "sessions", s.lru.Len(), "dropped_so_far", s.mirrorsDropped.Load())
	}
	for el := s.lru.Back(); s.nodes > s.cfg.MaxTotalNodes && el != nil; el = el.Prev() {
		v := el.Value.(*entry)
		if v == e || !v.busy.TryLock() {
			continue
		}
		if v.t.mirror != nil {
			v.t.mirror = nil
			s.nodes -= v.nodes
			v.nodes = 0
			s.mirrorsDropped.Add(1)
		}
		v.busy.Unlock()
	}
}

// Stats reports what the service holds in memory.
func (s *Service) Stats() (sessions, nodes int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lru.Len(), s.nodes
}

// Memory is what the service holds to follow sessions, and what its
// bounds cost (for the server's metrics).
type Memory struct {
	Sessions int // trackers kept (Config.MaxSessions)
	Nodes    int // DOM nodes mirrored (Config.MaxTotalNodes)
	// MirrorsDropped counts the DOM mirrors dropped for the node budget
	// since the start: their sessions' clicks have no element until the
	// page's next full snapshot.
	MirrorsDropped int64
	// ClicksWithoutDOM counts the clicks placed with no DOM known (a
	// mirror dropped, a session resumed after a restart or taken over
	// from another node), which element maps leave out.
	ClicksWithoutDOM int64
}

// Memory reports Memory now.
func (s *Service) Memory() Memory {
	sessions, nodes := s.Stats()
	return Memory{Sessions: sessions, Nodes: nodes, MirrorsDropped: s.mirrorsDropped.Load(), ClicksWithoutDOM: s.clicksNoDOM.Load()}
}

// trackerState is what a page view row keeps of a tracker for resuming.
type trackerState struct {
	VW           int     `json:"vw,omitempty"`
	VH           int     `json:"vh,omitempty"`
	ScrollX      float64 `json:"sx,omitempty"`
	ScrollY      float64 `json:"sy,omitempty"`
	DocNode      int32   `json:"doc,omitempty"`
	DocMaxScroll float64 `json:"dmax,omitempty"`
	MainNode     int32   `json:"main,omitempty"`
	MainX        float64 `json:"mx,omitempty"`
	MainY        float64 `json:"my,omitempty"`
}

// resume builds a tracker for a session, continuing its last page view.
func (s *Service) resume(ctx context.Context, stx *sqldb.Tx, sessionID int64, set *Settings, batches int64) (*tracker, error) {
	t := newTracker(set, s.cfg.MaxMirrorNodes)
	if batches <= 1 {
		return t, nil
	}
	// The page view's last state may wait in this transaction's buffer.
	// Only the page views are written now (rows of their own sessions):
	// the shared rows (cells, daily counts) wait for the end, written in
	// one order on every node.
	if b, ok := stx.Lookup(s).(*txBuffer); ok {
		if err := b.flushViews(ctx, stx.SQL(), s.db.Dialect() == sqldb.Postgres); err != nil {
			return nil, err
		}
		clear(b.views)
	}
	tx := stx.SQL()
	pv := &pageview{}
	var state string
	var maxBottom int64
	err := tx.StmtContext(ctx, s.st.lastPageview).QueryRowContext(ctx, sessionID).Scan(
		&pv.rowID, &pv.pageID, &pv.key, &pv.device, &pv.url, &pv.start, &pv.snapshotTS, &pv.vw, &pv.vh,
		&pv.docW, &pv.docH, &maxBottom, &pv.aBucket, &pv.aFoldPx, &pv.aFoldPm, &pv.aDocH, &pv.clicks, &state)
	if errors.Is(err, sql.ErrNoRows) {
		return t, nil
	}
	if err != nil {
		return nil, fmt.Errorf("heatmap: resume session %d: %w", sessionID, err)
	}
	pv.maxBottom = float64(maxBottom)
	pv.bucket, pv.foldPx, pv.foldPm = pv.aBucket, pv.aFoldPx, pv.aFoldPm
	var st trackerState
	_ = json.Unmarshal([]byte(state), &st) // written by us; a bad one only loses scroll state
	t.pv = pv
	t.vw, t.vh = st.VW, st.VH
	if t.vw == 0 {
		t.vw, t.vh = pv.vw, pv.vh
	}
	t.scrollX, t.scrollY, t.docMaxScroll = st.ScrollX, st.ScrollY, st.DocMaxScroll
	if st.DocNode != 0 {
		t.docNode = st.DocNode
	}
	t.mainNode, t.mainX, t.mainY = st.MainNode, st.MainX, st.MainY
	return t, nil
}

// projectSettings returns a project's settings, cached for SettingsTTL.
func (s *Service) projectSettings(ctx context.Context, projectID int64) (*Settings, error) {
	s.setMu.Lock()
	e, ok := s.settings[projectID]
	s.setMu.Unlock()
	if ok && s.now().Sub(e.loaded) < s.cfg.SettingsTTL {
		return e.s, nil
	}
	p, err := s.idx.ProjectByID(ctx, projectID)
	if err != nil {
		if errors.Is(err, index.ErrNotFound) {
			return nil, fmt.Errorf("project %d: %w", projectID, index.ErrNotFound)
		}
		return nil, fmt.Errorf("heatmap: read project settings: %w", err)
	}
	set, err := ParseSettings(p.Settings)
	if err != nil {
		s.log.Warn("project heatmap settings unreadable, using defaults", "project", projectID, slog.Any("error", err))
	}
	s.setMu.Lock()
	if len(s.settings) > 10000 {
		clear(s.settings)
	}
	s.settings[projectID] = settingsEntry{s: &set, loaded: s.now()}
	s.setMu.Unlock()
	return &set, nil
}

// touch notes new data for a project, so cached maps go stale.
// cacheGet is the render cache's entry for key if it is still good.
func (s *Service) cacheGet(key string, g genEntry, now time.Time) (any, bool) {
	return s.cache.get(key, g, now, s.cfg.CacheStale, s.cfg.Shared)
}

func (s *Service) touch(projectID int64) {
	s.genMu.Lock()
	g := s.gen[projectID]
	g.n++
	g.changed = s.now()
	s.gen[projectID] = g
	s.genMu.Unlock()
}

func (s *Service) generation(projectID int64) genEntry {
	s.genMu.Lock()
	defer s.genMu.Unlock()
	return s.gen[projectID]
}

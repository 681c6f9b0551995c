package assets

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/netip"
	"regexp"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/trailmap/trailmap/internal/rrweb"
	"github.com/trailmap/trailmap/storage/index"
	"github.com/trailmap/trailmap/storage/sqldb"
)

// Config holds the asset fetcher's settings.
type Config struct {
	// Version goes into the User-Agent, Trailmap-Assets/<Version>.
	Version string
	// QueueBatches and QueueBytes bound the batches waiting to be read for
	// asset URLs (their raw event bytes); FetchQueue bounds the URLs waiting
	// to be fetched. What does not fit is dropped and counted: ingest never
	// waits for assets.
	QueueBatches int
	QueueBytes   int64
	FetchQueue   int
	// Concurrency is how many assets are fetched at once.
	Concurrency int
	// CollectShare is the most of one CPU core the collector uses reading
	// batches for asset URLs (0 < share ≤ 1): after each batch it pauses
	// for what keeps it at this share, so when ingest keeps the machine
	// busy, it is the asset queue that fills and drops, not ingest that
	// slows down.
	CollectShare float64
	// MaxAssetBytes caps one asset; MaxPerSession the URLs one session may
	// have fetched; MaxProjectDayFetches and MaxProjectDayBytes what one
	// project fetches per UTC day (zero: no cap).
	MaxAssetBytes        int64
	MaxPerSession        int
	MaxProjectDayFetches int64
	MaxProjectDayBytes   int64
	// Timeout bounds one fetch, body included (a slow-drip server stops
	// here); MaxRedirects the redirects followed; MaxDepth how deep
	// stylesheets fetched are followed for their url()s and @imports.
	Timeout      time.Duration
	MaxRedirects int
	MaxDepth     int
	// AllowNets are addresses fetched from although they are loopback,
	// private or otherwise refused (an intranet CDN; tests' loopback servers).
	AllowNets []netip.Prefix
	// AllowOrigins are origins every project may fetch from besides those of
	// its recorded pages and those its settings add.
	AllowOrigins []string
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// DefaultConfig returns production defaults.
func DefaultConfig() Config {
	return Config{
		Version:              "dev",
		QueueBatches:         1024,
		QueueBytes:           64 << 20,
		FetchQueue:           4096,
		Concurrency:          4,
		CollectShare:         0.15,
		MaxAssetBytes:        10 << 20,
		MaxPerSession:        500,
		MaxProjectDayFetches: 20000,
		MaxProjectDayBytes:   2 << 30,
		Timeout:              30 * time.Second,
		MaxRedirects:         5,
		MaxDepth:             3,
	}
}

// Validate reports settings that cannot work.
func (c Config) Validate() error {
	switch {
	case c.QueueBatches <= 0 || c.QueueBytes <= 0 || c.FetchQueue <= 0:
		return errors.New("assets: queue bounds must be positive")
	case c.Concurrency <= 0:
		return errors.New("assets: concurrency must be positive")
	case c.CollectShare <= 0 || c.CollectShare > 1:
		return errors.New("assets: the collector's CPU share must be in (0, 1]")
	case c.MaxAssetBytes <= 0 || c.MaxPerSession <= 0:
		return errors.New("assets: the per-asset and per-session caps must be positive")
	case c.MaxProjectDayFetches < 0 || c.MaxProjectDayBytes < 0:
		return errors.New("assets: daily caps must not be negative")
	case c.Timeout <= 0:
		return errors.New("assets: the fetch timeout must be positive")
	case c.MaxRedirects < 0 || c.MaxDepth < 0:
		return errors.New("assets: redirect and depth limits must not be negative")
	}
	for _, o := range c.AllowOrigins {
		if got, ok := Origin(o); !ok || got != strings.ToLower(strings.TrimRight(o, "/")) {
			return fmt.Errorf("assets: %q is not an origin (scheme://host[:port])", o)
		}
	}
	return nil
}

// Blobs is what assets need of the blob store.
type Blobs interface {
	Put(ctx context.Context, key string, r io.Reader, size int64) error
	Get(ctx context.Context, key string, off, length int64) (io.ReadCloser, error)
}

// Sessions tells which project a session row belongs to, inside the
// ingest's observer transaction (index.SessionCounters).
type Sessions interface {
	SessionState(ctx context.Context, tx *sqldb.Tx, id int64) (index.SessionState, error)
}

// Projects reads a project's settings.
type Projects interface {
	ProjectByID(ctx context.Context, id int64) (*index.Project, error)
}

// Key is the blob key of a project's copy with content hash sha (hex).
func Key(projectID int64, sha string) string {
	return fmt.Sprintf("%d/assets/%s", projectID, sha)
}

// Service collects the asset URLs of newly recorded batches and fetches
// them into the blob store. It is a recorder observer that only queues:
// reading events and fetching happen on its own goroutines.
type Service struct {
	cfg       Config
	store     *Store
	blobs     Blobs
	sessions  Sessions
	projects  Projects
	log       *slog.Logger
	now       func() time.Time
	transport http.RoundTripper
	m         *metrics

	batches     chan batchJob
	queuedBytes atomic.Int64
	fetches     chan fetchJob

	mu       sync.Mutex
	sess     map[int64]*sessState
	settings map[int64]settingsEntry
	origins  map[string]bool // project|origin recorded in asset_origins
	recent   map[string]bool // project|day|url done or queued
	capped   map[int64]int64 // project → the UTC day its daily cap was reached

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	closed atomic.Bool
}

type batchJob struct {
	session, project int64
	events           []rrweb.Event
	bytes            int64
	closed           bool // the session ended
}

type fetchJob struct {
	project int64
	day     int64
	ref     Ref
	depth   int
	budget  *atomic.Int64 // the session's remaining URLs
}

type sessState struct {
	project int64
	day     int64
	page    Page
	budget  *atomic.Int64
}

type settingsEntry struct {
	s      Settings
	loaded time.Time
}

// Bounds of the in-memory maps; over them a map starts again empty (the
// index is the truth; the maps save look-ups).
const (
	maxSessions = 100000
	maxRecent   = 200000
)

// New starts the asset service; Close stops it.
func New(cfg Config, store *Store, blobs Blobs, sessions Sessions, projects Projects, reg prometheus.Registerer, logger *slog.Logger) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	s := &Service{
		cfg: cfg, store: store, blobs: blobs, sessions: sessions, projects: projects,
		log:       logger.With("component", "assets"),
		now:       now,
		transport: newTransport(cfg),
		m:         newMetrics(reg),
		batches:   make(chan batchJob, cfg.QueueBatches),
		fetches:   make(chan fetchJob, cfg.FetchQueue),
		sess:      map[int64]*sessState{},
		settings:  map[int64]settingsEntry{},
		origins:   map[string]bool{},
		recent:    map[string]bool{},
		capped:    map[int64]int64{},
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.wg.Add(1 + cfg.Concurrency)
	// Under a profiler label (stage=assets), as the recorder's stages, so
	// a CPU profile tells what reading batches for assets costs.
	labels := pprof.Labels("stage", "assets")
	go pprof.Do(s.ctx, labels, func(context.Context) { s.collectLoop() })
	for range cfg.Concurrency {
		go pprof.Do(s.ctx, labels, func(context.Context) { s.fetchLoop() })
	}
	return s, nil
}

// Close stops the service: queued work is dropped, fetches in progress are
// cancelled.
func (s *Service) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	s.cancel()
	s.wg.Wait()
	return nil
}

// ObserveBatch implements recorder.Observer: it queues the batch's events
// for the collector, or drops them (counted) when the queue is full. It
// never waits.
func (s *Service) ObserveBatch(ctx context.Context, tx *sqldb.Tx, sessionID int64, events []rrweb.Event) error {
	if s.closed.Load() || len(events) == 0 {
		return nil
	}
	s.mu.Lock()
	st := s.sess[sessionID]
	s.mu.Unlock()
	var project int64
	if st != nil {
		project = st.project
	} else {
		ss, err := s.sessions.SessionState(ctx, tx, sessionID)
		if err != nil {
			return fmt.Errorf("assets: read session: %w", err)
		}
		project = ss.ProjectID
	}
	var size int64
	for _, ev := range events {
		size += int64(len(ev.Raw))
	}
	if s.queuedBytes.Add(size) > s.cfg.QueueBytes {
		s.queuedBytes.Add(-size)
		s.m.dropped.WithLabelValues("batch_queue_bytes").Inc()
		return nil
	}
	s.m.busy.Add(1) // until the collector is done with it
	select {
	case s.batches <- batchJob{session: sessionID, project: project, events: events, bytes: size}:
	default:
		s.m.busy.Add(-1)
		s.queuedBytes.Add(-size)
		s.m.dropped.WithLabelValues("batch_queue_full").Inc()
	}
	return nil
}

// SessionClosed implements recorder.Observer: the session's state is
// forgotten once its queued batches are read.
func (s *Service) SessionClosed(ctx context.Context, tx *sqldb.Tx, sessionID int64) error {
	if s.closed.Load() {
		return nil
	}
	s.m.busy.Add(1)
	select {
	case s.batches <- batchJob{session: sessionID, closed: true}:
	default: // the state map is bounded anyway
		s.m.busy.Add(-1)
	}
	return nil
}

// Wait blocks until every queued batch has been read and every queued URL
// fetched, or ctx ends. For tests and shutdown; ingest never calls it.
func (s *Service) Wait(ctx context.Context) error {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		if s.m.busy.Load() == 0 { // queued or in progress
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

func (s *Service) collectLoop() {
	defer s.wg.Done()
	for {
		select {
		case <-s.ctx.Done():
			return
		case job := <-s.batches:
			s.queuedBytes.Add(-job.bytes)
			start := time.Now()
			if err := s.collect(s.ctx, job); err != nil && s.ctx.Err() == nil {
				s.log.Warn("collect assets", "session", job.session, slog.Any("error", err))
			}
			if share := s.cfg.CollectShare; share < 1 {
				pause := time.Duration(float64(time.Since(start)) * (1 - share) / share)
				select {
				case <-s.ctx.Done():
				case <-time.After(pause):
				}
			}
			s.m.busy.Add(-1)
		}
	}
}

func unixDay(t time.Time) int64 { return t.Unix() / 86400 }

func (s *Service) collect(ctx context.Context, job batchJob) error {
	s.mu.Lock()
	st := s.sess[job.session]
	if job.closed {
		delete(s.sess, job.session)
		s.mu.Unlock()
		return nil
	}
	if st == nil {
		if len(s.sess) >= maxSessions {
			clear(s.sess)
		}
		st = &sessState{project: job.project, day: unixDay(s.now()), budget: new(atomic.Int64)}
		st.budget.Store(int64(s.cfg.MaxPerSession))
		s.sess[job.session] = st
	}
	s.mu.Unlock()

	set, err := s.projectSettings(ctx, job.project)
	if err != nil {
		return err
	}
	if !set.Enabled() {
		return nil
	}
	for _, ev := range job.events {
		if ev.Type != rrweb.Meta {
			continue
		}
		var m struct {
			Href string `json:"href"`
		}
		if json.Unmarshal(ev.Data, &m) != nil {
			continue
		}
		if o, ok := Origin(m.Href); ok {
			if err := s.addOrigin(ctx, job.project, o); err != nil {
				return err
			}
		}
	}
	refs, page := Collect(st.page, job.events)
	st.page = page
	for _, r := range refs {
		s.enqueue(fetchJob{project: job.project, day: st.day, ref: r, budget: st.budget})
	}
	return nil
}

func (s *Service) addOrigin(ctx context.Context, project int64, origin string) error {
	k := strconv.FormatInt(project, 10) + "|" + origin
	s.mu.Lock()
	known := s.origins[k]
	s.mu.Unlock()
	if known {
		return nil
	}
	if err := s.store.AddOrigin(ctx, project, origin, s.now()); err != nil {
		return err
	}
	s.mu.Lock()
	if len(s.origins) >= maxRecent {
		clear(s.origins)
	}
	s.origins[k] = true
	s.mu.Unlock()
	return nil
}

// contentHashed matches URLs whose file name or query carries a content
// hash (app.3f9a1c2b.css, logo-8d7e6f5a4b3c.png, ?v=3f9a1c2b): their bytes
// never change, so they are fetched once, for every day.
var contentHashed = regexp.MustCompile(`(?i)(?:[._-][0-9a-f]{8,}[._-][^/]*$|/[0-9a-f]{16,}\.[a-z0-9]+$|[?&](?:v|h|hash|ver)=[0-9a-f]{8,}(?:&|$))`)

func (s *Service) enqueue(j fetchJob) {
	s.mu.Lock()
	day, capped := s.capped[j.project]
	s.mu.Unlock()
	if capped && day == unixDay(s.now()) {
		s.m.dropped.WithLabelValues("project_day_cap").Inc()
		return
	}
	if contentHashed.MatchString(j.ref.URL) {
		j.day = 0
	}
	k := strconv.FormatInt(j.project, 10) + "|" + strconv.FormatInt(j.day, 10) + "|" + j.ref.URL
	s.mu.Lock()
	if s.recent[k] {
		s.mu.Unlock()
		return
	}
	if j.budget.Add(-1) < 0 {
		s.mu.Unlock()
		s.m.dropped.WithLabelValues("session_cap").Inc()
		return
	}
	if len(s.recent) >= maxRecent {
		clear(s.recent)
	}
	s.recent[k] = true
	s.mu.Unlock()
	s.m.busy.Add(1) // until a fetcher is done with it
	select {
	case s.fetches <- j:
	default:
		s.m.busy.Add(-1)
		s.mu.Lock()
		delete(s.recent, k)
		s.mu.Unlock()
		s.m.dropped.WithLabelValues("fetch_queue_full").Inc()
	}
}

func (s *Service) fetchLoop() {
	defer s.wg.Done()
	for {
		select {
		case <-s.ctx.Done():
			return
		case j := <-s.fetches:
			status, err := s.fetch(s.ctx, j)
			if err != nil && s.ctx.Err() == nil {
				s.log.Warn("fetch asset", "project", j.project, "url", j.ref.URL, slog.Any("error", err))
				status = "error"
			}
			s.m.fetches.WithLabelValues(statusLabel(status)).Inc()
			s.m.busy.Add(-1)
		}
	}
}

// statusLabel keeps the metric's label values few.
func statusLabel(status string) string {
	if strings.HasPrefix(status, "http_") {
		return "http_error"
	}
	return status
}

// Statuses of copies that are not stored.
const (
	StatusRefusedOrigin  = "refused_origin"
	StatusRefusedAddress = "refused_address"
	StatusTooLarge       = "too_large"
	StatusBadType        = "bad_type"
	StatusFailed         = "failed"
	StatusProjectCap     = "project_cap"
)

// fetch fetches one asset unless there is a copy for its day, records the
// outcome, and returns the status ("" when nothing was done).
func (s *Service) fetch(ctx context.Context, j fetchJob) (string, error) {
	s.mu.Lock()
	day, capped := s.capped[j.project]
	s.mu.Unlock()
	if capped && day == unixDay(s.now()) {
		s.m.dropped.WithLabelValues("project_day_cap").Inc()
		return StatusProjectCap, nil
	}
	if _, ok, err := s.store.Lookup(ctx, j.project, j.ref.URL, j.day); err != nil || ok {
		if ok {
			return "known", nil
		}
		return "", err
	}
	set, err := s.projectSettings(ctx, j.project)
	if err != nil {
		return "", err
	}
	allowed, err := s.allowedOrigins(ctx, j.project, set)
	if err != nil {
		return "", err
	}
	now := s.now()
	rec := Copy{ProjectID: j.project, URL: j.ref.URL, Day: j.day, FetchedAt: now}
	if o, _ := Origin(j.ref.URL); !allowed(o) {
		rec.Status = StatusRefusedOrigin
		return rec.Status, s.store.Record(ctx, rec)
	}
	today := unixDay(now)
	u, err := s.store.Usage(ctx, j.project, today)
	if err != nil {
		return "", err
	}
	if (s.cfg.MaxProjectDayFetches > 0 && u.Fetches >= s.cfg.MaxProjectDayFetches) ||
		(s.cfg.MaxProjectDayBytes > 0 && u.Bytes >= s.cfg.MaxProjectDayBytes) {
		s.mu.Lock()
		s.capped[j.project] = today // later URLs are dropped without a look-up
		s.mu.Unlock()
		s.m.dropped.WithLabelValues("project_day_cap").Inc()
		return StatusProjectCap, nil // not recorded: tried again on another day
	}

	// A copy from an earlier day may still be fresh (Cache-Control), or be
	// revalidated with its ETag.
	prev, havePrev, err := s.store.Latest(ctx, j.project, j.ref.URL, max(j.day, 1))
	if err != nil {
		return "", err
	}
	if havePrev && j.day != 0 && prev.ExpiresAt.After(now) {
		prev.Day, prev.FetchedAt = j.day, now
		return "fresh", s.store.Record(ctx, prev)
	}

	fctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(fctx, http.MethodGet, j.ref.URL, nil)
	if err != nil {
		rec.Status = StatusFailed
		return rec.Status, s.store.Record(ctx, rec)
	}
	req.Header.Set("User-Agent", "Trailmap-Assets/"+s.cfg.Version)
	req.Header.Set("Accept", accept(j.ref.Kind))
	if havePrev && prev.ETag != "" {
		req.Header.Set("If-None-Match", prev.ETag)
	}
	resp, err := client(s.transport, s.cfg.MaxRedirects, allowed).Do(req)
	if err := s.store.AddUsage(ctx, j.project, today, 1, 0); err != nil {
		return "", err
	}
	if err != nil {
		switch {
		case ctx.Err() != nil:
			return "", ctx.Err()
		case errors.Is(err, ErrRefusedAddress):
			rec.Status = StatusRefusedAddress
		case errors.Is(err, ErrRefusedOrigin):
			rec.Status = StatusRefusedOrigin
		default:
			rec.Status = StatusFailed
		}
		s.log.Debug("asset not fetched", "url", j.ref.URL, "status", rec.Status, slog.Any("error", err))
		return rec.Status, s.store.Record(ctx, rec)
	}
	defer resp.Body.Close()
	rec.ExpiresAt = expires(resp.Header, now)
	if resp.StatusCode == http.StatusNotModified && havePrev {
		prev.Day, prev.FetchedAt, prev.ExpiresAt = j.day, now, rec.ExpiresAt
		return "not_modified", s.store.Record(ctx, prev)
	}
	if resp.StatusCode != http.StatusOK {
		rec.Status = fmt.Sprintf("http_%d", resp.StatusCode)
		return rec.Status, s.store.Record(ctx, rec)
	}
	if resp.ContentLength > s.cfg.MaxAssetBytes {
		rec.Status = StatusTooLarge
		return rec.Status, s.store.Record(ctx, rec)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, s.cfg.MaxAssetBytes+1))
	if err != nil {
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		rec.Status = StatusFailed // timeout (slow drip), reset...
		return rec.Status, s.store.Record(ctx, rec)
	}
	if int64(len(body)) > s.cfg.MaxAssetBytes {
		rec.Status = StatusTooLarge
		return rec.Status, s.store.Record(ctx, rec)
	}
	ctype := mediaType(resp.Header.Get("Content-Type"), body)
	if !acceptable(j.ref.Kind, ctype) {
		rec.Status = StatusBadType
		rec.ContentType = ctype
		return rec.Status, s.store.Record(ctx, rec)
	}
	sum := sha256.Sum256(body)
	rec.SHA256 = hex.EncodeToString(sum[:])
	rec.ContentType, rec.Size, rec.Status = ctype, int64(len(body)), StatusStored
	rec.ETag = resp.Header.Get("ETag")
	if len(rec.ETag) > 256 {
		rec.ETag = ""
	}
	if _, have, err := s.store.ByHash(ctx, j.project, rec.SHA256); err != nil {
		return "", err
	} else if !have {
		if err := s.blobs.Put(ctx, Key(j.project, rec.SHA256), bytes.NewReader(body), int64(len(body))); err != nil {
			return "", fmt.Errorf("store asset %s: %w", j.ref.URL, err)
		}
		s.m.bytes.Add(float64(len(body)))
	}
	if err := s.store.AddUsage(ctx, j.project, today, 0, int64(len(body))); err != nil {
		return "", err
	}
	if err := s.store.Record(ctx, rec); err != nil {
		return "", err
	}
	if ctype == "text/css" && j.depth < s.cfg.MaxDepth {
		final := resp.Request.URL.String() // after redirects: the sheet's own URL
		for _, r := range StylesheetRefs(body, final) {
			s.enqueue(fetchJob{project: j.project, day: j.day, ref: r, depth: j.depth + 1, budget: j.budget})
		}
	}
	return rec.Status, nil
}

// allowedOrigins returns whether an origin may be fetched from for project:
// the origins of its recorded pages, those its settings add, and the
// configured ones.
func (s *Service) allowedOrigins(ctx context.Context, project int64, set Settings) (func(string) bool, error) {
	pages, err := s.store.Origins(ctx, project)
	if err != nil {
		return nil, err
	}
	ok := map[string]bool{}
	for _, list := range [][]string{pages, set.Assets.Origins, s.cfg.AllowOrigins} {
		for _, o := range list {
			ok[strings.ToLower(strings.TrimRight(o, "/"))] = true
		}
	}
	return func(o string) bool { return ok[o] }, nil
}

func accept(kind string) string {
	switch kind {
	case KindStylesheet:
		return "text/css,*/*;q=0.1"
	case KindFont:
		return "font/woff2,font/woff,font/ttf,*/*;q=0.5"
	default:
		return "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.5"
	}
}

// mediaType is the response's media type, sniffed when it sends none.
func mediaType(header string, body []byte) string {
	t, _, err := mime.ParseMediaType(header)
	if err != nil || t == "" {
		t, _, _ = mime.ParseMediaType(http.DetectContentType(body))
	}
	return strings.ToLower(t)
}

// acceptable reports whether a response of media type t is kept for an
// asset of kind: images, fonts and style sheets; never HTML (a login page
// instead of an image) or scripts.
func acceptable(kind, t string) bool {
	switch {
	case t == "text/css":
		return true
	case strings.HasPrefix(t, "image/"), strings.HasPrefix(t, "font/"):
		return true
	case t == "application/font-woff", t == "application/font-woff2", t == "application/x-font-woff",
		t == "application/x-font-ttf", t == "application/x-font-otf", t == "application/vnd.ms-fontobject",
		t == "application/font-sfnt":
		return true
	case t == "application/octet-stream", t == "binary/octet-stream":
		return kind == KindFont // fonts are often served so
	}
	return false
}

// expires is until when a response may be reused without asking
// (Cache-Control max-age, or a day when immutable); zero when it must be
// revalidated.
func expires(h http.Header, now time.Time) time.Time {
	cc := strings.ToLower(h.Get("Cache-Control"))
	if cc == "" || strings.Contains(cc, "no-store") || strings.Contains(cc, "no-cache") {
		return time.Time{}
	}
	var age int64 = -1
	for _, d := range strings.Split(cc, ",") {
		d = strings.TrimSpace(d)
		if v, ok := strings.CutPrefix(d, "max-age="); ok {
			if n, err := strconv.ParseInt(strings.Trim(v, `"`), 10, 64); err == nil {
				age = n
			}
		}
		if d == "immutable" && age < 0 {
			age = 365 * 86400
		}
	}
	if age <= 0 {
		return time.Time{}
	}
	return now.Add(time.Duration(min(age, 365*86400)) * time.Second)
}

type metrics struct {
	fetches *prometheus.CounterVec
	dropped *prometheus.CounterVec
	bytes   prometheus.Counter
	busy    atomic.Int64 // batches and URLs queued or being handled
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		fetches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trailmap_assets_fetches_total",
			Help: "Asset URLs handled by the fetcher, by outcome (stored, known, fresh, not_modified, refused_origin, refused_address, too_large, bad_type, http_error, failed, project_cap, error).",
		}, []string{"result"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trailmap_assets_dropped_total",
			Help: "Asset work dropped because a bound was reached (batch_queue_full, batch_queue_bytes, fetch_queue_full, session_cap, project_day_cap): ingest never waits for assets.",
		}, []string{"reason"}),
		bytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "trailmap_assets_stored_bytes_total",
			Help: "Bytes of new asset copies put in the blob store (after de-duplication by content hash).",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.fetches, m.dropped, m.bytes)
	}
	return m
}

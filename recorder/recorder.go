// Package recorder is the ingest side of Trailmap: it validates and
// decompresses rrweb batches, deduplicates them by (session, seq), makes them
// durable in a write-ahead log before acknowledging, extracts the facts the
// index needs, and gathers each session's batches into large zstd segments
// in the blob store.
package recorder

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/trailmap/trailmap/internal/ratelimit"
	"github.com/trailmap/trailmap/internal/rrweb"
	"github.com/trailmap/trailmap/internal/textcut"
	"github.com/trailmap/trailmap/internal/wal"
	"github.com/trailmap/trailmap/storage/index"
	"github.com/trailmap/trailmap/storage/sqldb"
)

// Config holds the recorder's settings.
type Config struct {
	// DataDir holds the write-ahead log (in DataDir/wal).
	DataDir string
	Limits  Limits
	Devices DeviceThresholds
	Redact  RedactRules // defaults; a project's settings may override them
	// SessionIdle ends a session that has received nothing for this long.
	SessionIdle time.Duration
	// SegmentMaxAge flushes a session's buffered batches this long after the
	// first of them arrived; SegmentMaxBytes flushes once this much raw JSON
	// is buffered for one session.
	SegmentMaxAge   time.Duration
	SegmentMaxBytes int64
	// MaxBuffered bounds raw bytes held in memory across all sessions; over
	// it the largest buffers are flushed early.
	MaxBuffered int64
	// Compressor compresses segments (zdict.Set: with the project's
	// dictionary); nil compresses them with zstd alone, at its best level.
	Compressor Compressor
	// WALFileBytes is the size at which the log starts a new file.
	WALFileBytes int64
	// RatePerIP is sustained batches per second per client address (IPv4,
	// or IPv6 /64), checked before the write key is looked up; RatePerKey is
	// a ceiling per write key, which refuses only addresses that are heavy
	// themselves (see guard.go). Bursts are 4×; zero disables a limit.
	RatePerKey float64
	RatePerIP  float64
	// Quota is every project's daily allowance unless its settings say
	// otherwise; zero fields are no limit.
	Quota Quota
	// MaxInFlight bounds the ingest requests being decoded and recorded at
	// once (counted once a body is read: slow uploads hold no slot); more
	// are refused at once with ErrOverloaded (clients retry after
	// Retry-After). When more browsers send than the server keeps up with,
	// this keeps its memory and acknowledgement latency bounded instead of
	// every request waiting longer. Zero disables the bound.
	MaxInFlight int
	// MaxUnindexed is how many batches may be acknowledged before stage 1
	// has written their index rows: a 202 waits only for the write-ahead
	// log until that many wait for the index, then for the index too. 0:
	// every 202 waits for the batch's index rows.
	MaxUnindexed int
	// FactsWorkers is how many facts (stage 2) transactions may run at
	// once, over disjoint sessions, when the index takes concurrent
	// writers (PostgreSQL): each transaction waits on round trips to the
	// database, one statement at a time, so with the database on another
	// host more workers raise the facts rate; with it on the node's own
	// cores they only compete for them (see the README). SQLite has one
	// writer and always takes one. Zero means 1.
	FactsWorkers int
	// SweepEvery is how often idle sessions and age-due segments are checked.
	SweepEvery time.Duration
	// Now is the clock (time.Now when nil); tests and benchmarks replace it.
	Now func() time.Time
}

// DefaultConfig returns production defaults for a data dir.
func DefaultConfig(dataDir string) Config {
	return Config{
		DataDir:         dataDir,
		Limits:          DefaultLimits(),
		Devices:         DefaultDeviceThresholds(),
		Redact:          DefaultRedactRules(),
		SessionIdle:     30 * time.Minute,
		SegmentMaxAge:   2 * time.Minute,
		SegmentMaxBytes: 8 << 20,
		MaxBuffered:     256 << 20,
		WALFileBytes:    64 << 20,
		RatePerKey:      2000,
		RatePerIP:       200, // ≈1,000 visitors behind one NAT address at a batch per 5 s
		MaxInFlight:     128,
		MaxUnindexed:    1024,
		FactsWorkers:    1,
		SweepEvery:      time.Second,
	}
}

// Validate reports settings that cannot work.
func (c Config) Validate() error {
	switch {
	case c.DataDir == "":
		return errors.New("recorder: data dir is required")
	case c.SessionIdle < time.Second:
		return errors.New("recorder: session idle timeout must be at least 1s")
	case c.SegmentMaxAge <= 0 || c.SegmentMaxBytes <= 0 || c.MaxBuffered <= 0:
		return errors.New("recorder: segment age, segment size and buffer limit must be positive")
	case c.Limits.MaxCompressed <= 0 || c.Limits.MaxDecompressed <= 0 || c.Limits.MaxEvents <= 0 || c.Limits.MaxEventBytes <= 0:
		return errors.New("recorder: ingest limits must be positive")
	case c.Limits.validateTimes() != nil:
		return fmt.Errorf("recorder: %w", c.Limits.validateTimes())
	case c.RatePerKey < 0 || c.RatePerIP < 0:
		return errors.New("recorder: rate limits must not be negative")
	case c.Quota.validate() != nil:
		return fmt.Errorf("recorder: %w", c.Quota.validate())
	case c.MaxInFlight < 0 || c.MaxUnindexed < 0:
		return errors.New("recorder: the in-flight and unindexed bounds must not be negative")
	case c.FactsWorkers < 0 || c.FactsWorkers > 64:
		return errors.New("recorder: facts workers must be between 0 and 64")
	}
	return nil
}

// Blobs is what the recorder needs of the blob store.
type Blobs interface {
	Put(ctx context.Context, key string, r io.Reader, size int64) error
	// Delete removes key; deleting a missing key is not an error.
	Delete(ctx context.Context, key string) error
}

// Index is what the recorder needs of the core index: the ingest's
// transactions, the dedupe record, segment rows and write keys.
type Index interface {
	// ForgottenSessions tells which of a project's session ids were deleted
	// by forgetting a person (their logged batches are not replayed).
	ForgottenSessions(ctx context.Context, projectID int64, publicIDs []string) (map[string]bool, error)
	// ProjectByKey finds the project of a write key (index.ErrNotFound).
	ProjectByKey(ctx context.Context, key string) (*index.Project, error)
	// UsageOn returns what a project recorded on a UTC day (quotas).
	UsageOn(ctx context.Context, projectID, day int64) (index.Usage, error)
	// Ingest prepares the statements of the two index stages.
	Ingest(ctx context.Context) (*index.Ingest, error)
	// ProjectByID finds a project by id (index.ErrNotFound): the keep
	// rules of closing sessions.
	ProjectByID(ctx context.Context, id int64) (*index.Project, error)
	// IdleSessions lists up to limit open sessions quiet since before.
	IdleSessions(ctx context.Context, before int64, limit int) ([]index.IdleSession, error)
	// SessionSeqs lists the recorded batches of a session.
	SessionSeqs(ctx context.Context, projectID int64, publicID string) ([]index.BatchSeq, error)
	// BatchObserved tells whether a recorded batch has its facts derived.
	BatchObserved(ctx context.Context, sessionID, seq int64) (bool, error)
	// SessionRow finds a session's row id and start (index.ErrNotFound).
	SessionRow(ctx context.Context, projectID int64, publicID string) (id, startedAt int64, err error)
	// AddPendingSegment records a segment about to be PUT, as pending.
	AddPendingSegment(ctx context.Context, s index.NewSegment) (int64, error)
	// MarkSegmentDone records that a segment's object is stored.
	MarkSegmentDone(ctx context.Context, id int64) error
	// DropPendingSegment deletes a segment row if it is still pending.
	DropPendingSegment(ctx context.Context, id int64) error
	// DeleteSegment deletes a segment row.
	DeleteSegment(ctx context.Context, id int64) error
	// SegmentStates lists a session's segment rows in the order written.
	SegmentStates(ctx context.Context, sessionID int64) ([]index.SegmentState, error)
}

var _ Index = (*index.DB)(nil)

// Observer sees each newly accepted batch (heatmap clicks, frustration
// signals, journeys hook in here), and each session end. It runs in an index
// transaction of its own, after the one that records the batch's session,
// pages and custom events has committed; every batch is observed once, also
// across a crash. Batches of one session arrive in acceptance order, and
// before SessionClosed. In that transaction the session's observed count
// (index.SessionState) already counts the batch (its batch_count may be
// ahead: the core rows of later batches are recorded before their
// observers run). On PostgreSQL with FactsWorkers > 1, batches of different
// sessions are observed at once, in different transactions; the calls for
// one session never overlap.
type Observer interface {
	ObserveBatch(ctx context.Context, tx *sqldb.Tx, sessionID int64, events []rrweb.Event) error
	SessionClosed(ctx context.Context, tx *sqldb.Tx, sessionID int64) error
}

// Request is one ingest call as the HTTP layer sees it.
type Request struct {
	Key       string
	Encoding  string
	Body      io.Reader
	UserAgent string
	RemoteIP  string
	// Beacon marks a request whose sender cannot retry (navigator.sendBeacon,
	// a keepalive fetch at page hide): over MaxInFlight it waits up to
	// beaconWait for a slot instead of being refused at once.
	Beacon bool
	// Session, when set, is the session the request was routed by (a
	// cluster's nodes send a session's batches to one node): a batch of
	// another session is refused as malformed, so a client cannot have one
	// session's facts derived on two nodes.
	Session string
	// TakenOver says this node just took the session over from a cluster
	// node that is gone: batches before this one may be in that node's log
	// only, not yet in the index (see Recorder.ready).
	TakenOver bool
}

// beaconWait is how long a beacon waits for an in-flight slot.
const beaconWait = 10 * time.Second

// FlushConcurrency is how many segments are compressed and stored at once
// (a Compressor keeps that many encoders of a kind between uses).
const FlushConcurrency = 2

// Result is the answer to an accepted (or repeated) batch.
type Result struct {
	Accepted  int  `json:"accepted"`
	Duplicate bool `json:"duplicate,omitempty"`
	// Filtered names the recording rule that kept the batch out of storage
	// (bot, sampled_out, url_denied, before_trigger); it is still answered
	// 202, as a client must not retry it.
	Filtered string `json:"filtered,omitempty"`
}

// Recorder is the ingest pipeline. Create it with New, stop it with Close.
type Recorder struct {
	cfg       Config
	db        Index
	blobs     Blobs
	log       *slog.Logger
	now       func() time.Time
	wal       *wal.Log
	dec       *Decoder
	ua        *UAParser
	bots      *BotList // nil without the embedded list: then the UA parser's bot flag alone
	rm        *ruleMetrics
	observers []Observer
	m         *metrics
	gm        *guardMetrics
	keyLimit  *ratelimit.Limiter
	ipLimit   *ratelimit.Limiter
	quotas    *quotas
	badKeys   keyCache      // write keys that name no project
	inFlight  chan struct{} // a slot per ingest request in progress (MaxInFlight)
	stmts     *index.Ingest // the two stages' prepared statements
	// observeBudget is how long stage 2's observers may work in one
	// transaction (observeGroupBudget or observeGroupBudgetConcurrent).
	observeBudget time.Duration
	// factsWorkers is how many facts transactions run at once (FactsWorkers
	// on PostgreSQL, 1 on SQLite).
	factsWorkers int
	// markChunk is how many batches stage 2 marks observed at once
	// (observeMarkChunk on PostgreSQL, 1 on SQLite).
	markChunk int
	enc       *segmentEncoders

	projMu   sync.Mutex
	projects map[string]*projectEntry // by write key

	mu       sync.Mutex
	sessions map[sessKey]*session
	buffered int64
	closing  bool

	// Stage 1 of the index (see applyLoop).
	applyMu   sync.Mutex
	applyCond *sync.Cond
	applyQ    []*entry
	applyDone chan struct{}
	// applyIn counts batches handed to stage 1, applyOut those it is done
	// with; applyTick is closed (and replaced) whenever applyOut grows.
	applyIn, applyOut int64
	applyTick         chan struct{}

	// Stage 2 of the index (see observeLoop).
	obsMu           sync.Mutex
	obsCond         *sync.Cond
	obsQ            []*entry
	obsHeld         []*entry    // taken from obsQ before the batch before them was observed (see ready)
	obsWake         bool        // a timer will put obsHeld back into obsQ
	obsDraining     atomic.Bool // stopping: nothing is held back any more
	obsTaken        int64       // entries taken from obsQ so far
	obsDone         int64       // of which observed
	obsBacklog      int         // entries queued or being observed
	obsBacklogBytes int64       // and their raw size
	closeDue        bool        // close idle sessions once obsDone reaches closeAfter
	closeAfter      int64
	obsStop         chan struct{} // closed after stage 1 has stopped
	observeDone     chan struct{}

	flushSem chan struct{}
	stop     chan struct{}
	wg       sync.WaitGroup // the sweep loop

	applyStall, obsStall stall // for IndexReady
}

type projectEntry struct {
	project         *index.Project
	redactor        *Redactor
	quota           Quota
	requireIdentity bool // drop identify claims without a valid signature
	rules           *ruleSet
	loaded          time.Time
}

type sessKey struct {
	project int64
	id      string
}

// session is the in-memory state of a session with accepted batches that are
// not yet all in stored segments.
type session struct {
	key sessKey

	// ingestMu serialises dedupe + WAL append for this session, so two
	// concurrent copies of one seq are stored once.
	ingestMu sync.Mutex

	// Guarded by Recorder.mu:
	seen map[int64]bool
	// observed holds the seqs whose facts are derived: observed here, or
	// in the index when the session was loaded (stage 2 takes a batch once
	// the one before it is observed, see Recorder.ready).
	observed map[int64]bool
	// elsewhere holds the seqs recorded, not observed, when the session was
	// loaded: another node (or this one before a restart) has them in its
	// log and observes them; later batches wait for that (see ready).
	elsewhere map[int64]bool
	// takenOver: this node took the session over from a node that is gone,
	// whose log may hold batches the index does not know yet.
	takenOver    bool
	pending      []*entry // accepted, waiting for a segment
	flushing     []*entry // in a segment being written
	firstPending time.Time
	lastReceived time.Time
	pendingBytes int64
	refs         int // in-flight ingest calls, which keep the session in the map
	closed       bool

	// sid is the session's row in the index, once stage 1 wrote it (0
	// before): later batches are recorded with RecordKnownBatch.
	sid atomic.Int64

	// Guarded by ingestMu: the last accepted batch ended on a page the
	// project's URL rules deny (see Rules).
	pageDenied bool
}

// entry is one accepted batch on its way through the two index stages and
// flush.
type entry struct {
	b  *Batch
	s  *session  // nil when replayed from the log
	at time.Time // accepted
	// checked is when stage 2 last asked the index about the batch before
	// this one, which another node holds (see checkElsewhere).
	checked time.Time
	facts   *Facts // extracted in the request goroutine, off the single apply loop
	// events are b.Events with their envelopes read (in the request
	// goroutine too), for the observers; dropped once they ran.
	events   []rrweb.Event
	ua       UA
	pos      wal.Pos
	raw      int64
	sid      int64         // the session row, set by stage 1
	indexed  chan struct{} // closed once stage 1 is done: core rows in the index
	observed chan struct{} // closed once stage 2 is done: observers ran
	// abandoned is set, before observed is closed, when shutdown gave up on
	// a broken index: the batch must stay in the log, so flush skips it.
	abandoned bool
	// quarantined is set by stage 1, before indexed is closed, when the
	// index refused the batch while it took others: the batch is in the
	// quarantine (see quarantine.go), and leaves the log without a segment.
	quarantined bool
	// strikes counts the rounds the batch failed alone while others went
	// through (see isolate), failedAlone the rounds it failed alone at all.
	// Owned by the stage working on the batch.
	strikes, failedAlone int
	// charge is what the batch counted against its project's quotas at
	// ingest (nil when replayed from the log); recorded and newSession are
	// set by stage 1: the batch was recorded the first time, and it began
	// its session.
	charge     *charge
	recorded   bool
	newSession bool
}

func newEntry(b *Batch, pos wal.Pos) *entry {
	return &entry{b: b, pos: pos, raw: rawSize(b), indexed: make(chan struct{}), observed: make(chan struct{})}
}

// New starts a recorder: it replays the write-ahead log (re-buffering batches
// that are not yet in segments, finishing segments interrupted by a crash)
// before it returns.
func New(ctx context.Context, cfg Config, db Index, blobs Blobs, reg prometheus.Registerer, logger *slog.Logger, observers ...Observer) (*Recorder, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	r := &Recorder{
		cfg:         cfg,
		db:          db,
		blobs:       blobs,
		log:         logger.With("component", "recorder"),
		now:         cfg.Now,
		dec:         NewDecoder(cfg.Limits),
		ua:          NewUAParser(),
		observers:   observers,
		projects:    map[string]*projectEntry{},
		sessions:    map[sessKey]*session{},
		flushSem:    make(chan struct{}, FlushConcurrency),
		enc:         newSegmentEncoders(cfg.Compressor, FlushConcurrency),
		stop:        make(chan struct{}),
		applyDone:   make(chan struct{}),
		applyTick:   make(chan struct{}),
		obsStop:     make(chan struct{}),
		observeDone: make(chan struct{}),
	}
	if r.now == nil {
		r.now = time.Now
	}
	r.applyCond = sync.NewCond(&r.applyMu)
	r.obsCond = sync.NewCond(&r.obsMu)
	if cfg.RatePerKey > 0 {
		r.keyLimit = ratelimit.New(cfg.RatePerKey, int(4*cfg.RatePerKey)+1, 10000, r.now)
	}
	if cfg.RatePerIP > 0 {
		r.ipLimit = ratelimit.New(cfg.RatePerIP, int(4*cfg.RatePerIP)+1, 100000, r.now)
	}
	if cfg.MaxInFlight > 0 {
		r.inFlight = make(chan struct{}, cfg.MaxInFlight)
	}
	var err error
	if r.stmts, err = db.Ingest(ctx); err != nil {
		return nil, err
	}
	r.observeBudget, r.factsWorkers, r.markChunk = observeGroupBudget, 1, 1
	if r.stmts.ConcurrentWriters() {
		r.observeBudget, r.factsWorkers, r.markChunk = observeGroupBudgetConcurrent, max(1, cfg.FactsWorkers), observeMarkChunk
	}
	r.m = newMetrics(reg, r)
	r.gm = newGuardMetrics(reg, r.m)
	r.quotas = newQuotas(db.UsageOn, r.log, r.now)
	r.rm = newRuleMetrics(reg)
	if r.bots, err = LoadBots(); err != nil {
		r.log.Warn("crawler list unavailable; drop_bots relies on the User-Agent parser alone", slog.Any("error", err))
	}
	if err := r.recover(ctx); err != nil {
		return nil, err
	}
	r.wg.Add(1)
	// Each stage runs under a profiler label (stage=index, facts, segments),
	// so a CPU profile tells what each costs.
	staged := func(stage string, loop func()) {
		go pprof.Do(context.Background(), pprof.Labels("stage", stage), func(context.Context) { loop() })
	}
	staged("index", r.applyLoop)
	staged("facts", r.observeLoop)
	staged("segments", r.sweepLoop)
	return r, nil
}

// Ingest validates, deduplicates and durably logs one batch. A nil error
// means the batch is on disk.
func (r *Recorder) Ingest(ctx context.Context, req Request) (Result, error) {
	res, err := r.ingest(ctx, req)
	if err != nil {
		r.m.reject(err)
	}
	return res, err
}

// keyProject resolves a write-key request as ingest does: the client
// address's rate limit first (made-up keys must cost as little as real
// ones, see guard.go), then the key through the project cache and the
// unknown-key cache. limitAddr says whether the address is limited.
func (r *Recorder) keyProject(ctx context.Context, key, remoteIP string) (pe *projectEntry, addr string, limitAddr bool, err error) {
	addr = clientBucket(remoteIP)
	limitAddr = r.ipLimit != nil && remoteIP != ""
	if limitAddr {
		if ok, wait := r.ipLimit.Allow(addr); !ok {
			return nil, addr, limitAddr, &RateLimitError{RetryAfter: wait}
		}
	}
	if key == "" {
		return nil, addr, limitAddr, fmt.Errorf("%w: a write key is required (X-Trailmap-Key header or key= query)", ErrUnknownKey)
	}
	pe, err = r.project(ctx, key)
	return pe, addr, limitAddr, err
}

// WriteKeyProject is the project of a write-key request other than a
// batch (browser-side asset uploads), held to ingest's address limit and
// key caches: RateLimitError or ErrUnknownKey.
func (r *Recorder) WriteKeyProject(ctx context.Context, key, remoteIP string) (int64, error) {
	pe, _, _, err := r.keyProject(ctx, key, remoteIP)
	if err != nil {
		return 0, err
	}
	return pe.project.ID, nil
}

func (r *Recorder) ingest(ctx context.Context, req Request) (Result, error) {
	pe, addr, limitAddr, err := r.keyProject(ctx, req.Key, req.RemoteIP)
	if err != nil {
		return Result{}, err
	}
	if r.keyLimit != nil {
		if ok, wait := r.keyLimit.Allow(req.Key); !ok && !(limitAddr && r.ipLimit.Level(addr) >= lightShare) {
			return Result{}, &RateLimitError{RetryAfter: wait}
		}
	}
	ip := AnonymizeIP(req.RemoteIP)
	cr := &countingReader{r: req.Body}
	sent, err := r.dec.Read(cr, req.Encoding)
	r.m.bytesIn.WithLabelValues("compressed").Add(float64(cr.n))
	if err != nil {
		return Result{}, err
	}
	defer sent.Release() // if refused
	// The body is in: the slot is held for the work, not for a slow upload.
	if r.inFlight != nil {
		if err := r.takeSlot(ctx, req.Beacon); err != nil {
			return Result{}, err
		}
		defer func() { <-r.inFlight }()
	}
	body, err := sent.Decode()
	sent.Release() // the batch may wait for the index a while: keep the buffer no longer
	if err != nil {
		return Result{}, err
	}
	b, err := ParseBatch(body, r.cfg.Limits, pe.redactor)
	if err != nil {
		return Result{}, err
	}
	if req.Session != "" && b.SessionID != req.Session {
		return Result{}, fmt.Errorf("%w: the URL names session %q, the body %q", ErrMalformed, textcut.Head(req.Session, 64), b.SessionID)
	}
	b.ProjectID = pe.project.ID
	b.ReceivedAt = r.now().UnixMilli()
	if err := checkTimes(b, r.cfg.Limits); err != nil {
		return Result{}, err
	}
	b.UserAgent = textcut.Head(req.UserAgent, 512) // valid UTF-8: a header may carry any bytes
	b.IP = ip
	r.m.bytesIn.WithLabelValues("decompressed").Add(float64(len(body)))
	r.verifyIdentity(pe, b)
	if rule := r.screen(pe.rules, b); rule != "" {
		return r.filtered(rule, b), nil
	}
	return r.accept(ctx, b, pe.quota, pe.rules, req.TakenOver)
}

// MaxBody is the largest ingest body taken, as sent.
func (r *Recorder) MaxBody() int64 { return r.cfg.Limits.MaxCompressed }

// SessionOf reads the session id of a batch's body as sent (with its
// content encoding), within the ingest limits, for routing a request by
// its session when its URL does not name it.
func (r *Recorder) SessionOf(body []byte, encoding string) (string, error) {
	raw, err := r.dec.Decompress(bytes.NewReader(body), encoding)
	if err != nil {
		return "", err
	}
	var b struct {
		SessionID string `json:"session_id"`
	}
	if err := json.Unmarshal(raw, &b); err != nil {
		return "", fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if !validID(b.SessionID) {
		return "", fmt.Errorf("%w: session_id %q", ErrInvalidID, textcut.Head(b.SessionID, 64))
	}
	return b.SessionID, nil
}

// ValidSession reports whether id is a well-formed session id.
func ValidSession(id string) bool { return validID(id) }

// accept runs the recording rules that depend on the session's state,
// dedupe, the quota check and the durable append for a parsed batch.
func (r *Recorder) accept(ctx context.Context, b *Batch, quota Quota, rules *ruleSet, takenOver bool) (Result, error) {
	s, err := r.acquire(ctx, sessKey{b.ProjectID, b.SessionID})
	if err != nil {
		return Result{}, err
	}
	defer r.release(s)
	if takenOver {
		r.mu.Lock()
		s.takenOver = true
		r.mu.Unlock()
	}

	s.ingestMu.Lock()
	defer s.ingestMu.Unlock()
	r.mu.Lock()
	dup := s.seen[b.Seq]
	stored := len(s.seen) > 0
	full := r.buffered > 2*r.cfg.MaxBuffered
	r.mu.Unlock()
	if full && !dup {
		return Result{}, fmt.Errorf("%w: buffered events are waiting for the blob store", ErrOverloaded)
	}
	if dup {
		r.m.batches.WithLabelValues("duplicate").Inc()
		return Result{Accepted: len(b.Events), Duplicate: true}, nil
	}
	if rule := r.gate(rules, s, b, stored); rule != "" {
		// Nothing of it to observe: the session's next batch need not
		// wait for it (see ready).
		r.mu.Lock()
		s.observed[b.Seq] = true
		r.mu.Unlock()
		return r.filtered(rule, b), nil
	}
	var ch *charge
	if !quota.off() {
		ch = &charge{project: b.ProjectID, day: dayOf(b.ReceivedAt), use: index.Usage{Events: int64(len(b.Events)), Bytes: rawSize(b)}}
		if !stored { // only a session's first batch counts (and is refused) as a session
			ch.use.Sessions = 1
		}
		if err := r.quotas.take(ctx, quota, *ch); err != nil {
			var qe *QuotaError
			if errors.As(err, &qe) {
				r.gm.quota.WithLabelValues(projectLabel(b.ProjectID), qe.Kind).Inc()
			}
			return Result{}, err
		}
	}
	rec := batchRecord(b)
	events := b.envelopes()
	facts := factsOf(events)
	ua := r.ua.Parse(b.UserAgent)
	pos, err := r.wal.AppendParts(ctx, rec...)
	if err != nil {
		if ch != nil {
			r.quotas.refund(*ch)
		}
		return Result{}, fmt.Errorf("log batch: %w", err)
	}
	e := newEntry(b, pos)
	e.facts, e.ua, e.events, e.charge = &facts, ua, events, ch
	e.s, e.at = s, r.now()
	r.mu.Lock()
	s.seen[b.Seq] = true
	r.bufferLocked(s, e)
	r.mu.Unlock()
	r.enqueueApply(e)
	r.m.batches.WithLabelValues("accepted").Inc()
	r.m.events.Add(float64(len(b.Events)))
	// The batch is durable now: it is acknowledged. Its index rows (stage
	// 1), facts (stage 2) and segment follow; a read through the API waits
	// for stage 1 to catch up (CaughtUp). When a stage is far behind, wait
	// for it too (briefly), which slows clients down instead of piling
	// batches up in memory.
	if behind, obsBehind := r.applyBehind(), r.observeBehind(); behind || obsBehind {
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if waitFor(wctx, e.indexed) && obsBehind {
			waitFor(wctx, e.observed)
		}
	}
	return Result{Accepted: len(b.Events)}, nil
}

// takeSlot takes an in-flight slot, or refuses with ErrOverloaded when all
// are taken; a beacon waits for one (up to beaconWait), as its sender would
// not send the batch again.
func (r *Recorder) takeSlot(ctx context.Context, beacon bool) error {
	select {
	case r.inFlight <- struct{}{}:
		return nil
	default:
	}
	if beacon {
		t := time.NewTimer(beaconWait)
		defer t.Stop()
		select {
		case r.inFlight <- struct{}{}:
			return nil
		case <-t.C:
		case <-ctx.Done():
		}
	}
	return fmt.Errorf("%w: %d ingest requests in progress", ErrOverloaded, cap(r.inFlight))
}

// waitFor waits until done is closed (true) or ctx ends (false).
func waitFor(ctx context.Context, done <-chan struct{}) bool {
	select {
	case <-done:
		return true
	case <-ctx.Done():
		return false
	}
}

// acquire returns the live state of a session, loading the seqs it already
// has from the index when it is not in memory, and pins it until release.
func (r *Recorder) acquire(ctx context.Context, k sessKey) (*session, error) {
	r.mu.Lock()
	if r.closing {
		r.mu.Unlock()
		return nil, ErrShuttingDown
	}
	s := r.sessions[k]
	if s != nil {
		s.refs++
		r.mu.Unlock()
		return s, nil
	}
	r.mu.Unlock()

	seqs, err := r.storedSeqs(ctx, k)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if s = r.sessions[k]; s == nil {
		s = newSession(k, seqs)
		r.sessions[k] = s
	}
	s.refs++
	return s, nil
}

// newSession is the state of session k, whose recorded batches are seqs.
func newSession(k sessKey, seqs []index.BatchSeq) *session {
	s := &session{key: k, seen: make(map[int64]bool, len(seqs)), observed: make(map[int64]bool, len(seqs))}
	for _, b := range seqs {
		s.seen[b.Seq] = true
		if b.Observed {
			s.observed[b.Seq] = true
		} else {
			if s.elsewhere == nil {
				s.elsewhere = map[int64]bool{}
			}
			s.elsewhere[b.Seq] = true
		}
	}
	return s
}

func (r *Recorder) release(s *session) {
	r.mu.Lock()
	s.refs--
	r.mu.Unlock()
}

func (r *Recorder) storedSeqs(ctx context.Context, k sessKey) ([]index.BatchSeq, error) {
	return r.db.SessionSeqs(ctx, k.project, k.id)
}

func (r *Recorder) bufferLocked(s *session, e *entry) {
	if len(s.pending) == 0 {
		s.firstPending = r.now()
	}
	s.pending = append(s.pending, e)
	s.pendingBytes += e.raw
	// The latest time a batch came, by the clock's high-water mark: a clock
	// stepped back and catching up again is not quiet time.
	if now := r.now(); now.After(s.lastReceived) {
		s.lastReceived = now
	}
	s.closed = false
	r.buffered += e.raw
}

func rawSize(b *Batch) int64 {
	var n int64
	for _, ev := range b.Events {
		n += int64(len(ev)) + 1
	}
	return n
}

// ProjectChanged drops what this node cached of a project, so a settings
// change made through it applies to the next batch and config request
// (other nodes pick it up within the cache's 10 s).
func (r *Recorder) ProjectChanged(projectID int64) {
	r.projMu.Lock()
	defer r.projMu.Unlock()
	for key, pe := range r.projects {
		if pe.project.ID == projectID {
			delete(r.projects, key)
		}
	}
}

// project resolves a write key, caching projects for a few seconds so a
// settings change takes effect quickly without a lookup per batch.
func (r *Recorder) project(ctx context.Context, key string) (*projectEntry, error) {
	r.projMu.Lock()
	pe := r.projects[key]
	r.projMu.Unlock()
	if pe != nil && r.now().Sub(pe.loaded) < 10*time.Second {
		return pe, nil
	}
	if pe == nil && r.badKeys.unknown(key, r.now()) {
		return nil, fmt.Errorf("%w: no project has this write key", ErrUnknownKey)
	}
	p, err := r.db.ProjectByKey(ctx, key)
	if errors.Is(err, index.ErrNotFound) {
		r.badKeys.add(key, r.now())
		return nil, fmt.Errorf("%w: no project has this write key", ErrUnknownKey)
	}
	if err != nil {
		return nil, err
	}
	rules, err := projectRedactRules(r.cfg.Redact, p.Settings)
	if err != nil {
		r.log.Warn("project redaction settings unreadable, using defaults", "project", p.ID, slog.Any("error", err))
		rules = r.cfg.Redact
	}
	quota, err := projectQuota(r.cfg.Quota, p.Settings)
	if err != nil {
		r.log.Warn("project quota settings unreadable, using the server's", "project", p.ID, slog.Any("error", err))
	}
	requireID, err := projectIdentity(p.Settings)
	if err != nil {
		r.log.Warn("project identity settings unreadable, not requiring verification", "project", p.ID, slog.Any("error", err))
	}
	pe = &projectEntry{project: p, redactor: NewRedactor(rules), quota: quota, requireIdentity: requireID,
		rules: r.projectRules(p), loaded: r.now()}
	r.projMu.Lock()
	if len(r.projects) > 10000 {
		clear(r.projects)
	}
	r.projects[key] = pe
	r.projMu.Unlock()
	return pe, nil
}

// CheckProjectSettings reports what the recorder cannot use in a project's
// settings JSON: "redact_params" and "allow_params" must be lists of
// parameter names, "quota" an object of non-negative "sessions_per_day",
// "events_per_day" and "bytes_per_day", "require_verified_identity" a
// boolean, "recording" valid Rules.
func CheckProjectSettings(settings json.RawMessage) error {
	if _, err := projectQuota(Quota{}, settings); err != nil {
		return err
	}
	if _, err := projectIdentity(settings); err != nil {
		return err
	}
	if _, err := ParseRules(settings); err != nil {
		return err
	}
	r, err := projectRedactRules(RedactRules{}, settings)
	if err != nil {
		return err
	}
	for _, name := range append(r.Params, r.Allow...) {
		if strings.TrimSpace(name) == "" {
			return errors.New("redact_params and allow_params must not hold empty names")
		}
	}
	return nil
}

// projectRedactRules applies a project's settings
// ({"redact_params": [...], "allow_params": [...]}) over the defaults.
func projectRedactRules(def RedactRules, settings json.RawMessage) (RedactRules, error) {
	var s struct {
		RedactParams []string `json:"redact_params"`
		AllowParams  []string `json:"allow_params"`
	}
	if len(settings) > 0 {
		if err := json.Unmarshal(settings, &s); err != nil {
			return def, fmt.Errorf("parse project settings: %w", err)
		}
	}
	out := def
	if s.RedactParams != nil {
		out.Params = append(append([]string(nil), def.Params...), s.RedactParams...)
	}
	if s.AllowParams != nil {
		out.Allow = append(append([]string(nil), def.Allow...), s.AllowParams...)
	}
	return out, nil
}

// Unflushed returns, in seq order, the accepted batches of a session that
// are not yet in a stored segment, so a live session can be watched.
func (r *Recorder) Unflushed(projectID int64, sessionID string) (seqs []int64, events [][]json.RawMessage) {
	r.mu.Lock()
	s := r.sessions[sessKey{projectID, sessionID}]
	var all []*entry
	if s != nil {
		all = append(append(all, s.flushing...), s.pending...)
	}
	// A quarantined batch is not in the recording (its segment will not
	// hold it) until a start records it.
	all = slices.DeleteFunc(all, func(e *entry) bool { return e.quarantined })
	r.mu.Unlock()
	sortEntries(all)
	for _, e := range all {
		seqs = append(seqs, e.b.Seq)
		events = append(events, e.b.Events)
	}
	return seqs, events
}

// Ready reports whether the recorder accepts batches.
func (r *Recorder) Ready(context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closing {
		return ErrShuttingDown
	}
	return nil
}

// Close stops accepting batches, applies and flushes everything buffered,
// and closes the log. Call it after the HTTP server has stopped.
func (r *Recorder) Close(ctx context.Context) error {
	r.mu.Lock()
	if r.closing {
		r.mu.Unlock()
		return nil
	}
	r.closing = true
	r.mu.Unlock()
	close(r.stop)
	r.applyMu.Lock()
	r.applyCond.Broadcast()
	r.applyMu.Unlock()
	// Each stage drains its queue before it returns: stage 1 first, as it
	// feeds stage 2; then flush all.
	<-r.applyDone
	close(r.obsStop)
	r.obsMu.Lock()
	r.obsCond.Broadcast()
	r.obsMu.Unlock()
	<-r.observeDone
	r.wg.Wait()
	err := r.flushAll(ctx, true)
	return errors.Join(err, r.wal.Close(), r.stmts.Close())
}

// walDir is where the log lives.
func (c Config) walDir() string { return filepath.Join(c.DataDir, "wal") }

package recorder

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/trailmap/trailmap/storage/index"
)

// Quota is a project's daily ingest allowance per UTC day; a zero field
// means no limit of that kind.
type Quota struct {
	// SessionsPerDay bounds the sessions started a day. Only a session's
	// first batch is refused: a session already recording goes on.
	SessionsPerDay int64
	// EventsPerDay and BytesPerDay bound the rrweb events and their raw
	// JSON bytes accepted a day.
	EventsPerDay int64
	BytesPerDay  int64
}

func (q Quota) off() bool { return q == Quota{} }

func (q Quota) validate() error {
	if q.SessionsPerDay < 0 || q.EventsPerDay < 0 || q.BytesPerDay < 0 {
		return errors.New("quotas must not be negative (0: no limit)")
	}
	return nil
}

// ErrQuotaExceeded means the project has used up one of its daily quotas;
// nothing of the batch was kept.
var ErrQuotaExceeded = errors.New("quota exceeded")

// QuotaError is a refusal by a daily quota; it wraps ErrQuotaExceeded and
// says when the next UTC day begins.
type QuotaError struct {
	Kind       string // "sessions", "events" or "bytes"
	Limit      int64
	RetryAfter time.Duration
}

func (e *QuotaError) Error() string {
	return fmt.Sprintf("%v: the project's daily %s quota (%d) is used up until the next UTC day, in %s",
		ErrQuotaExceeded, e.Kind, e.Limit, e.RetryAfter.Round(time.Second))
}

// Unwrap makes errors.Is(err, ErrQuotaExceeded) true.
func (e *QuotaError) Unwrap() error { return ErrQuotaExceeded }

// projectQuota applies a project's settings ({"quota": {"sessions_per_day":
// n, "events_per_day": n, "bytes_per_day": n}}) over the server's default;
// a kind set to 0 has no limit for the project.
func projectQuota(def Quota, settings json.RawMessage) (Quota, error) {
	var s struct {
		Quota *struct {
			Sessions *int64 `json:"sessions_per_day"`
			Events   *int64 `json:"events_per_day"`
			Bytes    *int64 `json:"bytes_per_day"`
		} `json:"quota"`
	}
	if len(settings) > 0 {
		if err := json.Unmarshal(settings, &s); err != nil {
			return def, fmt.Errorf("quota: %w", err)
		}
	}
	q := def
	if s.Quota != nil {
		for _, f := range []struct {
			v   *int64
			dst *int64
		}{{s.Quota.Sessions, &q.SessionsPerDay}, {s.Quota.Events, &q.EventsPerDay}, {s.Quota.Bytes, &q.BytesPerDay}} {
			if f.v != nil {
				*f.dst = *f.v
			}
		}
	}
	if err := q.validate(); err != nil {
		return def, err
	}
	return q, nil
}

// usageRefresh is how often a project's usage is read again from the index
// (which other nodes of a cluster write too).
const usageRefresh = 10 * time.Second

const dayMillis = 24 * 60 * 60 * 1000

// dayOf is the UTC day (days since 1970-01-01) of a Unix ms time.
func dayOf(ms int64) int64 { return ms / dayMillis }

// quotas counts what each project recorded today, for Quota checks on the
// ingest path without a database round trip per batch. The index holds the
// counts (stage 1 adds every batch it records, see addUsage), so they
// survive restarts; in memory, a project's usage is
//
//	base + accepted
//
// where accepted counts batches charged here since the day began in this
// process and base is what the index held at the last refresh minus what of
// accepted had been recorded then (other nodes' batches, and this node's
// from before a restart). A batch recorded while the index is read may be
// counted twice until the next refresh: the error is on the safe side.
type quotas struct {
	usage func(ctx context.Context, projectID, day int64) (index.Usage, error)
	log   *slog.Logger
	now   func() time.Time

	mu sync.Mutex
	by map[int64]*projectUsage
}

type projectUsage struct {
	day      int64
	base     index.Usage
	accepted index.Usage // charged here this day
	recorded index.Usage // of which recorded in the index
	loaded   time.Time
	loading  chan struct{} // closed when the running load ends; nil when none runs
}

// charge is what a batch counts against its project's quotas.
type charge struct {
	project, day int64
	use          index.Usage
}

func newQuotas(usage func(ctx context.Context, projectID, day int64) (index.Usage, error), log *slog.Logger, now func() time.Time) *quotas {
	return &quotas{usage: usage, log: log, now: now, by: map[int64]*projectUsage{}}
}

// take charges c against lim, or refuses with a *QuotaError when c would
// take the project over one of its quotas today.
func (q *quotas) take(ctx context.Context, lim Quota, c charge) error {
	q.mu.Lock()
	u := q.by[c.project]
	if u == nil || u.day != c.day {
		if len(q.by) > 100000 {
			clear(q.by)
		}
		u = &projectUsage{day: c.day}
		q.by[c.project] = u
	}
	if u.loading == nil && q.now().Sub(u.loaded) >= usageRefresh {
		q.refreshLocked(ctx, c.project, u)
	} else if u.loading != nil && u.loaded.IsZero() {
		// The first load of the day: wait for it rather than count from 0.
		wait := u.loading
		q.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return ctx.Err()
		}
		q.mu.Lock()
	}
	defer q.mu.Unlock()
	used := u.base.Add(u.accepted)
	var kind string
	var limit int64
	switch {
	case c.use.Sessions > 0 && lim.SessionsPerDay > 0 && used.Sessions+c.use.Sessions > lim.SessionsPerDay:
		kind, limit = "sessions", lim.SessionsPerDay
	case lim.EventsPerDay > 0 && used.Events+c.use.Events > lim.EventsPerDay:
		kind, limit = "events", lim.EventsPerDay
	case lim.BytesPerDay > 0 && used.Bytes+c.use.Bytes > lim.BytesPerDay:
		kind, limit = "bytes", lim.BytesPerDay
	default:
		u.accepted = u.accepted.Add(c.use)
		return nil
	}
	next := time.UnixMilli((c.day + 1) * dayMillis)
	return &QuotaError{Kind: kind, Limit: limit, RetryAfter: max(next.Sub(q.now()), time.Second)}
}

// refreshLocked reads the project's usage from the index; q.mu is held on
// entry and exit, and released while the index is read.
func (q *quotas) refreshLocked(ctx context.Context, project int64, u *projectUsage) {
	done := make(chan struct{})
	u.loading = done
	recorded := u.recorded // before the read: what the index holds at least
	day := u.day
	q.mu.Unlock()
	stored, err := q.usage(ctx, project, day)
	q.mu.Lock()
	u.loading = nil
	close(done)
	u.loaded = q.now()
	if err != nil {
		// Count on from what is known; the next refresh tries again.
		q.log.Warn("read project usage", "project", project, slog.Any("error", err))
		return
	}
	u.base = stored.Sub(recorded)
}

// refund takes back a charge whose batch was not accepted after all.
func (q *quotas) refund(c charge) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if u := q.by[c.project]; u != nil && u.day == c.day {
		u.accepted = u.accepted.Sub(c.use)
	}
}

// recorded notes charges whose batches stage 1 has recorded in the index.
func (q *quotas) recorded(cs []charge) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, c := range cs {
		if u := q.by[c.project]; u != nil && u.day == c.day {
			u.recorded = u.recorded.Add(c.use)
		}
	}
}

// addUsage adds the batches of group that stage 1 recorded the first time
// to their projects' usage in the index, one row update per project and day.
func addUsage(ctx context.Context, tx *index.IngestTx, group []*entry) error {
	type pd struct{ project, day int64 }
	var sums map[pd]index.Usage
	for _, e := range group {
		if !e.recorded {
			continue
		}
		if sums == nil {
			sums = map[pd]index.Usage{}
		}
		k := pd{e.b.ProjectID, dayOf(e.b.ReceivedAt)}
		sums[k] = sums[k].Add(usageOf(e))
	}
	for k, u := range sums {
		if err := tx.AddUsage(ctx, k.project, k.day, u); err != nil {
			return err
		}
	}
	return nil
}

func usageOf(e *entry) index.Usage {
	u := index.Usage{Events: int64(len(e.b.Events)), Bytes: e.raw}
	if e.newSession {
		u.Sessions = 1
	}
	return u
}

func projectLabel(id int64) string { return strconv.FormatInt(id, 10) }

// noteRecorded tells the quotas that stage 1 committed group: its charges
// are in the index now (or were before, when another node recorded the
// same batch).
func (r *Recorder) noteRecorded(group []*entry) {
	var cs []charge
	for _, e := range group {
		if e.charge != nil {
			cs = append(cs, *e.charge)
		}
	}
	if len(cs) > 0 {
		r.quotas.recorded(cs)
	}
}

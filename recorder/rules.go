package recorder

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math"
	"regexp"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/trailmap/trailmap/internal/jsonscan"
	"github.com/trailmap/trailmap/internal/rrweb"
	"github.com/trailmap/trailmap/storage/index"
)

// Rules decide what a project records: "recording" in its settings. The
// browser script applies them before anything leaves the page (it reads
// them from GET /api/v1/ingest/config); the server applies the ones it can
// check on every batch, so that a client that ignores them cannot bypass
// them: sampling, URL patterns, the start trigger and bot filtering. The
// minimum duration and interaction hold a visit back in the browser; the
// server judges every session against them when it closes (see
// README.md, Recording rules).
type Rules struct {
	// SampleRate is the share of sessions recorded, 0–1 (nil: all). A
	// session is in the sample when the FNV-1a hash of its id, as a share
	// of 2³², is below the rate: every batch of a session, on any node, and
	// the script all decide the same.
	SampleRate *float64 `json:"sample_rate,omitempty"`
	// MinDurationMS and RequireInteraction hold a session back in the
	// browser until it has lasted this long and/or seen a click, key press,
	// input, scroll or touch; a visit that never gets there sends nothing.
	MinDurationMS      int64 `json:"min_duration_ms,omitempty"`
	RequireInteraction bool  `json:"require_interaction,omitempty"`
	// AllowURLs (when not empty) and DenyURLs are URL patterns: pages
	// matching no allow pattern, or any deny pattern, are not recorded.
	// A pattern starting with "/" matches from the URL's path on (path,
	// query and fragment), any other the whole URL; "*" matches any
	// characters; a pattern matches a prefix unless it ends with "$".
	AllowURLs []string `json:"allow_urls,omitempty"`
	DenyURLs  []string `json:"deny_urls,omitempty"`
	// StartAfter records a session only from a trigger on, with the
	// moments just before it.
	StartAfter *Trigger `json:"start_after,omitempty"`
	// DropBots drops the batches of requests whose User-Agent is a known
	// crawler, bot or headless browser (answered 202, not stored).
	DropBots bool `json:"drop_bots,omitempty"`
	// CheckoutEveryMS and CheckoutEveryEvents make the script take a full
	// snapshot after this long, or this many incremental events, since the
	// last one (0: the defaults, 5 minutes and 10,000 events), so that
	// seeking late into a long single-page visit and a share's lead-in
	// start from a recent snapshot instead of the page load.
	CheckoutEveryMS     int64 `json:"checkout_every_ms,omitempty"`
	CheckoutEveryEvents int64 `json:"checkout_every_events,omitempty"`
}

// Trigger starts the recording of a session: a custom event (trailmap.track
// name) or a page whose URL matches a pattern.
type Trigger struct {
	Event string `json:"event,omitempty"`
	URL   string `json:"url,omitempty"`
	// BufferMS is how much of the time before the trigger the browser keeps
	// and sends with it (default 10 s, at most 2 min).
	BufferMS int64 `json:"buffer_ms,omitempty"`
}

// Limits of the rules, so that a settings typo cannot make the script hold
// a page's events for long or run thousands of patterns.
const (
	defaultTriggerBufferMS = 10_000
	maxTriggerBufferMS     = 120_000
	maxMinDurationMS       = 3_600_000
	maxURLPatterns         = 100
	maxPatternLen          = 500
	minCheckoutMS          = 5_000
	maxCheckoutMS          = 3_600_000
	minCheckoutEvents      = 100
	maxCheckoutEvents      = 1_000_000
	// triggerTag is the custom event the script puts first in the buffer
	// it sends on the trigger, so the batches that carry the buffer before
	// the trigger event itself are accepted too.
	triggerTag = internalTagPrefix + "trigger"
)

// ParseRules reads and checks the "recording" rules in a project's settings
// (zero Rules when there are none), with the trigger's default buffer set.
func ParseRules(settings json.RawMessage) (Rules, error) {
	var s struct {
		Recording json.RawMessage `json:"recording"`
	}
	if len(bytes.TrimSpace(settings)) > 0 {
		if err := json.Unmarshal(settings, &s); err != nil {
			return Rules{}, fmt.Errorf("parse project settings: %w", err)
		}
	}
	var r Rules
	if len(s.Recording) == 0 || string(s.Recording) == "null" {
		return r, nil
	}
	dec := json.NewDecoder(bytes.NewReader(s.Recording))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return Rules{}, decodeRuleError(err)
	}
	if r.StartAfter != nil && r.StartAfter.BufferMS == 0 {
		r.StartAfter.BufferMS = defaultTriggerBufferMS
	}
	if _, err := compileRules(r); err != nil {
		return Rules{}, err
	}
	return r, nil
}

// ErrInvalidRules is wrapped by the errors of ParseRules about the rules
// themselves (a *RuleError).
var ErrInvalidRules = errors.New("invalid recording rules")

// RuleError is a recording rule that cannot be used.
type RuleError struct {
	// Field names the rule as in the settings JSON ("sample_rate",
	// "start_after.url"); "" when the rules as a whole are not JSON of the
	// expected shape.
	Field string
	Msg   string
}

func (e *RuleError) Error() string { return "recording: " + e.Msg }

// Unwrap makes a RuleError an ErrInvalidRules.
func (e *RuleError) Unwrap() error { return ErrInvalidRules }

func ruleErr(field, format string, args ...any) error {
	return &RuleError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// decodeRuleError names the field of a JSON decoding error where it can.
func decodeRuleError(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		want := jsonKind(te.Type.Kind().String())
		switch te.Field {
		case "":
			return ruleErr("", "the rules must be a JSON object, not a JSON %s", te.Value)
		case "allow_urls", "deny_urls":
			want = "a list of strings"
		}
		return ruleErr(te.Field, "%s must be %s, not a JSON %s", te.Field, want, te.Value)
	}
	msg := err.Error()
	if f, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		return ruleErr(strings.Trim(f, `"`), "unknown rule %s", f)
	}
	return ruleErr("", "%s", strings.TrimPrefix(msg, "json: "))
}

// jsonKind says a Go kind the way a JSON writer thinks of it.
func jsonKind(k string) string {
	switch k {
	case "float64":
		return "a number"
	case "int64":
		return "a whole number"
	case "bool":
		return "true or false"
	case "string":
		return "a string"
	case "slice":
		return "a list"
	case "struct", "ptr":
		return "an object"
	}
	return "of another type"
}

// ruleSet is Rules ready to apply.
type ruleSet struct {
	Rules
	sample      float64 // 1 when unset
	allow, deny []*regexp.Regexp
	trigURL     *regexp.Regexp
}

// compileRules checks r and compiles its patterns.
func compileRules(r Rules) (*ruleSet, error) {
	rs := &ruleSet{Rules: r, sample: 1}
	if r.SampleRate != nil {
		v := *r.SampleRate
		if math.IsNaN(v) || v < 0 || v > 1 {
			return nil, ruleErr("sample_rate", "sample_rate must be between 0 and 1, got %v", v)
		}
		rs.sample = v
	}
	if r.MinDurationMS < 0 || r.MinDurationMS > maxMinDurationMS {
		return nil, ruleErr("min_duration_ms", "min_duration_ms must be between 0 and %d", maxMinDurationMS)
	}
	if v := r.CheckoutEveryMS; v != 0 && (v < minCheckoutMS || v > maxCheckoutMS) {
		return nil, ruleErr("checkout_every_ms", "checkout_every_ms must be between %d and %d (0: every 5 minutes)", minCheckoutMS, maxCheckoutMS)
	}
	if v := r.CheckoutEveryEvents; v != 0 && (v < minCheckoutEvents || v > maxCheckoutEvents) {
		return nil, ruleErr("checkout_every_events", "checkout_every_events must be between %d and %d (0: every 10,000 events)", minCheckoutEvents, maxCheckoutEvents)
	}
	var err error
	if rs.allow, err = compilePatterns("allow_urls", r.AllowURLs); err != nil {
		return nil, err
	}
	if rs.deny, err = compilePatterns("deny_urls", r.DenyURLs); err != nil {
		return nil, err
	}
	if t := r.StartAfter; t != nil {
		switch {
		case t.Event == "" && t.URL == "":
			return nil, ruleErr("start_after", `start_after needs an "event" or a "url"`)
		case len(t.Event) > 200 || strings.HasPrefix(t.Event, internalTagPrefix):
			return nil, ruleErr("start_after.event", "start_after.event must be a trailmap.track name (at most 200 characters, not starting with %q)", internalTagPrefix)
		case t.BufferMS < 0 || t.BufferMS > maxTriggerBufferMS:
			return nil, ruleErr("start_after.buffer_ms", "start_after.buffer_ms must be between 0 and %d", maxTriggerBufferMS)
		}
		if t.URL != "" {
			if rs.trigURL, err = compilePattern(t.URL); err != nil {
				return nil, ruleErr("start_after.url", "start_after.url: %v", err)
			}
		}
	}
	return rs, nil
}

func compilePatterns(name string, pats []string) ([]*regexp.Regexp, error) {
	if len(pats) > maxURLPatterns {
		return nil, ruleErr(name, "%s holds %d patterns, at most %d are allowed", name, len(pats), maxURLPatterns)
	}
	out := make([]*regexp.Regexp, 0, len(pats))
	for _, p := range pats {
		re, err := compilePattern(p)
		if err != nil {
			return nil, ruleErr(name, "%s: %v", name, err)
		}
		out = append(out, re)
	}
	return out, nil
}

// compilePattern turns a URL pattern into an anchored regexp: "*" is any
// characters, a trailing "$" anchors the end, all else is literal. The
// script (recorder/js) compiles patterns the same way.
func compilePattern(p string) (*regexp.Regexp, error) {
	if strings.TrimSpace(p) == "" || len(p) > maxPatternLen {
		return nil, fmt.Errorf("pattern %q must be 1–%d characters", p, maxPatternLen)
	}
	end := strings.HasSuffix(p, "$")
	p = strings.TrimSuffix(p, "$")
	parts := strings.Split(p, "*")
	for i, s := range parts {
		parts[i] = regexp.QuoteMeta(s)
	}
	expr := "^" + strings.Join(parts, ".*")
	if end {
		expr += "$"
	}
	return regexp.Compile(expr)
}

// urlSubject is what a pattern is matched against: the whole URL, or for
// patterns starting with "/", the URL from its path on ("/" when it has no
// path).
func urlSubject(pattern *regexp.Regexp, href string) string {
	if !strings.HasPrefix(pattern.String(), "^/") {
		return href
	}
	return urlFromPath(href)
}

// urlFromPath returns the path, query and fragment of a URL as written.
var schemeAuthority = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*://[^/?#]*`)

func urlFromPath(href string) string {
	rest := href[len(schemeAuthority.FindString(href)):]
	if !strings.HasPrefix(rest, "/") {
		rest = "/" + rest
	}
	return rest
}

func matchAny(res []*regexp.Regexp, href string) bool {
	for _, re := range res {
		if re.MatchString(urlSubject(re, href)) {
			return true
		}
	}
	return false
}

// URLAllowed reports whether a page with this URL is recorded.
func (rs *ruleSet) URLAllowed(href string) bool {
	if len(rs.allow) > 0 && !matchAny(rs.allow, href) {
		return false
	}
	return !matchAny(rs.deny, href)
}

// Sampled reports whether a session is in the sample.
func (rs *ruleSet) Sampled(sessionID string) bool {
	if rs.sample >= 1 {
		return true
	}
	return float64(sessionHash(sessionID)) < rs.sample*(1<<32)
}

// sessionHash is the 32-bit FNV-1a hash of a session id (ASCII), as the
// script computes it.
func sessionHash(id string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(id))
	return h.Sum32()
}

// filtersPages reports whether batches must be read for page URLs.
func (rs *ruleSet) filtersPages() bool { return len(rs.allow) > 0 || len(rs.deny) > 0 }

// Filter reasons: the label of trailmap_ingest_filtered_*_total and the
// "filtered" field of the answer.
const (
	filterBot     = "bot"
	filterSampled = "sampled_out"
	filterURL     = "url_denied"
	filterTrigger = "before_trigger"
)

// filterPages drops the events recorded on pages whose URL is not allowed:
// from a Meta event with such an href to the next Meta with an allowed one.
// denied says whether the batch starts on a denied page (what the previous
// batch of the session ended on); it returns the kept events and whether
// the batch ends on a denied page.
func (rs *ruleSet) filterPages(events []json.RawMessage, denied bool) (kept []json.RawMessage, endDenied bool) {
	kept = events[:0:0]
	for _, raw := range events {
		ev := rrweb.Split(raw)
		if ev.Type == rrweb.Meta {
			denied = !rs.URLAllowed(metaHref(ev.Data))
		}
		if !denied {
			kept = append(kept, raw)
		}
	}
	return kept, denied
}

// triggered reports whether events hold the session's start trigger: the
// custom event named, a Meta event of a matching page, or the marker the
// script puts first in what it sends on the trigger.
func (rs *ruleSet) triggered(events []json.RawMessage) bool {
	t := rs.StartAfter
	for _, raw := range events {
		ev := rrweb.Split(raw)
		switch ev.Type {
		case rrweb.Custom:
			tag := customTag(ev.Data)
			if tag == triggerTag || (t.Event != "" && tag == t.Event) {
				return true
			}
		case rrweb.Meta:
			if rs.trigURL != nil {
				href := metaHref(ev.Data)
				if rs.trigURL.MatchString(urlSubject(rs.trigURL, href)) {
					return true
				}
			}
		}
	}
	return false
}

func metaHref(data []byte) string {
	var href string
	jsonscan.EachField(data, func(key, val []byte) bool {
		if string(key) == "href" {
			href = jsonscan.Str(val)
			return false
		}
		return true
	})
	return href
}

func customTag(data []byte) string {
	var tag string
	jsonscan.EachField(data, func(key, val []byte) bool {
		if string(key) == "tag" {
			tag = jsonscan.Str(val)
			return false
		}
		return true
	})
	return tag
}

// ruleMetrics count what the recording rules kept out.
type ruleMetrics struct {
	batches   *prometheus.CounterVec
	events    *prometheus.CounterVec
	discarded prometheus.Counter
}

func newRuleMetrics(reg prometheus.Registerer) *ruleMetrics {
	m := &ruleMetrics{
		batches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trailmap_ingest_filtered_batches_total",
			Help: "Batches answered 202 and not stored because of a project's recording rules, by rule (bot, sampled_out, url_denied, before_trigger).",
		}, []string{"rule"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trailmap_ingest_filtered_events_total",
			Help: "Events not stored because of a project's recording rules, by rule (url_denied counts events of denied pages in batches otherwise kept too).",
		}, []string{"rule"}),
		discarded: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "trailmap_sessions_discarded_total",
			Help: "Sessions that closed short of their project's min_duration_ms or require_interaction: hidden, and deleted by the next retention sweep.",
		}),
	}
	for _, r := range []string{filterBot, filterSampled, filterURL, filterTrigger} {
		m.batches.WithLabelValues(r)
		m.events.WithLabelValues(r)
	}
	if reg != nil {
		reg.MustRegister(m.batches, m.events, m.discarded)
	}
	return m
}

// filtered counts a batch of n events dropped by rule.
func (m *ruleMetrics) filtered(rule string, n int) {
	m.batches.WithLabelValues(rule).Inc()
	m.events.WithLabelValues(rule).Add(float64(n))
}

// projectRules compiles a project's recording rules; rules that do not
// parse (settings written around the check) record everything, as before
// they were set, and say so in the log.
func (r *Recorder) projectRules(p *index.Project) *ruleSet {
	rules, err := ParseRules(p.Settings)
	if err == nil {
		var rs *ruleSet
		if rs, err = compileRules(rules); err == nil {
			return rs
		}
	}
	r.log.Warn("project recording rules unreadable, recording everything", "project", p.ID, slog.Any("error", err))
	rs, _ := compileRules(Rules{})
	return rs
}

// keepRule is what a closing session of a project must show to be kept;
// an unreadable project or rules keep everything (and say so in the log).
func (r *Recorder) keepRule(ctx context.Context, projectID int64) index.KeepRule {
	p, err := r.db.ProjectByID(ctx, projectID)
	if err != nil {
		if !errors.Is(err, index.ErrNotFound) {
			r.log.Warn("project of closing sessions unreadable, keeping them", "project", projectID, slog.Any("error", err))
		}
		return index.KeepRule{}
	}
	rules, err := ParseRules(p.Settings)
	if err != nil {
		return index.KeepRule{}
	}
	return index.KeepRule{MinDurationMS: rules.MinDurationMS, RequireInteraction: rules.RequireInteraction}
}

// RecordingRules returns the recording rules of the project of a write key,
// for the browser script (ErrUnknownKey for an unknown key).
func (r *Recorder) RecordingRules(ctx context.Context, key string) (Rules, error) {
	if key == "" {
		return Rules{}, fmt.Errorf("%w: a write key is required (key= query)", ErrUnknownKey)
	}
	pe, err := r.project(ctx, key)
	if err != nil {
		return Rules{}, err
	}
	return pe.rules.Rules, nil
}

// screen applies the rules that need nothing but the batch: bot filtering
// and sampling. It returns the rule that keeps the batch out, or "".
func (r *Recorder) screen(rs *ruleSet, b *Batch) string {
	if rs.DropBots && r.isBot(b.UserAgent) {
		return filterBot
	}
	if !rs.Sampled(b.SessionID) {
		return filterSampled
	}
	return ""
}

func (r *Recorder) isBot(ua string) bool {
	if r.bots != nil && r.bots.IsBot(ua) {
		return true
	}
	return r.ua.Parse(ua).Bot
}

// gate applies the rules that depend on the session, under its ingestMu:
// the start trigger (a session with no stored batch needs one that carries
// it) and the URL patterns (events of denied pages are removed from b; a
// batch left empty is kept out). stored says whether the session has a
// stored batch.
func (r *Recorder) gate(rs *ruleSet, s *session, b *Batch, stored bool) string {
	if rs.StartAfter != nil && !stored && !rs.triggered(b.Events) {
		return filterTrigger
	}
	if !rs.filtersPages() {
		return ""
	}
	kept, denied := rs.filterPages(b.Events, s.pageDenied)
	s.pageDenied = denied
	if len(kept) == 0 {
		return filterURL
	}
	if n := len(b.Events) - len(kept); n > 0 {
		r.rm.events.WithLabelValues(filterURL).Add(float64(n))
		b.Events = kept
	}
	return ""
}

// filtered answers a batch kept out by a rule: 202, as a retry would meet
// the same rule.
func (r *Recorder) filtered(rule string, b *Batch) Result {
	r.rm.filtered(rule, len(b.Events))
	return Result{Accepted: len(b.Events), Filtered: rule}
}

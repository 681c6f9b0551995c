// Package audit owns the audit log: logins and failed logins, user and token
// changes, shares, exports and renders, deletions and settings changes — who,
// when, what, and from which (anonymised) address. It holds the audit_log
// table's migrations and SQL; others record entries and list them through it.
package audit

import (
	"context"
	"embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/trailmap/trailmap/storage/sqldb"
)

//go:embed migrations
var migrations embed.FS

// Schema is the audit log's migrations (0060–0069), for sqldb.Open.
var Schema = sqldb.NewSchema("audit", 60, 69, migrations)

// ErrBadFilter is returned (wrapped) for a filter or cursor that cannot be used.
var ErrBadFilter = errors.New("bad audit filter")

// Kinds of actor.
const (
	ActorUser      = "user"
	ActorToken     = "token"
	ActorCLI       = "cli"
	ActorSystem    = "system"
	ActorAnonymous = "anonymous"
)

// Entry is one thing done.
type Entry struct {
	ID        int64           `json:"id"`
	At        time.Time       `json:"at"`
	ActorKind string          `json:"actor_kind"`
	Actor     string          `json:"actor,omitempty"`
	Action    string          `json:"action"`
	Target    string          `json:"target,omitempty"`
	ProjectID int64           `json:"project_id,omitempty"`
	IP        string          `json:"ip,omitempty"`
	Detail    json.RawMessage `json:"detail,omitempty"`
}

// Log is the audit log.
type Log struct {
	db  *sqldb.DB
	now func() time.Time
}

// New is the audit log on db, whose schemas include Schema. now is the clock
// (nil: time.Now).
func New(db *sqldb.DB, now func() time.Time) *Log {
	if now == nil {
		now = time.Now
	}
	return &Log{db: db, now: now}
}

// Limits of what one entry keeps.
const (
	maxField  = 256
	maxDetail = 4 << 10
)

// Record appends e; its time is now unless set. Over-long fields are cut,
// an over-long or invalid detail is replaced by a note saying so.
func (l *Log) Record(ctx context.Context, e Entry) error {
	if e.Action == "" {
		return errors.New("audit: an entry needs an action")
	}
	if e.ActorKind == "" {
		e.ActorKind = ActorSystem
	}
	if e.At.IsZero() {
		e.At = l.now()
	}
	detail := "{}"
	if len(e.Detail) > 0 {
		switch {
		case len(e.Detail) > maxDetail:
			detail = `{"truncated":true}`
		case !json.Valid(e.Detail):
			detail = `{"invalid":true}`
		default:
			detail = string(e.Detail)
		}
	}
	var project any
	if e.ProjectID != 0 {
		project = e.ProjectID
	}
	_, err := l.db.Write().ExecContext(ctx, `
		INSERT INTO audit_log (at, actor_kind, actor, action, target, project_id, ip, detail)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		e.At.UnixMilli(), cut(e.ActorKind), cut(e.Actor), cut(e.Action), cut(e.Target), project, cut(e.IP), detail)
	if err != nil {
		return fmt.Errorf("record audit entry %s: %w", e.Action, err)
	}
	return nil
}

func cut(s string) string {
	if len(s) <= maxField {
		return s
	}
	s = s[:maxField]
	for len(s) > 0 && s[len(s)-1]&0xC0 == 0x80 { // no half runes
		s = s[:len(s)-1]
	}
	if len(s) > 0 && s[len(s)-1] >= 0xC0 {
		s = s[:len(s)-1]
	}
	return s
}

// Filter selects entries, newest first.
type Filter struct {
	// Action matches an action exactly, or a prefix when it ends in "."
	// ("share." is every share action).
	Action string
	Actor  string
	// ProjectIDs limits to these projects (and to entries of none when
	// nil is not given): nil means all entries.
	ProjectIDs  []int64
	Since, Till time.Time
	Cursor      string
	Limit       int // 1–500, default 100
}

// List returns one page of entries matching f and the cursor of the next.
func (l *Log) List(ctx context.Context, f Filter) ([]Entry, string, error) {
	var where []string
	var args []any
	if f.Action != "" {
		if strings.HasSuffix(f.Action, ".") {
			where = append(where, "action >= ? AND action < ?")
			args = append(args, f.Action, f.Action[:len(f.Action)-1]+"/") // '/' sorts right after '.'
		} else {
			where = append(where, "action = ?")
			args = append(args, f.Action)
		}
	}
	if f.Actor != "" {
		where = append(where, "actor = ?")
		args = append(args, f.Actor)
	}
	if f.ProjectIDs != nil {
		if len(f.ProjectIDs) == 0 {
			return []Entry{}, "", nil
		}
		where = append(where, "project_id IN "+sqldb.List(len(f.ProjectIDs)))
		for _, id := range f.ProjectIDs {
			args = append(args, id)
		}
	}
	if !f.Since.IsZero() {
		where = append(where, "at >= ?")
		args = append(args, f.Since.UnixMilli())
	}
	if !f.Till.IsZero() {
		where = append(where, "at < ?")
		args = append(args, f.Till.UnixMilli())
	}
	if f.Cursor != "" {
		at, id, err := decodeCursor(f.Cursor)
		if err != nil {
			return nil, "", err
		}
		where = append(where, "(at < ? OR (at = ? AND id < ?))")
		args = append(args, at, at, id)
	}
	limit := f.Limit
	switch {
	case limit == 0:
		limit = 100
	case limit < 1 || limit > 500:
		return nil, "", fmt.Errorf("%w: limit must be 1 to 500", ErrBadFilter)
	}
	q := `SELECT id, at, actor_kind, actor, action, target, COALESCE(project_id, 0), ip, detail FROM audit_log`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY at DESC, id DESC LIMIT ?"
	args = append(args, limit+1)
	rows, err := l.db.Read().QueryContext(ctx, q, args...)
	if err != nil {
		return nil, "", fmt.Errorf("list audit log: %w", err)
	}
	defer rows.Close()
	out := []Entry{}
	for rows.Next() {
		var e Entry
		var at int64
		var detail string
		if err := rows.Scan(&e.ID, &at, &e.ActorKind, &e.Actor, &e.Action, &e.Target, &e.ProjectID, &e.IP, &detail); err != nil {
			return nil, "", fmt.Errorf("scan audit entry: %w", err)
		}
		e.At = time.UnixMilli(at).UTC()
		if detail != "{}" {
			e.Detail = json.RawMessage(detail)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("list audit log: %w", err)
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		last := out[len(out)-1]
		next = encodeCursor(last.At.UnixMilli(), last.ID)
	}
	return out, next, nil
}

// Sweep deletes entries older than before, in chunks, and returns how many.
func (l *Log) Sweep(ctx context.Context, before time.Time) (int64, error) {
	var total int64
	for {
		res, err := l.db.Write().ExecContext(ctx,
			`DELETE FROM audit_log WHERE id IN (SELECT id FROM audit_log WHERE at < ? ORDER BY at LIMIT 1000)`, before.UnixMilli())
		if err != nil {
			return total, fmt.Errorf("sweep audit log: %w", err)
		}
		n, _ := res.RowsAffected()
		total += n
		if n < 1000 {
			return total, nil
		}
	}
}

func encodeCursor(at, id int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(at, 10) + "." + strconv.FormatInt(id, 10)))
}

func decodeCursor(c string) (int64, int64, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err == nil {
		a, i, ok := strings.Cut(string(b), ".")
		at, err1 := strconv.ParseInt(a, 10, 64)
		id, err2 := strconv.ParseInt(i, 10, 64)
		if ok && err1 == nil && err2 == nil {
			return at, id, nil
		}
	}
	return 0, 0, fmt.Errorf("%w: unreadable cursor", ErrBadFilter)
}

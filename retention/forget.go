package retention

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/trailmap/trailmap/storage/index"
	"github.com/trailmap/trailmap/storage/sqldb"
)

// Forgetting a person (erasure on request, GDPR article 17) lives here
// beside retention because it is the same deletion with another selection:
// sessions of the person's visitors instead of expired ones, their rows in
// every owner's tables, their objects through the blob trash. Each owner
// deletes its own rows with a typed method inside one transaction the core
// index opens (STYLE rule 4); the Forgetter only decides the order.

// ErrBadPerson is a person reference that names nobody: neither a user id
// nor a visitor id, or both.
var ErrBadPerson = errors.New("bad person")

// Person is whose data to forget: every visitor identified as UserID (all
// their devices and browsers), or the one visitor VisitorID.
type Person struct {
	ProjectID int64
	UserID    string
	VisitorID string
}

// ParsePerson reads a person id as the people API writes it: "u:<user
// id>" or "v:<visitor id>".
func ParsePerson(projectID int64, id string) (Person, error) {
	kind, val, ok := strings.Cut(id, ":")
	switch {
	case !ok || val == "" || len(val) > 200:
	case kind == "u":
		return Person{ProjectID: projectID, UserID: val}, nil
	case kind == "v":
		return Person{ProjectID: projectID, VisitorID: val}, nil
	}
	return Person{}, fmt.Errorf(`%w: person id %q: want "u:<user id>" or "v:<visitor id>"`, ErrBadPerson, id)
}

// ID is the person's id as the people API writes it.
func (p Person) ID() string {
	if p.UserID != "" {
		return "u:" + p.UserID
	}
	return "v:" + p.VisitorID
}

// ForgetReport says what forgetting a person deleted.
type ForgetReport struct {
	Person    string `json:"person"`
	ProjectID int64  `json:"project_id"`
	// Sessions, Visitors and Objects sum up Rows["sessions"],
	// Rows["visitors"] and the recording objects deleted from the blob
	// store (with any left in the blob trash by an earlier interrupted
	// run or retention sweep).
	Sessions int `json:"sessions"`
	Visitors int `json:"visitors"`
	Objects  int `json:"objects"`
	// Rows counts the deleted rows per table, every table that holds a
	// person's rows named even when nothing was deleted from it.
	Rows map[string]int `json:"rows"`
	// Pending counts the person's sessions not deleted because they are
	// still recording (or their events are not all stored yet); a later
	// run deletes them once they have ended.
	Pending int `json:"pending_sessions"`
	// ObjectsLeft counts objects still in the blob trash because the blob
	// store failed; a later run or the retention sweep deletes them.
	ObjectsLeft int `json:"objects_left"`
	// Complete is true when nothing of the person is left.
	Complete bool `json:"complete"`
}

// ForgetIndex is what forgetting needs of the core index.
type ForgetIndex interface {
	trash
	// UserVisitors lists the visitors identified as a user id.
	UserVisitors(ctx context.Context, projectID int64, userID string) ([]string, error)
	// InSharedTx runs fn in one write transaction the owners share.
	InSharedTx(ctx context.Context, fn func(*sqldb.Tx) error) error
	// SettledSessionsOf lists up to limit sessions of the visitors that
	// may be deleted now.
	SettledSessionsOf(ctx context.Context, tx *sqldb.Tx, projectID int64, visitors []string, limit int) ([]int64, error)
	// UnsettledSessionsOf counts the visitors' sessions still recording.
	UnsettledSessionsOf(ctx context.Context, projectID int64, visitors []string) (int, error)
	// DeleteSessions deletes the sessions and the core's rows of them,
	// noting their objects in the blob trash.
	DeleteSessions(ctx context.Context, tx *sqldb.Tx, ids []int64, now int64) (map[string]int, int, error)
	// DeleteVisitorsWithoutSessions deletes the rows of the visitors left
	// without sessions and returns how many, and which visitors have no
	// session left.
	DeleteVisitorsWithoutSessions(ctx context.Context, tx *sqldb.Tx, projectID int64, visitors []string) (int, []string, error)
}

var _ ForgetIndex = (*index.DB)(nil)

// SessionRows is an owner of rows that belong to sessions (heatmap,
// journey, accounts).
type SessionRows interface {
	// ForgetSessions deletes the owner's rows of the sessions inside tx,
	// before the sessions go, and counts them per table (every table it
	// deletes from named, zeros included).
	ForgetSessions(ctx context.Context, tx *sqldb.Tx, sessionIDs []int64) (map[string]int, error)
}

// VisitorRows is an owner of rows that belong to visitors (journey).
type VisitorRows interface {
	// ForgetVisitors deletes the owner's rows of visitors that have no
	// session left inside tx, and counts them per table.
	ForgetVisitors(ctx context.Context, tx *sqldb.Tx, projectID int64, visitorIDs []string) (map[string]int, error)
}

// Forgetter deletes everything of a person. Safe for concurrent use.
type Forgetter struct {
	db       ForgetIndex
	blobs    Blobs
	sessions []SessionRows
	visitors []VisitorRows
	// Chunk is how many sessions one transaction deletes.
	Chunk int
	now   func() time.Time
	log   *slog.Logger
	// trashMu keeps two runs from deleting the same trash at once (and
	// counting its objects twice).
	trashMu sync.Mutex
}

// NewForgetter returns a Forgetter over the core index, the blob store and
// the other owners of session and visitor rows.
func NewForgetter(db ForgetIndex, blobs Blobs, sessions []SessionRows, visitors []VisitorRows, logger *slog.Logger) *Forgetter {
	return &Forgetter{db: db, blobs: blobs, sessions: sessions, visitors: visitors, Chunk: 100, now: time.Now,
		log: logger.With("component", "forget")}
}

// Forget deletes every session of the person that has ended, with all
// rows that belong to those sessions or to the person's visitors, then
// the sessions' recording objects. Rows go first, Chunk sessions per
// transaction, each transaction noting the objects' keys in the blob
// trash; the objects are deleted after the commits. A crash or a failing
// blob store therefore leaves keys in the trash, never objects without
// them: the next run (or the retention sweep) deletes those. Running it
// again is harmless and reports zeros once everything is gone.
//
// Sessions still recording are not deleted (Pending in the report): the
// recorder still buffers and stores them. Run it again once they have
// ended (after the session idle time). A visitor who comes back later is
// recorded again like anyone else: the recorder keeps no list of
// forgotten visitors.
//
// Future owners of per-session copies (asset copies, renders) join as
// SessionRows; their objects go through the blob trash in the same way.
func (f *Forgetter) Forget(ctx context.Context, p Person) (*ForgetReport, error) {
	if (p.UserID == "") == (p.VisitorID == "") {
		return nil, fmt.Errorf("%w: give a user id or a visitor id", ErrBadPerson)
	}
	rep := &ForgetReport{Person: p.ID(), ProjectID: p.ProjectID, Rows: map[string]int{}}
	visitors := []string{p.VisitorID}
	if p.UserID != "" {
		var err error
		if visitors, err = f.db.UserVisitors(ctx, p.ProjectID, p.UserID); err != nil {
			return nil, fmt.Errorf("forget %s: %w", p.ID(), err)
		}
	}
	for {
		n, err := f.forgetChunk(ctx, p.ProjectID, visitors, rep)
		if err != nil {
			return nil, fmt.Errorf("forget %s: %w", p.ID(), err)
		}
		if n < f.Chunk {
			break
		}
	}
	rep.Sessions, rep.Visitors = rep.Rows["sessions"], rep.Rows["visitors"]

	var err error
	if rep.Pending, err = f.db.UnsettledSessionsOf(ctx, p.ProjectID, visitors); err != nil {
		return nil, fmt.Errorf("forget %s: %w", p.ID(), err)
	}
	f.trashMu.Lock()
	terr := emptyTrash(ctx, f.db, f.blobs, func(n int) { rep.Objects += n })
	f.trashMu.Unlock()
	if terr != nil {
		if ctx.Err() != nil {
			return nil, terr
		}
		f.log.Warn("forget: objects left in the blob trash for a later run", "person", p.ID(), slog.Any("error", terr))
		left, err := f.db.BlobTrash(ctx, 1_000_000)
		if err != nil {
			return nil, errors.Join(terr, err)
		}
		rep.ObjectsLeft = max(len(left), 1)
	}
	rep.Complete = rep.Pending == 0 && rep.ObjectsLeft == 0
	f.log.Info("forgot person", "person", p.ID(), "project", p.ProjectID, "sessions", rep.Sessions, "visitors", rep.Visitors,
		"objects", rep.Objects, "pending_sessions", rep.Pending, "objects_left", rep.ObjectsLeft)
	return rep, nil
}

// forgetChunk deletes up to Chunk settled sessions of visitors, with every
// owner's rows of them, and the visitors left without sessions, in one
// transaction; it returns how many sessions it deleted.
func (f *Forgetter) forgetChunk(ctx context.Context, projectID int64, visitors []string, rep *ForgetReport) (int, error) {
	counts := map[string]int{}
	add := func(m map[string]int) {
		for k, v := range m {
			counts[k] += v
		}
	}
	var sessions int
	err := f.db.InSharedTx(ctx, func(tx *sqldb.Tx) error {
		clear(counts)
		ids, err := f.db.SettledSessionsOf(ctx, tx, projectID, visitors, f.Chunk)
		if err != nil {
			return err
		}
		sessions = len(ids)
		// Other owners' rows first: some refer to the sessions.
		for _, o := range f.sessions {
			m, err := o.ForgetSessions(ctx, tx, ids)
			if err != nil {
				return err
			}
			add(m)
		}
		m, _, err := f.db.DeleteSessions(ctx, tx, ids, f.now().UnixMilli())
		if err != nil {
			return err
		}
		add(m)
		n, idle, err := f.db.DeleteVisitorsWithoutSessions(ctx, tx, projectID, visitors)
		if err != nil {
			return err
		}
		counts["visitors"] = n
		for _, o := range f.visitors {
			m, err := o.ForgetVisitors(ctx, tx, projectID, idle)
			if err != nil {
				return err
			}
			add(m)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	for k, v := range counts {
		rep.Rows[k] += v
	}
	return sessions, nil
}

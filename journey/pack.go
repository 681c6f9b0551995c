package journey

import (
	"context"
	"database/sql"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/trailmap/trailmap/storage/sqldb"
)

// Packing: reading a million one-session rows costs a few microseconds of
// SQLite and database/sql work each, more than the funnel itself. Sessions
// that have ended are therefore packed, a few hundred at a time in start
// order, into journey_chunks rows; a query reads the chunks overlapping its
// range plus the loose (recent or re-derived) sessions, in one read
// transaction so no session is seen twice or missed. Re-deriving a packed
// session dissolves its chunk (its other sessions become loose) and the
// next pack run packs them again.

const (
	chunkVersion = 1
	// chunkSize is how many sessions a chunk holds at most.
	chunkSize = 512
	// packMin is how many packable sessions a project needs before a
	// routine pack run bothers.
	packMin = 256
	// packDelay is how long after its last batch a closed session waits
	// before it is packed (late batches would only dissolve the chunk).
	packDelay = 10 * time.Minute
)

// Device codes in timelines and chunks.
var deviceCodes = map[string]uint8{"desktop": 1, "tablet": 2, "mobile": 3}

var deviceNames = [4]string{"(unknown)", "desktop", "tablet", "mobile"}

// sessHead is one session as stored loose or in a chunk.
type sessHead struct {
	session, visitor, start int64
	convAt, searchAt        int64 // unix ms, 0 when none
	device                  uint8
	timeline                []byte
}

func appendChunkSession(b []byte, h *sessHead, prevStart int64) []byte {
	b = binary.AppendUvarint(b, uint64(h.session))
	b = binary.AppendUvarint(b, uint64(h.visitor))
	b = binary.AppendVarint(b, h.start-prevStart)
	flags := h.device << 2
	if h.convAt != 0 {
		flags |= 1
	}
	if h.searchAt != 0 {
		flags |= 2
	}
	b = append(b, flags)
	if h.convAt != 0 {
		b = binary.AppendVarint(b, h.convAt-h.start)
	}
	if h.searchAt != 0 {
		b = binary.AppendVarint(b, h.searchAt-h.start)
	}
	b = binary.AppendUvarint(b, uint64(len(h.timeline)))
	return append(b, h.timeline...)
}

// decodeChunk calls fn for each session of a chunk; h and its timeline are
// only valid during the call.
func decodeChunk(b []byte, fn func(h *sessHead) error) error {
	if len(b) == 0 || b[0] != chunkVersion {
		return errBadTimeline
	}
	b = b[1:]
	var h sessHead
	var prev int64
	uv := func() uint64 {
		v, n := binary.Uvarint(b)
		if n <= 0 {
			b = nil
			return 0
		}
		b = b[n:]
		return v
	}
	sv := func() int64 {
		v, n := binary.Varint(b)
		if n <= 0 {
			b = nil
			return 0
		}
		b = b[n:]
		return v
	}
	for len(b) > 0 {
		h.session = int64(uv())
		h.visitor = int64(uv())
		h.start = prev + sv()
		prev = h.start
		if len(b) == 0 {
			return errBadTimeline
		}
		flags := b[0]
		b = b[1:]
		h.device = flags >> 2 & 3
		h.convAt, h.searchAt = 0, 0
		if flags&1 != 0 {
			h.convAt = h.start + sv()
		}
		if flags&2 != 0 {
			h.searchAt = h.start + sv()
		}
		n := uv()
		if b == nil || uint64(len(b)) < n {
			return errBadTimeline
		}
		h.timeline = b[:n]
		b = b[n:]
		if err := fn(&h); err != nil {
			return err
		}
	}
	return nil
}

// Pack packs ended sessions into chunks, in every project. With force,
// every closed session is packed however few; otherwise a project needs
// packMin of them. It returns how many sessions it packed.
func (s *Service) Pack(ctx context.Context, force bool) (int, error) {
	projects, err := s.core.Projects(ctx)
	if err != nil {
		return 0, fmt.Errorf("pack: %w", err)
	}
	total := 0
	for _, p := range projects {
		for {
			n, err := s.packOne(ctx, p.ID, force)
			if err != nil {
				return total, err
			}
			total += n
			if n < chunkSize {
				break
			}
		}
	}
	return total, nil
}

// timelinesLock is the PostgreSQL advisory lock key that keeps packing
// apart from the other writers of journey_sessions ("jrny").
const timelinesLock = 0x6a726e79

// Lock modes of lockTimelines.
const (
	// lockShared: a derive, which writes the timelines of its own
	// sessions; derives on every node run side by side.
	lockShared = false
	// lockExclusive: a pack or a forget, which reads and rewrites the
	// timelines of any session of a project.
	lockExclusive = true
)

// lockTimelines takes the cluster's timelines lock for the rest of tx.
// SQLite has one writer anyway. On PostgreSQL a pack running beside a
// derive of the same session (a late batch of a closed session) could
// otherwise seal the old timeline into a chunk while the new one is
// stored loose, and scans would count the session twice: a pack takes
// the lock exclusive, a derive shared. Derives need nothing more among
// themselves: each writes the rows of its own sessions (one node
// derives a session at a time), dissolves chunks in id order (see
// unpack), adds keys under a per-project lock (lockKeys) and visitors in
// key order.
func (s *Service) lockTimelines(ctx context.Context, tx *sql.Tx, exclusive bool) error {
	if s.db.Dialect() != sqldb.Postgres {
		return nil
	}
	q := `SELECT pg_advisory_xact_lock_shared(?)`
	if exclusive {
		q = `SELECT pg_advisory_xact_lock(?)`
	}
	if _, err := tx.ExecContext(ctx, q, timelinesLock); err != nil {
		return fmt.Errorf("lock timelines: %w", err)
	}
	return nil
}

// lockKeys makes tx the only one adding journey keys of a project until
// it ends, on PostgreSQL. Every process caches a project's keys by
// growing id (dict), reading only ids above the last it saw, so keys must
// become visible in id order: with two transactions adding keys at once,
// the one with the higher id could commit first, and a cache reading
// then would never read the lower one. Under this lock a project's keys
// are numbered and committed one transaction at a time. New keys are new
// page paths and event names, rare once a site has been recorded for a
// while. (Two-key advisory locks are a key space apart from the
// one-key ones; a project id past 2^31 may share its lock with another
// project, which only makes them wait for each other.)
func (s *Service) lockKeys(ctx context.Context, tx *sql.Tx, projectID int64) error {
	if s.db.Dialect() != sqldb.Postgres {
		return nil
	}
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(?, ?)`, int32(timelinesLock), int32(projectID)); err != nil {
		return fmt.Errorf("lock journey keys: %w", err)
	}
	return nil
}

// packPage is how many loose sessions packOne reads at a time while looking
// for settled ones.
const packPage = 2 * chunkSize

// packOne writes one chunk of a project's oldest packable loose sessions:
// those the index says are closed and got their last batch before the
// pack delay.
func (s *Service) packOne(ctx context.Context, projectID int64, force bool) (int, error) {
	cutoff := s.now().Add(-packDelay).UnixMilli()
	n := 0
	err := s.db.InTx(ctx, func(tx *sql.Tx) error {
		if err := s.lockTimelines(ctx, tx, lockExclusive); err != nil {
			return fmt.Errorf("pack: %w", err)
		}
		var heads []sessHead
		afterStart, afterID := int64(math.MinInt64), int64(math.MinInt64)
		for len(heads) < chunkSize {
			page, err := loosePage(ctx, tx, projectID, afterStart, afterID)
			if err != nil {
				return err
			}
			if len(page) == 0 {
				break
			}
			last := page[len(page)-1]
			afterStart, afterID = last.start, last.session
			ids := make([]int64, len(page))
			for i := range page {
				ids[i] = page[i].session
			}
			settled, err := s.core.SettledSessions(ctx, sqldb.WrapTx(tx), ids, cutoff)
			if err != nil {
				return fmt.Errorf("pack: %w", err)
			}
			for _, h := range page {
				if settled[h.session] && len(heads) < chunkSize {
					heads = append(heads, h)
				}
			}
			if len(page) < packPage {
				break
			}
		}
		if len(heads) == 0 || (!force && len(heads) < packMin) {
			return nil
		}
		data := []byte{chunkVersion}
		ids := make([]any, 0, len(heads))
		var prev int64
		for i := range heads {
			data = appendChunkSession(data, &heads[i], prev)
			prev = heads[i].start
			ids = append(ids, heads[i].session)
		}
		first, last := heads[0].start, heads[len(heads)-1].start
		var chunk int64
		err := tx.QueryRowContext(ctx, `INSERT INTO journey_chunks (project_id, first_start, last_start, sessions, data) VALUES (?, ?, ?, ?, ?) RETURNING id`,
			projectID, first, last, len(ids), data).Scan(&chunk)
		if err != nil {
			return fmt.Errorf("pack: store chunk: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE journey_sessions SET chunk = ? WHERE session_id IN `+sqldb.List(len(ids)),
			append([]any{chunk}, ids...)...); err != nil {
			return fmt.Errorf("pack: mark sessions: %w", err)
		}
		n = len(ids)
		return nil
	})
	return n, err
}

// loosePage reads up to packPage loose sessions of a project in start
// order, after (start, session).
func loosePage(ctx context.Context, tx *sql.Tx, projectID, afterStart, afterID int64) ([]sessHead, error) {
	rows, err := tx.QueryContext(ctx, `
		SELECT session_id, visitor, started_at, device, timeline, COALESCE(converted_at, 0), COALESCE(searched_at, 0)
		FROM journey_sessions
		WHERE project_id = ? AND chunk IS NULL AND started_at >= ? AND (started_at > ? OR session_id > ?)
		ORDER BY started_at, session_id LIMIT ?`, projectID, afterStart, afterStart, afterID, packPage)
	if err != nil {
		return nil, fmt.Errorf("pack: read sessions: %w", err)
	}
	defer rows.Close()
	var out []sessHead
	for rows.Next() {
		var h sessHead
		if err := rows.Scan(&h.session, &h.visitor, &h.start, &h.device, &h.timeline, &h.convAt, &h.searchAt); err != nil {
			return nil, fmt.Errorf("pack: scan session: %w", err)
		}
		out = append(out, h)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("pack: read sessions: %w", err)
	}
	return out, nil
}

// unpack dissolves the chunks holding any of ids (inside a derive or a
// forget).
func unpack(ctx context.Context, tx *sql.Tx, one *sql.Stmt, query func(one *sql.Stmt, many string) (*sql.Rows, error)) error {
	rows, err := query(one, `SELECT DISTINCT chunk FROM journey_sessions WHERE chunk IS NOT NULL AND session_id IN `)
	if err != nil {
		return fmt.Errorf("derive: find chunks: %w", err)
	}
	var chunks []int64
	for rows.Next() {
		var c int64
		if err := rows.Scan(&c); err != nil {
			rows.Close()
			return fmt.Errorf("derive: scan chunk: %w", err)
		}
		chunks = append(chunks, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("derive: find chunks: %w", err)
	}
	// In id order: two derives dissolving the same chunks lock them in
	// one order (the second waits for the first, then finds them gone).
	slices.Sort(chunks)
	for _, c := range chunks {
		if _, err := tx.ExecContext(ctx, `DELETE FROM journey_chunks WHERE id = ?`, c); err != nil {
			return fmt.Errorf("derive: dissolve chunk: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE journey_sessions SET chunk = NULL WHERE chunk = ?`, c); err != nil {
			return fmt.Errorf("derive: dissolve chunk: %w", err)
		}
	}
	return nil
}

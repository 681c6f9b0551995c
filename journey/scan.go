package journey

import (
	"context"
	"database/sql"
	"fmt"
	"runtime"
	"sort"
	"sync"
	"time"

	"github.com/trailmap/trailmap/storage/index"
	"github.com/trailmap/trailmap/storage/sqldb"
)

// dict is a project's key dictionary as far as it has been read. Keys are
// only ever added, with increasing ids, and become visible in id order
// (SQLite: one writer, max(rowid)+1; PostgreSQL: a project's keys are
// added one transaction at a time, lockKeys), so the cache grows by
// reading ids above the last one seen.
type dict struct {
	mu     sync.Mutex
	maxID  int64
	ids    []int64
	kinds  []uint8
	names  []string
	byName map[dictKey]int64
}

// dictKey is a key's kind and name.
type dictKey struct {
	kind uint8
	name string
}

// dictView is an immutable prefix of a dict.
type dictView struct {
	ids   []int64
	kinds []uint8
	names []string
}

// knownKey finds a committed key in the cached dictionary, without reading
// the index.
func (s *Service) knownKey(projectID int64, kind uint8, name string) (int64, bool) {
	s.dictMu.Lock()
	d := s.dicts[projectID]
	s.dictMu.Unlock()
	if d == nil {
		return 0, false
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	id, ok := d.byName[dictKey{kind, name}]
	return id, ok
}

func (s *Service) dictionary(ctx context.Context, projectID int64) (dictView, error) {
	s.dictMu.Lock()
	d := s.dicts[projectID]
	if d == nil {
		d = &dict{}
		s.dicts[projectID] = d
	}
	s.dictMu.Unlock()

	d.mu.Lock()
	defer d.mu.Unlock()
	rows, err := s.db.Read().QueryContext(ctx,
		`SELECT id, kind, name FROM journey_keys WHERE project_id = ? AND id > ? ORDER BY id`, projectID, d.maxID)
	if err != nil {
		return dictView{}, fmt.Errorf("read journey keys: %w", err)
	}
	defer rows.Close()
	if d.byName == nil {
		d.byName = map[dictKey]int64{}
	}
	for rows.Next() {
		var id int64
		var kind uint8
		var name string
		if err := rows.Scan(&id, &kind, &name); err != nil {
			return dictView{}, fmt.Errorf("scan journey key: %w", err)
		}
		d.ids, d.kinds, d.names = append(d.ids, id), append(d.kinds, kind), append(d.names, name)
		d.maxID = id
		d.byName[dictKey{kind, name}] = id
	}
	if err := rows.Err(); err != nil {
		return dictView{}, fmt.Errorf("read journey keys: %w", err)
	}
	n := len(d.ids)
	return dictView{ids: d.ids[:n:n], kinds: d.kinds[:n:n], names: d.names[:n:n]}, nil
}

// index returns the position of key id in v, or -1.
func (v dictView) index(id int64) int {
	i := sort.Search(len(v.ids), func(i int) bool { return v.ids[i] >= id })
	if i < len(v.ids) && v.ids[i] == id {
		return i
	}
	return -1
}

// keyTable maps key ids to small bit sets (which steps, stages or
// conversions a key matches). Ids of one project are mostly contiguous, so
// a slice indexed by id usually beats a map by a wide margin.
type keyTable struct {
	base   int64
	dense  []uint32
	sparse map[int64]uint32
}

// newKeyTable builds a table with f(position in v) for every key of v.
func newKeyTable(v dictView, f func(i int) uint32) *keyTable {
	t := &keyTable{}
	if len(v.ids) == 0 {
		return t
	}
	t.base = v.ids[0]
	span := v.ids[len(v.ids)-1] - t.base + 1
	if span <= int64(4*len(v.ids)+4096) {
		t.dense = make([]uint32, span)
		for i, id := range v.ids {
			t.dense[id-t.base] = f(i)
		}
		return t
	}
	t.sparse = map[int64]uint32{}
	for i, id := range v.ids {
		if m := f(i); m != 0 {
			t.sparse[id] = m
		}
	}
	return t
}

func (t *keyTable) get(id int64) uint32 {
	if t.dense != nil {
		if i := id - t.base; i >= 0 && i < int64(len(t.dense)) {
			return t.dense[i]
		}
		return 0
	}
	return t.sparse[id]
}

// scanQuery selects the timelines a report reads.
type scanQuery struct {
	project  int64
	from, to int64 // session start, unix ms, to exclusive
	segment  index.Match
	dim      *dimension // split, or nil
	skipTL   bool       // do not decode timelines
}

// scanRow is one session as a scan hands it over. entries is reused for
// the next row of the same slot: copy what you keep.
type scanRow struct {
	session, visitor, start int64
	convAt, searchAt        int64 // unix ms, 0 when none
	device                  uint8
	entries                 []entry
	split                   string // the split value, "" without a split
}

// decodeWorkers is how many goroutines decode chunks.
func decodeWorkers() int { return max(1, min(runtime.GOMAXPROCS(0), 4)) }

// scanSlots is how many accumulators a scan's callback needs: one per
// decoder and one for the loose sessions.
func scanSlots() int { return decodeWorkers() + 1 }

// scan calls fn for every session of q, from several goroutines; w (below
// scanSlots()) tells the caller's accumulator apart, so they need no locks.
// Chunks and loose sessions are read in one read transaction.
func (s *Service) scan(ctx context.Context, q scanQuery, fn func(w int, r *scanRow) error) error {
	var filter map[int64]string
	if !q.segment.IsZero() || (q.dim != nil && q.dim.fromHead == nil) {
		var err error
		if filter, err = s.filterSessions(ctx, q); err != nil {
			return err
		}
	}
	conn, err := s.db.Read().Conn(ctx)
	if err != nil {
		return fmt.Errorf("scan: %w", err)
	}
	defer conn.Close()
	// One snapshot for chunks and loose sessions, so a pack committing
	// in between neither hides nor doubles a session: SQLite's read
	// transaction is one; PostgreSQL's default (read committed) is not.
	begin := `BEGIN`
	if s.db.Dialect() == sqldb.Postgres {
		begin = `BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY`
	}
	if _, err := conn.ExecContext(ctx, begin); err != nil {
		return fmt.Errorf("scan: begin: %w", err)
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), `ROLLBACK`)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var errMu sync.Mutex
	var firstErr error
	fail := func(err error) {
		errMu.Lock()
		if firstErr == nil {
			firstErr = err
		}
		errMu.Unlock()
		cancel()
	}
	workers := decodeWorkers()
	blobs := make(chan []byte, 2*workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := &scanRow{}
			for b := range blobs {
				if ctx.Err() != nil {
					continue
				}
				err := decodeChunk(b, func(h *sessHead) error { return emit(&q, filter, h, r, w, fn) })
				if err != nil {
					fail(fmt.Errorf("scan chunk: %w", err))
				}
			}
		}()
	}
	readErr := func() error {
		defer close(blobs)
		rows, err := conn.QueryContext(ctx, `SELECT data FROM journey_chunks WHERE project_id = ? AND last_start >= ? AND first_start < ?`,
			q.project, q.from, q.to)
		if err != nil {
			return fmt.Errorf("scan chunks: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var b []byte
			if err := rows.Scan(&b); err != nil {
				return fmt.Errorf("scan chunks: %w", err)
			}
			select {
			case blobs <- b:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return rows.Err()
	}()
	if readErr == nil {
		readErr = s.scanLoose(ctx, conn, &q, filter, workers, fn)
	}
	if readErr != nil {
		fail(readErr)
	}
	wg.Wait()
	return firstErr
}

// scanLoose hands over the sessions not in a chunk, as slot w.
func (s *Service) scanLoose(ctx context.Context, conn *sql.Conn, q *scanQuery, filter map[int64]string, w int, fn func(int, *scanRow) error) error {
	rows, err := conn.QueryContext(ctx, `
		SELECT session_id, visitor, started_at, device, timeline, COALESCE(converted_at, 0), COALESCE(searched_at, 0)
		FROM journey_sessions WHERE project_id = ? AND started_at >= ? AND started_at < ? AND chunk IS NULL`, q.project, q.from, q.to)
	if err != nil {
		return fmt.Errorf("scan timelines: %w", err)
	}
	defer rows.Close()
	var h sessHead
	var tl sql.RawBytes
	r := &scanRow{}
	for rows.Next() {
		if err := rows.Scan(&h.session, &h.visitor, &h.start, &h.device, &tl, &h.convAt, &h.searchAt); err != nil {
			return fmt.Errorf("scan timeline row: %w", err)
		}
		h.timeline = tl
		if err := emit(q, filter, &h, r, w, fn); err != nil {
			return err
		}
	}
	return rows.Err()
}

// emit filters one session and hands it to fn.
func emit(q *scanQuery, filter map[int64]string, h *sessHead, r *scanRow, w int, fn func(int, *scanRow) error) error {
	if h.start < q.from || h.start >= q.to {
		return nil
	}
	r.split = ""
	if filter != nil {
		v, ok := filter[h.session]
		if !ok {
			return nil
		}
		r.split = v
	}
	if q.dim != nil && q.dim.fromHead != nil {
		r.split = q.dim.fromHead(h)
	}
	r.session, r.visitor, r.start, r.convAt, r.searchAt, r.device = h.session, h.visitor, h.start, h.convAt, h.searchAt, h.device
	r.entries = r.entries[:0]
	if !q.skipTL {
		var err error
		if r.entries, err = decodeTimeline(h.timeline, h.start, r.entries); err != nil {
			return fmt.Errorf("session %d: %w", h.session, err)
		}
	}
	return fn(w, r)
}

// filterSessions selects the sessions of a segment, and the split values
// that the index has to read, from the index.
func (s *Service) filterSessions(ctx context.Context, q scanQuery) (map[int64]string, error) {
	sc := index.SessionScan{ProjectID: q.project, From: time.UnixMilli(q.from), To: time.UnixMilli(q.to), Match: q.segment}
	if q.dim != nil && q.dim.fromHead == nil {
		sc.Attrs = q.dim.attrs
	}
	out := map[int64]string{}
	intern := map[string]string{}
	err := s.core.ScanSessions(ctx, sc, func(id int64, attrs []string) error {
		v := ""
		if len(sc.Attrs) > 0 {
			v = q.dim.value(attrs)
			if iv, ok := intern[v]; ok {
				v = iv
			} else {
				intern[v] = v
			}
		}
		out[id] = v
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("select segment: %w", err)
	}
	return out, nil
}

// personMap resolves visitors (journey_visitors ids) to people: identified
// visitors map to a negative id per user id; anonymous visitors are their
// own person (their positive id), which needs no entry.
type personMap struct {
	byVisitor map[int64]int64
	// dense is byVisitor as a slice indexed by visitor (0: anonymous),
	// when the identified visitors' ids are not too far apart: a funnel by
	// person looks up every session's visitor (on the 1M-session index the
	// map lookups were 12 % of its CPU).
	dense []int64
	users []string // user id of person -(i+1)
}

// maxDensePeople bounds personMap.dense (8 bytes per visitor id).
const maxDensePeople = 1 << 24

func (p *personMap) person(visitor int64) int64 {
	if p.dense != nil {
		if visitor >= 0 && visitor < int64(len(p.dense)) && p.dense[visitor] != 0 {
			return p.dense[visitor]
		}
		return visitor
	}
	if id, ok := p.byVisitor[visitor]; ok {
		return id
	}
	return visitor
}

// densify fills dense from byVisitor when the ids allow.
func (p *personMap) densify() {
	top := int64(-1)
	for v := range p.byVisitor {
		if v < 0 {
			return
		}
		top = max(top, v)
	}
	if top < 0 || top >= maxDensePeople {
		return
	}
	p.dense = make([]int64, top+1)
	for v, id := range p.byVisitor {
		p.dense[v] = id
	}
}

// userID returns the identified user id of a person, or "".
func (p *personMap) userID(person int64) string {
	if person < 0 && int(-person-1) < len(p.users) {
		return p.users[-person-1]
	}
	return ""
}

// people reads the current identify state of a project's visitors: the
// index's identified visitors, mapped to journey's visitor numbers.
func (s *Service) people(ctx context.Context, projectID int64) (*personMap, error) {
	users := map[string]string{} // visitor id -> user id
	err := s.core.IdentifiedVisitors(ctx, projectID, func(vid, uid string) error {
		users[vid] = uid
		return nil
	})
	if err != nil {
		return nil, err
	}
	pm := &personMap{byVisitor: map[int64]int64{}}
	byUser := map[string]int64{}
	vids := make([]string, 0, len(users))
	for vid := range users {
		vids = append(vids, vid)
	}
	sort.Strings(vids)
	for len(vids) > 0 {
		n := min(len(vids), 10000)
		in, list := s.db.InTexts("visitor_id", vids[:n])
		vids = vids[n:]
		rows, err := s.db.Read().QueryContext(ctx, `SELECT id, visitor_id FROM journey_visitors
			WHERE project_id = ? AND `+in, projectID, list)
		if err != nil {
			return nil, fmt.Errorf("read identified visitors: %w", err)
		}
		for rows.Next() {
			var id int64
			var vid string
			if err := rows.Scan(&id, &vid); err != nil {
				rows.Close()
				return nil, fmt.Errorf("scan identified visitor: %w", err)
			}
			uid := users[vid]
			p, ok := byUser[uid]
			if !ok {
				pm.users = append(pm.users, uid)
				p = -int64(len(pm.users))
				byUser[uid] = p
			}
			pm.byVisitor[id] = p
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("read identified visitors: %w", err)
		}
	}
	pm.densify()
	return pm, nil
}

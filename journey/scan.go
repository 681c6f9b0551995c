package journey

import (
	"context"
	"database/sql"
	"fmt"
	"runtime"
	"sort"
	"strings"
	"sync"
)

// dict is a project's key dictionary as far as it has been read. Keys are
// only ever added, with increasing ids (one writer, max(rowid)+1), so the
// cache grows by reading ids above the last one seen.
type dict struct {
	mu    sync.Mutex
	maxID int64
	ids   []int64
	kinds []uint8
	names []string
}

// dictView is an immutable prefix of a dict.
type dictView struct {
	ids   []int64
	kinds []uint8
	names []string
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
	for rows.Next() {
		var id int64
		var kind uint8
		var name string
		if err := rows.Scan(&id, &kind, &name); err != nil {
			return dictView{}, fmt.Errorf("scan journey key: %w", err)
		}
		d.ids, d.kinds, d.names = append(d.ids, id), append(d.kinds, kind), append(d.names, name)
		d.maxID = id
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
	segment  Compiled
	cols     []string // extra text columns, SQL over sessions alias s
	skipTL   bool     // do not read timelines
}

// scanRow is one session as a scan hands it over. entries and cols are
// reused for the next row of the same worker: copy what you keep.
type scanRow struct {
	session, visitor, start int64
	convAt, searchAt        int64 // unix ms, 0 when none
	entries                 []entry
	cols                    []string
}

// scanWorkers is how many goroutines a scan uses.
func scanWorkers() int { return max(1, min(runtime.GOMAXPROCS(0), 4)) }

// scan calls fn for every session of q, from scanWorkers() goroutines; w is
// the caller's worker number, so accumulators need no locks. The range is
// cut into time slices that workers take in turn.
func (s *Service) scan(ctx context.Context, q scanQuery, fn func(w int, r *scanRow) error) error {
	var lo, hi sql.NullInt64
	if err := s.db.Read().QueryRowContext(ctx, `SELECT MIN(started_at) FROM journey_sessions WHERE project_id = ? AND started_at >= ? AND started_at < ?`,
		q.project, q.from, q.to).Scan(&lo); err != nil {
		return fmt.Errorf("scan range: %w", err)
	}
	if !lo.Valid {
		return nil
	}
	if err := s.db.Read().QueryRowContext(ctx, `SELECT MAX(started_at) FROM journey_sessions WHERE project_id = ? AND started_at >= ? AND started_at < ?`,
		q.project, q.from, q.to).Scan(&hi); err != nil {
		return fmt.Errorf("scan range: %w", err)
	}
	workers := scanWorkers()
	slices := 1
	if workers > 1 && hi.Int64-lo.Int64 > 1000 {
		slices = workers * 4
	}
	type span struct{ from, to int64 }
	spans := make(chan span, slices)
	width := (hi.Int64 - lo.Int64 + 1 + int64(slices) - 1) / int64(slices)
	for i := 0; i < slices; i++ {
		a := lo.Int64 + int64(i)*width
		b := min(a+width, hi.Int64+1)
		if a < b {
			spans <- span{a, b}
		}
	}
	close(spans)

	tl := "j.timeline"
	if q.skipTL {
		tl = "NULL"
	}
	query := `SELECT j.session_id, j.visitor, j.started_at, ` + tl + `, COALESCE(j.converted_at, 0), COALESCE(j.searched_at, 0)`
	for _, c := range q.cols {
		query += ", " + c
	}
	query += ` FROM journey_sessions j`
	if len(q.cols) > 0 || !q.segment.Empty() {
		query += ` JOIN sessions s ON s.id = j.session_id`
	}
	query += ` WHERE j.project_id = ? AND j.started_at >= ? AND j.started_at < ?`
	if !q.segment.Empty() {
		query += ` AND (` + q.segment.SQL + `)`
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	var errMu sync.Mutex
	var firstErr error
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for sp := range spans {
				if err := s.scanSpan(ctx, query, q, sp.from, sp.to, w, fn); err != nil {
					errMu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					errMu.Unlock()
					cancel()
					return
				}
			}
		}()
	}
	wg.Wait()
	return firstErr
}

func (s *Service) scanSpan(ctx context.Context, query string, q scanQuery, from, to int64, w int, fn func(int, *scanRow) error) error {
	args := append([]any{q.project, from, to}, q.segment.Args...)
	rows, err := s.db.Read().QueryContext(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("scan timelines: %w", err)
	}
	defer rows.Close()
	r := &scanRow{cols: make([]string, len(q.cols))}
	var blob sql.RawBytes
	dst := make([]any, 0, 6+len(q.cols))
	dst = append(dst, &r.session, &r.visitor, &r.start, &blob, &r.convAt, &r.searchAt)
	colVals := make([]sql.NullString, len(q.cols))
	for i := range colVals {
		dst = append(dst, &colVals[i])
	}
	for rows.Next() {
		if err := rows.Scan(dst...); err != nil {
			return fmt.Errorf("scan timeline row: %w", err)
		}
		r.entries = r.entries[:0]
		if !q.skipTL {
			if r.entries, err = decodeTimeline(blob, r.start, r.entries); err != nil {
				return fmt.Errorf("session %d: %w", r.session, err)
			}
		}
		for i, c := range colVals {
			r.cols[i] = c.String
		}
		if err := fn(w, r); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("scan timelines: %w", err)
	}
	return nil
}

// personMap resolves visitors (journey_visitors ids) to people: identified
// visitors map to a negative id per user id; anonymous visitors are their
// own person (their positive id), which needs no entry.
type personMap struct {
	byVisitor map[int64]int64
	users     []string // user id of person -(i+1)
}

func (p *personMap) person(visitor int64) int64 {
	if id, ok := p.byVisitor[visitor]; ok {
		return id
	}
	return visitor
}

// userID returns the identified user id of a person, or "".
func (p *personMap) userID(person int64) string {
	if person < 0 && int(-person-1) < len(p.users) {
		return p.users[-person-1]
	}
	return ""
}

// people reads the current identify state of a project's visitors.
func (s *Service) people(ctx context.Context, projectID int64) (*personMap, error) {
	rows, err := s.db.Read().QueryContext(ctx, `
		SELECT jv.id, v.user_id FROM visitors v
		JOIN journey_visitors jv ON jv.project_id = v.project_id AND jv.visitor_id = v.id
		WHERE v.project_id = ? AND v.user_id IS NOT NULL`, projectID)
	if err != nil {
		return nil, fmt.Errorf("read identified visitors: %w", err)
	}
	defer rows.Close()
	pm := &personMap{byVisitor: map[int64]int64{}}
	byUser := map[string]int64{}
	for rows.Next() {
		var vid int64
		var uid string
		if err := rows.Scan(&vid, &uid); err != nil {
			return nil, fmt.Errorf("scan identified visitor: %w", err)
		}
		id, ok := byUser[uid]
		if !ok {
			pm.users = append(pm.users, uid)
			id = -int64(len(pm.users))
			byUser[uid] = id
		}
		pm.byVisitor[vid] = id
	}
	return pm, rows.Err()
}

// sqlList is "(?, ?, ...)" for n arguments.
func sqlList(n int) string {
	return "(" + strings.TrimSuffix(strings.Repeat("?, ", n), ", ") + ")"
}

package index

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/trailmap/trailmap/storage/sqldb"
)

// newPageURLs is a PostgreSQL ingest transaction's page views' URLs, added to
// page_urls just before it commits: all of them in one statement, in
// (project, URL) order, so that two nodes recording the first views of the
// same new pages take those rows in one order (SQLite's triggers keep the
// table, on its one writer). Written last, and nothing of the transaction
// is locked after them.
type newPageURLs struct {
	rows map[pageURLKey]string // the path of each
}

type pageURLKey struct {
	session int64
	url     string
}

type newPageURLsKey struct{}

func newPageURLsOf(tx *sqldb.Tx) *newPageURLs {
	return tx.Buffer(newPageURLsKey{}, func() sqldb.Buffer { return &newPageURLs{rows: map[pageURLKey]string{}} }).(*newPageURLs)
}

// FlushRank implements sqldb.Ranked: after every other buffer.
func (b *newPageURLs) FlushRank() int { return sqldb.RankLast }

// Flush implements sqldb.Buffer. A URL is added with its first page view
// and its seen_at renewed at most once a day (see PrunePageURLs).
func (b *newPageURLs) Flush(ctx context.Context, tx *sqldb.Tx) error {
	if len(b.rows) == 0 {
		return nil
	}
	keys := slices.SortedFunc(maps.Keys(b.rows), func(x, y pageURLKey) int {
		return cmp.Or(strings.Compare(x.url, y.url), cmp.Compare(x.session, y.session))
	})
	sessions, urls, paths := make([]int64, len(keys)), make([]string, len(keys)), make([]string, len(keys))
	for i, k := range keys {
		sessions[i], urls[i], paths[i] = k.session, k.url, b.rows[k]
	}
	clear(b.rows)
	_, err := tx.SQL().ExecContext(ctx, `
		INSERT INTO page_urls AS p (project_id, url, path, seen_at)
		SELECT s.project_id, u.url, MIN(u.path), (extract(epoch FROM clock_timestamp()) * 1000)::bigint
		FROM unnest(?::bigint[], ?::text[], ?::text[]) AS u(session_id, url, path) JOIN sessions s ON s.id = u.session_id
		GROUP BY s.project_id, u.url
		ORDER BY s.project_id, u.url COLLATE "C"
		ON CONFLICT (project_id, url) DO UPDATE SET seen_at = excluded.seen_at
		WHERE p.seen_at < excluded.seen_at - 86400000`, sessions, urls, paths)
	if err != nil {
		return fmt.Errorf("add page URLs: %w", err)
	}
	return nil
}

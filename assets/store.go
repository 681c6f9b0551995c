package assets

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/trailmap/trailmap/storage/sqldb"
)

//go:embed migrations
var migrations embed.FS

// Schema is the asset tables' migrations (0040–0049), for sqldb.Open.
var Schema = sqldb.NewSchema("assets", 40, 49, migrations)

// StatusStored is the status of a copy whose bytes are in the blob store;
// any other status says why there is none.
const StatusStored = "stored"

// Copy is what fetching an asset URL for a project on a day gave.
type Copy struct {
	ProjectID   int64     `json:"project_id"`
	URL         string    `json:"url"`
	Day         int64     `json:"day"` // unix days; 0 for a URL with a content hash, valid every day
	Status      string    `json:"status"`
	SHA256      string    `json:"sha256,omitempty"`
	ContentType string    `json:"content_type,omitempty"`
	Size        int64     `json:"size"`
	ETag        string    `json:"etag,omitempty"`
	ExpiresAt   time.Time `json:"expires_at,omitzero"`
	FetchedAt   time.Time `json:"fetched_at"`
}

// Store holds the asset tables' SQL.
type Store struct{ db *sqldb.DB }

// NewStore is the asset tables on db, whose schemas include Schema.
func NewStore(db *sqldb.DB) *Store { return &Store{db: db} }

const copyCols = `project_id, url, day, status, sha256, content_type, size, etag, expires_at, fetched_at`

func scanCopy(row interface{ Scan(...any) error }) (Copy, error) {
	var c Copy
	var expires, fetched int64
	err := row.Scan(&c.ProjectID, &c.URL, &c.Day, &c.Status, &c.SHA256, &c.ContentType, &c.Size, &c.ETag, &expires, &fetched)
	if expires > 0 {
		c.ExpiresAt = time.UnixMilli(expires).UTC()
	}
	c.FetchedAt = time.UnixMilli(fetched).UTC()
	return c, err
}

// Lookup returns the copy of url for project on day, or the day-0 copy of
// a URL with a content hash; ok is false when there is neither.
func (s *Store) Lookup(ctx context.Context, projectID int64, url string, day int64) (Copy, bool, error) {
	c, err := scanCopy(s.db.Read().QueryRowContext(ctx, `
		SELECT `+copyCols+` FROM asset_copies
		WHERE project_id = ? AND url = ? AND (day = ? OR day = 0)
		ORDER BY day LIMIT 1`, projectID, url, day))
	if errors.Is(err, sql.ErrNoRows) {
		return Copy{}, false, nil
	}
	if err != nil {
		return Copy{}, false, fmt.Errorf("look up asset %s: %w", url, err)
	}
	return c, true, nil
}

// Latest returns the most recent stored copy of url for project from
// before day, for revalidation (ok false when there is none).
func (s *Store) Latest(ctx context.Context, projectID int64, url string, day int64) (Copy, bool, error) {
	c, err := scanCopy(s.db.Read().QueryRowContext(ctx, `
		SELECT `+copyCols+` FROM asset_copies
		WHERE project_id = ? AND url = ? AND day < ? AND status = ?
		ORDER BY day DESC LIMIT 1`, projectID, url, day, StatusStored))
	if errors.Is(err, sql.ErrNoRows) {
		return Copy{}, false, nil
	}
	if err != nil {
		return Copy{}, false, fmt.Errorf("look up earlier copy of %s: %w", url, err)
	}
	return c, true, nil
}

// Record stores c, replacing what the same (project, url, day) held.
func (s *Store) Record(ctx context.Context, c Copy) error {
	var expires int64
	if !c.ExpiresAt.IsZero() {
		expires = c.ExpiresAt.UnixMilli()
	}
	_, err := s.db.Write().ExecContext(ctx, `
		INSERT INTO asset_copies (`+copyCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (project_id, url, day) DO UPDATE SET status = excluded.status, sha256 = excluded.sha256,
			content_type = excluded.content_type, size = excluded.size, etag = excluded.etag,
			expires_at = excluded.expires_at, fetched_at = excluded.fetched_at`,
		c.ProjectID, c.URL, c.Day, c.Status, c.SHA256, c.ContentType, c.Size, c.ETag, expires, c.FetchedAt.UnixMilli())
	if err != nil {
		return fmt.Errorf("record asset %s: %w", c.URL, err)
	}
	return nil
}

// Stored returns, of urls, those with a stored copy for project on day (or
// on day 0), by URL.
func (s *Store) Stored(ctx context.Context, projectID int64, urls []string, day int64) (map[string]Copy, error) {
	out := map[string]Copy{}
	for len(urls) > 0 {
		n := min(len(urls), 200)
		args := []any{projectID, day, StatusStored}
		for _, u := range urls[:n] {
			args = append(args, u)
		}
		rows, err := s.db.Read().QueryContext(ctx, `
			SELECT `+copyCols+` FROM asset_copies
			WHERE project_id = ? AND (day = ? OR day = 0) AND status = ? AND url IN `+sqldb.List(n), args...)
		if err != nil {
			return nil, fmt.Errorf("look up stored assets: %w", err)
		}
		for rows.Next() {
			c, err := scanCopy(rows)
			if err != nil {
				rows.Close()
				return nil, fmt.Errorf("read stored asset: %w", err)
			}
			if prev, ok := out[c.URL]; !ok || prev.Day == 0 {
				out[c.URL] = c // the day's own copy over the day-0 one
			}
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			return nil, fmt.Errorf("look up stored assets: %w", err)
		}
		urls = urls[n:]
	}
	return out, nil
}

// ByHash returns a stored copy with this content hash for project (its
// content type), ok false when the project has none.
func (s *Store) ByHash(ctx context.Context, projectID int64, sha string) (Copy, bool, error) {
	return s.ByHashOnDay(ctx, projectID, sha, -1)
}

// ByHashOnDay is ByHash among the copies a session of day (unix days)
// plays with: that day's and the day-0 ones (day < 0: any day).
func (s *Store) ByHashOnDay(ctx context.Context, projectID int64, sha string, day int64) (Copy, bool, error) {
	c, err := scanCopy(s.db.Read().QueryRowContext(ctx, `
		SELECT `+copyCols+` FROM asset_copies
		WHERE project_id = ? AND sha256 = ? AND status = ? AND (? < 0 OR day = ? OR day = 0) LIMIT 1`,
		projectID, sha, StatusStored, day, day))
	if errors.Is(err, sql.ErrNoRows) {
		return Copy{}, false, nil
	}
	if err != nil {
		return Copy{}, false, fmt.Errorf("look up asset %s: %w", sha, err)
	}
	return c, true, nil
}

// Usage is what a project fetched on a day.
type Usage struct {
	Fetches int64
	Bytes   int64
}

// Usage returns what project fetched on day.
func (s *Store) Usage(ctx context.Context, projectID, day int64) (Usage, error) {
	var u Usage
	err := s.db.Read().QueryRowContext(ctx, `SELECT fetches, bytes FROM asset_usage WHERE project_id = ? AND day = ?`,
		projectID, day).Scan(&u.Fetches, &u.Bytes)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return u, fmt.Errorf("read asset usage: %w", err)
	}
	return u, nil
}

// AddUsage adds fetches and bytes to what project fetched on day.
func (s *Store) AddUsage(ctx context.Context, projectID, day, fetches, bytes int64) error {
	_, err := s.db.Write().ExecContext(ctx, `
		INSERT INTO asset_usage (project_id, day, fetches, bytes) VALUES (?, ?, ?, ?)
		ON CONFLICT (project_id, day) DO UPDATE SET fetches = asset_usage.fetches + excluded.fetches, bytes = asset_usage.bytes + excluded.bytes`,
		projectID, day, fetches, bytes)
	if err != nil {
		return fmt.Errorf("count asset usage: %w", err)
	}
	return nil
}

// AddOrigin notes that project recorded a page on origin.
func (s *Store) AddOrigin(ctx context.Context, projectID int64, origin string, at time.Time) error {
	_, err := s.db.Write().ExecContext(ctx, `
		INSERT INTO asset_origins (project_id, origin, first_seen) VALUES (?, ?, ?)
		ON CONFLICT (project_id, origin) DO NOTHING`, projectID, strings.ToLower(origin), at.UnixMilli())
	if err != nil {
		return fmt.Errorf("record page origin: %w", err)
	}
	return nil
}

// Origins lists the origins of project's recorded pages.
func (s *Store) Origins(ctx context.Context, projectID int64) ([]string, error) {
	rows, err := s.db.Read().QueryContext(ctx, `SELECT origin FROM asset_origins WHERE project_id = ? ORDER BY origin`, projectID)
	if err != nil {
		return nil, fmt.Errorf("list page origins: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var o string
		if err := rows.Scan(&o); err != nil {
			return nil, fmt.Errorf("list page origins: %w", err)
		}
		out = append(out, o)
	}
	return out, rows.Err()
}

// projects lists the projects with asset rows.
func (s *Store) projects(ctx context.Context) ([]int64, error) {
	return s.ints(ctx, `SELECT DISTINCT project_id FROM asset_copies UNION SELECT DISTINCT project_id FROM asset_trash`)
}

// days lists the days (not 0) a project has copy rows for.
func (s *Store) days(ctx context.Context, projectID int64) ([]int64, error) {
	return s.ints(ctx, `SELECT DISTINCT day FROM asset_copies WHERE project_id = ? AND day <> 0`, projectID)
}

func (s *Store) ints(ctx context.Context, q string, args ...any) ([]int64, error) {
	rows, err := s.db.Read().QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("sweep assets: %w", err)
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var v int64
		if err := rows.Scan(&v); err != nil {
			return nil, fmt.Errorf("sweep assets: %w", err)
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// deleteRows deletes a project's rows of days, and its day-0 rows fetched
// after before (unix ms: no session started since the day before they
// were fetched); the hashes they held and no remaining row holds go to the
// trash at now.
func (s *Store) deleteRows(ctx context.Context, projectID int64, days []int64, before, now int64) (int, error) {
	n := 0
	err := s.db.InTx(ctx, func(tx *sql.Tx) error {
		var shas []string
		collect := func(q string, args ...any) error {
			rows, err := tx.QueryContext(ctx, q, args...)
			if err != nil {
				return err
			}
			defer rows.Close()
			for rows.Next() {
				var sha string
				if err := rows.Scan(&sha); err != nil {
					return err
				}
				shas = append(shas, sha)
			}
			return rows.Err()
		}
		del := func(where string, args ...any) error {
			if err := collect(`SELECT DISTINCT sha256 FROM asset_copies WHERE project_id = ? AND sha256 <> '' AND `+where, append([]any{projectID}, args...)...); err != nil {
				return err
			}
			res, err := tx.ExecContext(ctx, `DELETE FROM asset_copies WHERE project_id = ? AND `+where, append([]any{projectID}, args...)...)
			if err != nil {
				return err
			}
			k, _ := res.RowsAffected()
			n += int(k)
			return nil
		}
		for _, d := range days {
			if err := del(`day = ?`, d); err != nil {
				return err
			}
		}
		if err := del(`day = 0 AND fetched_at > ?`, before); err != nil {
			return err
		}
		for _, sha := range shas {
			if _, err := tx.ExecContext(ctx, `INSERT INTO asset_trash (project_id, sha256, added_at)
				SELECT CAST(? AS BIGINT), CAST(? AS TEXT), CAST(? AS BIGINT)
				WHERE NOT EXISTS (SELECT 1 FROM asset_copies WHERE project_id = ? AND sha256 = ?) ON CONFLICT DO NOTHING`,
				projectID, sha, now, projectID, sha); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("sweep assets: %w", err)
	}
	return n, nil
}

// trash lists a project's trashed hashes added before (unix ms) that no
// row holds again; those a row holds again leave the trash.
func (s *Store) trash(ctx context.Context, projectID, before int64) ([]string, error) {
	if _, err := s.db.Write().ExecContext(ctx, `DELETE FROM asset_trash WHERE project_id = ?
		AND EXISTS (SELECT 1 FROM asset_copies c WHERE c.project_id = asset_trash.project_id AND c.sha256 = asset_trash.sha256)`, projectID); err != nil {
		return nil, fmt.Errorf("sweep assets: %w", err)
	}
	rows, err := s.db.Read().QueryContext(ctx, `SELECT sha256 FROM asset_trash WHERE project_id = ? AND added_at < ?`, projectID, before)
	if err != nil {
		return nil, fmt.Errorf("sweep assets: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var sha string
		if err := rows.Scan(&sha); err != nil {
			return nil, fmt.Errorf("sweep assets: %w", err)
		}
		out = append(out, sha)
	}
	return out, rows.Err()
}

// emptied takes a hash out of the trash once its object is deleted.
func (s *Store) emptied(ctx context.Context, projectID int64, sha string) error {
	if _, err := s.db.Write().ExecContext(ctx, `DELETE FROM asset_trash WHERE project_id = ? AND sha256 = ?`, projectID, sha); err != nil {
		return fmt.Errorf("sweep assets: %w", err)
	}
	return nil
}

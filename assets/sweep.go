package assets

import (
	"context"
	"fmt"
	"log/slog"
	"time"
)

// Kept is what sweeping copies needs of the core index: which days a
// project still has sessions on.
type Kept interface {
	// SessionDays tells which of days (unix days) a project has a session
	// starting on.
	SessionDays(ctx context.Context, projectID int64, days []int64) (map[int64]bool, error)
	// LatestSessionStart is the start (unix ms) of a project's latest
	// session, 0 when it has none.
	LatestSessionStart(ctx context.Context, projectID int64) (int64, error)
}

// Deleter removes blobs (a missing key is not an error).
type Deleter interface {
	Delete(ctx context.Context, key string) error
}

// SweepResult counts what a sweep removed.
type SweepResult struct {
	Rows    int // asset_copies rows
	Objects int // copies' objects no row refers to any more
}

// Sweep removes the copies no kept session references any more, after
// retention, a forget or a project's sessions going: a day's copies once
// the project has no session starting that day, a content-hashed URL's
// (day 0, used by every day) once the project has no session started
// since the day before it was fetched; then every object of the project
// whose hash no remaining row holds. Rows go first, so a crash leaves at
// worst an object to delete at the next sweep, never a row without its
// object; an object waits in the trash for grace (and one more sweep)
// before it is deleted, and leaves it if a fetch stores the same bytes
// again meanwhile.
func Sweep(ctx context.Context, store *Store, kept Kept, blobs Deleter, now time.Time, grace time.Duration, logger *slog.Logger) (SweepResult, error) {
	const day = 24 * 60 * 60 * 1000
	var res SweepResult
	projects, err := store.projects(ctx)
	if err != nil {
		return res, err
	}
	for _, p := range projects {
		days, err := store.days(ctx, p)
		if err != nil {
			return res, err
		}
		have, err := kept.SessionDays(ctx, p, days)
		if err != nil {
			return res, fmt.Errorf("sweep assets: %w", err)
		}
		var gone []int64
		for _, d := range days {
			if !have[d] {
				gone = append(gone, d)
			}
		}
		latest, err := kept.LatestSessionStart(ctx, p)
		if err != nil {
			return res, fmt.Errorf("sweep assets: %w", err)
		}
		n, err := store.deleteRows(ctx, p, gone, latest+day, now.UnixMilli())
		if err != nil {
			return res, err
		}
		res.Rows += n
		// Objects trashed by an earlier sweep (an hour or more ago) and
		// still unreferenced: a fetch of the same bytes since keeps them.
		shas, err := store.trash(ctx, p, now.Add(-grace).UnixMilli())
		if err != nil {
			return res, err
		}
		for _, sha := range shas {
			if err := blobs.Delete(ctx, Key(p, sha)); err != nil {
				return res, fmt.Errorf("sweep assets: delete %s: %w", Key(p, sha), err)
			}
			if err := store.emptied(ctx, p, sha); err != nil {
				return res, err
			}
			res.Objects++
		}
	}
	if res.Rows > 0 || res.Objects > 0 {
		logger.Info("asset copies swept", "rows", res.Rows, "objects", res.Objects)
	}
	return res, nil
}

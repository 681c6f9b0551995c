package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os/user"
	"path/filepath"
	"time"

	"github.com/trailmap/trailmap/accounts"
	"github.com/trailmap/trailmap/assets"
	"github.com/trailmap/trailmap/audit"
	"github.com/trailmap/trailmap/cluster"
	"github.com/trailmap/trailmap/heatmap"
	"github.com/trailmap/trailmap/journey"
	"github.com/trailmap/trailmap/render"
	"github.com/trailmap/trailmap/storage/index"
	"github.com/trailmap/trailmap/storage/sqldb"
)

// schemas are every table owner's migrations.
var schemas = []sqldb.Schema{heatmap.Schema, accounts.Schema, journey.Schema, assets.Schema, audit.Schema, render.Schema, cluster.Schema}

// indexURLHelp is the help of every command's --index-url flag.
const indexURLHelp = "the index: empty for DATA/index.db, a SQLite file path, or postgres://user:password@host:port/db (PostgreSQL)"

// indexURLFlag registers --index-url on an admin command's flags, so that
// commands reach the same index as `trailmap serve --index-url`.
func indexURLFlag(fs *flag.FlagSet) *string {
	return fs.String("index-url", "", indexURLHelp)
}

// openIndex opens the index at url (empty: dataDir/index.db) with every
// owner's tables migrated.
func openIndex(ctx context.Context, dataDir, url string) (*index.DB, error) {
	if url == "" {
		url = filepath.Join(dataDir, "index.db")
	}
	db, err := index.Open(ctx, url, schemas...)
	if err != nil {
		return nil, fmt.Errorf("open index: %w", err)
	}
	return db, nil
}

// every runs fn a minute after the start and then every period, until
// ctx ends.
func every(ctx context.Context, period time.Duration, fn func(context.Context)) {
	t := time.NewTimer(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		fn(ctx)
		t.Reset(period)
	}
}

// sweepAudit deletes audit entries older than keep, a minute after start
// and then daily, until ctx ends.
func sweepAudit(ctx context.Context, log *audit.Log, keep time.Duration, logger *slog.Logger) {
	every(ctx, 24*time.Hour, func(ctx context.Context) {
		n, err := log.Sweep(ctx, time.Now().Add(-keep))
		if err != nil {
			logger.Error("sweep audit log", slog.Any("error", err))
		} else if n > 0 {
			logger.Info("audit log swept", "deleted", n)
		}
	})
}

// sweepAssets removes the asset copies no kept session references any
// more, hourly (a minute after the start), on one node of a cluster at a
// time; an unreferenced object is deleted an hour after it was noted.
func sweepAssets(ctx context.Context, db *index.DB, store *assets.Store, blobs assets.Deleter, logger *slog.Logger) {
	every(ctx, time.Hour, func(ctx context.Context) {
		_, err := db.SQL().Once(ctx, "assets", func(ctx context.Context) error {
			_, err := assets.Sweep(ctx, store, db, blobs, time.Now(), time.Hour, logger)
			return err
		})
		if err != nil && ctx.Err() == nil {
			logger.Error("sweep asset copies", slog.Any("error", err))
		}
	})
}

// auditCLI records what a command did, with the command line as its actor.
func auditCLI(ctx context.Context, db *index.DB, action, target string, projectID int64, detail any) error {
	e := audit.Entry{ActorKind: audit.ActorCLI, Actor: currentUser(), Action: action, Target: target, ProjectID: projectID}
	if detail != nil {
		b, err := json.Marshal(detail)
		if err != nil {
			return err
		}
		e.Detail = b
	}
	if err := audit.New(db.SQL(), time.Now).Record(ctx, e); err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	return nil
}

// currentUser names the OS user running a command, for the audit log.
func currentUser() string {
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return ""
}

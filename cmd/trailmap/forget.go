package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strconv"

	"github.com/trailmap/trailmap/accounts"
	"github.com/trailmap/trailmap/heatmap"
	"github.com/trailmap/trailmap/journey"
	"github.com/trailmap/trailmap/retention"
	"github.com/trailmap/trailmap/storage/fs"
	"github.com/trailmap/trailmap/storage/index"
	"github.com/trailmap/trailmap/storage/s3"
)

// newForgetter connects the owners of a person's rows to the forgetter.
func newForgetter(db *index.DB, blobs retention.Blobs, heat *heatmap.Service, jour *journey.Service, logger *slog.Logger) *retention.Forgetter {
	return retention.NewForgetter(db, blobs,
		[]retention.SessionRows{heat, jour, accounts.New(db.SQL())},
		[]retention.VisitorRows{jour}, logger)
}

// forget runs `trailmap forget --project P (--user ID | --visitor ID)`:
// it deletes every recording and row of the person and prints what it
// deleted as JSON (retention.ForgetReport). It exits with status 1 when
// something is left for a later run (sessions still recording, objects the
// blob store refused); running it again is harmless. The server may be
// running: its sessions and objects are shared through the index.
func forget(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fset := flag.NewFlagSet("forget", flag.ContinueOnError)
	fset.SetOutput(stderr)
	data := fset.String("data", "./data", "data directory (index and local blobs)")
	indexURL := indexURLFlag(fset)
	project := fset.String("project", "", "the project (name or id)")
	user := fset.String("user", "", "forget the person identified as this user id, on every device")
	visitor := fset.String("visitor", "", "forget this one visitor (device or browser)")
	var sc s3.Config
	fset.StringVar(&sc.Endpoint, "s3-endpoint", "", "S3-compatible endpoint host:port (empty: local blob store in --data)")
	fset.StringVar(&sc.Bucket, "s3-bucket", "trailmap", "S3 bucket")
	fset.StringVar(&sc.AccessKey, "s3-access-key", "", "S3 access key")
	fset.StringVar(&sc.SecretKey, "s3-secret-key", "", "S3 secret key")
	fset.StringVar(&sc.Region, "s3-region", "us-east-1", "S3 region")
	fset.BoolVar(&sc.UseSSL, "s3-use-ssl", false, "use TLS to reach S3")
	if err := envTwins(fset); err != nil {
		return usageError{err.Error()}
	}
	if err := fset.Parse(args); err != nil {
		return usageError{err.Error()}
	}
	if fset.NArg() > 0 || *project == "" || (*user == "") == (*visitor == "") {
		return usageError{"usage: trailmap forget --project P (--user ID | --visitor ID) [--data DIR] [--s3-* flags]"}
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

	db, err := openIndex(ctx, *data, *indexURL)
	if err != nil {
		return err
	}
	defer db.Close()
	p, err := db.ProjectByName(ctx, *project)
	if errors.Is(err, index.ErrNotFound) {
		if id, perr := strconv.ParseInt(*project, 10, 64); perr == nil {
			p, err = db.ProjectByID(ctx, id)
		}
	}
	if errors.Is(err, index.ErrNotFound) {
		return usageError{fmt.Sprintf("no project %q", *project)}
	}
	if err != nil {
		return err
	}
	var blobs retention.Blobs
	if sc.Endpoint != "" {
		c, err := s3.New(ctx, sc)
		if err != nil {
			return fmt.Errorf("connect to s3 at %s: %w", sc.Endpoint, err)
		}
		blobs = c
	} else {
		c, err := fs.New(filepath.Join(*data, "blobs"))
		if err != nil {
			return err
		}
		blobs = c
	}
	heat, err := heatmap.New(ctx, heatmap.DefaultConfig(), db.SQL(), db, logger)
	if err != nil {
		return err
	}
	defer heat.Close()
	jour, err := journey.New(ctx, db, logger)
	if err != nil {
		return err
	}
	defer jour.Close()

	rep, err := newForgetter(db, blobs, heat, jour, logger).Forget(ctx, retention.Person{ProjectID: p.ID, UserID: *user, VisitorID: *visitor})
	if err != nil {
		return err
	}
	if err := auditCLI(ctx, db, "person.forget", "", p.ID, map[string]any{"sessions": rep.Sessions, "complete": rep.Complete}); err != nil {
		return err
	}
	if err := json.NewEncoder(stdout).Encode(rep); err != nil {
		return err
	}
	if !rep.Complete {
		return fmt.Errorf("not complete: %d sessions still recording, %d objects left; run it again later", rep.Pending, rep.ObjectsLeft)
	}
	return nil
}

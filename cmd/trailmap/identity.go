package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/trailmap/trailmap/storage/index"
)

// projectIdentitySecret runs `trailmap project identity-secret NAME
// [--remove]`: it creates (or replaces: rotates) the secret the project's
// backend signs user ids with and prints it, once: it is not shown again.
// Identify claims signed with the previous secret stop verifying at once
// (within seconds on a running server).
func projectIdentitySecret(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("project identity-secret", flag.ContinueOnError)
	fs.SetOutput(stderr)
	data := fs.String("data", "./data", "data directory (index and local blobs)")
	indexURL := indexURLFlag(fs)
	remove := fs.Bool("remove", false, "remove the secret instead of making a new one")
	if err := envTwins(fs); err != nil {
		return usageError{err.Error()}
	}
	var pos []string
	for len(args) > 0 {
		if err := fs.Parse(args); err != nil {
			return usageError{err.Error()}
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(pos) != 1 {
		return usageError{"usage: trailmap project identity-secret NAME [--remove] [--data DIR]"}
	}
	db, err := openIndex(ctx, *data, *indexURL)
	if err != nil {
		return err
	}
	defer db.Close()
	p, err := db.ProjectByName(ctx, pos[0])
	if errors.Is(err, index.ErrNotFound) {
		return usageError{fmt.Sprintf("no project named %q", pos[0])}
	}
	if err != nil {
		return err
	}
	secret := ""
	if !*remove {
		secret = "is_" + index.NewSecret(32)
	}
	if err := db.SetIdentitySecret(ctx, p.ID, secret); err != nil {
		return err
	}
	action := "project.identity_secret"
	if *remove {
		action += ".remove"
	}
	if err := auditCLI(ctx, db, action, p.Name, p.ID, nil); err != nil {
		return err
	}
	out := map[string]any{"project": p.Name, "identity_secret": secret}
	if *remove {
		out = map[string]any{"project": p.Name, "removed": true}
	}
	return json.NewEncoder(stdout).Encode(out)
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/trailmap/trailmap/assets"
	"github.com/trailmap/trailmap/heatmap"
	"github.com/trailmap/trailmap/recorder"
	"github.com/trailmap/trailmap/retention"
	"github.com/trailmap/trailmap/storage/index"
)

// projectSettings runs `trailmap project settings NAME [JSON] [--replace]`:
// without JSON it prints the project's settings; with it, it merges the
// given top-level keys into them (a key set to null is removed), or with
// --replace replaces them, after checking them with every package that
// reads them, and prints the result. A running server picks the change up
// within seconds.
func projectSettings(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("project settings", flag.ContinueOnError)
	fs.SetOutput(stderr)
	data := fs.String("data", "./data", "data directory (index and local blobs)")
	indexURL := indexURLFlag(fs)
	replace := fs.Bool("replace", false, "replace the settings instead of merging keys into them")
	if err := envTwins(fs); err != nil {
		return usageError{err.Error()}
	}
	// Positional arguments before, between or after flags.
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
	if len(pos) < 1 || len(pos) > 2 {
		return usageError{"usage: trailmap project settings NAME [JSON] [--replace] [--data DIR]"}
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
	settings := p.Settings
	if len(pos) == 2 {
		if settings, err = mergeSettings(p.Settings, []byte(pos[1]), *replace); err != nil {
			return usageError{err.Error()}
		}
		if err := checkSettings(settings); err != nil {
			return usageError{err.Error()}
		}
		if err := db.SetProjectSettings(ctx, p.ID, settings); err != nil {
			return err
		}
		// The change itself, not the whole settings (they may hold lists of
		// parameter names an operator considers private).
		if err := auditCLI(ctx, db, "project.settings", p.Name, p.ID, map[string]any{"change": json.RawMessage(pos[1]), "replace": *replace}); err != nil {
			return err
		}
	}
	if len(bytes.TrimSpace(settings)) == 0 {
		settings = []byte("{}")
	}
	var out bytes.Buffer
	if err := json.Indent(&out, settings, "", "  "); err != nil {
		return fmt.Errorf("stored settings of %q are not JSON: %w", p.Name, err)
	}
	out.WriteByte('\n')
	_, err = stdout.Write(out.Bytes())
	return err
}

// mergeSettings merges the top-level keys of change into old (null removes
// a key), or returns change when replace is set.
func mergeSettings(old, change []byte, replace bool) (json.RawMessage, error) {
	var add map[string]json.RawMessage
	if err := json.Unmarshal(change, &add); err != nil || add == nil {
		return nil, fmt.Errorf("settings must be a JSON object, e.g. '{\"retention_days\": 90}'")
	}
	merged := map[string]json.RawMessage{}
	if !replace && len(bytes.TrimSpace(old)) > 0 {
		if err := json.Unmarshal(old, &merged); err != nil {
			return nil, fmt.Errorf("stored settings are not a JSON object (use --replace): %w", err)
		}
	}
	for k, v := range add {
		if string(bytes.TrimSpace(v)) == "null" {
			delete(merged, k)
			continue
		}
		merged[k] = v
	}
	return json.Marshal(merged) // sorted keys, compact
}

// checkSettings asks every reader of project settings whether it can use
// them.
func checkSettings(settings json.RawMessage) error {
	var errs []string
	if err := recorder.CheckProjectSettings(settings); err != nil {
		errs = append(errs, err.Error())
	}
	if _, err := heatmap.ParseSettings(settings); err != nil {
		errs = append(errs, err.Error())
	}
	if _, err := assets.ParseSettings(settings); err != nil {
		errs = append(errs, err.Error())
	}
	if _, err := retention.ProjectDays(settings); err != nil {
		errs = append(errs, err.Error())
	}
	if len(errs) > 0 {
		return errors.New("settings not saved: " + strings.Join(errs, "; "))
	}
	return nil
}

package main

import (
	"context"
	"encoding/json"
	"flag"
	"io"

	"github.com/trailmap/trailmap/recorder"
)

// quarantine runs `trailmap quarantine [--data DIR]`: it lists, as JSON,
// the batches this node's index refused while taking others (see the
// recorder's quarantine). The node tries them again at its next start.
func quarantine(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("quarantine", flag.ContinueOnError)
	fs.SetOutput(stderr)
	data := fs.String("data", "./data", "the node's data directory")
	indexURLFlag(fs) // accepted like every command's, not needed
	if err := envTwins(fs); err != nil {
		return usageError{err.Error()}
	}
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 {
		return usageError{"usage: trailmap quarantine [--data DIR]"}
	}
	list, err := recorder.Quarantined(*data)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(list)
}

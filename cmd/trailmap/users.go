package main

import (
	"context"
	"errors"
	"io"

	"github.com/trailmap/trailmap/storage/index"
)

// createUser creates a UI user (replay UI issue); until then it says so.
func createUser(ctx context.Context, db *index.DB, email string, stdin io.Reader) (any, error) {
	return nil, errors.New("UI users are not available in this build")
}

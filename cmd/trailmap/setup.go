package main

import (
	"context"
	"log/slog"
	"strings"

	"github.com/trailmap/trailmap/storage/index"
)

// setupTokenBytes is the setup token's randomness: 192 bits.
const setupTokenBytes = 24

// firstRunToken is a fresh one-time token for making the first admin in
// the UI (/setup), or "" when a user exists. It lives in memory only: a
// restart before setup voids it and makes another.
func firstRunToken(ctx context.Context, users interface {
	HasUsers(ctx context.Context) (bool, error)
}) (string, error) {
	exists, err := users.HasUsers(ctx)
	if err != nil || exists {
		return "", err
	}
	return index.NewSecret(setupTokenBytes), nil
}

// logSetup tells the operator of a fresh install where to make its admin.
func logSetup(logger *slog.Logger, baseURL, token string) {
	logger.Warn("no UI user yet: open the setup page and enter this one-time setup token to create the admin account (a restart makes a new one)",
		"url", strings.TrimSuffix(baseURL, "/")+"/setup", "setup_token", token)
}

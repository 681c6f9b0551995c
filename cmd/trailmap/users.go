package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/trailmap/trailmap/accounts"
	"github.com/trailmap/trailmap/storage/index"
	"github.com/trailmap/trailmap/ui"
)

// createUser creates a UI user with the password read from the first line of
// stdin. With no projects the user is an admin who sees every project;
// otherwise a member of the named (or numbered) projects.
func createUser(ctx context.Context, db *index.DB, email, projects string, stdin io.Reader) (any, error) {
	line, err := bufio.NewReader(io.LimitReader(stdin, 4096)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("read password from stdin: %w", err)
	}
	password := strings.TrimRight(line, "\r\n")
	if password == "" {
		return nil, usageError{"trailmap user create reads the password from stdin, e.g. printf '%s\\n' \"$PASSWORD\" | trailmap user create EMAIL"}
	}
	var ids []int64
	if strings.TrimSpace(projects) != "" {
		ids = []int64{}
		for _, p := range strings.Split(projects, ",") {
			p = strings.TrimSpace(p)
			if p == "" {
				continue
			}
			var pr *index.Project
			if id, err := strconv.ParseInt(p, 10, 64); err == nil {
				pr, err = db.ProjectByID(ctx, id)
				if err != nil {
					return nil, fmt.Errorf("project %s: %w", p, err)
				}
			} else if pr, err = db.ProjectByName(ctx, p); err != nil {
				return nil, fmt.Errorf("project %q: %w", p, err)
			}
			ids = append(ids, pr.ID)
		}
	}
	u, err := ui.New(accounts.New(db.SQL()), db, ui.Config{}, time.Now, nil).CreateUser(ctx, email, password, ids)
	if err != nil {
		return nil, err
	}
	out := map[string]any{"id": u.ID, "email": u.Email, "role": u.Role}
	if u.ProjectIDs != nil {
		out["project_ids"] = u.ProjectIDs
	}
	return out, nil
}

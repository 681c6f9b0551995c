package server

import (
	"context"
	"fmt"
	"net/http"
	"net/url"

	"github.com/labstack/echo/v4"

	"github.com/trailmap/trailmap/retention"
	"github.com/trailmap/trailmap/storage/index"
)

// Forgetter deletes everything of a person (retention.Forgetter). Bad
// person ids wrap retention.ErrBadPerson.
type Forgetter interface {
	Forget(ctx context.Context, p retention.Person) (*retention.ForgetReport, error)
}

// forgetPerson answers DELETE /api/v1/people/{id}?project=P: it deletes
// every recording and row of the person and answers what it deleted, 200
// when nothing of the person is left, 202 when sessions still recording or
// objects the blob store refused are left for a later call. Tokens and
// admins may forget anyone, members only people of their projects; for
// others the project does not exist (404: ids are guessable).
func (s *Server) forgetPerson(c echo.Context) error {
	ref := c.QueryParam("project")
	if ref == "" {
		return badRequest{"project is required (its id or name): forgetting names the project"}
	}
	projectID, err := s.projectID(c, ref)
	if err != nil {
		return err
	}
	if !principal(c).CanAccess(projectID) {
		return fmt.Errorf("project %s: %w", ref, index.ErrNotFound)
	}
	raw, err := url.PathUnescape(c.Param("id"))
	if err != nil {
		return badRequest{"person id is not validly escaped"}
	}
	p, err := retention.ParsePerson(projectID, raw)
	if err != nil {
		return err
	}
	rep, err := s.deps.Extra.Forget.Forget(c.Request().Context(), p)
	if err != nil {
		return err
	}
	// The person's id is not kept: the entry says a person was forgotten,
	// and what it took.
	s.audit(c, "person.forget", "", projectID, map[string]any{"sessions": rep.Sessions, "complete": rep.Complete})
	status := http.StatusOK
	if !rep.Complete {
		status = http.StatusAccepted
	}
	return c.JSON(status, rep)
}

package server

import (
	"context"
	"net/http"
	"net/url"

	"github.com/labstack/echo/v4"

	"github.com/trailmap/trailmap/journey"
)

// People answers the people list and a person's timeline (journey).
// Bad input wraps journey.ErrInvalid; an unknown person wraps
// index.ErrNotFound.
type People interface {
	People(ctx context.Context, q journey.PeopleQuery) (*journey.PeoplePage, error)
	Person(ctx context.Context, q journey.PersonQuery) (*journey.Person, error)
}

func (s *Server) listPeople(c echo.Context) error {
	id, err := s.projectFor(c, c.QueryParam("project"))
	if err != nil {
		return err
	}
	q := journey.PeopleQuery{ProjectID: id, Q: c.QueryParam("q"), Cursor: c.QueryParam("cursor")}
	if q.Segment, err = segmentParam(c.QueryParam("segment")); err != nil {
		return err
	}
	if c.QueryParam("from") != "" || c.QueryParam("to") != "" {
		if q.From, q.To, err = s.timeRange(c.QueryParam("from"), c.QueryParam("to")); err != nil {
			return err
		}
	}
	if q.Limit, err = intParam(c, "limit", 50, 1, 200); err != nil {
		return err
	}
	page, err := s.deps.Extra.People.People(c.Request().Context(), q)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, page)
}

func (s *Server) getPerson(c echo.Context) error {
	id, err := s.projectFor(c, c.QueryParam("project"))
	if err != nil {
		return err
	}
	pid, err := url.PathUnescape(c.Param("id"))
	if err != nil {
		return badRequest{"person id is not validly escaped"}
	}
	q := journey.PersonQuery{ProjectID: id, ID: pid, Cursor: c.QueryParam("cursor")}
	if q.Limit, err = intParam(c, "limit", 100, 1, 500); err != nil {
		return err
	}
	p, err := s.deps.Extra.People.Person(c.Request().Context(), q)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, p)
}

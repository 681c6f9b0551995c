// The journey API's shared pieces; its resources (people, funnels, paths,
// intent, stages, audiences) are in files of their own, each with the narrow
// interface it needs of the journey service.

package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/trailmap/trailmap/journey"
	"github.com/trailmap/trailmap/storage/index"
)

// visible hides objects of projects the caller cannot see (404, not 403:
// ids are guessable).
func visible(c echo.Context, projectID int64, what string, id int64) error {
	if !principal(c).CanAccess(projectID) {
		return fmt.Errorf("%s %d: %w", what, id, index.ErrNotFound)
	}
	return nil
}

func idParam(c echo.Context) (int64, error) {
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil || id <= 0 {
		return 0, badRequest{fmt.Sprintf("id %q: want a positive whole number", c.Param("id"))}
	}
	return id, nil
}

// timeRange reads from and to (RFC 3339 or dates); the default is the 30
// days up to now.
func (s *Server) timeRange(from, to string) (time.Time, time.Time, error) {
	f, err := parseTime("from", from)
	if err != nil {
		return f, f, err
	}
	t, err := parseTime("to", to)
	if err != nil {
		return f, t, err
	}
	if t.IsZero() {
		t = s.now()
	}
	if f.IsZero() {
		f = t.AddDate(0, 0, -30)
	}
	if !t.After(f) {
		return f, t, badRequest{"to must be after from"}
	}
	return f, t, nil
}

func segmentParam(raw string) (journey.Segment, error) {
	seg, err := journey.ParseSegment([]byte(raw))
	if err != nil {
		return seg, err
	}
	return seg, nil
}

func intParam(c echo.Context, name string, def, lo, hi int) (int, error) {
	v := c.QueryParam(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, badRequest{fmt.Sprintf("%s %q: want a whole number from %d to %d", name, v, lo, hi)}
	}
	return n, nil
}

// bindJSON decodes a JSON body strictly (unknown fields are errors).
func bindJSON(c echo.Context, dst any) error {
	body, err := io.ReadAll(http.MaxBytesReader(c.Response(), c.Request().Body, 1<<20))
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		if errors.Is(err, journey.ErrInvalid) {
			return badRequest{err.Error()}
		}
		return badRequest{"body: " + err.Error()}
	}
	return nil
}

// projectRef is a project id or name in a JSON body.
type projectRef string

func (p *projectRef) UnmarshalJSON(b []byte) error {
	var n int64
	if err := json.Unmarshal(b, &n); err == nil {
		*p = projectRef(strconv.FormatInt(n, 10))
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return errors.New("project must be an id or a name")
	}
	*p = projectRef(s)
	return nil
}

func (s *Server) segmentFields(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]any{"fields": journey.SegmentFields(), "split_dimensions": journey.Dimensions()})
}

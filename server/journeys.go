package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/trailmap/trailmap/journey"
	"github.com/trailmap/trailmap/storage/index"
)

// Journeys is what the server needs of the journey service. Like Heatmaps
// it is wide because each method is one endpoint (people, funnels, paths,
// intent, stages, audiences); splitting it would only split the wiring.
// Bad input errors wrap journey.ErrInvalid; missing saved objects and
// people wrap index.ErrNotFound.
type Journeys interface {
	People(ctx context.Context, q journey.PeopleQuery) (*journey.PeoplePage, error)
	Person(ctx context.Context, q journey.PersonQuery) (*journey.Person, error)

	RunFunnel(ctx context.Context, q journey.FunnelQuery) (*journey.FunnelResult, error)
	FunnelSessions(ctx context.Context, q journey.FunnelSessionsQuery) (*journey.SessionPage, error)
	CreateFunnel(ctx context.Context, projectID int64, name string, def journey.FunnelDef) (*journey.Funnel, error)
	UpdateFunnel(ctx context.Context, id int64, name string, def journey.FunnelDef) (*journey.Funnel, error)
	Funnel(ctx context.Context, id int64) (*journey.Funnel, error)
	Funnels(ctx context.Context, projectID int64) ([]journey.Funnel, error)
	DeleteFunnel(ctx context.Context, id int64) error

	Paths(ctx context.Context, q journey.PathQuery) (*journey.PathResult, error)
	SearchTerms(ctx context.Context, q journey.IntentQuery) (*journey.SearchTermsResult, error)
	ConversionStats(ctx context.Context, q journey.IntentQuery) (*journey.ConversionStats, error)
	Settings(ctx context.Context, projectID int64) (journey.Settings, bool, error)
	SetSettings(ctx context.Context, projectID int64, st journey.Settings) error

	CreateStage(ctx context.Context, st journey.Stage) (*journey.Stage, error)
	UpdateStage(ctx context.Context, st journey.Stage) (*journey.Stage, error)
	Stage(ctx context.Context, id int64) (*journey.Stage, error)
	Stages(ctx context.Context, projectID int64) ([]journey.Stage, error)
	DeleteStage(ctx context.Context, id int64) error
	StageFlowReport(ctx context.Context, q journey.StageFlowQuery) (*journey.StageFlow, error)

	CreateAudience(ctx context.Context, a journey.Audience) (*journey.Audience, error)
	UpdateAudience(ctx context.Context, a journey.Audience) (*journey.Audience, error)
	Audience(ctx context.Context, id int64) (*journey.Audience, error)
	Audiences(ctx context.Context, projectID int64) ([]journey.Audience, error)
	DeleteAudience(ctx context.Context, id int64) error
	Members(ctx context.Context, a *journey.Audience) (*journey.AudienceMembers, error)
}

// journeyRoutes registers the journey API (issue: customer journeys). See
// notes/journey-api.md.
func (s *Server) journeyRoutes(api *echo.Group) {
	if s.deps.Extra.Journeys == nil {
		return
	}
	api.GET("/people", s.listPeople)
	api.GET("/people/:id", s.getPerson)

	api.GET("/funnels", s.listFunnels)
	api.POST("/funnels", s.createFunnel)
	api.POST("/funnels/query", s.queryFunnel)
	api.POST("/funnels/query/sessions", s.queryFunnelSessions)
	api.GET("/funnels/:id", s.getFunnel)
	api.PUT("/funnels/:id", s.updateFunnel)
	api.DELETE("/funnels/:id", s.deleteFunnel)
	api.GET("/funnels/:id/results", s.funnelResults)
	api.GET("/funnels/:id/sessions", s.funnelSessions)

	api.GET("/paths", s.paths)
	api.GET("/journey/search-terms", s.searchTerms)
	api.GET("/journey/conversion-stats", s.conversionStats)
	api.GET("/journey/settings", s.journeySettings)
	api.PUT("/journey/settings", s.setJourneySettings)
	api.GET("/journey/segment-fields", s.segmentFields)

	api.GET("/stages", s.listStages)
	api.POST("/stages", s.createStage)
	api.GET("/stages/flow", s.stageFlow)
	api.GET("/stages/:id", s.getStage)
	api.PUT("/stages/:id", s.updateStage)
	api.DELETE("/stages/:id", s.deleteStage)

	api.GET("/audiences", s.listAudiences)
	api.POST("/audiences", s.createAudience)
	api.GET("/audiences/:id", s.getAudience)
	api.PUT("/audiences/:id", s.updateAudience)
	api.DELETE("/audiences/:id", s.deleteAudience)
	api.GET("/audiences/:id/members", s.audienceMembers)
	api.GET("/audiences/:id/members.csv", s.audienceMembersCSV)
}

// journeyError maps the journey package's errors onto the server's.
func journeyError(err error) error {
	if errors.Is(err, journey.ErrInvalid) {
		return badRequest{err.Error()}
	}
	return err
}

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
		return seg, journeyError(err)
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
	page, err := s.deps.Extra.Journeys.People(c.Request().Context(), q)
	if err != nil {
		return journeyError(err)
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
	p, err := s.deps.Extra.Journeys.Person(c.Request().Context(), q)
	if err != nil {
		return journeyError(err)
	}
	return c.JSON(http.StatusOK, p)
}

// funnelBody is a saved funnel as clients send it.
type funnelBody struct {
	Project projectRef `json:"project"`
	Name    string     `json:"name"`
	journey.FunnelDef
}

func (s *Server) listFunnels(c echo.Context) error {
	id, err := s.projectFor(c, c.QueryParam("project"))
	if err != nil {
		return err
	}
	fs, err := s.deps.Extra.Journeys.Funnels(c.Request().Context(), id)
	if err != nil {
		return journeyError(err)
	}
	return c.JSON(http.StatusOK, map[string]any{"funnels": fs})
}

func (s *Server) createFunnel(c echo.Context) error {
	var b funnelBody
	if err := bindJSON(c, &b); err != nil {
		return err
	}
	id, err := s.projectFor(c, string(b.Project))
	if err != nil {
		return err
	}
	f, err := s.deps.Extra.Journeys.CreateFunnel(c.Request().Context(), id, b.Name, b.FunnelDef)
	if err != nil {
		return journeyError(err)
	}
	return c.JSON(http.StatusCreated, f)
}

// funnel loads the :id funnel if the caller may see it.
func (s *Server) funnel(c echo.Context) (*journey.Funnel, error) {
	id, err := idParam(c)
	if err != nil {
		return nil, err
	}
	f, err := s.deps.Extra.Journeys.Funnel(c.Request().Context(), id)
	if err != nil {
		return nil, journeyError(err)
	}
	return f, visible(c, f.ProjectID, "funnel", id)
}

func (s *Server) getFunnel(c echo.Context) error {
	f, err := s.funnel(c)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, f)
}

func (s *Server) updateFunnel(c echo.Context) error {
	f, err := s.funnel(c)
	if err != nil {
		return err
	}
	var b funnelBody
	if err := bindJSON(c, &b); err != nil {
		return err
	}
	if b.Project != "" {
		return badRequest{"a funnel cannot move to another project"}
	}
	f, err = s.deps.Extra.Journeys.UpdateFunnel(c.Request().Context(), f.ID, b.Name, b.FunnelDef)
	if err != nil {
		return journeyError(err)
	}
	return c.JSON(http.StatusOK, f)
}

func (s *Server) deleteFunnel(c echo.Context) error {
	f, err := s.funnel(c)
	if err != nil {
		return err
	}
	if err := s.deps.Extra.Journeys.DeleteFunnel(c.Request().Context(), f.ID); err != nil {
		return journeyError(err)
	}
	return c.NoContent(http.StatusNoContent)
}

// funnelQueryParams reads from, to, split and segment of a saved funnel's
// results and sessions.
func (s *Server) funnelQueryParams(c echo.Context, f *journey.Funnel) (journey.FunnelQuery, error) {
	q := journey.FunnelQuery{ProjectID: f.ProjectID, Def: f.FunnelDef, Split: c.QueryParam("split")}
	var err error
	if q.From, q.To, err = s.timeRange(c.QueryParam("from"), c.QueryParam("to")); err != nil {
		return q, err
	}
	if q.Segment, err = segmentParam(c.QueryParam("segment")); err != nil {
		return q, err
	}
	return q, nil
}

func (s *Server) funnelResults(c echo.Context) error {
	f, err := s.funnel(c)
	if err != nil {
		return err
	}
	q, err := s.funnelQueryParams(c, f)
	if err != nil {
		return err
	}
	res, err := s.deps.Extra.Journeys.RunFunnel(c.Request().Context(), q)
	if err != nil {
		return journeyError(err)
	}
	return c.JSON(http.StatusOK, struct {
		Funnel *journey.Funnel `json:"funnel"`
		*journey.FunnelResult
	}{f, res})
}

func (s *Server) funnelSessions(c echo.Context) error {
	f, err := s.funnel(c)
	if err != nil {
		return err
	}
	fq, err := s.funnelQueryParams(c, f)
	if err != nil {
		return err
	}
	q := journey.FunnelSessionsQuery{FunnelQuery: fq, Status: c.QueryParam("status"), Cursor: c.QueryParam("cursor")}
	if q.Step, err = intParam(c, "step", 0, 1, 100); err != nil {
		return err
	}
	if q.Step == 0 {
		return badRequest{"step is required (1 for the first step)"}
	}
	if q.Limit, err = intParam(c, "limit", 50, 1, 500); err != nil {
		return err
	}
	if v, ok := c.QueryParams()["split_value"]; ok && len(v) > 0 {
		q.SplitValue = &v[0]
	}
	page, err := s.deps.Extra.Journeys.FunnelSessions(c.Request().Context(), q)
	if err != nil {
		return journeyError(err)
	}
	return c.JSON(http.StatusOK, page)
}

// adHocFunnel is the body of POST /funnels/query and /funnels/query/sessions.
type adHocFunnel struct {
	Project projectRef `json:"project"`
	journey.FunnelDef
	From    string          `json:"from"`
	To      string          `json:"to"`
	Split   string          `json:"split"`
	Segment json.RawMessage `json:"segment"`
	// For /funnels/query/sessions:
	Step       int     `json:"step"`
	Status     string  `json:"status"`
	SplitValue *string `json:"split_value"`
	Limit      int     `json:"limit"`
	Cursor     string  `json:"cursor"`
}

func (s *Server) adHocQuery(c echo.Context) (journey.FunnelQuery, *adHocFunnel, error) {
	var b adHocFunnel
	var q journey.FunnelQuery
	if err := bindJSON(c, &b); err != nil {
		return q, nil, err
	}
	id, err := s.projectFor(c, string(b.Project))
	if err != nil {
		return q, nil, err
	}
	q = journey.FunnelQuery{ProjectID: id, Def: b.FunnelDef, Split: b.Split}
	if q.From, q.To, err = s.timeRange(b.From, b.To); err != nil {
		return q, nil, err
	}
	if len(b.Segment) > 0 && string(b.Segment) != "null" {
		if q.Segment, err = segmentParam(string(b.Segment)); err != nil {
			return q, nil, err
		}
	}
	return q, &b, nil
}

func (s *Server) queryFunnel(c echo.Context) error {
	q, _, err := s.adHocQuery(c)
	if err != nil {
		return err
	}
	res, err := s.deps.Extra.Journeys.RunFunnel(c.Request().Context(), q)
	if err != nil {
		return journeyError(err)
	}
	return c.JSON(http.StatusOK, res)
}

func (s *Server) queryFunnelSessions(c echo.Context) error {
	fq, b, err := s.adHocQuery(c)
	if err != nil {
		return err
	}
	if b.Step == 0 {
		return badRequest{"step is required (1 for the first step)"}
	}
	if b.Limit < 0 || b.Limit > 500 {
		return badRequest{"limit must be from 1 to 500"}
	}
	q := journey.FunnelSessionsQuery{FunnelQuery: fq, Step: b.Step, Status: b.Status, SplitValue: b.SplitValue, Limit: b.Limit, Cursor: b.Cursor}
	page, err := s.deps.Extra.Journeys.FunnelSessions(c.Request().Context(), q)
	if err != nil {
		return journeyError(err)
	}
	return c.JSON(http.StatusOK, page)
}

func (s *Server) paths(c echo.Context) error {
	id, err := s.projectFor(c, c.QueryParam("project"))
	if err != nil {
		return err
	}
	q := journey.PathQuery{ProjectID: id, Page: c.QueryParam("page"), Direction: c.QueryParam("direction")}
	if q.Page == "" {
		return badRequest{"page is required (a path such as /pricing, * for any run of characters)"}
	}
	if q.Depth, err = intParam(c, "depth", 3, 1, 5); err != nil {
		return err
	}
	if q.Top, err = intParam(c, "top", 6, 1, 20); err != nil {
		return err
	}
	if q.From, q.To, err = s.timeRange(c.QueryParam("from"), c.QueryParam("to")); err != nil {
		return err
	}
	if q.Segment, err = segmentParam(c.QueryParam("segment")); err != nil {
		return err
	}
	res, err := s.deps.Extra.Journeys.Paths(c.Request().Context(), q)
	if err != nil {
		return journeyError(err)
	}
	return c.JSON(http.StatusOK, res)
}

func (s *Server) intentQuery(c echo.Context) (journey.IntentQuery, error) {
	var q journey.IntentQuery
	id, err := s.projectFor(c, c.QueryParam("project"))
	if err != nil {
		return q, err
	}
	q.ProjectID = id
	if q.From, q.To, err = s.timeRange(c.QueryParam("from"), c.QueryParam("to")); err != nil {
		return q, err
	}
	if q.Segment, err = segmentParam(c.QueryParam("segment")); err != nil {
		return q, err
	}
	if q.Limit, err = intParam(c, "limit", 50, 1, 500); err != nil {
		return q, err
	}
	q.ConversionEvent, q.ConversionPage = c.QueryParam("conversion_event"), c.QueryParam("conversion_page")
	return q, nil
}

func (s *Server) searchTerms(c echo.Context) error {
	q, err := s.intentQuery(c)
	if err != nil {
		return err
	}
	res, err := s.deps.Extra.Journeys.SearchTerms(c.Request().Context(), q)
	if err != nil {
		return journeyError(err)
	}
	return c.JSON(http.StatusOK, res)
}

func (s *Server) conversionStats(c echo.Context) error {
	q, err := s.intentQuery(c)
	if err != nil {
		return err
	}
	res, err := s.deps.Extra.Journeys.ConversionStats(c.Request().Context(), q)
	if err != nil {
		return journeyError(err)
	}
	return c.JSON(http.StatusOK, res)
}

func (s *Server) journeySettings(c echo.Context) error {
	id, err := s.projectFor(c, c.QueryParam("project"))
	if err != nil {
		return err
	}
	st, rebuilding, err := s.deps.Extra.Journeys.Settings(c.Request().Context(), id)
	if err != nil {
		return journeyError(err)
	}
	return c.JSON(http.StatusOK, struct {
		Project int64 `json:"project"`
		journey.Settings
		Rebuilding bool `json:"rebuilding"`
	}{id, st, rebuilding})
}

func (s *Server) setJourneySettings(c echo.Context) error {
	id, err := s.projectFor(c, c.QueryParam("project"))
	if err != nil {
		return err
	}
	var st journey.Settings
	if err := bindJSON(c, &st); err != nil {
		return err
	}
	if err := s.deps.Extra.Journeys.SetSettings(c.Request().Context(), id, st); err != nil {
		return journeyError(err)
	}
	return s.journeySettings(c)
}

func (s *Server) segmentFields(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]any{"fields": journey.SegmentFields(), "split_dimensions": journey.Dimensions()})
}

// stageBody is a stage as clients send it.
type stageBody struct {
	Project  projectRef     `json:"project"`
	Name     string         `json:"name"`
	Position int            `json:"position"`
	Rules    []journey.Step `json:"rules"`
}

func (s *Server) listStages(c echo.Context) error {
	id, err := s.projectFor(c, c.QueryParam("project"))
	if err != nil {
		return err
	}
	ss, err := s.deps.Extra.Journeys.Stages(c.Request().Context(), id)
	if err != nil {
		return journeyError(err)
	}
	return c.JSON(http.StatusOK, map[string]any{"stages": ss})
}

func (s *Server) createStage(c echo.Context) error {
	var b stageBody
	if err := bindJSON(c, &b); err != nil {
		return err
	}
	id, err := s.projectFor(c, string(b.Project))
	if err != nil {
		return err
	}
	st, err := s.deps.Extra.Journeys.CreateStage(c.Request().Context(), journey.Stage{ProjectID: id, Name: b.Name, Position: b.Position, Rules: b.Rules})
	if err != nil {
		return journeyError(err)
	}
	return c.JSON(http.StatusCreated, st)
}

func (s *Server) stage(c echo.Context) (*journey.Stage, error) {
	id, err := idParam(c)
	if err != nil {
		return nil, err
	}
	st, err := s.deps.Extra.Journeys.Stage(c.Request().Context(), id)
	if err != nil {
		return nil, journeyError(err)
	}
	return st, visible(c, st.ProjectID, "stage", id)
}

func (s *Server) getStage(c echo.Context) error {
	st, err := s.stage(c)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, st)
}

func (s *Server) updateStage(c echo.Context) error {
	st, err := s.stage(c)
	if err != nil {
		return err
	}
	var b stageBody
	if err := bindJSON(c, &b); err != nil {
		return err
	}
	if b.Project != "" {
		return badRequest{"a stage cannot move to another project"}
	}
	st, err = s.deps.Extra.Journeys.UpdateStage(c.Request().Context(), journey.Stage{ID: st.ID, ProjectID: st.ProjectID, Name: b.Name, Position: b.Position, Rules: b.Rules})
	if err != nil {
		return journeyError(err)
	}
	return c.JSON(http.StatusOK, st)
}

func (s *Server) deleteStage(c echo.Context) error {
	st, err := s.stage(c)
	if err != nil {
		return err
	}
	if err := s.deps.Extra.Journeys.DeleteStage(c.Request().Context(), st.ID); err != nil {
		return journeyError(err)
	}
	return c.NoContent(http.StatusNoContent)
}

func (s *Server) stageFlow(c echo.Context) error {
	id, err := s.projectFor(c, c.QueryParam("project"))
	if err != nil {
		return err
	}
	q := journey.StageFlowQuery{ProjectID: id}
	if q.From, q.To, err = s.timeRange(c.QueryParam("from"), c.QueryParam("to")); err != nil {
		return err
	}
	if q.Segment, err = segmentParam(c.QueryParam("segment")); err != nil {
		return err
	}
	res, err := s.deps.Extra.Journeys.StageFlowReport(c.Request().Context(), q)
	if err != nil {
		return journeyError(err)
	}
	return c.JSON(http.StatusOK, res)
}

// audienceBody is an audience as clients send it.
type audienceBody struct {
	Project    projectRef      `json:"project"`
	Name       string          `json:"name"`
	Segment    json.RawMessage `json:"segment"`
	WindowDays int             `json:"window_days"`
}

func (b audienceBody) audience() (journey.Audience, error) {
	a := journey.Audience{Name: b.Name, WindowDays: b.WindowDays}
	if len(b.Segment) > 0 && string(b.Segment) != "null" {
		seg, err := segmentParam(string(b.Segment))
		if err != nil {
			return a, err
		}
		a.Segment = seg
	}
	return a, nil
}

func (s *Server) listAudiences(c echo.Context) error {
	id, err := s.projectFor(c, c.QueryParam("project"))
	if err != nil {
		return err
	}
	as, err := s.deps.Extra.Journeys.Audiences(c.Request().Context(), id)
	if err != nil {
		return journeyError(err)
	}
	return c.JSON(http.StatusOK, map[string]any{"audiences": as})
}

func (s *Server) createAudience(c echo.Context) error {
	var b audienceBody
	if err := bindJSON(c, &b); err != nil {
		return err
	}
	id, err := s.projectFor(c, string(b.Project))
	if err != nil {
		return err
	}
	a, err := b.audience()
	if err != nil {
		return err
	}
	a.ProjectID = id
	out, err := s.deps.Extra.Journeys.CreateAudience(c.Request().Context(), a)
	if err != nil {
		return journeyError(err)
	}
	return c.JSON(http.StatusCreated, out)
}

func (s *Server) audience(c echo.Context) (*journey.Audience, error) {
	id, err := idParam(c)
	if err != nil {
		return nil, err
	}
	a, err := s.deps.Extra.Journeys.Audience(c.Request().Context(), id)
	if err != nil {
		return nil, journeyError(err)
	}
	return a, visible(c, a.ProjectID, "audience", id)
}

func (s *Server) getAudience(c echo.Context) error {
	a, err := s.audience(c)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, a)
}

func (s *Server) updateAudience(c echo.Context) error {
	a, err := s.audience(c)
	if err != nil {
		return err
	}
	var b audienceBody
	if err := bindJSON(c, &b); err != nil {
		return err
	}
	if b.Project != "" {
		return badRequest{"an audience cannot move to another project"}
	}
	na, err := b.audience()
	if err != nil {
		return err
	}
	na.ID, na.ProjectID = a.ID, a.ProjectID
	out, err := s.deps.Extra.Journeys.UpdateAudience(c.Request().Context(), na)
	if err != nil {
		return journeyError(err)
	}
	return c.JSON(http.StatusOK, out)
}

func (s *Server) deleteAudience(c echo.Context) error {
	a, err := s.audience(c)
	if err != nil {
		return err
	}
	if err := s.deps.Extra.Journeys.DeleteAudience(c.Request().Context(), a.ID); err != nil {
		return journeyError(err)
	}
	return c.NoContent(http.StatusNoContent)
}

func (s *Server) audienceMembers(c echo.Context) error {
	a, err := s.audience(c)
	if err != nil {
		return err
	}
	limit, err := intParam(c, "limit", 100, 1, 1000)
	if err != nil {
		return err
	}
	m, err := s.deps.Extra.Journeys.Members(c.Request().Context(), a)
	if err != nil {
		return journeyError(err)
	}
	total := len(m.Members)
	if len(m.Members) > limit {
		m.Members = m.Members[:limit]
	}
	return c.JSON(http.StatusOK, map[string]any{"audience": a, "people": m.People, "visitors": total, "members": m.Members})
}

func (s *Server) audienceMembersCSV(c echo.Context) error {
	a, err := s.audience(c)
	if err != nil {
		return err
	}
	m, err := s.deps.Extra.Journeys.Members(c.Request().Context(), a)
	if err != nil {
		return journeyError(err)
	}
	h := c.Response().Header()
	h.Set(echo.HeaderContentType, "text/csv; charset=utf-8")
	h.Set("Cache-Control", "private, no-store")
	h.Set(echo.HeaderContentDisposition, fmt.Sprintf(`attachment; filename="audience-%d.csv"`, a.ID))
	c.Response().WriteHeader(http.StatusOK)
	return journey.WriteMembersCSV(c.Response(), m.Members)
}

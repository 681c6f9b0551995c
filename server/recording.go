package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/trailmap/trailmap/assets"
	"github.com/trailmap/trailmap/recorder"
	"github.com/trailmap/trailmap/storage/index"
)

// recordingKey is the key of the recording rules in a project's settings.
const recordingKey = "recording"

// recordingProject resolves :id (a project id or name) for the recording
// rules routes, which are for admins and API tokens only: the rules decide
// what is recorded of every visitor, and members only read recordings.
func (s *Server) recordingProject(c echo.Context) (*index.Project, error) {
	if p := principal(c); p == nil || p.ProjectIDs != nil {
		return nil, fmt.Errorf("%w: recording rules are changed by admins", ErrForbidden)
	}
	id, err := s.projectID(c, c.Param("id"))
	if err != nil {
		return nil, err
	}
	return s.deps.Index.ProjectByID(c.Request().Context(), id)
}

// recordingRules is GET /api/v1/projects/:id/settings/recording: the
// project's recording rules as stored ({} when there are none), the same
// JSON that PUT takes.
func (s *Server) recordingRules(c echo.Context) error {
	p, err := s.recordingProject(c)
	if err != nil {
		return err
	}
	return c.JSONBlob(http.StatusOK, storedRules(p.Settings))
}

// storedRules is the "recording" value of settings, or {}.
func storedRules(settings json.RawMessage) json.RawMessage {
	var m map[string]json.RawMessage
	if json.Unmarshal(settings, &m) != nil {
		return json.RawMessage("{}")
	}
	if r := bytes.TrimSpace(m[recordingKey]); len(r) > 0 && string(r) != "null" {
		return r
	}
	return json.RawMessage("{}")
}

// setRecordingRules is PUT /api/v1/projects/:id/settings/recording: it
// replaces the project's recording rules (recorder.Rules; {} removes them)
// after the checks `trailmap project settings` makes, keeps the other
// settings as they are, and answers with the rules stored. Bad rules get a
// 400 invalid_rules naming the rule in "field".
func (s *Server) setRecordingRules(c echo.Context) error {
	p, err := s.recordingProject(c)
	if err != nil {
		return err
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Response(), c.Request().Body, 256<<10))
	if err != nil {
		return err
	}
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return badRequest{"body: the recording rules as a JSON object ({} for none)"}
	}
	if !json.Valid(body) {
		return &recorder.RuleError{Msg: "the rules must be a JSON object; the body is not JSON"}
	}
	rules, err := recorder.ParseRules(json.RawMessage(`{"recording":` + string(body) + `}`))
	if err != nil {
		return err
	}
	stored, err := json.Marshal(rules)
	if err != nil {
		return fmt.Errorf("encode recording rules: %w", err)
	}
	if string(stored) == "{}" {
		stored = nil // no rules
	}
	return s.replaceSettingsKey(c, p, recordingKey, stored)
}

// replaceSettingsKey stores value (nil: removes it) under key in a
// project's settings, keeping the other keys as they are (compare and
// swap), tells the recorder, audits the change as `trailmap project
// settings` does, and answers with the value stored ({} for none).
func (s *Server) replaceSettingsKey(c echo.Context, p *index.Project, key string, value json.RawMessage) error {
	ctx := c.Request().Context()
	_, err := s.deps.Index.UpdateProjectSettings(ctx, p.ID, func(old json.RawMessage) (json.RawMessage, error) {
		m := map[string]json.RawMessage{}
		if len(bytes.TrimSpace(old)) > 0 {
			if err := json.Unmarshal(old, &m); err != nil || m == nil {
				return nil, fmt.Errorf("stored settings of project %d are not a JSON object", p.ID)
			}
		}
		if value == nil {
			delete(m, key)
		} else {
			m[key] = value
		}
		return json.Marshal(m)
	})
	if err != nil {
		return err
	}
	if s.deps.Recorder != nil {
		s.deps.Recorder.ProjectChanged(p.ID)
	}
	change := value
	if change == nil {
		change = json.RawMessage("null")
	}
	// As `trailmap project settings` records it: the change, not the whole
	// settings.
	s.audit(c, "project.settings", p.Name, p.ID, map[string]any{"change": map[string]json.RawMessage{key: change}, "replace": false})
	if value == nil {
		value = json.RawMessage("{}")
	}
	return c.JSONBlob(http.StatusOK, value)
}

// assetSettings is GET /api/v1/projects/:id/settings/assets: the
// project's asset copy settings ({"enabled", "origins"}; {} for the
// defaults). Admins and API tokens only, as the recording rules.
func (s *Server) assetSettings(c echo.Context) error {
	p, err := s.recordingProject(c)
	if err != nil {
		return err
	}
	set, err := assets.ParseSettings(p.Settings)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, set.Assets)
}

// setAssetSettings is PUT /api/v1/projects/:id/settings/assets: replaces
// them after assets.ParseSettings' checks (400 invalid_settings).
func (s *Server) setAssetSettings(c echo.Context) error {
	p, err := s.recordingProject(c)
	if err != nil {
		return err
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Response(), c.Request().Body, 64<<10))
	if err != nil {
		return err
	}
	set, err := assets.ParseSettings(json.RawMessage(`{"assets":` + string(bytes.TrimSpace(body)) + `}`))
	if err != nil || len(bytes.TrimSpace(body)) == 0 {
		msg := "body: {\"enabled\": true|false, \"origins\": [\"https://cdn.example.com\"]}"
		if err != nil {
			msg = err.Error()
		}
		return echo.NewHTTPError(http.StatusBadRequest, msg)
	}
	if len(set.Assets.Origins) > 100 {
		return echo.NewHTTPError(http.StatusBadRequest, "at most 100 origins")
	}
	stored, err := json.Marshal(set.Assets)
	if err != nil {
		return fmt.Errorf("encode asset settings: %w", err)
	}
	if string(stored) == "{}" {
		stored = nil
	}
	return s.replaceSettingsKey(c, p, "assets", stored)
}

package assets

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"time"
)

// Settings are the asset settings of a project, under "assets" in its
// settings JSON:
//
//	{"assets": {"enabled": false}}                            // keep no copies
//	{"assets": {"origins": ["https://cdn.example.com"]}}      // also fetch from these
type Settings struct {
	Assets struct {
		// On is nil for the default (on).
		On      *bool    `json:"enabled,omitempty"`
		Origins []string `json:"origins,omitempty"`
	} `json:"assets"`
}

// Enabled reports whether copies are kept for the project.
func (s Settings) Enabled() bool { return s.Assets.On == nil || *s.Assets.On }

// ParseSettings reads the asset settings from a project's settings JSON.
func ParseSettings(raw json.RawMessage) (Settings, error) {
	var s Settings
	if len(strings.TrimSpace(string(raw))) == 0 {
		return s, nil
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		return Settings{}, fmt.Errorf("assets settings: %w", err)
	}
	for _, o := range s.Assets.Origins {
		if got, ok := Origin(o); !ok || got != strings.ToLower(strings.TrimRight(o, "/")) {
			return Settings{}, fmt.Errorf("assets settings: %q is not an origin (scheme://host[:port])", o)
		}
	}
	return s, nil
}

// settingsTTL is how long a project's settings are cached.
const settingsTTL = 5 * time.Second

func (s *Service) projectSettings(ctx context.Context, project int64) (Settings, error) {
	s.mu.Lock()
	e, ok := s.settings[project]
	s.mu.Unlock()
	if ok && s.now().Sub(e.loaded) < settingsTTL {
		return e.s, nil
	}
	p, err := s.projects.ProjectByID(ctx, project)
	if err != nil {
		return Settings{}, fmt.Errorf("assets: read project %d: %w", project, err)
	}
	set, err := ParseSettings(p.Settings)
	if err != nil {
		s.log.Warn("project asset settings unreadable, using defaults", "project", project, slog.Any("error", err))
	}
	s.mu.Lock()
	if len(s.settings) > 10000 {
		clear(s.settings)
	}
	s.settings[project] = settingsEntry{s: set, loaded: s.now()}
	s.mu.Unlock()
	return set, nil
}

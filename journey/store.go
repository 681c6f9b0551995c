package journey

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/trailmap/trailmap/storage/sqldb"
)

// Funnel is a saved funnel.
type Funnel struct {
	ID        int64  `json:"id"`
	ProjectID int64  `json:"project_id"`
	Name      string `json:"name"`
	FunnelDef
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Audience is a saved segment whose members (people) can be exported.
type Audience struct {
	ID        int64   `json:"id"`
	ProjectID int64   `json:"project_id"`
	Name      string  `json:"name"`
	Segment   Segment `json:"segment"`
	// WindowDays limits members to people with a matching session in the
	// last WindowDays days (0: any time).
	WindowDays int       `json:"window_days"`
	CreatedAt  time.Time `json:"created_at"`
	UpdatedAt  time.Time `json:"updated_at"`
}

// Stage is a user-defined journey stage: a visit's page views and events
// that match one of its rules put the person in the stage. Stages are
// ordered by Position; an event matching several stages belongs to the
// first.
type Stage struct {
	ID        int64     `json:"id"`
	ProjectID int64     `json:"project_id"`
	Name      string    `json:"name"`
	Position  int       `json:"position"`
	Rules     []Step    `json:"rules"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

func checkName(name string) (string, error) {
	name = strings.TrimSpace(name)
	if name == "" || len(name) > 200 {
		return "", invalidf("name must be 1 to 200 characters")
	}
	return name, nil
}

func notFound(what string, id int64) error {
	return fmt.Errorf("%s %d: %w", what, id, ErrNotFound)
}

func isUnique(err error) bool { return sqldb.IsUnique(err) }

// CreateFunnel saves a funnel.
func (s *Service) CreateFunnel(ctx context.Context, projectID int64, name string, def FunnelDef) (*Funnel, error) {
	name, err := checkName(name)
	if err != nil {
		return nil, err
	}
	if err := def.Normalize(); err != nil {
		return nil, err
	}
	raw, _ := json.Marshal(def)
	now := s.now().UnixMilli()
	var id int64
	err = s.db.Write().QueryRowContext(ctx,
		`INSERT INTO journey_funnels (project_id, name, definition, created_at, updated_at) VALUES (?, ?, ?, ?, ?) RETURNING id`,
		projectID, name, string(raw), now, now).Scan(&id)
	if err != nil {
		return nil, fmt.Errorf("create funnel: %w", err)
	}
	return s.Funnel(ctx, id)
}

// UpdateFunnel replaces a funnel's name and definition.
func (s *Service) UpdateFunnel(ctx context.Context, id int64, name string, def FunnelDef) (*Funnel, error) {
	name, err := checkName(name)
	if err != nil {
		return nil, err
	}
	if err := def.Normalize(); err != nil {
		return nil, err
	}
	raw, _ := json.Marshal(def)
	res, err := s.db.Write().ExecContext(ctx, `UPDATE journey_funnels SET name = ?, definition = ?, updated_at = ? WHERE id = ?`,
		name, string(raw), s.now().UnixMilli(), id)
	if err != nil {
		return nil, fmt.Errorf("update funnel: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return nil, notFound("funnel", id)
	}
	return s.Funnel(ctx, id)
}

// Funnel returns a saved funnel.
func (s *Service) Funnel(ctx context.Context, id int64) (*Funnel, error) {
	fs, err := s.funnels(ctx, `WHERE id = ?`, id)
	if err != nil {
		return nil, err
	}
	if len(fs) == 0 {
		return nil, notFound("funnel", id)
	}
	return &fs[0], nil
}

// Funnels lists a project's saved funnels by id.
func (s *Service) Funnels(ctx context.Context, projectID int64) ([]Funnel, error) {
	return s.funnels(ctx, `WHERE project_id = ? ORDER BY id`, projectID)
}

func (s *Service) funnels(ctx context.Context, where string, args ...any) ([]Funnel, error) {
	rows, err := s.db.Read().QueryContext(ctx,
		`SELECT id, project_id, name, definition, created_at, updated_at FROM journey_funnels `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("list funnels: %w", err)
	}
	defer rows.Close()
	out := []Funnel{}
	for rows.Next() {
		var f Funnel
		var def string
		var c, u int64
		if err := rows.Scan(&f.ID, &f.ProjectID, &f.Name, &def, &c, &u); err != nil {
			return nil, fmt.Errorf("scan funnel: %w", err)
		}
		if err := json.Unmarshal([]byte(def), &f.FunnelDef); err != nil {
			return nil, fmt.Errorf("funnel %d definition: %w", f.ID, err)
		}
		f.CreatedAt, f.UpdatedAt = time.UnixMilli(c).UTC(), time.UnixMilli(u).UTC()
		out = append(out, f)
	}
	return out, rows.Err()
}

// DeleteFunnel deletes a saved funnel.
func (s *Service) DeleteFunnel(ctx context.Context, id int64) error {
	return s.deleteRow(ctx, "journey_funnels", "funnel", id)
}

func (s *Service) deleteRow(ctx context.Context, table, what string, id int64) error {
	res, err := s.db.Write().ExecContext(ctx, `DELETE FROM `+table+` WHERE id = ?`, id)
	if err != nil {
		return fmt.Errorf("delete %s: %w", what, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return notFound(what, id)
	}
	return nil
}

func checkAudience(a *Audience) error {
	name, err := checkName(a.Name)
	if err != nil {
		return err
	}
	a.Name = name
	if a.WindowDays < 0 || a.WindowDays > 3650 {
		return invalidf("window_days must be from 0 (any time) to 3650")
	}
	if _, err := a.Segment.toMatch(nil); err != nil {
		return err
	}
	return nil
}

// CreateAudience saves an audience.
func (s *Service) CreateAudience(ctx context.Context, a Audience) (*Audience, error) {
	if err := checkAudience(&a); err != nil {
		return nil, err
	}
	seg, _ := json.Marshal(a.Segment)
	now := s.now().UnixMilli()
	var id int64
	err := s.db.Write().QueryRowContext(ctx,
		`INSERT INTO journey_audiences (project_id, name, segment, window_days, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?) RETURNING id`,
		a.ProjectID, a.Name, string(seg), a.WindowDays, now, now).Scan(&id)
	if err != nil {
		return nil, fmt.Errorf("create audience: %w", err)
	}
	return s.Audience(ctx, id)
}

// UpdateAudience replaces an audience's name, segment and window.
func (s *Service) UpdateAudience(ctx context.Context, a Audience) (*Audience, error) {
	if err := checkAudience(&a); err != nil {
		return nil, err
	}
	seg, _ := json.Marshal(a.Segment)
	res, err := s.db.Write().ExecContext(ctx,
		`UPDATE journey_audiences SET name = ?, segment = ?, window_days = ?, updated_at = ? WHERE id = ?`,
		a.Name, string(seg), a.WindowDays, s.now().UnixMilli(), a.ID)
	if err != nil {
		return nil, fmt.Errorf("update audience: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return nil, notFound("audience", a.ID)
	}
	return s.Audience(ctx, a.ID)
}

// Audience returns a saved audience.
func (s *Service) Audience(ctx context.Context, id int64) (*Audience, error) {
	as, err := s.audiences(ctx, `WHERE id = ?`, id)
	if err != nil {
		return nil, err
	}
	if len(as) == 0 {
		return nil, notFound("audience", id)
	}
	return &as[0], nil
}

// Audiences lists a project's audiences by id.
func (s *Service) Audiences(ctx context.Context, projectID int64) ([]Audience, error) {
	return s.audiences(ctx, `WHERE project_id = ? ORDER BY id`, projectID)
}

// DeleteAudience deletes an audience.
func (s *Service) DeleteAudience(ctx context.Context, id int64) error {
	return s.deleteRow(ctx, "journey_audiences", "audience", id)
}

func (s *Service) audiences(ctx context.Context, where string, args ...any) ([]Audience, error) {
	rows, err := s.db.Read().QueryContext(ctx,
		`SELECT id, project_id, name, segment, window_days, created_at, updated_at FROM journey_audiences `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("list audiences: %w", err)
	}
	defer rows.Close()
	out := []Audience{}
	for rows.Next() {
		var a Audience
		var seg string
		var c, u int64
		if err := rows.Scan(&a.ID, &a.ProjectID, &a.Name, &seg, &a.WindowDays, &c, &u); err != nil {
			return nil, fmt.Errorf("scan audience: %w", err)
		}
		if err := json.Unmarshal([]byte(seg), &a.Segment); err != nil {
			return nil, fmt.Errorf("audience %d segment: %w", a.ID, err)
		}
		a.CreatedAt, a.UpdatedAt = time.UnixMilli(c).UTC(), time.UnixMilli(u).UTC()
		out = append(out, a)
	}
	return out, rows.Err()
}

func checkStage(st *Stage) error {
	name, err := checkName(st.Name)
	if err != nil {
		return err
	}
	st.Name = name
	if len(st.Rules) == 0 || len(st.Rules) > 50 {
		return invalidf("stage %q: 1 to 50 rules (page patterns or events)", name)
	}
	for i := range st.Rules {
		st.Rules[i].Match = strings.TrimSpace(st.Rules[i].Match)
		if _, err := compileStep(st.Rules[i]); err != nil {
			return fmt.Errorf("stage %q rule %d: %w", name, i+1, err)
		}
	}
	return nil
}

// CreateStage adds a stage; Position 0 puts it after the others.
func (s *Service) CreateStage(ctx context.Context, st Stage) (*Stage, error) {
	if err := checkStage(&st); err != nil {
		return nil, err
	}
	rules, _ := json.Marshal(st.Rules)
	now := s.now().UnixMilli()
	var id int64
	err := s.db.InTx(ctx, func(tx *sql.Tx) error {
		if st.Position <= 0 {
			if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(position), 0) + 1 FROM journey_stages WHERE project_id = ?`,
				st.ProjectID).Scan(&st.Position); err != nil {
				return fmt.Errorf("next stage position: %w", err)
			}
		}
		err := tx.QueryRowContext(ctx,
			`INSERT INTO journey_stages (project_id, position, name, rules, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?) RETURNING id`,
			st.ProjectID, st.Position, st.Name, string(rules), now, now).Scan(&id)
		if err != nil {
			if isUnique(err) {
				return invalidf("a stage named %q exists", st.Name)
			}
			return fmt.Errorf("create stage: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return s.Stage(ctx, id)
}

// UpdateStage replaces a stage's name, position and rules.
func (s *Service) UpdateStage(ctx context.Context, st Stage) (*Stage, error) {
	if err := checkStage(&st); err != nil {
		return nil, err
	}
	rules, _ := json.Marshal(st.Rules)
	res, err := s.db.Write().ExecContext(ctx,
		`UPDATE journey_stages SET name = ?, position = CASE WHEN ? > 0 THEN ? ELSE position END, rules = ?, updated_at = ? WHERE id = ?`,
		st.Name, st.Position, st.Position, string(rules), s.now().UnixMilli(), st.ID)
	if err != nil {
		if isUnique(err) {
			return nil, invalidf("a stage named %q exists", st.Name)
		}
		return nil, fmt.Errorf("update stage: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return nil, notFound("stage", st.ID)
	}
	return s.Stage(ctx, st.ID)
}

// Stage returns one stage.
func (s *Service) Stage(ctx context.Context, id int64) (*Stage, error) {
	ss, err := s.stages(ctx, `WHERE id = ?`, id)
	if err != nil {
		return nil, err
	}
	if len(ss) == 0 {
		return nil, notFound("stage", id)
	}
	return &ss[0], nil
}

// Stages lists a project's stages in order.
func (s *Service) Stages(ctx context.Context, projectID int64) ([]Stage, error) {
	return s.stages(ctx, `WHERE project_id = ? ORDER BY position, id`, projectID)
}

// DeleteStage deletes a stage.
func (s *Service) DeleteStage(ctx context.Context, id int64) error {
	return s.deleteRow(ctx, "journey_stages", "stage", id)
}

func (s *Service) stages(ctx context.Context, where string, args ...any) ([]Stage, error) {
	rows, err := s.db.Read().QueryContext(ctx,
		`SELECT id, project_id, position, name, rules, created_at, updated_at FROM journey_stages `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("list stages: %w", err)
	}
	defer rows.Close()
	out := []Stage{}
	for rows.Next() {
		var st Stage
		var rules string
		var c, u int64
		if err := rows.Scan(&st.ID, &st.ProjectID, &st.Position, &st.Name, &rules, &c, &u); err != nil {
			return nil, fmt.Errorf("scan stage: %w", err)
		}
		if err := json.Unmarshal([]byte(rules), &st.Rules); err != nil {
			return nil, fmt.Errorf("stage %d rules: %w", st.ID, err)
		}
		st.CreatedAt, st.UpdatedAt = time.UnixMilli(c).UTC(), time.UnixMilli(u).UTC()
		out = append(out, st)
	}
	return out, rows.Err()
}

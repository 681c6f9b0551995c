package index_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/trailmap/trailmap/storage/index"
	"github.com/trailmap/trailmap/storage/index/indextest"
)

func TestDB_SessionIDs(t *testing.T) { indextest.Each(t, testSessionIDs) }

func testSessionIDs(t *testing.T, db *index.DB) {
	ctx := context.Background()
	p1, _ := db.CreateProject(ctx, "one", time.Now())
	p2, _ := db.CreateProject(ctx, "two", time.Now())
	row := map[string]int64{}
	for _, s := range []struct {
		key      string
		project  int64
		publicID string
	}{{"a1", p1.ID, "same"}, {"a2", p2.ID, "same"}, {"b1", p1.ID, "other"}} {
		var id int64
		err := db.SQL().Write().QueryRowContext(ctx, `INSERT INTO sessions (project_id, public_id, visitor_id, started_at, ended_at, last_received) VALUES (?, ?, 'v', 0, 0, 0) RETURNING id`,
			s.project, s.publicID).Scan(&id)
		if err != nil {
			t.Fatal(err)
		}
		row[s.key] = id
	}

	for _, tc := range []struct {
		name     string
		projects []int64
		public   string
		want     []int64
	}{
		{"any project", nil, "same", []int64{row["a1"], row["a2"]}},
		{"one project", []int64{p2.ID}, "same", []int64{row["a2"]}},
		{"no project", []int64{}, "same", []int64{}},
		{"unknown", nil, "nope", []int64{}},
	} {
		t.Run("SessionRowIDs "+tc.name, func(t *testing.T) {
			got, err := db.SessionRowIDs(ctx, tc.projects, tc.public)
			if err != nil || !slices.Equal(got, tc.want) {
				t.Fatalf("got %v %v, want %v", got, err, tc.want)
			}
		})
	}

	got, err := db.SessionPublicIDs(ctx, []int64{row["a2"], row["b1"], 9999})
	if err != nil || len(got) != 2 || got[row["a2"]] != "same" || got[row["b1"]] != "other" {
		t.Fatalf("SessionPublicIDs: %v %v", got, err)
	}
	if got, err := db.SessionPublicIDs(ctx, nil); err != nil || len(got) != 0 {
		t.Fatalf("SessionPublicIDs of none: %v %v", got, err)
	}
}

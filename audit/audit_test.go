package audit_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trailmap/trailmap/audit"
	"github.com/trailmap/trailmap/internal/pgtest"
	"github.com/trailmap/trailmap/storage/sqldb"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// eachBackend runs fn against a fresh audit log on SQLite and on PostgreSQL.
func eachBackend(t *testing.T, now *time.Time, fn func(t *testing.T, l *audit.Log)) {
	for _, b := range []struct{ name, url string }{
		{"sqlite", filepath.Join(t.TempDir(), "index.db")},
		{"postgres", pgtest.Shared(t).Database(t)},
	} {
		t.Run(b.name, func(t *testing.T) {
			db, err := sqldb.Open(context.Background(), b.url, audit.Schema)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			fn(t, audit.New(db, func() time.Time { return *now }))
		})
	}
}

func TestLog_RecordList(t *testing.T) {
	ctx := context.Background()
	start := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	now := start
	eachBackend(t, &now, func(t *testing.T, l *audit.Log) {
		now = start
		for i, e := range []audit.Entry{
			{ActorKind: audit.ActorAnonymous, Action: "login.failed", Target: "a@example.com", IP: "203.0.113.0"},
			{ActorKind: audit.ActorUser, Actor: "a@example.com", Action: "login", IP: "203.0.113.0"},
			{ActorKind: audit.ActorUser, Actor: "a@example.com", Action: "share.create", Target: "share 3", ProjectID: 1, Detail: json.RawMessage(`{"session":"s1"}`)},
			{ActorKind: audit.ActorUser, Actor: "b@example.com", Action: "share.revoke", Target: "share 3", ProjectID: 2},
			{ActorKind: audit.ActorCLI, Action: "token.create", Target: "ci"},
		} {
			now = now.Add(time.Minute)
			if err := l.Record(ctx, e); err != nil {
				t.Fatalf("record %d: %v", i, err)
			}
		}
		tests := []struct {
			name string
			f    audit.Filter
			want []string // actions, newest first
		}{
			{name: "all", want: []string{"token.create", "share.revoke", "share.create", "login", "login.failed"}},
			{name: "action", f: audit.Filter{Action: "login"}, want: []string{"login"}},
			{name: "action prefix", f: audit.Filter{Action: "share."}, want: []string{"share.revoke", "share.create"}},
			{name: "actor", f: audit.Filter{Actor: "a@example.com"}, want: []string{"share.create", "login"}},
			{name: "projects", f: audit.Filter{ProjectIDs: []int64{2}}, want: []string{"share.revoke"}},
			{name: "no projects", f: audit.Filter{ProjectIDs: []int64{}}, want: nil},
			{name: "since", f: audit.Filter{Since: time.Date(2026, 12, 1, 10, 4, 0, 0, time.UTC)}, want: []string{"token.create", "share.revoke"}},
			{name: "till", f: audit.Filter{Till: time.Date(2026, 12, 1, 10, 2, 0, 0, time.UTC)}, want: []string{"login.failed"}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				got, _, err := l.List(ctx, tt.f)
				if err != nil {
					t.Fatal(err)
				}
				var acts []string
				for _, e := range got {
					acts = append(acts, e.Action)
				}
				if strings.Join(acts, ",") != strings.Join(tt.want, ",") {
					t.Errorf("got %v, want %v", acts, tt.want)
				}
			})
		}
		got, _, _ := l.List(ctx, audit.Filter{Action: "share.create"})
		if len(got) != 1 || string(got[0].Detail) != `{"session":"s1"}` || got[0].ProjectID != 1 || got[0].At.Minute() != 3 {
			t.Errorf("entry read back: %+v", got)
		}

		// Paging: every entry once, in order.
		var seen []string
		cursor := ""
		for range 10 {
			page, next, err := l.List(ctx, audit.Filter{Limit: 2, Cursor: cursor})
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range page {
				seen = append(seen, e.Action)
			}
			if next == "" {
				break
			}
			cursor = next
		}
		if len(seen) != 5 || seen[0] != "token.create" || seen[4] != "login.failed" {
			t.Errorf("paged: %v", seen)
		}
		for _, bad := range []audit.Filter{{Cursor: "%%%"}, {Cursor: "bm9wZQ"}, {Limit: 501}, {Limit: -1}} {
			if _, _, err := l.List(ctx, bad); !errors.Is(err, audit.ErrBadFilter) {
				t.Errorf("filter %+v: %v, want ErrBadFilter", bad, err)
			}
		}
	})
}

func TestLog_Limits(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	eachBackend(t, &now, func(t *testing.T, l *audit.Log) {
		long := strings.Repeat("é", 1000)
		if err := l.Record(ctx, audit.Entry{Action: "x", Actor: long, Detail: json.RawMessage(`{"a":"` + strings.Repeat("b", 10000) + `"}`)}); err != nil {
			t.Fatal(err)
		}
		if err := l.Record(ctx, audit.Entry{Action: "y", Detail: json.RawMessage(`{nope`)}); err != nil {
			t.Fatal(err)
		}
		if err := l.Record(ctx, audit.Entry{}); err == nil {
			t.Error("an entry without an action was recorded")
		}
		got, _, _ := l.List(ctx, audit.Filter{})
		if len(got) != 2 || string(got[0].Detail) != `{"invalid":true}` || string(got[1].Detail) != `{"truncated":true}` ||
			len(got[1].Actor) > 256 || !strings.HasPrefix(long, got[1].Actor) || got[1].ActorKind != audit.ActorSystem {
			t.Errorf("limits: %+v", got)
		}
	})
}

func TestLog_Sweep(t *testing.T) {
	ctx := context.Background()
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now := start
	eachBackend(t, &now, func(t *testing.T, l *audit.Log) {
		now = start
		for i := range 2500 {
			now = now.Add(time.Second)
			if err := l.Record(ctx, audit.Entry{Action: fmt.Sprint("a", i)}); err != nil {
				t.Fatal(err)
			}
		}
		n, err := l.Sweep(ctx, time.Date(2026, 1, 1, 0, 0, 2001, 0, time.UTC))
		if err != nil || n != 2000 {
			t.Fatalf("swept %d, %v; want 2000", n, err)
		}
		got, _, _ := l.List(ctx, audit.Filter{Limit: 500})
		if len(got) != 500 || got[len(got)-1].Action != "a2000" && len(got) == 500 {
			// 500 newest of the 500 left: a2499 … a2000
			t.Errorf("left: %d, oldest %s", len(got), got[len(got)-1].Action)
		}
	})
}

package index_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/trailmap/trailmap/storage/index"
	"github.com/trailmap/trailmap/storage/index/indextest"
	"github.com/trailmap/trailmap/storage/sqldb"
)

// The tests in this file pin down the statements that have a PostgreSQL
// twin: each runs on both backends and expects the same answers. The
// sessions columns include error_clicks, hence eachWithErrorClicks.

// visit is one batch of a fixture session, recorded as the recorder's
// stage 1 does.
type visit struct {
	session, visitor string
	seq              int64
	first, last      int64
	device           string
	browser, os      string
	entry, referrer  string
	pages            [][2]string // path, url
	events           []string
	errors, rage     int
	user, traits     string
}

// people is a fixture of three sessions (rows a, b, c) of one project:
//
//	a: visitor va, desktop Chrome on Windows, from www.google.com, entry
//	   /landing with utm tags, then /product/42; "signup"; 2 errors, 1 rage
//	   click; 60 s long; its batches arrive out of order.
//	b: visitor vb (user u1), mobile Safari on iOS, /Blog/Post, "view_item",
//	   converted; 1.5 s long.
//	c: visitor vc (user u1 too), desktop Firefox on Linux, from an app,
//	   /product/[7]; 0 s long.
func people(t *testing.T, db *index.DB) (project int64, row map[string]int64) {
	t.Helper()
	ctx := context.Background()
	p, err := db.CreateProject(ctx, "people", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	in, err := db.Ingest(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	const landing = "https://x.test/landing?utm_source=News%20Letter&utm_medium=email"
	visits := []visit{
		{session: "sess-a", visitor: "va", seq: 1, first: 30000, last: 61000, device: "desktop", browser: "Chrome", os: "Windows",
			entry: "https://x.test/product/42", referrer: "https://www.Google.com/search?q=x", pages: [][2]string{{"/product/42", "https://x.test/product/42"}}},
		{session: "sess-a", visitor: "va", seq: 0, first: 1000, last: 20000, device: "desktop", browser: "Chrome", os: "Windows",
			entry: landing, referrer: "https://www.Google.com/search?q=x", pages: [][2]string{{"/landing", landing}}, events: []string{"signup"}, errors: 2, rage: 1},
		{session: "sess-b", visitor: "vb", first: 100000, last: 101500, device: "mobile", browser: "Safari", os: "iOS",
			entry: "https://x.test/Blog/Post", pages: [][2]string{{"/Blog/Post", "https://x.test/Blog/Post"}}, events: []string{"view_item"},
			user: "u1", traits: `{"email":"Ann@Example.com"}`},
		{session: "sess-c", visitor: "vc", first: 200000, last: 200000, device: "desktop", browser: "Firefox", os: "Linux",
			entry: "https://x.test/product/[7]", referrer: "android-app://com.google.android.gm/", pages: [][2]string{{"/product/[7]", "https://x.test/product/[7]"}},
			user: "u1"},
	}
	counters, err := db.PrepareSessionCounters(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer counters.Close()
	row = map[string]int64{}
	for _, v := range visits {
		err := in.Tx(ctx, func(tx *index.IngestTx) error {
			id, isNew, err := tx.UpsertSession(ctx, index.SessionStart{ProjectID: p.ID, PublicID: v.session, VisitorID: v.visitor,
				StartedAt: v.first, EndedAt: v.last, LastReceived: v.last, Browser: v.browser, OS: v.os})
			if err != nil {
				return err
			}
			row[v.session[len("sess-"):]] = id
			if ok, err := tx.InsertBatch(ctx, id, v.seq, 1, v.last, true); err != nil || !ok {
				return errors.Join(err, errors.New("batch not recorded"))
			}
			err = tx.CountBatch(ctx, id, index.BatchCounts{First: v.first, Last: v.last, Received: v.last, Events: 1 + len(v.events),
				Pages: len(v.pages), Errors: v.errors, Bytes: 100, ViewportW: 800, ViewportH: 600, Device: v.device,
				EntryURL: v.entry, Referrer: v.referrer})
			if err != nil {
				return err
			}
			for _, pg := range v.pages {
				if err := tx.AddPage(ctx, id, v.first, pg[1], pg[0], 800, 600); err != nil {
					return err
				}
			}
			for _, e := range v.events {
				if err := tx.AddCustomEvent(ctx, id, v.first, e, `{"k":1}`); err != nil {
					return err
				}
			}
			if err := tx.UpsertVisitor(ctx, p.ID, v.visitor, v.first, v.last, isNew); err != nil {
				return err
			}
			if v.user != "" {
				if err := tx.Identify(ctx, p.ID, v.visitor, v.user, v.traits); err != nil {
					return err
				}
			}
			if v.rage > 0 {
				return counters.AddFrustration(ctx, tx.Shared(), id, v.rage, 0, 0)
			}
			return nil
		})
		if err != nil {
			t.Fatalf("record %s/%d: %v", v.session, v.seq, err)
		}
	}
	cr, err := db.PrepareContentReader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer cr.Close()
	err = db.SQL().InSharedTx(ctx, func(tx *sqldb.Tx) error {
		return cr.SetConversions(ctx, tx, row["b"], 1)
	})
	if err != nil {
		t.Fatal(err)
	}
	return p.ID, row
}

func TestIngest_CountBatch(t *testing.T) {
	eachWithErrorClicks(t, func(t *testing.T, db *index.DB) {
		ctx := context.Background()
		_, row := people(t, db)
		s, err := db.SessionByRowID(ctx, row["a"])
		if err != nil {
			t.Fatal(err)
		}
		// The second batch is the earlier one: it moves the start and
		// brings the real entry page.
		if s.StartedAt.UnixMilli() != 1000 || s.EndedAt.UnixMilli() != 61000 || !strings.Contains(s.EntryURL, "/landing") ||
			s.Events != 3 || s.Pages != 2 || s.Errors != 2 || s.RageClicks != 1 || s.RawBytes != 200 || s.Device != "desktop" || s.ViewportW != 800 {
			t.Errorf("session a: %+v", s)
		}
		vs, err := db.VisitorsByID(ctx, s.ProjectID, []string{"va", "nobody"})
		if err != nil || len(vs) != 1 || vs[0].FirstSeen != 1000 || vs[0].LastSeen != 61000 || vs[0].Identified {
			t.Errorf("visitor va: %+v, %v", vs, err)
		}
	})
}

func TestDB_MatchSessions_Fields(t *testing.T) {
	eachWithErrorClicks(t, func(t *testing.T, db *index.DB) {
		ctx := context.Background()
		_, row := people(t, db)
		all := []int64{row["a"], row["b"], row["c"]}
		text := func(f index.MatchField, op index.MatchOp, v ...string) index.Match {
			return index.Match{Field: f, Op: op, Text: v}
		}
		num := func(f index.MatchField, op index.MatchOp, n float64) index.Match {
			return index.Match{Field: f, Op: op, Number: n}
		}
		boolean := func(f index.MatchField, op index.MatchOp, b bool) index.Match {
			return index.Match{Field: f, Op: op, Bool: b}
		}
		tests := []struct {
			name string
			m    index.Match
			want string // rows, e.g. "ab"
		}{
			{"browser contains, any case", text(index.FieldBrowser, index.OpContains, "CHR"), "a"},
			{"browser eq", text(index.FieldBrowser, index.OpEq, "safari"), "b"},
			{"os neq", text(index.FieldOS, index.OpNeq, "WINDOWS"), "bc"},
			{"referrer host and subdomains", text(index.FieldReferrerHost, index.OpEq, "google.com"), "a"},
			{"referrer host neq", text(index.FieldReferrerHost, index.OpNeq, "google.com"), "bc"},
			{"referrer host contains", text(index.FieldReferrerHost, index.OpContains, "goog"), "ac"},
			{"no referrer", boolean(index.FieldReferrerHost, index.OpExists, false), "b"},
			{"utm_source, encoded", text(index.FieldUTMSource, index.OpEq, "news letter"), "a"},
			{"utm_source contains", text(index.FieldUTMSource, index.OpContains, "letter"), "a"},
			{"utm_medium exists", boolean(index.FieldUTMMedium, index.OpExists, true), "a"},
			{"utm_campaign absent", boolean(index.FieldUTMCampaign, index.OpExists, false), "abc"},
			{"utm_medium neq", text(index.FieldUTMMedium, index.OpNeq, "email"), "bc"},
			{"entry page is the earliest", text(index.FieldEntryPage, index.OpEq, "/landing"), "a"},
			{"page glob star", text(index.FieldPage, index.OpGlob, "/product/*"), "ac"},
			{"page glob one character", text(index.FieldPage, index.OpGlob, "/product/4?"), "a"},
			{"page glob set", text(index.FieldPage, index.OpGlob, "/product/[0-9]*"), "a"},
			{"page glob inverted set", text(index.FieldPage, index.OpGlob, "/product/[^0-9]*"), "c"},
			{"page glob bracket in a set", text(index.FieldPage, index.OpGlob, "/product/[[]7]"), "c"},
			{"page glob case-sensitive", text(index.FieldPage, index.OpGlob, "/blog/*"), ""},
			{"page glob punctuation is literal", text(index.FieldPage, index.OpGlob, "/Blog.Post"), ""},
			{"page glob unclosed set", text(index.FieldPage, index.OpGlob, "/landing["), ""},
			{"entry page glob", text(index.FieldEntryPage, index.OpGlob, "/B*"), "b"},
			{"event eq", text(index.FieldEvent, index.OpEq, "signup"), "a"},
			{"event glob, underscore literal", text(index.FieldEvent, index.OpGlob, "view_*"), "b"},
			{"converted", boolean(index.FieldConverted, index.OpEq, true), "b"},
			{"not converted", boolean(index.FieldConverted, index.OpEq, false), "ac"},
			{"rage clicks above a fraction", num(index.FieldRageClicks, index.OpGt, 0.5), "a"},
			{"errors eq", num(index.FieldErrors, index.OpEq, 2), "a"},
			{"duration gte fraction", num(index.FieldDuration, index.OpGte, 1.5), "ab"},
			{"duration lt", num(index.FieldDuration, index.OpLt, 1.5), "c"},
			{"session in", index.Match{Field: index.FieldSessionIn, IDs: []int64{row["c"], 999}}, "c"},
			{"session not in", index.Match{Field: index.FieldSessionIn, Op: index.OpNeq, IDs: []int64{row["a"]}}, "bc"},
			{"session in none", index.Match{Field: index.FieldSessionIn}, ""},
			{"session not in none", index.Match{Field: index.FieldSessionIn, Op: index.OpNeq}, "abc"},
			{"visits of the person", num(index.FieldVisits, index.OpGte, 2), "bc"},
			{"new", text(index.FieldVisitorType, index.OpEq, "new"), "ab"},
			{"returning", text(index.FieldVisitorType, index.OpEq, "returning"), "c"},
			{"identified", boolean(index.FieldIdentified, index.OpEq, true), "bc"},
			{"user id", text(index.FieldUserID, index.OpIn, "u1", "u2"), "bc"},
			{"device in", text(index.FieldDevice, index.OpIn, "mobile", "tablet"), "b"},
			{"person", index.Match{Field: index.FieldPage, Op: index.OpEq, Text: []string{"/Blog/Post"}, Person: true}, "bc"},
			{"not", index.Match{Not: &index.Match{Field: index.FieldDevice, Op: index.OpEq, Text: []string{"desktop"}}}, "b"},
			{"or", index.Match{Or: []index.Match{text(index.FieldBrowser, index.OpEq, "firefox"), boolean(index.FieldConverted, index.OpEq, true)}}, "bc"},
			{"and", index.Match{And: []index.Match{text(index.FieldDevice, index.OpEq, "desktop"), boolean(index.FieldIdentified, index.OpEq, true)}}, "c"},
		}
		names := map[int64]string{row["a"]: "a", row["b"]: "b", row["c"]: "c"}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				got, err := db.MatchSessions(ctx, all, tt.m)
				if err != nil {
					t.Fatal(err)
				}
				var s string
				for _, id := range got {
					s += names[id]
				}
				if s != tt.want {
					t.Errorf("got %q, want %q", s, tt.want)
				}
			})
		}
	})
}

func TestDB_ListSessions_Filters(t *testing.T) {
	eachWithErrorClicks(t, func(t *testing.T, db *index.DB) {
		ctx := context.Background()
		project, _ := people(t, db)
		tests := []struct {
			name string
			f    index.SessionFilter
			want string // public ids' last letters, newest first
		}{
			{"all", index.SessionFilter{}, "cba"},
			{"path prefix", index.SessionFilter{URL: "/product"}, "ca"},
			{"URL substring, any case", index.SessionFilter{URL: "X.TEST/blog"}, "b"},
			{"URL wildcard", index.SessionFilter{URL: "*post"}, "b"},
			{"URL with LIKE characters", index.SessionFilter{URL: "utm_source=News%20"}, "a"},
			{"URL substring matching nothing", index.SessionFilter{URL: "*no-such-page*"}, ""},
			{"has rage click", index.SessionFilter{Has: []string{"rage_click"}}, "a"},
			{"has conversion", index.SessionFilter{Has: []string{"conversion"}}, "b"},
			{"visitor by user id", index.SessionFilter{Visitor: "u1"}, "cb"},
			{"min duration", index.SessionFilter{MinDuration: time.Second}, "ba"},
			{"device", index.SessionFilter{Device: "desktop"}, "ca"},
			{"time range", index.SessionFilter{From: time.UnixMilli(1000), To: time.UnixMilli(200000)}, "ba"},
			{"match", index.SessionFilter{Match: index.Match{Field: index.FieldPage, Op: index.OpGlob, Text: []string{"/product/*"}}}, "ca"},
			{"projects", index.SessionFilter{ProjectIDs: []int64{project + 1}}, ""},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				got, _, err := db.ListSessions(ctx, tt.f)
				if err != nil {
					t.Fatal(err)
				}
				var s string
				for _, x := range got {
					s += x.ID[len(x.ID)-1:]
				}
				if s != tt.want {
					t.Errorf("got %q, want %q", s, tt.want)
				}
			})
		}
		if db.SQL().Dialect() == sqldb.Postgres {
			// The page pattern filter has its trigram index on the distinct
			// URLs (pg_trgm ships with Debian's postgresql).
			var n int
			if err := db.SQL().Read().QueryRow(`SELECT COUNT(*) FROM pg_indexes WHERE indexname = 'page_urls_trgm'`).Scan(&n); err != nil || n != 1 {
				t.Errorf("trigram index on page URLs: %d, %v", n, err)
			}
		}
		var paged string
		cursor := ""
		for range 5 {
			got, next, err := db.ListSessions(ctx, index.SessionFilter{Limit: 1, Cursor: cursor})
			if err != nil {
				t.Fatal(err)
			}
			for _, x := range got {
				paged += x.ID[len(x.ID)-1:]
			}
			if cursor = next; cursor == "" {
				break
			}
		}
		if paged != "cba" {
			t.Errorf("paged %q, want cba", paged)
		}
	})
}

func TestDB_People(t *testing.T) {
	eachWithErrorClicks(t, func(t *testing.T, db *index.DB) {
		ctx := context.Background()
		project, row := people(t, db)
		ids := func(vs []index.VisitorRow) string {
			var out []string
			for _, v := range vs {
				out = append(out, v.ID)
			}
			return strings.Join(out, ",")
		}
		for _, tt := range []struct {
			name string
			f    index.PeopleFilter
			want string
		}{
			{"all, a person at its latest visitor", index.PeopleFilter{}, "vc,va"},
			{"traits, any case", index.PeopleFilter{Q: "ann@EXAMPLE"}, "vc"},
			{"user id substring", index.PeopleFilter{Q: "u"}, "vc"},
			{"anonymous visitor id", index.PeopleFilter{Q: "va"}, "va"},
			{"LIKE characters are literal", index.PeopleFilter{Q: "%"}, ""},
			{"session match of any of the person's visitors", index.PeopleFilter{Match: index.Match{Field: index.FieldDevice, Op: index.OpEq, Text: []string{"mobile"}}}, "vc"},
			{"time range", index.PeopleFilter{From: time.UnixMilli(0), To: time.UnixMilli(50000)}, "va"},
			{"after", index.PeopleFilter{After: &index.PeopleCursor{LastSeen: 200000, ID: "vc"}}, "va"},
		} {
			t.Run(tt.name, func(t *testing.T) {
				tt.f.ProjectID, tt.f.Limit = project, 10
				got, err := db.ListPeople(ctx, tt.f)
				if err != nil {
					t.Fatal(err)
				}
				if ids(got) != tt.want {
					t.Errorf("got %s, want %s", ids(got), tt.want)
				}
			})
		}

		if vs, err := db.VisitorsOfUsers(ctx, project, []string{"u1", "nobody"}); err != nil || ids(vs) != "vb,vc" || vs[0].Traits != `{"email":"Ann@Example.com"}` {
			t.Errorf("VisitorsOfUsers = %+v, %v", vs, err)
		}
		if vs, err := db.VisitorsOfUsers(ctx, project, nil); err != nil || len(vs) != 0 {
			t.Errorf("VisitorsOfUsers of none = %+v, %v", vs, err)
		}
		if n, err := db.VisitCounts(ctx, project, []string{"va", "vb", "nobody"}); err != nil || !reflect.DeepEqual(n, map[string]int{"va": 1, "vb": 1}) {
			t.Errorf("VisitCounts = %v, %v", n, err)
		}
		if s, c, err := db.VisitTotals(ctx, project, []string{"vb", "vc"}); err != nil || s != 2 || c != 1 {
			t.Errorf("VisitTotals = %d, %d, %v", s, c, err)
		}
		got, err := db.VisitorSessions(ctx, project, []string{"vb", "vc"}, &index.VisitCursor{StartedAt: 100000, ID: row["b"]}, 10)
		if err != nil || len(got) != 1 || got[0].RowID != row["c"] || got[0].UserID != "u1" {
			t.Errorf("VisitorSessions after b = %+v, %v", got, err)
		}
		aud, err := db.MatchingPeopleVisitors(ctx, project, time.UnixMilli(0), index.Match{Field: index.FieldDevice, Op: index.OpEq, Text: []string{"mobile"}})
		sort.Slice(aud, func(i, j int) bool { return aud[i].ID < aud[j].ID })
		if err != nil || len(aud) != 2 || aud[0] != (index.VisitorVisits{ID: "vb", UserID: "u1", Sessions: 1, LastStart: 100000}) || aud[1].ID != "vc" {
			t.Errorf("MatchingPeopleVisitors = %+v, %v", aud, err)
		}
		var users []string
		if err := db.IdentifiedVisitors(ctx, project, func(v, u string) error { users = append(users, v+"="+u); return nil }); err != nil {
			t.Fatal(err)
		}
		if sort.Strings(users); strings.Join(users, ",") != "vb=u1,vc=u1" {
			t.Errorf("IdentifiedVisitors = %v", users)
		}
	})
}

func TestDB_SessionReads(t *testing.T) {
	eachWithErrorClicks(t, func(t *testing.T, db *index.DB) {
		ctx := context.Background()
		project, row := people(t, db)
		all := []int64{row["a"], row["b"], row["c"]}

		ss, err := db.SessionsByID(ctx, append(all, 999))
		if err != nil || len(ss) != 3 {
			t.Fatalf("SessionsByID = %d sessions, %v", len(ss), err)
		}
		if pv, err := db.PageViews(ctx, all); err != nil || len(pv) != 4 || pv[0].Path != "/landing" {
			t.Errorf("PageViews = %+v, %v", pv, err)
		}
		if ev, err := db.CustomEventsOf(ctx, all); err != nil || len(ev) != 2 || ev[0].Name != "signup" || ev[0].Props != `{"k":1}` {
			t.Errorf("CustomEventsOf = %+v, %v", ev, err)
		}
		if ids, err := db.SessionIDsAfter(ctx, project, row["a"], 10); err != nil || !slices.Equal(ids, all[1:]) {
			t.Errorf("SessionIDsAfter = %v, %v", ids, err)
		}

		attrs := map[int64]string{}
		err = db.ScanSessions(ctx, index.SessionScan{ProjectID: project, IDs: []int64{row["a"], row["c"]},
			Attrs: []index.SessionAttr{index.AttrBrowser, index.AttrEntryURL, index.AttrIdentified, index.AttrVisitorType}},
			func(id int64, a []string) error { attrs[id] = strings.Join(a, " "); return nil })
		if err != nil {
			t.Fatal(err)
		}
		want := map[int64]string{
			row["a"]: "Chrome https://x.test/landing?utm_source=News%20Letter&utm_medium=email anonymous new",
			row["c"]: "Firefox https://x.test/product/[7] identified returning",
		}
		if !reflect.DeepEqual(attrs, want) {
			t.Errorf("ScanSessions = %v, want %v", attrs, want)
		}

		// Close a and c; only they are settled.
		in, err := db.Ingest(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer in.Close()
		err = in.Tx(ctx, func(tx *index.IngestTx) error {
			for _, id := range []int64{row["a"], row["c"]} {
				if _, _, err := tx.CloseSession(ctx, id, 1e9, index.KeepRule{}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		cr, err := db.PrepareContentReader(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer cr.Close()
		err = db.SQL().InTx(ctx, func(tx *sql.Tx) error {
			stx := sqldb.WrapTx(tx)
			settled, err := db.SettledSessions(ctx, stx, all, 1e9)
			if err != nil {
				return err
			}
			if !reflect.DeepEqual(settled, map[int64]bool{row["a"]: true, row["c"]: true}) {
				t.Errorf("SettledSessions = %v", settled)
			}
			for _, ids := range [][]int64{{row["a"]}, all} {
				got, err := cr.Read(ctx, stx, ids)
				if err != nil {
					return err
				}
				i := slices.IndexFunc(got, func(c index.SessionContent) bool { return c.ID == row["a"] })
				if len(got) != len(ids) || i < 0 || got[i].VisitorID != "va" || len(got[i].Pages) != 2 || len(got[i].Events) != 1 {
					t.Errorf("Read(%v) = %+v", ids, got)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}

func TestDB_ProjectsAndTokens(t *testing.T) {
	indextest.Each(t, func(t *testing.T, db *index.DB) {
		ctx := context.Background()
		p, err := db.CreateProject(ctx, "site", time.Now())
		if err != nil || p.ID == 0 {
			t.Fatalf("CreateProject = %+v, %v", p, err)
		}
		if _, err := db.CreateProject(ctx, "site", time.Now()); !errors.Is(err, index.ErrExists) {
			t.Errorf("second project of the name: %v, want ErrExists", err)
		}
		if err := db.SetProjectSettings(ctx, p.ID, json.RawMessage(`{"a":1}`)); err != nil {
			t.Fatal(err)
		}
		if got, err := db.ProjectByKey(ctx, p.WriteKey); err != nil || got.ID != p.ID || string(got.Settings) != `{"a":1}` {
			t.Errorf("ProjectByKey = %+v, %v", got, err)
		}
		tok, err := db.CreateToken(ctx, "ci", time.Now())
		if err != nil || tok.ID == 0 {
			t.Fatalf("CreateToken = %+v, %v", tok, err)
		}
		if _, err := db.CreateToken(ctx, "ci", time.Now()); !errors.Is(err, index.ErrExists) {
			t.Errorf("second token of the name: %v, want ErrExists", err)
		}
		if got, err := db.TokenByValue(ctx, tok.Value); err != nil || got.ID != tok.ID {
			t.Errorf("TokenByValue = %+v, %v", got, err)
		}
		if _, err := db.TokenByValue(ctx, tok.Value+"x"); !errors.Is(err, index.ErrNotFound) {
			t.Errorf("unknown token: %v", err)
		}
	})
}

// UpdateProjectSettings writes only over the settings its function saw: a
// change that lands in between is kept, and the function runs again.
func TestDB_UpdateProjectSettings(t *testing.T) {
	indextest.Each(t, func(t *testing.T, db *index.DB) {
		ctx := context.Background()
		p, err := db.CreateProject(ctx, "site", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		calls := 0
		got, err := db.UpdateProjectSettings(ctx, p.ID, func(old json.RawMessage) (json.RawMessage, error) {
			calls++
			if calls == 1 {
				// Another writer changes a different key meanwhile.
				if err := db.SetProjectSettings(ctx, p.ID, json.RawMessage(`{"retention_days":7}`)); err != nil {
					t.Fatal(err)
				}
				return json.RawMessage(`{"recording":{"drop_bots":true}}`), nil
			}
			var m map[string]json.RawMessage
			if err := json.Unmarshal(old, &m); err != nil {
				t.Fatal(err)
			}
			m["recording"] = json.RawMessage(`{"drop_bots":true}`)
			return json.Marshal(m)
		})
		if err != nil || calls != 2 || string(got) != `{"recording":{"drop_bots":true},"retention_days":7}` {
			t.Fatalf("UpdateProjectSettings = %s, %v after %d calls", got, err, calls)
		}
		if q, _ := db.ProjectByID(ctx, p.ID); string(q.Settings) != string(got) {
			t.Errorf("stored %s", q.Settings)
		}
		boom := errors.New("boom")
		if _, err := db.UpdateProjectSettings(ctx, p.ID, func(json.RawMessage) (json.RawMessage, error) { return nil, boom }); !errors.Is(err, boom) {
			t.Errorf("fn error: %v", err)
		}
		if _, err := db.UpdateProjectSettings(ctx, 99999, func(o json.RawMessage) (json.RawMessage, error) { return o, nil }); !errors.Is(err, index.ErrNotFound) {
			t.Errorf("unknown project: %v", err)
		}
	})
}

package retention_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/trailmap/trailmap/accounts"
	"github.com/trailmap/trailmap/heatmap"
	"github.com/trailmap/trailmap/journey"
	"github.com/trailmap/trailmap/recorder"
	"github.com/trailmap/trailmap/retention"
	"github.com/trailmap/trailmap/storage/sqldb"
)

// recordAs posts a two-batch visit like record, identified as user when
// user is not empty.
func (s *stack) recordAs(session, visitor, user string) {
	s.t.Helper()
	t0 := time.Now().UnixMilli()
	ident := ""
	if user != "" {
		ident = fmt.Sprintf(`,"user":{"id":%q,"traits":{"email":"%s@example.com"}}`, user, user)
	}
	batches := []string{
		fmt.Sprintf(`{"type":4,"timestamp":%d,"data":{"href":"https://shop.test/cart?q=shoes","width":1280,"height":800}},`+
			`{"type":2,"timestamp":%d,"data":{"node":{"type":0,"id":1,"childNodes":[{"type":2,"id":2,"tagName":"html","attributes":{},"childNodes":[`+
			`{"type":2,"id":3,"tagName":"body","attributes":{},"childNodes":[{"type":2,"id":4,"tagName":"button","attributes":{"id":"buy"},"childNodes":[]}]}]}]},`+
			`"initialOffset":{"top":0,"left":0}}},`+
			`{"type":3,"timestamp":%d,"data":{"source":2,"type":2,"id":4,"x":10,"y":10}}`, t0, t0+1, t0+500),
		fmt.Sprintf(`{"type":3,"timestamp":%d,"data":{"source":2,"type":2,"id":4,"x":12,"y":11}},`+
			`{"type":5,"timestamp":%d,"data":{"tag":"checkout","payload":{"total":12}}}`, t0+900, t0+950),
	}
	for seq, events := range batches {
		body := fmt.Sprintf(`{"session_id":%q,"visitor_id":%q,"seq":%d,"events":[%s]%s}`, session, visitor, seq, events, ident)
		if _, err := s.rec.Ingest(context.Background(), recorder.Request{Key: s.key, Body: strings.NewReader(body)}); err != nil {
			s.t.Fatalf("%s seq %d: %v", session, seq, err)
		}
	}
	if err := s.rec.CaughtUp(context.Background()); err != nil { // the 202 does not wait for the index rows
		s.t.Fatal(err)
	}
}

func (s *stack) forgetter(blobs retention.Blobs) *retention.Forgetter {
	f := retention.NewForgetter(s.db, blobs, []retention.SessionRows{s.hm, s.jr, accounts.New(s.db.SQL())},
		[]retention.VisitorRows{s.jr}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	f.Chunk = 2 // several transactions for one person
	return f
}

// tables lists every table of the index.
func (s *stack) tables() []string {
	q := `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name`
	if s.db.SQL().Dialect() == sqldb.Postgres {
		q = `SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY table_name`
	}
	rows, err := s.db.SQL().Read().Query(q)
	if err != nil {
		s.t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			s.t.Fatal(err)
		}
		out = append(out, n)
	}
	return out
}

// mentions returns the rows of table (formatted) that contain any of
// needles in any column.
func (s *stack) mentions(table string, needles []string) []string {
	var hits []string
	for _, line := range s.rows(`SELECT * FROM ` + table) {
		for _, n := range needles {
			if strings.Contains(line, n) {
				hits = append(hits, line)
				break
			}
		}
	}
	return hits
}

func (s *stack) sessionRowIDs(publicIDs ...string) []int64 {
	var out []int64
	for _, p := range publicIDs {
		var id int64
		if err := s.db.SQL().Read().QueryRow(`SELECT id FROM sessions WHERE public_id = ?`, p).Scan(&id); err != nil {
			s.t.Fatalf("session %s: %v", p, err)
		}
		out = append(out, id)
	}
	return out
}

func TestForget(t *testing.T) {
	eachStack(t, func(t *testing.T, s *stack) {
		ctx := context.Background()
		acc := accounts.New(s.db.SQL())

		// Alice: two devices joined by identify, three visits; the laptop's
		// first visit came before she logged in. Bob: one device, must stay.
		alice := []string{"alice_laptop_1", "alice_laptop_2", "alice_phone_01"}
		s.recordAs(alice[0], "visitor_alice_laptop", "")
		s.recordAs(alice[1], "visitor_alice_laptop", "alice")
		s.recordAs(alice[2], "visitor_alice_phone", "alice")
		s.recordAs("bob_session_1", "visitor_bob_laptop", "bob")
		s.settled(4)

		aliceRows := s.sessionRowIDs(alice...)
		bobRow := s.sessionRowIDs("bob_session_1")[0]
		for i, id := range append(slices.Clone(aliceRows), bobRow) {
			sh := &accounts.Share{ProjectID: 1, SessionRowID: id, StartMS: 0, EndMS: 900, Title: "clip", CreatedByName: "ann",
				CreatedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}
			if err := acc.CreateShare(ctx, fmt.Sprintf("sharetoken%02d", i), sh); err != nil {
				t.Fatal(err)
			}
			if err := acc.AddNote(ctx, id, &accounts.Note{OffsetMS: 100, Body: "look", Author: "ann", CreatedAt: time.Now()}); err != nil {
				t.Fatal(err)
			}
		}
		// What every table holds before, for Bob's side of the check.
		before := map[string]int{}
		for _, tb := range s.tables() {
			before[tb] = s.count(`SELECT COUNT(*) FROM ` + tb)
		}
		for _, tb := range []string{"heat_clicks", "heat_pageviews", "journey_sessions", "journey_searches", "journey_visitors", "shares", "notes", "custom_events", "pages"} {
			if before[tb] == 0 {
				t.Fatalf("fixture has no %s rows", tb)
			}
		}
		var aliceKeys []string
		for _, id := range aliceRows {
			rows, _ := s.db.SQL().Read().Query(`SELECT key FROM segments WHERE session_id = ?`, id)
			for rows.Next() {
				var k string
				rows.Scan(&k)
				aliceKeys = append(aliceKeys, k)
			}
			rows.Close()
		}
		objectsBefore := len(s.objects())

		// Journey needs search parameters for journey_searches rows.
		f := s.forgetter(s.blobs)
		rep, err := f.Forget(ctx, retention.Person{ProjectID: 1, UserID: "alice"})
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]int{"sessions": 3, "visitors": 2, "shares": 3, "notes": 3, "heat_clicks": 6, "heat_pageviews": 3,
			"journey_sessions": 3, "journey_visitors": 2, "batches": 6, "custom_events": 3}
		for k, v := range want {
			if rep.Rows[k] != v {
				t.Errorf("rows[%s] = %d, want %d (report %+v)", k, rep.Rows[k], v, rep)
			}
		}
		if rep.Sessions != 3 || rep.Visitors != 2 || rep.Objects != len(aliceKeys) || !rep.Complete || rep.Pending != 0 {
			t.Errorf("report %+v, want 3 sessions, 2 visitors, %d objects, complete", rep, len(aliceKeys))
		}
		for _, tb := range append(append(append([]string{}, heatmap.ForgetTables...), journey.ForgetTables...), accounts.ForgetTables...) {
			if _, ok := rep.Rows[tb]; !ok {
				t.Errorf("report names no %s", tb)
			}
		}

		// Every table by name: none mentions Alice, her visitors, her
		// sessions (public ids, or row ids in session_id columns).
		needles := append([]string{"visitor_alice", "alice@example.com", " alice "}, alice...)
		perSession := map[string]bool{}
		for _, tb := range s.tables() {
			if hits := s.mentions(tb, needles); len(hits) > 0 {
				t.Errorf("%s still mentions Alice: %v", tb, hits)
			}
			cols := s.columns(tb)
			if slices.Contains(cols, "session_id") {
				perSession[tb] = true
				for _, id := range aliceRows {
					if n := s.count(`SELECT COUNT(*) FROM `+tb+` WHERE session_id = ?`, id); n != 0 {
						t.Errorf("%s: %d rows of Alice's session %d", tb, n, id)
					}
				}
			}
		}
		for _, tb := range []string{"pages", "batches", "segments", "custom_events", "heat_pageviews", "heat_clicks", "heat_signals",
			"journey_sessions", "journey_searches", "shares", "notes"} {
			if !perSession[tb] {
				t.Errorf("table %s has no session_id column to check", tb)
			}
		}
		if n := s.count(`SELECT COUNT(*) FROM sessions WHERE id IN (?, ?, ?)`, aliceRows[0], aliceRows[1], aliceRows[2]); n != 0 {
			t.Errorf("%d of Alice's sessions left", n)
		}
		if n := s.count(`SELECT COUNT(*) FROM blob_trash`); n != 0 {
			t.Errorf("%d keys left in the blob trash", n)
		}
		for _, o := range s.objects() {
			for _, k := range aliceKeys {
				if strings.HasSuffix(o, k) {
					t.Errorf("object %s of Alice left", o)
				}
			}
		}
		if got := len(s.objects()); got != objectsBefore-len(aliceKeys) {
			t.Errorf("%d objects left, want %d", got, objectsBefore-len(aliceKeys))
		}

		// Bob is untouched: his rows in every per-session table, his visitor.
		for _, tb := range s.tables() {
			if !perSession[tb] {
				continue
			}
			if n := s.count(`SELECT COUNT(*) FROM `+tb+` WHERE session_id = ?`, bobRow); n == 0 && tb != "heat_signals" && tb != "journey_searches" {
				t.Errorf("%s: Bob's rows are gone", tb)
			}
		}
		if s.count(`SELECT COUNT(*) FROM visitors WHERE id = 'visitor_bob_laptop'`) != 1 ||
			s.count(`SELECT COUNT(*) FROM journey_visitors WHERE visitor_id = 'visitor_bob_laptop'`) != 1 {
			t.Error("Bob's visitor rows are gone")
		}
		// Aggregates stay (they are not per person): heatmaps still render,
		// journeys still answer, with Bob in them.
		for _, tb := range []string{"heat_grid_day", "heat_page_day", "heat_pages", "journey_keys"} {
			if got := s.count(`SELECT COUNT(*) FROM ` + tb); got != before[tb] {
				t.Errorf("%s: %d rows, want the %d of before", tb, got, before[tb])
			}
		}
		if _, err := s.hm.ClickMap(ctx, heatmap.Query{ProjectID: 1, URL: "/cart"}); err != nil {
			t.Errorf("click map after forget: %v", err)
		}
		people, err := s.jr.People(ctx, journey.PeopleQuery{ProjectID: 1})
		if err != nil || len(people.People) != 1 || people.People[0].ID != "u:bob" {
			t.Errorf("people after forget: %+v, %v", people, err)
		}
		if _, err := s.jr.Person(ctx, journey.PersonQuery{ProjectID: 1, ID: "u:alice"}); err == nil {
			t.Error("Alice is still a person")
		}

		// Again: nothing left, zeros.
		rep, err = f.Forget(ctx, retention.Person{ProjectID: 1, UserID: "alice"})
		if err != nil {
			t.Fatal(err)
		}
		if rep.Sessions != 0 || rep.Visitors != 0 || rep.Objects != 0 || !rep.Complete {
			t.Errorf("second run: %+v", rep)
		}
		for k, v := range rep.Rows {
			if v != 0 {
				t.Errorf("second run deleted %d %s", v, k)
			}
		}
	})
}

func (s *stack) columns(table string) []string {
	q := `SELECT name FROM pragma_table_info(?)`
	if s.db.SQL().Dialect() == sqldb.Postgres {
		q = `SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = ? ORDER BY ordinal_position`
	}
	rows, err := s.db.SQL().Read().Query(q, table)
	if err != nil {
		s.t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		rows.Scan(&n)
		out = append(out, n)
	}
	return out
}

// TestForget_CrashAfterRows: the blob store fails every delete after the
// rows are committed (as a crash between the two would leave it); the
// objects stay listed in the blob trash and a later run deletes them.
func TestForget_CrashAfterRows(t *testing.T) {
	eachStack(t, func(t *testing.T, s *stack) {
		ctx := context.Background()
		s.recordAs("carol_session_1", "visitor_carol_1", "")
		s.recordAs("carol_session_2", "visitor_carol_1", "")
		s.recordAs("dave_session_01", "visitor_dave_01", "")
		s.settled(3)
		objects := len(s.objects())

		rep, err := s.forgetter(failingBlobs{}).Forget(ctx, retention.Person{ProjectID: 1, VisitorID: "visitor_carol_1"})
		if err != nil {
			t.Fatal(err)
		}
		if rep.Sessions != 2 || rep.Objects != 0 || rep.ObjectsLeft == 0 || rep.Complete {
			t.Fatalf("run with the store down: %+v", rep)
		}
		if s.count(`SELECT COUNT(*) FROM sessions WHERE visitor_id = 'visitor_carol_1'`) != 0 || len(s.objects()) != objects {
			t.Fatal("rows should be gone and objects still there")
		}
		left := s.count(`SELECT COUNT(*) FROM blob_trash`)
		if left == 0 {
			t.Fatal("no keys in the blob trash")
		}

		rep, err = s.forgetter(s.blobs).Forget(ctx, retention.Person{ProjectID: 1, VisitorID: "visitor_carol_1"})
		if err != nil {
			t.Fatal(err)
		}
		if rep.Sessions != 0 || rep.Objects != left || !rep.Complete {
			t.Errorf("later run: %+v, want %d objects", rep, left)
		}
		if got := len(s.objects()); got != objects-left || s.count(`SELECT COUNT(*) FROM blob_trash`) != 0 {
			t.Errorf("%d objects, want %d; trash %d", got, objects-left, s.count(`SELECT COUNT(*) FROM blob_trash`))
		}
		if s.count(`SELECT COUNT(*) FROM sessions WHERE visitor_id = 'visitor_dave_01'`) != 1 {
			t.Error("Dave's session is gone")
		}
	})
}

// TestForget_StillRecording: a session of the person still recording is
// left (pending) and the report says so; once it has ended, a later run
// deletes it.
func TestForget_StillRecording(t *testing.T) {
	eachStack(t, func(t *testing.T, s *stack) {
		ctx := context.Background()
		s.recordAs("erin_session_1", "visitor_erin_01", "erin")
		s.settled(1)
		s.recordAs("erin_session_2", "visitor_erin_01", "erin") // open for about a second (SessionIdle)

		rep, err := s.forgetter(s.blobs).Forget(ctx, retention.Person{ProjectID: 1, UserID: "erin"})
		if err != nil {
			t.Fatal(err)
		}
		if rep.Sessions != 1 || rep.Pending != 1 || rep.Visitors != 0 || rep.Complete {
			t.Fatalf("while recording: %+v", rep)
		}
		s.settled(1)
		rep, err = s.forgetter(s.blobs).Forget(ctx, retention.Person{ProjectID: 1, UserID: "erin"})
		if err != nil {
			t.Fatal(err)
		}
		if rep.Sessions != 1 || rep.Pending != 0 || rep.Visitors != 1 || !rep.Complete {
			t.Fatalf("after it ended: %+v", rep)
		}
		if s.count(`SELECT COUNT(*) FROM sessions`) != 0 || len(s.objects()) != 0 {
			t.Error("rows or objects left")
		}
	})
}

func TestParsePerson(t *testing.T) {
	tests := []struct {
		name, id string
		ok       bool
	}{
		{"user", "u:alice", true},
		{"visitor", "v:visitor_1234", true},
		{"no kind", "alice", false},
		{"empty", "u:", false},
		{"other kind", "x:alice", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := retention.ParsePerson(1, tt.id)
			if (err == nil) != tt.ok || (tt.ok && p.ID() != tt.id) {
				t.Errorf("ParsePerson(%q) = %+v, %v", tt.id, p, err)
			}
		})
	}
}

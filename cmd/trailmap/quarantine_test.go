package main

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trailmap/trailmap/internal/servertest"
	"github.com/trailmap/trailmap/storage/sqldb"
)

// poisonIndex makes the server's index refuse, for good, page views whose
// URL holds "poison" (a real error of the real database), or stops it.
func poisonIndex(t *testing.T, s *servertest.Server, on bool) {
	t.Helper()
	driver, dsn := "sqlite3", "file:"+filepath.Join(s.DataDir, "index.db")+"?_busy_timeout=10000"
	if s.IndexURL != "" {
		driver, dsn = "pgx", s.IndexURL
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	stmts := map[[2]bool][]string{
		{false, true}: {`CREATE TRIGGER poison_pages BEFORE INSERT ON pages WHEN NEW.url LIKE '%poison%'
			BEGIN SELECT RAISE(ABORT, 'poisoned page view'); END`},
		{false, false}: {`DROP TRIGGER poison_pages`},
		{true, true}: {`CREATE FUNCTION poison_pages() RETURNS trigger LANGUAGE plpgsql AS $$
			BEGIN IF NEW.url LIKE '%poison%' THEN RAISE EXCEPTION 'poisoned page view'; END IF; RETURN NEW; END $$`,
			`CREATE TRIGGER poison_pages BEFORE INSERT ON pages FOR EACH ROW EXECUTE FUNCTION poison_pages()`},
		{true, false}: {`DROP TRIGGER poison_pages ON pages`, `DROP FUNCTION poison_pages()`},
	}[[2]bool{sqldb.IsPostgres(s.IndexURL), on}]
	for _, q := range stmts {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

type quarantined struct {
	SessionID string `json:"session_id"`
	Seq       int64  `json:"seq"`
	Events    int    `json:"events"`
	Error     string `json:"error"`
}

// TestServe_Quarantine: through the binary, a batch the index refuses
// while it takes others is quarantined (the node goes on indexing; before,
// every later batch waited behind it for ever), `trailmap quarantine` lists
// it with the error, and once the cause is gone a restart records it and
// replay has its events.
func TestServe_Quarantine(t *testing.T) {
	servertest.EachIndex(t, func(t *testing.T, indexURL string) {
		s := servertest.StartOn(t, indexURL)
		poisonIndex(t, s, true)
		page := func(seq int, path string) []byte {
			ts := 1700000000000 + int64(seq)*1000
			return batchBody(t, "quarantine-session", "visitor-q", seq, []json.RawMessage{
				json.RawMessage(fmt.Sprintf(`{"type":4,"timestamp":%d,"data":{"href":"https://site.example%s","width":1200,"height":800}}`, ts, path)),
				json.RawMessage(fmt.Sprintf(`{"type":3,"timestamp":%d,"data":{"source":2,"type":2,"id":1,"x":%d,"y":2}}`, ts+1, seq)),
			})
		}
		for seq, path := range []string{"/a", "/poison", "/b"} {
			if a := post(t, s.URL, s.WriteKey, "", page(seq, path)); a.Status != http.StatusAccepted {
				t.Fatalf("seq %d: %d %v", seq, a.Status, a.Body)
			}
		}
		var list []quarantined
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			s.Admin(t, &list, "quarantine")
			if len(list) > 0 || time.Now().After(deadline) {
				break
			}
		}
		if len(list) != 1 || list[0].SessionID != "quarantine-session" || list[0].Seq != 1 || list[0].Events != 2 ||
			!strings.Contains(list[0].Error, "poisoned page view") {
			t.Fatalf("quarantine lists %+v, want seq 1 of quarantine-session with its error", list)
		}
		if n := metric(t, s, "trailmap_quarantine_batches"); n != 1 {
			t.Errorf("trailmap_quarantine_batches %v, want 1", n)
		}
		if n := metric(t, s, `trailmap_batches_quarantined_total{stage="index"}`); n != 1 {
			t.Errorf(`trailmap_batches_quarantined_total{stage="index"} %v, want 1`, n)
		}
		// The node goes on indexing: another session is listed.
		if a := post(t, s.URL, s.WriteKey, "", batchBody(t, "quarantine-later", "visitor-q", 0,
			[]json.RawMessage{json.RawMessage(`{"type":3,"timestamp":1700000100000,"data":{"source":2,"type":2,"id":1,"x":1,"y":2}}`)})); a.Status != http.StatusAccepted {
			t.Fatalf("later session: %d %v", a.Status, a.Body)
		}
		var page0 struct {
			Sessions []struct {
				ID string `json:"id"`
			} `json:"sessions"`
		}
		s.GetJSON(t, "/api/v1/sessions?project="+fmt.Sprint(s.ProjectID), &page0)
		if len(page0.Sessions) != 2 {
			t.Fatalf("sessions list %+v, want both sessions", page0.Sessions)
		}
		if got := len(events(t, s, "quarantine-session", "")); got != 4 {
			t.Errorf("replay has %d events before the fix, want 4 (seq 0 and 2)", got)
		}

		poisonIndex(t, s, false)
		s.Restart(t)
		s.Admin(t, &list, "quarantine")
		if len(list) != 0 {
			t.Errorf("quarantine lists %+v after the fix and a restart", list)
		}
		if got := len(events(t, s, "quarantine-session", "")); got != 6 {
			t.Errorf("replay has %d events after the fix, want 6", got)
		}
	})
}

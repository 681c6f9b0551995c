package ui

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/trailmap/trailmap/accounts"
	"github.com/trailmap/trailmap/heatmap"
	"github.com/trailmap/trailmap/journey"
	"github.com/trailmap/trailmap/storage/index"
	"github.com/trailmap/trailmap/storage/index/indextest"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newService(t *testing.T) (*Service, *index.DB, *clock) {
	t.Helper()
	db := indextest.New(t, heatmap.Schema, accounts.Schema, journey.Schema)
	c := &clock{time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)}
	return New(accounts.New(db.SQL()), db, Config{BcryptCost: bcrypt.MinCost, LoginTTL: time.Hour}, c.now, nil), db, c
}

// addSession inserts a session row the way the recorder would.
func addSession(t *testing.T, db *index.DB, projectID int64, id string, start time.Time, dur time.Duration) *index.Session {
	t.Helper()
	ctx := context.Background()
	_, err := db.SQL().Write().ExecContext(ctx, `INSERT INTO sessions (project_id, public_id, visitor_id, started_at, ended_at, last_received, closed)
		VALUES (?, ?, 'v1', ?, ?, ?, 1)`, projectID, id, start.UnixMilli(), start.Add(dur).UnixMilli(), start.UnixMilli())
	if err != nil {
		t.Fatal(err)
	}
	s, err := db.SessionByPublicID(ctx, nil, id)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestService_Users(t *testing.T) {
	s, db, _ := newService(t)
	ctx := context.Background()
	p, err := db.CreateProject(ctx, "shop", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, email, password string
		want                  error
	}{
		{"not an email", "nobody", "long enough", ErrInvalid},
		{"short password", "a@example.com", "short", ErrInvalid},
		{"too long for bcrypt", "a@example.com", strings.Repeat("p", 73), ErrInvalid},
		{"ok", "a@example.com", "long enough", nil},
		{"twice, other case", "A@Example.com", "long enough", accounts.ErrExists},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.CreateUser(ctx, tc.email, tc.password, nil)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
		})
	}
	m, err := s.CreateUser(ctx, "m@example.com", "long enough", []int64{p.ID})
	if err != nil || m.Role != "member" {
		t.Fatalf("member: %+v %v", m, err)
	}
	for _, tc := range []struct {
		name, email, password string
		want                  error
	}{
		{"right", "a@example.com", "long enough", nil},
		{"email in another case", "A@EXAMPLE.COM", "long enough", nil},
		{"wrong password", "a@example.com", "long enougH", ErrBadLogin},
		{"unknown email", "x@example.com", "long enough", ErrBadLogin},
	} {
		t.Run("Authenticate "+tc.name, func(t *testing.T) {
			u, err := s.Authenticate(ctx, tc.email, tc.password)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
			if err == nil && (u.Role != "admin" || u.ProjectIDs != nil) {
				t.Fatalf("CLI user %+v, want an admin of every project", u)
			}
		})
	}
	u, err := s.Authenticate(ctx, "m@example.com", "long enough")
	if err != nil || len(u.ProjectIDs) != 1 || u.ProjectIDs[0] != p.ID {
		t.Fatalf("member login: %+v %v", u, err)
	}
}

func TestService_Logins(t *testing.T) {
	s, _, c := newService(t)
	ctx := context.Background()
	u, err := s.CreateUser(ctx, "a@example.com", "long enough", nil)
	if err != nil {
		t.Fatal(err)
	}
	l, err := s.StartLogin(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s.LoginByToken(ctx, l.Token); err != nil || got.ID != u.ID {
		t.Fatalf("LoginByToken: %+v %v", got, err)
	}
	if _, err := s.LoginByToken(ctx, l.Token+"x"); !errors.Is(err, accounts.ErrNotFound) {
		t.Fatalf("wrong token: %v", err)
	}
	if !CheckCSRF(l.Token, CSRFToken(l.Token)) || CheckCSRF(l.Token, CSRFToken(l.Token+"x")) || CheckCSRF(l.Token, "") {
		t.Fatal("CSRF tokens do not check out")
	}
	c.t = c.t.Add(2 * time.Hour) // past LoginTTL
	if _, err := s.LoginByToken(ctx, l.Token); !errors.Is(err, accounts.ErrNotFound) {
		t.Fatalf("expired login: %v", err)
	}
	l2, _ := s.StartLogin(ctx, u)
	if err := s.EndLogin(ctx, l2.Token); err != nil {
		t.Fatal(err)
	}
	if _, err := s.LoginByToken(ctx, l2.Token); !errors.Is(err, accounts.ErrNotFound) {
		t.Fatalf("ended login: %v", err)
	}
}

func TestService_Shares(t *testing.T) {
	s, db, c := newService(t)
	ctx := context.Background()
	p1, _ := db.CreateProject(ctx, "one", time.Now())
	p2, _ := db.CreateProject(ctx, "two", time.Now())
	sess := addSession(t, db, p1.ID, "sess-one-0001", c.t.Add(-time.Hour), 10*time.Minute)
	other := addSession(t, db, p2.ID, "sess-two-0001", c.t.Add(-time.Hour), time.Minute)

	for _, tc := range []struct {
		name string
		in   ShareInput
		want error
	}{
		{"no session", ShareInput{StartMS: 0, EndMS: 10}, ErrInvalid},
		{"negative start", ShareInput{Session: sess, StartMS: -1, EndMS: 10}, ErrInvalid},
		{"empty range", ShareInput{Session: sess, StartMS: 10, EndMS: 10}, ErrInvalid},
		{"start after the end", ShareInput{Session: sess, StartMS: 11 * 60000, EndMS: 12 * 60000}, ErrInvalid},
		{"long title", ShareInput{Session: sess, EndMS: 10, Title: strings.Repeat("é", 201)}, ErrInvalid},
		{"expiry too long", ShareInput{Session: sess, EndMS: 10, ExpiresIn: 400 * 24 * time.Hour}, ErrInvalid},
		{"ok", ShareInput{Session: sess, StartMS: 1000, EndMS: 5000}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := s.CreateShare(ctx, tc.in)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
		})
	}

	sh, tok, err := s.CreateShare(ctx, ShareInput{Session: sess, StartMS: 60000, EndMS: 99 * 60000, Title: " Checkout ", CreatedByName: "a@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if len(tok) < 32 || sh.EndMS != 10*60000 || sh.Title != "Checkout" || !sh.ExpiresAt.Equal(c.t.Add(DefaultShareExpiry)) {
		t.Fatalf("share %+v token %q: want the end clamped, title trimmed, 30 days", sh, tok)
	}
	got, err := s.ShareByToken(ctx, tok)
	if err != nil || got.ID != sh.ID || got.SessionID != "sess-one-0001" {
		t.Fatalf("ShareByToken: %+v %v", got, err)
	}
	if _, err := s.ShareByToken(ctx, tok[:len(tok)-1]); !errors.Is(err, accounts.ErrNotFound) {
		t.Fatalf("unknown token: %v", err)
	}
	sh2, _, _ := s.CreateShare(ctx, ShareInput{Session: other, EndMS: 1000})
	if list, _ := s.Shares(ctx, ShareFilter{ProjectIDs: []int64{p1.ID}}); len(list) != 2 {
		t.Fatalf("project one's shares: %d", len(list))
	}
	if list, _ := s.Shares(ctx, ShareFilter{SessionID: "sess-two-0001"}); len(list) != 1 || list[0].ID != sh2.ID {
		t.Fatalf("session two's shares: %+v", list)
	}
	if list, _ := s.Shares(ctx, ShareFilter{ProjectIDs: []int64{}}); len(list) != 0 {
		t.Fatal("no projects, yet shares")
	}
	if _, err := s.RevokeShare(ctx, []int64{p2.ID}, sh.ID); !errors.Is(err, accounts.ErrNotFound) {
		t.Fatalf("revoke from another project: %v", err)
	}
	if err := s.CountView(ctx, sh.ID); err != nil {
		t.Fatal(err)
	}
	c.t = c.t.Add(31 * 24 * time.Hour)
	if got, err := s.ShareByToken(ctx, tok); !errors.Is(err, ErrGone) || got.State != "expired" || got.Views != 1 {
		t.Fatalf("expired: %+v %v", got, err)
	}
	r, err := s.RevokeShare(ctx, nil, sh.ID)
	if err != nil || r.State != "revoked" || r.RevokedAt == nil {
		t.Fatalf("revoke: %+v %v", r, err)
	}
}

func TestService_Notes(t *testing.T) {
	s, db, _ := newService(t)
	ctx := context.Background()
	p, _ := db.CreateProject(ctx, "one", time.Now())
	sess := addSession(t, db, p.ID, "sess-one-0001", time.Now(), time.Minute)
	a, _ := s.CreateUser(ctx, "a@example.com", "long enough", []int64{p.ID})
	b, _ := s.CreateUser(ctx, "b@example.com", "long enough", []int64{p.ID})
	admin, _ := s.CreateUser(ctx, "c@example.com", "long enough", nil)
	if _, err := s.AddNote(ctx, sess, 5, "  ", a.ID, a.Email); !errors.Is(err, ErrInvalid) {
		t.Fatalf("empty note: %v", err)
	}
	n2, _ := s.AddNote(ctx, sess, 9000, "second", a.ID, a.Email)
	n1, err := s.AddNote(ctx, sess, 1000, "first", b.ID, b.Email)
	if err != nil {
		t.Fatal(err)
	}
	list, _ := s.Notes(ctx, sess)
	if len(list) != 2 || list[0].ID != n1.ID || list[1].Author != "a@example.com" {
		t.Fatalf("notes not in timeline order: %+v", list)
	}
	if err := s.DeleteNote(ctx, sess, n2.ID, b); !errors.Is(err, ErrNotAllowed) {
		t.Fatalf("b deletes a's note: %v", err)
	}
	if err := s.DeleteNote(ctx, sess, n2.ID, a); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteNote(ctx, sess, n1.ID, admin); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteNote(ctx, sess, n1.ID, admin); !errors.Is(err, accounts.ErrNotFound) {
		t.Fatalf("deleted twice: %v", err)
	}
}

func TestJSONScriptWriter(t *testing.T) {
	for _, tc := range []struct {
		name  string
		parts []string
		want  string
	}{
		{"plain", []string{`["a"]`}, `["a"]`},
		{"script end", []string{`["</script><!--"]`}, `["\u003c/script\u003e\u003c!--"]`},
		{"ampersand", []string{`["a&b"]`}, `["a\u0026b"]`},
		{"line separators", []string{"[\"a\u2028b\u2029\"]"}, `["a\u2028b\u2029"]`},
		{"separator split across writes", []string{"[\"a\xe2", "\x80\xa8b\"]"}, `["a\u2028b"]`},
		{"other runes split", []string{"[\"\xc3", "\xa9\"]"}, "[\"é\"]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			w := &jsonScriptWriter{w: &b}
			for _, p := range tc.parts {
				if _, err := w.Write([]byte(p)); err != nil {
					t.Fatal(err)
				}
			}
			if b.String() != tc.want {
				t.Fatalf("got %s, want %s", b.String(), tc.want)
			}
		})
	}
}

func TestWeb_Pages(t *testing.T) {
	w, err := NewWeb()
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]*Page{}
	for _, p := range w.Pages() {
		byName[p.Name] = p
	}
	if p := byName["sessions"]; p == nil || p.Path != "/sessions" || p.Nav != "Sessions" || p.Order != 10 {
		t.Fatalf("sessions page: %+v", p)
	}
	if p := byName["player"]; p == nil || p.Path != "/sessions/:id" || p.Nav != "" {
		t.Fatalf("player page: %+v", p)
	}
	nav := w.Nav(byName["player"])
	if len(nav) < 2 || nav[0].Label != "Sessions" || !nav[0].Active {
		t.Fatalf("nav from the player: %+v", nav)
	}
	for i := 1; i < len(w.Pages()); i++ {
		if w.Pages()[i-1].Order > w.Pages()[i].Order {
			t.Fatal("pages out of nav order")
		}
	}
	if !w.Built() {
		t.Log("bundle not built: asset checks skipped (run make js)")
		return
	}
	for _, a := range []string{"app.css", "pages/sessions.js", "pages/player.js", "share.js"} {
		if u := w.Asset(a); !strings.HasPrefix(u, "/assets/") || u == "/assets/"+a {
			t.Errorf("asset %s: %q, want a hashed URL", a, u)
		}
	}
}

func TestFormatOffset(t *testing.T) {
	for _, tc := range []struct {
		ms   int64
		want string
	}{{0, "0:00"}, {83000, "1:23"}, {3723000, "1:02:03"}} {
		if got := FormatOffset(tc.ms); got != tc.want {
			t.Errorf("FormatOffset(%d) = %q, want %q", tc.ms, got, tc.want)
		}
	}
}

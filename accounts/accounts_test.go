package accounts_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/trailmap/trailmap/accounts"
	"github.com/trailmap/trailmap/heatmap"
	"github.com/trailmap/trailmap/internal/pgtest"
	"github.com/trailmap/trailmap/journey"
	"github.com/trailmap/trailmap/storage/index"
	"github.com/trailmap/trailmap/storage/index/indextest"
	"github.com/trailmap/trailmap/storage/sqldb"
)

var t0 = time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)

func TestMain(m *testing.M) { pgtest.Main(m) }

// eachStore runs fn on a fresh store on SQLite (with every owner's schema,
// as the server opens it) and on PostgreSQL (heatmap and journey have no
// PostgreSQL twins yet, and the accounts tables need neither).
func eachStore(t *testing.T, fn func(t *testing.T, st *accounts.Store, db *index.DB)) {
	indextest.EachWith(t, func(d sqldb.Dialect) []sqldb.Schema {
		if d == sqldb.Postgres {
			return []sqldb.Schema{accounts.Schema}
		}
		return []sqldb.Schema{heatmap.Schema, accounts.Schema, journey.Schema}
	}, func(t *testing.T, db *index.DB) {
		fn(t, accounts.New(db.SQL()), db)
	})
}

// addSession inserts a session row the way the recorder would, returning its row id.
func addSession(t *testing.T, db *index.DB, projectID int64, id string) int64 {
	t.Helper()
	var rowID int64
	err := db.SQL().Write().QueryRowContext(context.Background(), `INSERT INTO sessions (project_id, public_id, visitor_id, started_at, ended_at, last_received, closed)
		VALUES (?, ?, 'v1', 0, 60000, 0, 1) RETURNING id`, projectID, id).Scan(&rowID)
	if err != nil {
		t.Fatal(err)
	}
	return rowID
}

func TestErrors(t *testing.T) {
	// The server maps the index's errors to 404 and 409; ours must map alike.
	if !errors.Is(accounts.ErrNotFound, index.ErrNotFound) || !errors.Is(accounts.ErrExists, index.ErrExists) {
		t.Fatal("accounts errors are not the index's")
	}
	if errors.Is(index.ErrNotFound, accounts.ErrNotFound) {
		t.Fatal("every index.ErrNotFound is an accounts.ErrNotFound")
	}
}

func TestStore_Users(t *testing.T) {
	eachStore(t, func(t *testing.T, st *accounts.Store, db *index.DB) {
		ctx := context.Background()
		p1, _ := db.CreateProject(ctx, "one", t0)
		p2, _ := db.CreateProject(ctx, "two", t0)

		admin := &accounts.User{Email: "a@example.com", Role: accounts.RoleAdmin, CreatedAt: t0}
		if err := st.CreateUser(ctx, admin, "hash-a"); err != nil || admin.ID == 0 {
			t.Fatalf("create admin: %+v %v", admin, err)
		}
		member := &accounts.User{Email: "m@example.com", Role: accounts.RoleMember, ProjectIDs: []int64{p2.ID, p1.ID, p2.ID}, CreatedAt: t0}
		if err := st.CreateUser(ctx, member, "hash-m"); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			name string
			u    *accounts.User
			want error
		}{
			{"same email", &accounts.User{Email: "a@example.com", Role: accounts.RoleAdmin}, accounts.ErrExists},
			{"email in another case", &accounts.User{Email: "A@EXAMPLE.com", Role: accounts.RoleAdmin}, accounts.ErrExists},
			{"unknown project", &accounts.User{Email: "x@example.com", Role: accounts.RoleMember, ProjectIDs: []int64{999}}, nil},
		} {
			t.Run("CreateUser "+tc.name, func(t *testing.T) {
				err := st.CreateUser(ctx, tc.u, "hash")
				if tc.want == nil {
					if err == nil || errors.Is(err, accounts.ErrExists) {
						t.Fatalf("err %v, want a foreign key error", err)
					}
					if _, _, err := st.PasswordHash(ctx, tc.u.Email); !errors.Is(err, accounts.ErrNotFound) {
						t.Fatalf("half-created user left behind: %v", err)
					}
					return
				}
				if !errors.Is(err, tc.want) {
					t.Fatalf("err %v, want %v", err, tc.want)
				}
			})
		}

		for _, tc := range []struct {
			name, email string
			wantID      int64
			wantHash    string
			wantErr     error
		}{
			{"exact", "m@example.com", member.ID, "hash-m", nil},
			{"other case", "M@Example.COM", member.ID, "hash-m", nil},
			{"unknown", "nobody@example.com", 0, "", accounts.ErrNotFound},
		} {
			t.Run("PasswordHash "+tc.name, func(t *testing.T) {
				id, hash, err := st.PasswordHash(ctx, tc.email)
				if id != tc.wantID || hash != tc.wantHash || !errors.Is(err, tc.wantErr) {
					t.Fatalf("got %d %q %v, want %d %q %v", id, hash, err, tc.wantID, tc.wantHash, tc.wantErr)
				}
			})
		}

		got, err := st.UserByID(ctx, member.ID)
		if err != nil || got.Role != accounts.RoleMember || !slices.Equal(got.ProjectIDs, []int64{p1.ID, p2.ID}) || !got.CreatedAt.Equal(t0) {
			t.Fatalf("member: %+v %v", got, err)
		}
		if got, err := st.UserByID(ctx, admin.ID); err != nil || got.ProjectIDs != nil || got.Email != "a@example.com" {
			t.Fatalf("admin: %+v %v", got, err)
		}
		if _, err := st.UserByID(ctx, 999); !errors.Is(err, accounts.ErrNotFound) {
			t.Fatalf("unknown user: %v", err)
		}
	})
}

func TestStore_Logins(t *testing.T) {
	eachStore(t, func(t *testing.T, st *accounts.Store, db *index.DB) {
		ctx := context.Background()
		u := &accounts.User{Email: "a@example.com", Role: accounts.RoleAdmin, CreatedAt: t0}
		if err := st.CreateUser(ctx, u, "hash"); err != nil {
			t.Fatal(err)
		}
		if err := st.StartLogin(ctx, "token-one", u.ID, t0, t0.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			name  string
			token string
			now   time.Time
			want  error
		}{
			{"live", "token-one", t0.Add(time.Minute), nil},
			{"wrong token", "token-one-", t0, accounts.ErrNotFound},
			{"at expiry", "token-one", t0.Add(time.Hour), accounts.ErrNotFound},
			{"expired", "token-one", t0.Add(2 * time.Hour), accounts.ErrNotFound},
		} {
			t.Run("UserByLogin "+tc.name, func(t *testing.T) {
				got, err := st.UserByLogin(ctx, tc.token, tc.now)
				if !errors.Is(err, tc.want) || (err == nil && got.ID != u.ID) {
					t.Fatalf("got %+v %v, want %v", got, err, tc.want)
				}
			})
		}

		// A later login drops the expired one and notes the last login.
		later := t0.Add(2 * time.Hour)
		if err := st.StartLogin(ctx, "token-two", u.ID, later, later.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		var n int
		var last int64
		db.SQL().Read().QueryRowContext(ctx, `SELECT COUNT(*) FROM login_sessions`).Scan(&n)
		db.SQL().Read().QueryRowContext(ctx, `SELECT last_login_at FROM users WHERE id = ?`, u.ID).Scan(&last)
		if n != 1 || last != later.UnixMilli() {
			t.Fatalf("%d logins stored, last login %d: want 1, %d", n, last, later.UnixMilli())
		}
		var stored []byte
		db.SQL().Read().QueryRowContext(ctx, `SELECT token_hash FROM login_sessions`).Scan(&stored)
		if len(stored) != 32 || string(stored) == "token-two" {
			t.Fatalf("token stored as %q, want its sha256", stored)
		}
		if err := st.EndLogin(ctx, "token-two"); err != nil {
			t.Fatal(err)
		}
		if _, err := st.UserByLogin(ctx, "token-two", later); !errors.Is(err, accounts.ErrNotFound) {
			t.Fatalf("ended login: %v", err)
		}
		if err := st.EndLogin(ctx, "token-two"); err != nil {
			t.Fatalf("ending twice: %v", err)
		}
	})
}

func TestStore_Shares(t *testing.T) {
	eachStore(t, func(t *testing.T, st *accounts.Store, db *index.DB) {
		ctx := context.Background()
		p1, _ := db.CreateProject(ctx, "one", t0)
		p2, _ := db.CreateProject(ctx, "two", t0)
		s1 := addSession(t, db, p1.ID, "sess-one")
		s2 := addSession(t, db, p2.ID, "sess-two")
		u := &accounts.User{Email: "a@example.com", Role: accounts.RoleAdmin, CreatedAt: t0}
		if err := st.CreateUser(ctx, u, "hash"); err != nil {
			t.Fatal(err)
		}

		var ids []int64
		for i, sh := range []accounts.Share{
			{ProjectID: p1.ID, SessionRowID: s1, StartMS: 0, EndMS: 1000, Title: "first", CreatedBy: u.ID, CreatedByName: u.Email},
			{ProjectID: p1.ID, SessionRowID: s1, StartMS: 500, EndMS: 900, Title: "second", Note: "look", CreatedByName: "API token ci"},
			{ProjectID: p2.ID, SessionRowID: s2, StartMS: 0, EndMS: 10, Title: "third", CreatedByName: "API token ci"},
		} {
			sh.CreatedAt = t0.Add(time.Duration(i) * time.Minute)
			sh.ExpiresAt = sh.CreatedAt.Add(time.Hour)
			if err := st.CreateShare(ctx, "tok"+string(rune('a'+i))+"-secret", &sh); err != nil {
				t.Fatal(err)
			}
			if sh.ID == 0 || sh.Hint != "tok"+string(rune('a'+i)) {
				t.Fatalf("created %+v: want an id and the hint", sh)
			}
			ids = append(ids, sh.ID)
		}

		got, err := st.ShareByToken(ctx, "tokb-secret")
		if err != nil || got.ID != ids[1] || got.SessionRowID != s1 || got.Note != "look" || got.CreatedBy != 0 ||
			!got.CreatedAt.Equal(t0.Add(time.Minute)) || got.RevokedAt != nil || got.LastViewedAt != nil {
			t.Fatalf("ShareByToken: %+v %v", got, err)
		}
		if _, err := st.ShareByToken(ctx, "tokb-secreT"); !errors.Is(err, accounts.ErrNotFound) {
			t.Fatalf("unknown token: %v", err)
		}
		if got, err := st.ShareByID(ctx, ids[0]); err != nil || got.CreatedBy != u.ID || got.Title != "first" {
			t.Fatalf("ShareByID: %+v %v", got, err)
		}
		if _, err := st.ShareByID(ctx, 999); !errors.Is(err, accounts.ErrNotFound) {
			t.Fatalf("unknown id: %v", err)
		}

		for _, tc := range []struct {
			name string
			f    accounts.ShareFilter
			want []int64
		}{
			{"all, newest first", accounts.ShareFilter{}, []int64{ids[2], ids[1], ids[0]}},
			{"one project", accounts.ShareFilter{ProjectIDs: []int64{p1.ID}}, []int64{ids[1], ids[0]}},
			{"no projects", accounts.ShareFilter{ProjectIDs: []int64{}}, []int64{}},
			{"one session", accounts.ShareFilter{SessionRowIDs: []int64{s2}}, []int64{ids[2]}},
			{"no sessions", accounts.ShareFilter{SessionRowIDs: []int64{}}, []int64{}},
			{"session of another project", accounts.ShareFilter{ProjectIDs: []int64{p1.ID}, SessionRowIDs: []int64{s2}}, []int64{}},
			{"limit", accounts.ShareFilter{Limit: 1}, []int64{ids[2]}},
		} {
			t.Run("Shares "+tc.name, func(t *testing.T) {
				list, err := st.Shares(ctx, tc.f)
				if err != nil {
					t.Fatal(err)
				}
				got := []int64{}
				for _, sh := range list {
					got = append(got, sh.ID)
				}
				if !slices.Equal(got, tc.want) {
					t.Fatalf("got %v, want %v", got, tc.want)
				}
			})
		}

		for range 2 {
			if err := st.CountShareView(ctx, ids[0], t0.Add(time.Minute)); err != nil {
				t.Fatal(err)
			}
		}
		if err := st.RevokeShare(ctx, ids[0], t0.Add(2*time.Minute)); err != nil {
			t.Fatal(err)
		}
		if err := st.RevokeShare(ctx, ids[0], t0.Add(3*time.Minute)); err != nil {
			t.Fatal(err)
		}
		got, _ = st.ShareByID(ctx, ids[0])
		if got.Views != 2 || got.LastViewedAt == nil || !got.LastViewedAt.Equal(t0.Add(time.Minute)) ||
			got.RevokedAt == nil || !got.RevokedAt.Equal(t0.Add(2*time.Minute)) {
			t.Fatalf("after views and revoking twice: %+v", got)
		}
	})
}

func TestStore_Notes(t *testing.T) {
	eachStore(t, func(t *testing.T, st *accounts.Store, db *index.DB) {
		ctx := context.Background()
		p, _ := db.CreateProject(ctx, "one", t0)
		s1 := addSession(t, db, p.ID, "sess-one")
		s2 := addSession(t, db, p.ID, "sess-two")
		u := &accounts.User{Email: "a@example.com", Role: accounts.RoleMember, ProjectIDs: []int64{p.ID}, CreatedAt: t0}
		if err := st.CreateUser(ctx, u, "hash"); err != nil {
			t.Fatal(err)
		}
		later := &accounts.Note{OffsetMS: 9000, Body: "later", Author: u.Email, AuthorID: u.ID, CreatedAt: t0}
		sooner := &accounts.Note{OffsetMS: 1000, Body: "sooner", Author: "API token ci", CreatedAt: t0}
		for _, n := range []*accounts.Note{later, sooner} {
			if err := st.AddNote(ctx, s1, n); err != nil || n.ID == 0 {
				t.Fatalf("add %+v: %v", n, err)
			}
		}
		if err := st.AddNote(ctx, s2, &accounts.Note{Body: "elsewhere", Author: "x", CreatedAt: t0}); err != nil {
			t.Fatal(err)
		}
		list, err := st.Notes(ctx, s1)
		if err != nil || len(list) != 2 || list[0].ID != sooner.ID || list[0].AuthorID != 0 || list[1].AuthorID != u.ID || !list[1].CreatedAt.Equal(t0) {
			t.Fatalf("notes not in timeline order: %+v %v", list, err)
		}
		if list, _ := st.Notes(ctx, 999); list == nil || len(list) != 0 {
			t.Fatalf("notes of no session: %#v, want empty", list)
		}
		for _, tc := range []struct {
			name    string
			session int64
			id      int64
			want    error
		}{
			{"own session", s1, later.ID, nil},
			{"another session", s2, later.ID, accounts.ErrNotFound},
			{"unknown", s1, 999, accounts.ErrNotFound},
		} {
			t.Run("NoteByID "+tc.name, func(t *testing.T) {
				n, err := st.NoteByID(ctx, tc.session, tc.id)
				if !errors.Is(err, tc.want) || (err == nil && (n.Body != "later" || n.AuthorID != u.ID)) {
					t.Fatalf("got %+v %v, want %v", n, err, tc.want)
				}
			})
		}
		if err := st.DeleteNote(ctx, later.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := st.NoteByID(ctx, s1, later.ID); !errors.Is(err, accounts.ErrNotFound) {
			t.Fatalf("deleted note: %v", err)
		}
	})
}

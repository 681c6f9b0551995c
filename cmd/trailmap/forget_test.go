package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/trailmap/trailmap/internal/servertest"
)

type forgetReport struct {
	Person   string         `json:"person"`
	Sessions int            `json:"sessions"`
	Visitors int            `json:"visitors"`
	Objects  int            `json:"objects"`
	Rows     map[string]int `json:"rows"`
	Pending  int            `json:"pending_sessions"`
	Complete bool           `json:"complete"`
}

// forgetVisit posts a one-batch visit with a page, a click and, for user, an
// identify.
func forgetVisit(t *testing.T, s *servertest.Server, session, visitor, user string) {
	t.Helper()
	t0 := time.Now().UnixMilli()
	body := map[string]any{"session_id": session, "visitor_id": visitor, "seq": 0, "events": []json.RawMessage{
		json.RawMessage(fmt.Sprintf(`{"type":4,"timestamp":%d,"data":{"href":"https://shop.test/cart","width":1280,"height":800}}`, t0)),
		json.RawMessage(fmt.Sprintf(`{"type":2,"timestamp":%d,"data":{"node":{"type":0,"id":1,"childNodes":[{"type":2,"id":2,"tagName":"html","attributes":{},"childNodes":[{"type":2,"id":3,"tagName":"body","attributes":{},"childNodes":[]}]}]},"initialOffset":{"top":0,"left":0}}}`, t0+1)),
		json.RawMessage(fmt.Sprintf(`{"type":3,"timestamp":%d,"data":{"source":2,"type":2,"id":3,"x":10,"y":10}}`, t0+500)),
	}}
	if user != "" {
		body["user"] = map[string]any{"id": user}
	}
	b, _ := json.Marshal(body)
	if a := post(t, s.URL, s.WriteKey, "", b); a.Status != http.StatusAccepted {
		t.Fatalf("ingest %s: %d %v", session, a.Status, a.Body)
	}
}

// forgetAPI deletes a person through the API until nothing is pending.
func forgetAPI(t *testing.T, s *servertest.Server, person string) forgetReport {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		resp := s.Request(t, http.MethodDelete, "/api/v1/people/"+url.PathEscape(person)+"?project=test", nil)
		var rep forgetReport
		err := json.NewDecoder(resp.Body).Decode(&rep)
		resp.Body.Close()
		if err != nil || (resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusAccepted) {
			t.Fatalf("DELETE %s: %d, %v", person, resp.StatusCode, err)
		}
		if resp.StatusCode == http.StatusOK && rep.Complete && rep.Pending == 0 {
			return rep
		}
		if time.Now().After(deadline) {
			t.Fatalf("DELETE %s: still %+v after 30s", person, rep)
		}
	}
}

func TestForget_API(t *testing.T) {
	s := servertest.Start(t, "--session-idle", "1s")
	forgetVisit(t, s, "frank_laptop_1", "visitor_frank_laptop", "frank")
	forgetVisit(t, s, "frank_phone_01", "visitor_frank_phone", "frank")
	forgetVisit(t, s, "grace_visit_01", "visitor_grace_laptop", "")

	// A member of another project does not see the person's project.
	var other struct{ ID int64 }
	s.Admin(t, &other, "project", "create", "other")
	cmd := exec.Command(servertest.Bin(t), "user", "create", "member@example.com", "--projects", "other", "--data", s.DataDir)
	cmd.Stdin = strings.NewReader("correct horse battery\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("user create: %v\n%s", err, out)
	}
	member := loginClient(t, s.URL, "member@example.com", "correct horse battery")

	del := func(c *http.Client, csrf string) int {
		req, _ := http.NewRequest(http.MethodDelete, s.URL+"/api/v1/people/u:frank?project=test", nil)
		if csrf != "" {
			req.Header.Set("X-CSRF-Token", csrf)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := del(http.DefaultClient, ""); got != http.StatusUnauthorized {
		t.Errorf("anonymous: %d, want 401", got)
	}
	if got := del(member.Client, member.csrf); got != http.StatusNotFound {
		t.Errorf("member of another project: %d, want 404", got)
	}
	resp := s.Request(t, http.MethodDelete, "/api/v1/people/frank?project=test", nil)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("person id without kind: %d, want 400", resp.StatusCode)
	}

	rep := forgetAPI(t, s, "u:frank")
	if rep.Sessions != 2 || rep.Visitors != 2 || rep.Objects < 2 || rep.Rows["heat_clicks"] != 2 || rep.Rows["journey_visitors"] != 2 {
		t.Errorf("report %+v", rep)
	}
	if rep = forgetAPI(t, s, "u:frank"); rep.Sessions != 0 || rep.Objects != 0 || rep.Visitors != 0 {
		t.Errorf("second call: %+v", rep)
	}
	var list struct {
		Sessions []struct {
			ID string `json:"id"`
		} `json:"sessions"`
	}
	s.GetJSON(t, "/api/v1/sessions?project=test", &list)
	if len(list.Sessions) != 1 || list.Sessions[0].ID != "grace_visit_01" {
		t.Errorf("sessions after forget: %+v", list.Sessions)
	}

	// The command, with the server running, for the other person.
	var out forgetReport
	s.Admin(t, &out, "forget", "--project", "test", "--visitor", "visitor_grace_laptop")
	if out.Person != "v:visitor_grace_laptop" || out.Sessions != 1 || out.Visitors != 1 || out.Objects < 1 || !out.Complete {
		t.Errorf("trailmap forget: %+v", out)
	}
	s.Admin(t, &out, "forget", "--project", "test", "--visitor", "visitor_grace_laptop")
	if out.Sessions != 0 || out.Objects != 0 || !out.Complete {
		t.Errorf("trailmap forget again: %+v", out)
	}
	s.GetJSON(t, "/api/v1/sessions?project=test", &list)
	if len(list.Sessions) != 0 {
		t.Errorf("sessions left: %+v", list.Sessions)
	}
}

type loggedIn struct {
	*http.Client
	csrf string
}

var (
	csrfFieldRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
	csrfMetaRE  = regexp.MustCompile(`name="csrf-token" content="([^"]+)"`)
)

// loginClient logs in through the UI's form and returns a client with the
// cookie and the anti-forgery token for API calls.
func loginClient(t *testing.T, base, email, password string) loggedIn {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(path string) string {
		resp, err := c.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	m := csrfFieldRE.FindStringSubmatch(get("/login"))
	if m == nil {
		t.Fatal("login form has no csrf field")
	}
	resp, err := c.PostForm(base+"/login", url.Values{"email": {email}, "password": {password}, "csrf": {m[1]}, "next": {"/sessions"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("login: %d", resp.StatusCode)
	}
	meta := csrfMetaRE.FindStringSubmatch(get("/sessions"))
	if meta == nil {
		t.Fatal("no csrf token on the sessions page")
	}
	return loggedIn{Client: c, csrf: meta[1]}
}

// A person forgotten while the write-ahead log's file still holds their
// batches (another visitor's batches, not yet stored, keep the file) does
// not come back when a crash makes the server replay that file.
func TestForget_NotReplayed(t *testing.T) {
	s := servertest.Start(t, "--session-idle", "1s")
	stop := make(chan struct{})
	kept := make(chan int)
	go func() { // a visitor still recording: their batches pin the log file
		seq := 0
		defer func() { kept <- seq }()
		for {
			t0 := time.Now().UnixMilli()
			b, _ := json.Marshal(map[string]any{"session_id": "keeper_session", "visitor_id": "visitor_keeper", "seq": seq, "events": []json.RawMessage{
				json.RawMessage(fmt.Sprintf(`{"type":3,"timestamp":%d,"data":{"source":2,"type":2,"id":3,"x":1,"y":1}}`, t0))}})
			if a := post(t, s.URL, s.WriteKey, "", b); a.Status == http.StatusAccepted {
				seq++
			}
			select {
			case <-stop:
				return
			case <-time.After(300 * time.Millisecond):
			}
		}
	}()
	time.Sleep(500 * time.Millisecond)
	forgetVisit(t, s, "frank_laptop_1", "visitor_frank_laptop", "frank")
	rep := forgetAPI(t, s, "u:frank")
	close(stop)
	<-kept
	if rep.Sessions != 1 {
		t.Fatalf("forget: %+v", rep)
	}
	s.Kill(t)
	s.Restart(t)
	var list struct {
		Sessions []struct {
			ID string `json:"id"`
		} `json:"sessions"`
	}
	s.GetJSON(t, "/api/v1/sessions?project=test", &list)
	for _, x := range list.Sessions {
		if x.ID == "frank_laptop_1" {
			t.Errorf("the forgotten session is back after the restart: %+v", list.Sessions)
		}
	}
	if !strings.Contains(s.Logs(), "dropped logged batches of forgotten sessions") {
		t.Errorf("the restart replayed no batch of the forgotten session, so the test shows nothing")
	}
}

package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"testing"

	"github.com/trailmap/trailmap/internal/servertest"
)

const (
	browserUA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"
	crawlerUA = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
)

// ruleProject creates a project with recording rules and returns its write key.
func ruleProject(t *testing.T, s *servertest.Server, name, recording string) string {
	t.Helper()
	var p struct {
		WriteKey string `json:"write_key"`
	}
	s.Admin(t, &p, "project", "create", name)
	s.Admin(t, nil, "project", "settings", name, `{"recording": `+recording+`}`)
	return p.WriteKey
}

// postAs sends a batch with a User-Agent and returns the status and the
// "filtered" field of the answer.
func postAs(t *testing.T, s *servertest.Server, key, ua, session string, seq int, evs ...string) (int, string) {
	t.Helper()
	raws := make([]json.RawMessage, len(evs))
	for i, e := range evs {
		raws[i] = json.RawMessage(e)
	}
	req, _ := http.NewRequest(http.MethodPost, s.URL+"/api/v1/ingest", bytes.NewReader(batchBody(t, session, "visitor-rules-1", seq, raws)))
	req.Header.Set("X-Trailmap-Key", key)
	req.Header.Set("User-Agent", ua)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var a struct {
		Filtered string `json:"filtered"`
	}
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, &a); err != nil {
		t.Fatalf("answer %d %q", resp.StatusCode, b)
	}
	return resp.StatusCode, a.Filtered
}

func meta(path string) string {
	return fmt.Sprintf(`{"type":4,"timestamp":%d,"data":{"href":"https://shop.test%s","width":1280,"height":800}}`, 1700000000000+len(path), path)
}

const (
	snapshot = `{"type":2,"timestamp":1700000000100,"data":{"node":{"type":0,"childNodes":[],"id":1},"initialOffset":{"top":0,"left":0}}}`
	move     = `{"type":3,"timestamp":1700000000200,"data":{"source":1,"positions":[{"x":1,"y":2,"id":1,"timeOffset":0}]}}`
)

func listed(t *testing.T, s *servertest.Server, project string) map[string]bool {
	t.Helper()
	var out struct {
		Sessions []struct {
			ID string `json:"id"`
		} `json:"sessions"`
	}
	s.GetJSON(t, "/api/v1/sessions?limit=200&project="+project, &out)
	m := map[string]bool{}
	for _, x := range out.Sessions {
		m[x.ID] = true
	}
	return m
}

func TestRecordingRules(t *testing.T) {
	s := servertest.Start(t)

	t.Run("sampling is decided per session, the same after a restart", func(t *testing.T) {
		key := ruleProject(t, s, "sampled", `{"sample_rate": 0.5}`)
		decided := map[string]bool{}
		for i := 0; i < 40; i++ {
			sid := fmt.Sprintf("sample-session-%03d", i)
			for seq := 0; seq < 2; seq++ {
				st, f := postAs(t, s, key, browserUA, sid, seq, meta("/"), snapshot)
				if st != http.StatusAccepted {
					t.Fatalf("%s/%d: status %d", sid, seq, st)
				}
				kept := f == ""
				if f != "" && f != "sampled_out" {
					t.Fatalf("%s: filtered %q", sid, f)
				}
				if seq > 0 && kept != decided[sid] {
					t.Fatalf("%s: batch 0 kept %v, batch 1 kept %v", sid, decided[sid], kept)
				}
				decided[sid] = kept
			}
			// The rule is FNV-1a of the id as a share of 2^32: any node decides the same.
			h := fnv.New32a()
			h.Write([]byte(sid))
			if want := float64(h.Sum32()) < 0.5*(1<<32); decided[sid] != want {
				t.Fatalf("%s: kept %v, want %v", sid, decided[sid], want)
			}
		}
		in := 0
		got := listed(t, s, "sampled")
		for sid, kept := range decided {
			if got[sid] != kept {
				t.Errorf("%s: listed %v, kept %v", sid, got[sid], kept)
			}
			if kept {
				in++
			}
		}
		if in < 10 || in > 30 {
			t.Errorf("%d of 40 sessions in a 0.5 sample", in)
		}
		s.Restart(t)
		for sid, kept := range decided {
			if _, f := postAs(t, s, key, browserUA, sid, 2, move); (f == "") != kept {
				t.Fatalf("%s after a restart: filtered %q, kept before %v", sid, f, kept)
			}
		}
	})

	t.Run("events of denied pages are not stored", func(t *testing.T) {
		key := ruleProject(t, s, "denied", `{"deny_urls": ["/admin", "/*/account$"]}`)
		const sid = "deny-session-01"
		steps := []struct {
			evs      []string
			filtered string
		}{
			{[]string{meta("/shop"), snapshot, move, meta("/admin/users"), snapshot, move}, ""},
			{[]string{move, move}, "url_denied"}, // still on /admin
			{[]string{meta("/en/account"), snapshot}, "url_denied"},
			{[]string{meta("/en/account/orders"), snapshot, move}, ""}, // "$": only /en/account itself
		}
		for i, st := range steps {
			if code, f := postAs(t, s, key, browserUA, sid, i, st.evs...); code != http.StatusAccepted || f != st.filtered {
				t.Fatalf("batch %d: %d filtered %q, want %q", i, code, f, st.filtered)
			}
		}
		var got []string
		for _, ev := range events(t, s, sid, "") {
			got = append(got, string(ev))
		}
		all := strings.Join(got, "\n")
		if strings.Contains(all, "/admin") || strings.Contains(all, `/en/account"`) || len(got) != 6 {
			t.Fatalf("stored events (%d):\n%s", len(got), all)
		}
		var detail struct {
			Pages []struct {
				Path string `json:"path"`
			} `json:"pages"`
		}
		s.GetJSON(t, "/api/v1/sessions/"+sid, &detail)
		if len(detail.Pages) != 2 || detail.Pages[0].Path != "/shop" || detail.Pages[1].Path != "/en/account/orders" {
			t.Fatalf("pages %+v", detail.Pages)
		}
	})

	t.Run("bots are answered and not stored", func(t *testing.T) {
		key := ruleProject(t, s, "nobots", `{"drop_bots": true}`)
		before := metric(t, s, `trailmap_ingest_filtered_batches_total{rule="bot"}`)
		if code, f := postAs(t, s, key, crawlerUA, "bot-session-01", 0, meta("/"), snapshot); code != http.StatusAccepted || f != "bot" {
			t.Fatalf("crawler: %d filtered %q", code, f)
		}
		if code, f := postAs(t, s, key, "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0.0.0 Safari/537.36", "bot-session-02", 0, meta("/"), snapshot); code != http.StatusAccepted || f != "bot" {
			t.Fatalf("headless browser: %d filtered %q", code, f)
		}
		if code, f := postAs(t, s, key, browserUA, "human-session-1", 0, meta("/"), snapshot); code != http.StatusAccepted || f != "" {
			t.Fatalf("browser: %d filtered %q", code, f)
		}
		if got := listed(t, s, "nobots"); len(got) != 1 || !got["human-session-1"] {
			t.Fatalf("listed %v", got)
		}
		if after := metric(t, s, `trailmap_ingest_filtered_batches_total{rule="bot"}`); after == before {
			t.Fatalf("bot counter stayed at %v", after)
		}
		// Without the rule, a crawler is recorded as before.
		if _, f := postAs(t, s, s.WriteKey, crawlerUA, "bot-session-03", 0, meta("/"), snapshot); f != "" {
			t.Fatalf("project without drop_bots: filtered %q", f)
		}
	})

	t.Run("nothing is stored before the trigger", func(t *testing.T) {
		key := ruleProject(t, s, "triggered", `{"start_after": {"event": "signup"}}`)
		const sid = "trigger-session-1"
		signup := `{"type":5,"timestamp":1700000000300,"data":{"tag":"signup","payload":{}}}`
		for i, st := range []struct {
			evs      []string
			filtered string
		}{
			{[]string{meta("/"), snapshot, move}, "before_trigger"},
			{[]string{move, signup}, ""},
			{[]string{move}, ""}, // the session has started
		} {
			if _, f := postAs(t, s, key, browserUA, sid, i, st.evs...); f != st.filtered {
				t.Fatalf("batch %d: filtered %q, want %q", i, f, st.filtered)
			}
		}
		if n := len(events(t, s, sid, "")); n != 3 {
			t.Fatalf("%d events stored, want 3", n)
		}
	})

	t.Run("the script's config", func(t *testing.T) {
		key := ruleProject(t, s, "configured", `{"sample_rate": 0.3, "deny_urls": ["/admin"], "start_after": {"url": "/checkout"}}`)
		resp, err := http.Get(s.URL + "/api/v1/ingest/config?key=" + key)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		want := `{"sample_rate":0.3,"deny_urls":["/admin"],"start_after":{"url":"/checkout","buffer_ms":10000}}`
		if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(b)) != want {
			t.Fatalf("config: %d %s, want %s", resp.StatusCode, b, want)
		}
		resp, err = http.Get(s.URL + "/api/v1/ingest/config?key=nope")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("unknown key: %d", resp.StatusCode)
		}
	})

	t.Run("bad rules are not saved", func(t *testing.T) {
		cmd := exec.Command(servertest.Bin(t), "project", "settings", "test", `{"recording": {"sample_rate": 2}}`, "--data", s.DataDir)
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), "sample_rate") {
			t.Fatalf("accepted: %v %s", err, out)
		}
	})
}

package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trailmap/trailmap/cluster"
	"github.com/trailmap/trailmap/internal/miniotest"
	"github.com/trailmap/trailmap/internal/pgtest"
	"github.com/trailmap/trailmap/internal/servertest"
)

// clusterBatches are 50 visits of 8 batches each: a page with a button,
// clicks, a second page; phase names the visits.
func clusterBatches(t0 time.Time, phase string) [][]byte {
	var out [][]byte
	for v := range 50 {
		session := fmt.Sprintf("cluster-%s-%03d", phase, v)
		visitor := fmt.Sprintf("cluster-visitor-%03d", v%20)
		base := t0.Add(time.Duration(v) * time.Second).UnixMilli()
		for seq := range 8 {
			ts := base + int64(seq)*5000
			var evs []json.RawMessage
			if seq == 0 || seq == 5 {
				page := "/pricing"
				if seq == 5 {
					page = "/checkout"
				}
				evs = append(evs,
					json.RawMessage(fmt.Sprintf(`{"type":4,"timestamp":%d,"data":{"href":"https://shop.test%s","width":1280,"height":800}}`, ts, page)),
					json.RawMessage(fmt.Sprintf(`{"type":2,"timestamp":%d,"data":{"node":{"type":0,"id":1,"childNodes":[{"type":2,"id":2,"tagName":"html","attributes":{},"childNodes":[{"type":2,"id":3,"tagName":"body","attributes":{},"childNodes":[{"type":2,"id":4,"tagName":"button","attributes":{"id":"buy"},"childNodes":[]}]}]}]},"initialOffset":{"top":0,"left":0}}}`, ts+1)))
			}
			for k := range 3 {
				at := ts + 100 + int64(k)*1000
				evs = append(evs,
					json.RawMessage(fmt.Sprintf(`{"type":3,"timestamp":%d,"data":{"source":2,"type":1,"id":4,"x":%d,"y":%d}}`, at-50, 100+k*40, 200+v)),
					json.RawMessage(fmt.Sprintf(`{"type":3,"timestamp":%d,"data":{"source":2,"type":2,"id":4,"x":%d,"y":%d}}`, at, 100+k*40, 200+v)),
					json.RawMessage(fmt.Sprintf(`{"type":5,"timestamp":%d,"data":{"tag":"n","payload":{"v":%d,"seq":%d,"k":%d}}}`, at+1, v, seq, k)))
			}
			b, _ := json.Marshal(map[string]any{"session_id": session, "visitor_id": visitor, "seq": seq, "events": evs})
			out = append(out, b)
		}
	}
	return out
}

// postBatch sends one batch, with ?session= when routed is set (as
// recorder.js does; other clients' batches are routed by their body); a
// failed connection is status 0.
func postBatch(url, key string, body []byte, routed bool) (int, string) {
	if routed {
		var b struct {
			SessionID string `json:"session_id"`
		}
		_ = json.Unmarshal(body, &b)
		url += "/api/v1/ingest?session=" + b.SessionID
	} else {
		url += "/api/v1/ingest"
	}
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Trailmap-Key", key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1000))
	return resp.StatusCode, string(b)
}

// clusterView is what a run shows through the API once every node has
// stored what it took.
type clusterView struct {
	Sessions map[string][3]int64 // id → events, pages, duration ms
	Events   map[string]string   // id → events stream
	Heat     map[string]string   // page → its click map (JSON)
	Clicks   int64               // clicks on both pages' maps
	Funnel   string              // /pricing → /checkout (JSON)
	Paths    string              // pages after /pricing (JSON)
}

func viewOf(t *testing.T, s *servertest.Server) clusterView {
	t.Helper()
	v := clusterView{Sessions: map[string][3]int64{}, Events: map[string]string{}, Heat: map[string]string{}}
	var list struct {
		Sessions []struct {
			ID         string `json:"id"`
			Events     int64  `json:"events"`
			Pages      int64  `json:"page_count"`
			DurationMS int64  `json:"duration_ms"`
		} `json:"sessions"`
	}
	s.GetJSON(t, "/api/v1/sessions?limit=200", &list)
	span := "&from=" + time.Now().Add(-48*time.Hour).UTC().Format(time.RFC3339) + "&to=" + time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	for _, page := range []string{"/pricing", "/checkout"} {
		var hm json.RawMessage
		s.GetJSON(t, "/api/v1/heatmaps/clicks?url=https://shop.test"+page+span, &hm)
		v.Heat[page] = string(hm) // normalised below
		var n struct {
			Clicks int64 `json:"clicks"`
		}
		_ = json.Unmarshal(hm, &n)
		v.Clicks += n.Clicks
	}
	read := func(method, path string, body []byte) string {
		resp := s.Request(t, method, path, body)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, b)
		}
		return string(b)
	}
	// The query's own time range and duration differ between runs.
	normal := func(js string) string {
		var m map[string]any
		if err := json.Unmarshal([]byte(js), &m); err != nil {
			t.Fatalf("%v in %s", err, js)
		}
		delete(m, "from")
		delete(m, "to")
		delete(m, "took_ms")
		b, _ := json.Marshal(m)
		return string(b)
	}
	v.Funnel = read(http.MethodPost, "/api/v1/funnels/query", []byte(fmt.Sprintf(
		`{"project":%d,"steps":[{"type":"page","match":"/pricing"},{"type":"page","match":"/checkout"}]}`, s.ProjectID)))
	v.Paths = read(http.MethodGet, fmt.Sprintf("/api/v1/paths?project=%d&page=/pricing&direction=next", s.ProjectID), nil)
	v.Funnel, v.Paths = normal(v.Funnel), normal(v.Paths)
	for page, hm := range v.Heat {
		v.Heat[page] = normal(hm)
	}
	for _, x := range list.Sessions {
		v.Sessions[x.ID] = [3]int64{x.Events, x.Pages, x.DurationMS}
		v.Events[x.ID] = read(http.MethodGet, "/api/v1/sessions/"+x.ID+"/events", nil)
	}
	return v
}

// sameStored compares what two runs store: the sessions list and every
// session's events.
func sameStored(t *testing.T, got, want clusterView, n int) {
	t.Helper()
	if len(want.Sessions) != n || len(got.Sessions) != n {
		t.Fatalf("the cluster lists %d sessions, one node %d, want %d", len(got.Sessions), len(want.Sessions), n)
	}
	ids := make([]string, 0, len(want.Sessions))
	for id := range want.Sessions {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		if got.Sessions[id] != want.Sessions[id] {
			t.Errorf("session %s: cluster %v, one node %v (events, pages, duration)", id, got.Sessions[id], want.Sessions[id])
		}
		if got.Events[id] != want.Events[id] {
			t.Errorf("session %s: the cluster's events differ from one node's (%d and %d bytes)", id, len(got.Events[id]), len(want.Events[id]))
		}
	}
}

// Three nodes on one PostgreSQL and one MinIO bucket behind a round-robin
// proxy take the batches of 50 visits, each visit's batches spread over
// the nodes and sent several at once: the sessions list, every session's
// events, the click maps, a funnel and the paths equal those of one node
// given the same batches (the nodes route each session to one node, which
// derives its facts in seq order). Then 50 more visits while one node is
// killed (SIGKILL) and started again: every acknowledged batch is stored
// exactly once and every click counted once.
func TestCluster_ThreeNodesAndAKill(t *testing.T) {
	mc := miniotest.Shared(t)
	flags := func(bucket string, cluster bool) []string {
		c := mc.Config(t)
		f := []string{"--s3-endpoint", c.Endpoint, "--s3-bucket", bucket, "--s3-access-key", c.AccessKey, "--s3-secret-key", c.SecretKey,
			"--retention-days", "0", "--assets=false", "--render-workers=0"}
		if cluster {
			// Four facts workers per node: their facts must equal one
			// node's with one.
			f = append(f, "--advertise-url", servertest.SelfURL, "--cluster-secret", "cluster-test-secret-0123456789", "--facts-workers", "4")
		}
		return f
	}
	bucket := mc.Config(t).Bucket
	t0 := time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
	phaseA, phaseB := clusterBatches(t0, "a"), clusterBatches(t0.Add(10*time.Minute), "b")

	// The cluster.
	n1 := servertest.StartOn(t, pgtest.Shared(t).Database(t), flags(bucket+"-c", true)...)
	nodes := []*servertest.Server{n1, servertest.JoinOn(t, n1, flags(bucket+"-c", true)...), servertest.JoinOn(t, n1, flags(bucket+"-c", true)...)}
	var next atomic.Int64
	proxies := make([]*httputil.ReverseProxy, len(nodes))
	for i, n := range nodes {
		u, _ := url.Parse(n.URL)
		proxies[i] = httputil.NewSingleHostReverseProxy(u)
		proxies[i].ErrorLog = log.New(io.Discard, "", 0) // a killed node's refusals are expected
	}
	lb := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		proxies[next.Add(1)%int64(len(nodes))].ServeHTTP(w, r)
	}))
	defer lb.Close()

	// Senders: 8 at once, so a visit's batches go out together; each
	// batch is retried until acknowledged (a killed node answers 502
	// through the proxy, and the others 503 for its sessions until they
	// take them over). Half the visits name their session in the URL.
	send := func(url, key string, bs [][]byte) {
		var wg sync.WaitGroup
		work := make(chan int)
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range work {
					deadline := time.Now().Add(30 * time.Second)
					for {
						status, body := postBatch(url, key, bs[i], (i/8)%2 == 0)
						if status == http.StatusAccepted {
							break
						}
						if time.Now().After(deadline) {
							t.Errorf("batch not acknowledged in 30 s: %d %s", status, body)
							break
						}
						time.Sleep(50 * time.Millisecond)
					}
				}
			}()
		}
		for i := range bs {
			work <- i
		}
		close(work)
		wg.Wait()
	}
	// settle stops every node (each stores and observes what it holds)
	// and starts them again.
	settle := func(ns ...*servertest.Server) {
		for _, n := range ns {
			n.Stop(t)
		}
		for _, n := range ns {
			n.Resume(t)
		}
	}

	began := time.Now()
	send(lb.URL, n1.WriteKey, phaseA)
	t.Logf("phase a: %d batches through the proxy in %s", len(phaseA), time.Since(began).Round(time.Millisecond))
	// A batch whose URL names another session than its body is refused.
	req, _ := http.NewRequest(http.MethodPost, lb.URL+"/api/v1/ingest?session=cluster-a-001", bytes.NewReader(phaseA[0]))
	req.Header.Set("X-Trailmap-Key", n1.WriteKey)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusBadRequest {
		t.Errorf("a batch routed by another session than its own: %v %v, want 400", resp, err)
	} else {
		resp.Body.Close()
	}
	logCounters(t, nodes) // batches observed out of order explain a click map that differs
	// The operator's view: three nodes alive, every visit claimed by one.
	st := clusterStatusOf(t, n1)
	var claimed int64
	for _, n := range st.Nodes {
		claimed += n.Sessions
		if n.State != "alive" {
			t.Errorf("cluster status: node %s %s, want alive", n.Node, n.State)
		}
	}
	if len(st.Nodes) != 3 || claimed != 50 || st.Orphaned != 0 {
		t.Errorf("cluster status: %d nodes, %d sessions claimed, %d orphaned; want 3, 50, 0", len(st.Nodes), claimed, st.Orphaned)
	}
	settle(nodes...)
	gotA := viewOf(t, n1)

	single := servertest.StartOn(t, pgtest.Shared(t).Database(t), flags(bucket+"-s", false)...)
	send(single.URL, single.WriteKey, phaseA)
	settle(single)
	wantA := viewOf(t, single)
	sameStored(t, gotA, wantA, 50)
	for page, heat := range wantA.Heat {
		if gotA.Heat[page] != heat {
			t.Errorf("click map of %s: cluster\n%s\none node\n%s", page, gotA.Heat[page], heat)
		}
	}
	if wantA.Clicks != 50*8*3 {
		t.Errorf("one node counts %d clicks, want %d", wantA.Clicks, 50*8*3)
	}
	if gotA.Funnel != wantA.Funnel {
		t.Errorf("funnel: cluster %s, one node %s", gotA.Funnel, wantA.Funnel)
	}
	if gotA.Paths != wantA.Paths {
		t.Errorf("paths: cluster %s, one node %s", gotA.Paths, wantA.Paths)
	}

	// Phase b: every visit's first four batches; node 2 killed; the next
	// two of each (its sessions are taken over once it is stale); node 2
	// started again; the last two.
	bySeq := func(from, to int) (out [][]byte) {
		for i, b := range phaseB {
			if seq := i % 8; seq >= from && seq < to {
				out = append(out, b)
			}
		}
		return out
	}
	began = time.Now()
	send(lb.URL, n1.WriteKey, bySeq(0, 4))
	nodes[1].Kill(t)
	send(lb.URL, n1.WriteKey, bySeq(4, 6))
	// The killed node is stale (its phase b visits were taken over as
	// their batches came; its phase a ones are left to the next batch).
	st = clusterStatusOf(t, n1)
	for _, n := range st.Nodes {
		if want := map[bool]string{true: "stale", false: "alive"}[n.Node == nodes[1].URL]; n.State != want {
			t.Errorf("cluster status with node 2 killed: node %s %s, want %s", n.Node, n.State, want)
		}
	}
	if st.Orphaned == 0 {
		t.Error("cluster status with node 2 killed: no orphaned session")
	}
	nodes[1].Resume(t)
	send(lb.URL, n1.WriteKey, bySeq(6, 8))
	t.Logf("phase b (a node killed and started again): %d batches acknowledged in %s", len(phaseB), time.Since(began).Round(time.Millisecond))
	time.Sleep(2 * time.Second)
	logCounters(t, nodes)
	settle(nodes...)
	gotB := viewOf(t, n1)
	send(single.URL, single.WriteKey, phaseB)
	settle(single)
	wantB := viewOf(t, single)
	sameStored(t, gotB, wantB, 100)
	if gotB.Clicks != wantB.Clicks {
		t.Errorf("clicks on the maps: cluster %d, one node %d", gotB.Clicks, wantB.Clicks)
	}
	if gotB.Funnel != wantB.Funnel {
		t.Errorf("funnel after the kill: cluster %s, one node %s", gotB.Funnel, wantB.Funnel)
	}
	for page, heat := range wantB.Heat {
		if gotB.Heat[page] != heat {
			t.Logf("click map of %s after the kill (sessions taken over resume from what the index keeps):\ncluster  %s\none node %s", page, summary(gotB.Heat[page]), summary(heat))
		}
	}
	if !strings.Contains(nodes[0].Logs()+nodes[2].Logs(), "took over a session") {
		t.Error("no node took over a session of the killed node")
	}
}

// clusterStatusOf runs `trailmap cluster status` on s's index.
func clusterStatusOf(t *testing.T, s *servertest.Server) cluster.Status {
	t.Helper()
	var st cluster.Status
	s.Admin(t, &st, "cluster", "status")
	t.Logf("cluster status: %+v", st.Nodes)
	return st
}

// logCounters logs the nodes' cluster counters and how many batches each
// observed out of order.
func logCounters(t *testing.T, nodes []*servertest.Server) {
	t.Helper()
	for i, n := range nodes {
		resp, err := http.Get(n.URL + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, "trailmap_observe_out_of_order_total") || strings.HasPrefix(line, "trailmap_cluster_") {
				t.Logf("node %d: %s", i+1, line)
			}
		}
	}
}

// summary is a click map's counts: page views, clicks, rage, dead and error
// clicks, and clicks per element.
func summary(js string) string {
	var m struct {
		Pageviews, Clicks, RageClicks, DeadClicks, ErrorClicks int64
		Elements                                               []struct {
			Selector string
			Clicks   int64
		}
	}
	_ = json.Unmarshal([]byte(strings.NewReplacer("_clicks", "clicks").Replace(js)), &m)
	out := fmt.Sprintf("views %d clicks %d rage %d dead %d error %d;", m.Pageviews, m.Clicks, m.RageClicks, m.DeadClicks, m.ErrorClicks)
	for _, e := range m.Elements {
		out += fmt.Sprintf(" %q %d", e.Selector, e.Clicks)
	}
	return out
}

package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"reflect"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trailmap/trailmap/internal/miniotest"
	"github.com/trailmap/trailmap/internal/pgtest"
	"github.com/trailmap/trailmap/internal/servertest"
)

// clusterBatches are 50 visits of 8 batches each: a page with a button,
// clicks, a second page.
func clusterBatches(t0 time.Time) [][]byte {
	var out [][]byte
	for v := range 50 {
		session := fmt.Sprintf("cluster-session-%03d", v)
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

// postBatch sends one batch; a failed connection is status 0.
func postBatch(url, key string, body []byte) (int, string) {
	req, _ := http.NewRequest(http.MethodPost, url+"/api/v1/ingest", bytes.NewReader(body))
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
	// Heat is the click map of /pricing: page views, clicks (facts, which
	// the cluster does not derive in session order yet: logged, not
	// compared).
	Heat [2]int64
}

func viewOf(t *testing.T, s *servertest.Server) clusterView {
	t.Helper()
	v := clusterView{Sessions: map[string][3]int64{}, Events: map[string]string{}}
	var list struct {
		Sessions []struct {
			ID         string `json:"id"`
			Events     int64  `json:"events"`
			Pages      int64  `json:"page_count"`
			DurationMS int64  `json:"duration_ms"`
		} `json:"sessions"`
	}
	s.GetJSON(t, "/api/v1/sessions?limit=200", &list)
	var hm struct {
		Pageviews int64 `json:"pageviews"`
		Clicks    int64 `json:"clicks"`
	}
	s.GetJSON(t, "/api/v1/heatmaps/clicks?url=https://shop.test/pricing&from="+time.Now().Add(-48*time.Hour).UTC().Format(time.RFC3339)+
		"&to="+time.Now().Add(time.Hour).UTC().Format(time.RFC3339), &hm)
	v.Heat = [2]int64{hm.Pageviews, hm.Clicks}
	for _, x := range list.Sessions {
		v.Sessions[x.ID] = [3]int64{x.Events, x.Pages, x.DurationMS}
		resp := s.Request(t, http.MethodGet, "/api/v1/sessions/"+x.ID+"/events", nil)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		v.Events[x.ID] = string(b)
	}
	return v
}

// Three nodes on one PostgreSQL and one MinIO bucket behind a round-robin
// proxy take the batches of 50 visits, each visit's batches spread over
// the nodes; one node is killed (SIGKILL) half way and started again.
// Every acknowledged batch is stored exactly once: the sessions list and
// every session's events equal those of one node given the same batches.
func TestCluster_ThreeNodesAndAKill(t *testing.T) {
	mc := miniotest.Shared(t)
	s3flags := func(bucket string) []string {
		c := mc.Config(t)
		return []string{"--s3-endpoint", c.Endpoint, "--s3-bucket", bucket, "--s3-access-key", c.AccessKey, "--s3-secret-key", c.SecretKey,
			"--retention-days", "0", "--assets=false", "--render-workers=0"}
	}
	bucket := mc.Config(t).Bucket
	t0 := time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
	batches := clusterBatches(t0)

	// The cluster.
	n1 := servertest.StartOn(t, pgtest.Shared(t).Database(t), s3flags(bucket+"-c")...)
	nodes := []*servertest.Server{n1, servertest.JoinOn(t, n1, s3flags(bucket+"-c")...), servertest.JoinOn(t, n1, s3flags(bucket+"-c")...)}
	var next atomic.Int64
	proxies := make([]*httputil.ReverseProxy, len(nodes))
	for i, n := range nodes {
		u, _ := url.Parse(n.URL)
		proxies[i] = httputil.NewSingleHostReverseProxy(u)
	}
	lb := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		proxies[next.Add(1)%int64(len(nodes))].ServeHTTP(w, r)
	}))
	defer lb.Close()

	// Senders: 8 at once, each batch retried until acknowledged (a killed
	// node answers 502 through the proxy; the next try goes elsewhere).
	send := func(url, key string, bs [][]byte) (acked int64) {
		var wg sync.WaitGroup
		var n atomic.Int64
		work := make(chan []byte)
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for b := range work {
					for try := 0; ; try++ {
						status, body := postBatch(url, key, b)
						if status == http.StatusAccepted {
							n.Add(1)
							break
						}
						if try > 100 {
							t.Errorf("batch not acknowledged after %d tries: %d %s", try, status, body)
							break
						}
						time.Sleep(20 * time.Millisecond)
					}
				}
			}()
		}
		for _, b := range bs {
			work <- b
		}
		close(work)
		wg.Wait()
		return n.Load()
	}
	half := len(batches) / 2
	began := time.Now()
	send(lb.URL, n1.WriteKey, batches[:half])
	t.Logf("%d batches through the proxy in %s", half, time.Since(began).Round(time.Millisecond))
	nodes[1].Kill(t)
	send(lb.URL, n1.WriteKey, batches[half:half+half/2])
	nodes[1].Resume(t)
	send(lb.URL, n1.WriteKey, batches[half+half/2:])
	t.Logf("all %d batches acknowledged after %s", len(batches), time.Since(began).Round(time.Millisecond))
	// Every node stores what it holds; one reads it all back.
	for _, n := range nodes {
		n.Stop(t)
	}
	n1.Resume(t)
	got := viewOf(t, n1)

	// One node, the same batches in the same order.
	single := servertest.StartOn(t, pgtest.Shared(t).Database(t), s3flags(bucket+"-s")...)
	send(single.URL, single.WriteKey, batches)
	single.Stop(t)
	single.Resume(t)
	want := viewOf(t, single)

	if len(want.Sessions) != 50 {
		t.Fatalf("single node lists %d sessions, want 50", len(want.Sessions))
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
	t.Logf("heatmap of /pricing (page views, clicks): cluster %v, one node %v", got.Heat, want.Heat)
	if !reflect.DeepEqual(len(got.Sessions), len(want.Sessions)) {
		t.Errorf("cluster lists %d sessions, one node %d", len(got.Sessions), len(want.Sessions))
	}
}

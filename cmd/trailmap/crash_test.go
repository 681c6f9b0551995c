package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/trailmap/trailmap/internal/servertest"
)

// TestCrash_KillDuringIngest kills the server with SIGKILL in the middle of
// heavy concurrent ingest, three times, with segment flushes running. After
// each restart the clients resend what was not acknowledged (as the browser
// recorder does); in the end every batch is stored exactly once, in order.
func TestCrash_KillDuringIngest(t *testing.T) {
	s := servertest.Start(t, "--segment-max-age", "150ms", "--segment-max-bytes", "20000")
	const sessions = 24
	snapshot := fixtures(t)["example.json"]

	type client struct {
		id    string
		next  int          // next seq to send
		acked map[int]bool // seqs acknowledged
	}
	clients := make([]*client, sessions)
	for i := range clients {
		clients[i] = &client{id: fmt.Sprintf("crash_session_%03d", i), acked: map[int]bool{}}
	}
	batch := func(c *client, seq int) []byte {
		evs := []json.RawMessage{}
		if seq == 0 {
			evs = append(evs, snapshot...)
		}
		for i := range 20 {
			evs = append(evs, json.RawMessage(fmt.Sprintf(
				`{"type":5,"timestamp":%d,"data":{"tag":"mark","payload":{"s":%q,"seq":%d,"i":%d,"pad":"%0200d"}}}`,
				1700000000000+int64(seq*100+i), c.id, seq, i, 0)))
		}
		return batchBody(t, c.id, "crash_visitor", seq, evs)
	}
	hc := &http.Client{Timeout: 5 * time.Second}
	send := func(c *client, seq int) bool {
		req, _ := http.NewRequest(http.MethodPost, s.URL+"/api/v1/ingest", bytes.NewReader(batch(c, seq)))
		req.Header.Set("X-Trailmap-Key", s.WriteKey)
		req.Header.Set("Content-Type", "application/json")
		resp, err := hc.Do(req)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusAccepted
	}

	for round := range 3 {
		// Resend everything not acknowledged so far, then keep sending new
		// batches until the kill.
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		var mu sync.Mutex
		for _, c := range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for seq := 0; seq < c.next; seq++ {
					mu.Lock()
					done := c.acked[seq]
					mu.Unlock()
					if !done && ctx.Err() == nil && send(c, seq) {
						mu.Lock()
						c.acked[seq] = true
						mu.Unlock()
					}
				}
				for ctx.Err() == nil {
					mu.Lock()
					seq := c.next
					c.next++
					mu.Unlock()
					if send(c, seq) {
						mu.Lock()
						c.acked[seq] = true
						mu.Unlock()
					}
				}
			}()
		}
		time.Sleep(700 * time.Millisecond) // let ingest and flushes run; the kill lands mid-flight
		s.Kill(t)
		cancel()
		wg.Wait()
		acked := 0
		for _, c := range clients {
			acked += len(c.acked)
		}
		t.Logf("round %d: killed after %d acknowledged batches", round, acked)
		s.Restart(t)
	}

	// Final resend of anything unacknowledged, so every batch exists.
	for _, c := range clients {
		for seq := 0; seq < c.next; seq++ {
			if !c.acked[seq] {
				if !send(c, seq) {
					t.Fatalf("resend %s seq %d failed", c.id, seq)
				}
				c.acked[seq] = true
			}
		}
	}
	s.Restart(t) // flush into segments: check the stored form too

	for _, c := range clients {
		evs := events(t, s, c.id, "")
		counts := map[[2]int]int{}
		lastSeq := -1
		for _, raw := range evs {
			var ev struct {
				Type int `json:"type"`
				Data struct {
					Tag     string `json:"tag"`
					Payload struct {
						Seq int `json:"seq"`
						I   int `json:"i"`
					} `json:"payload"`
				} `json:"data"`
			}
			if err := json.Unmarshal(raw, &ev); err != nil {
				t.Fatal(err)
			}
			if ev.Data.Tag != "mark" {
				continue
			}
			k := [2]int{ev.Data.Payload.Seq, ev.Data.Payload.I}
			counts[k]++
			if ev.Data.Payload.Seq < lastSeq {
				t.Errorf("%s: seq %d after seq %d", c.id, ev.Data.Payload.Seq, lastSeq)
			}
			lastSeq = ev.Data.Payload.Seq
		}
		for seq := range c.next {
			for i := range 20 {
				if n := counts[[2]int{seq, i}]; n != 1 {
					t.Fatalf("%s seq %d event %d stored %d times, want exactly once", c.id, seq, i, n)
				}
			}
		}
		if len(counts) != c.next*20 {
			t.Fatalf("%s: %d distinct events, want %d", c.id, len(counts), c.next*20)
		}
	}
}

package rrwebgen

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
)

// Workload is a set of recorded sessions as browsers send them: ingest
// bodies, gzip-compressed, batch by batch.
type Workload struct {
	Bodies [][][]byte // [session][seq] gzip-compressed ingest body
	Raw    []byte     // every body decompressed, concatenated
	Events int
}

// Batches counts the bodies.
func (w *Workload) Batches() int {
	n := 0
	for _, s := range w.Bodies {
		n += len(s)
	}
	return n
}

// NewWorkload records sessions of batches 5 s batches each (the first with a
// page of about 2,000 nodes), with session ids "<tag>_00000"….
func NewWorkload(sessions, batches int, tag string) *Workload {
	w := &Workload{Bodies: make([][][]byte, sessions)}
	var raw bytes.Buffer
	for i := range sessions {
		g := New(uint64(i+1), 1_764_000_000_000)
		for seq := range batches {
			var evs []json.RawMessage
			if seq == 0 {
				evs = g.Page(2000)
			}
			evs = append(evs, g.Activity(5)...)
			w.Events += len(evs)
			body, err := json.Marshal(map[string]any{"session_id": fmt.Sprintf("%s_%05d", tag, i), "visitor_id": fmt.Sprintf("%s_visitor_%05d", tag, i), "seq": seq, "events": evs})
			if err != nil {
				panic(err)
			}
			raw.Write(body)
			var gz bytes.Buffer
			zw := gzip.NewWriter(&gz)
			zw.Write(body)
			zw.Close()
			w.Bodies[i] = append(w.Bodies[i], gz.Bytes())
		}
	}
	w.Raw = raw.Bytes()
	return w
}

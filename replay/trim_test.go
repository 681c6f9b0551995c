package replay

import (
	"encoding/json"
	"testing"

	"github.com/trailmap/trailmap/internal/rrweb"
)

func TestDrawsFrame(t *testing.T) {
	for _, tc := range []struct {
		ev   string
		want bool
	}{
		{`{"type":4,"timestamp":1,"data":{"href":"https://x/","width":1,"height":1}}`, true},
		{`{"type":2,"timestamp":1,"data":{"node":{}}}`, true},
		{`{"type":3,"timestamp":1,"data":{"source":0,"adds":[],"removes":[],"texts":[],"attributes":[]}}`, true}, // mutation
		{`{"type":3,"timestamp":1,"data":{"source":3,"id":1,"x":0,"y":900}}`, true},                              // scroll
		{`{"type":3,"timestamp":1,"data":{"source":4,"width":390,"height":844}}`, true},                          // viewport
		{`{"type":3,"timestamp":1,"data":{"source":8,"id":3,"adds":[]}}`, true},                                  // style sheet rule
		{`{"type":3,"timestamp":1,"data":{"id":3,"source":13}}`, true},                                           // style declaration, source last
		{`{"type":3,"timestamp":1,"data":{"source":1,"positions":[]}}`, false},                                   // mouse move
		{`{"type":3,"timestamp":1,"data":{"source":2,"type":2,"id":4,"x":1,"y":1}}`, false},                      // click
		{`{"type":3,"timestamp":1,"data":{"source":5,"id":7,"text":"***","isChecked":false}}`, false},            // input
		{`{"type":3,"timestamp":1,"data":{"source":11,"level":"log","payload":[]}}`, false},                      // console log
		{`{"type":5,"timestamp":1,"data":{"tag":"checkout","payload":{}}}`, false},
		{`{"type":6,"timestamp":1,"data":{"plugin":"rrweb/console@1","payload":{}}}`, false},
		{`{"type":3,"timestamp":1,"data":{}}`, true}, // unknown: kept
	} {
		if got := drawsFrame(rrweb.Split(json.RawMessage(tc.ev))); got != tc.want {
			t.Errorf("drawsFrame(%s) = %v, want %v", tc.ev, got, tc.want)
		}
	}
}

package journey

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
)

// FuzzParseSegment: any input is either a segment or an ErrInvalid (the API
// answers 400 with it), never a panic or another error; a segment it
// accepts survives a JSON round trip unchanged, as saved segments do.
func FuzzParseSegment(f *testing.F) {
	for _, s := range []string{
		``, `{}`, `   `, `null`, `[]`, `{"and":[]}`, `{"and":`, `{"feild":"device"}`,
		`{"field":"device","value":"mobile"}`,
		`{"field":"device","op":"in","value":["tablet","desktop"]}`,
		`{"field":"device","value":"mobile","and":[{}]}`,
		`{"field":"browser","op":"contains","value":"fire"}`,
		`{"field":"converted","value":true,"scope":"person"}`,
		`{"field":"entry_page","op":"matches","value":"/blog/*"}`,
		`{"field":"page","op":"eq","value":"/' OR 1=1 --"}`,
		`{"field":"page","op":"matches","value":"/x","scope":"world"}`,
		`{"field":"referrer_host","op":"exists","value":false}`,
		`{"field":"search","op":"exists","value":true}`,
		`{"field":"visits","op":"gte","value":"three"}`,
		`{"field":"visits","op":"eq","value":3}`,
		`{"field":"duration","op":"gt","value":1e308}`,
		`{"field":"rage_clicks","op":"gt","value":-1}`,
		`{"field":"user_id","value":"u-i"}`,
		`{"field":"visitor_type","value":"returning"}`,
		`{"not":{"not":{"not":{"not":{"not":{"not":{"not":{}}}}}}}}`,
		`{"and":[{"or":[{"field":"device","value":"mobile"},{"field":"device","value":"tablet"}]},{"not":{"field":"identified","value":true}}]}`,
		`{"or":[{},{},{}]} {"and":[]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		seg, err := ParseSegment(raw)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("ParseSegment(%q): %v, not ErrInvalid", raw, err)
			}
			return
		}
		if len(bytes.TrimSpace(raw)) > 0 && !json.Valid(raw) {
			t.Fatalf("ParseSegment(%q) accepted input that is not one JSON value", raw)
		}
		b, err := json.Marshal(seg)
		if err != nil {
			t.Fatalf("marshal accepted segment: %v", err)
		}
		again, err := ParseSegment(b)
		if err != nil {
			t.Fatalf("ParseSegment(%q) accepted, its JSON %s refused: %v", raw, b, err)
		}
		b2, _ := json.Marshal(again)
		if !bytes.Equal(b, b2) {
			t.Fatalf("round trip changed the segment:\n %s\n %s", b, b2)
		}
	})
}

package recorder

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/trailmap/trailmap/internal/rrweb"
)

const (
	testSession = "sess_0123456789"
	testVisitor = "vis-ABCDEFGH"
)

// batchBody wraps raw events JSON in a batch envelope.
func batchBody(events string) []byte {
	return []byte(`{"session_id":"` + testSession + `","visitor_id":"` + testVisitor + `","seq":0,"events":` + events + `}`)
}

const okEvent = `{"type":3,"data":{"source":1},"timestamp":1700000000000}`

func TestParseBatch_errors(t *testing.T) {
	lim := DefaultLimits()
	lim.MaxEvents = 3
	lim.MaxEventBytes = 200
	ok := okEvent
	env := func(fields string) []byte { return []byte("{" + fields + "}") }
	tests := []struct {
		name string
		body []byte
		want error
		msg  string // part of the message
	}{
		{name: "empty body", body: nil, want: ErrMalformed, msg: "must be a JSON object, got nothing"},
		{name: "not JSON", body: []byte("hello"), want: ErrMalformed},
		{name: "array instead of object", body: []byte("[" + ok + "]"), want: ErrMalformed, msg: "got array"},
		{name: "string instead of object", body: []byte(`"x"`), want: ErrMalformed, msg: "got string"},
		{name: "truncated", body: batchBody("[" + ok + "]")[:60], want: ErrMalformed, msg: "invalid JSON"},
		{name: "truncated in event", body: batchBody(`[{"type":3,"timestamp":1,"data":{"x":"abc`), want: ErrMalformed, msg: "unterminated string"},
		{name: "trailing data", body: append(batchBody("["+ok+"]"), " x"...), want: ErrMalformed, msg: "after the batch"},
		{name: "two objects", body: append(batchBody("["+ok+"]"), batchBody("["+ok+"]")...), want: ErrMalformed},
		{name: "invalid UTF-8", body: batchBody(`[{"type":3,"timestamp":1,"data":"` + "\xff\xfe" + `"}]`), want: ErrMalformed, msg: "UTF-8"},
		{name: "trailing comma in object", body: env(`"session_id":"` + testSession + `",}`), want: ErrMalformed},
		{name: "single quotes", body: []byte(`{'session_id':'x'}`), want: ErrMalformed},
		{name: "missing colon", body: []byte(`{"session_id" "x"}`), want: ErrMalformed},
		{name: "missing session_id", body: env(`"visitor_id":"` + testVisitor + `","seq":0,"events":[` + ok + `]`), want: ErrInvalidID, msg: "session_id is required"},
		{name: "missing visitor_id", body: env(`"session_id":"` + testSession + `","seq":0,"events":[` + ok + `]`), want: ErrInvalidID, msg: "visitor_id is required"},
		{name: "session_id too short", body: env(`"session_id":"abc","visitor_id":"` + testVisitor + `","seq":0,"events":[` + ok + `]`), want: ErrInvalidID, msg: "[A-Za-z0-9_-]{8,64}"},
		{name: "session_id too long", body: env(`"session_id":"` + strings.Repeat("a", 65) + `","visitor_id":"` + testVisitor + `","seq":0,"events":[` + ok + `]`), want: ErrInvalidID},
		{name: "session_id bad character", body: env(`"session_id":"abcdefg!h","visitor_id":"` + testVisitor + `","seq":0,"events":[` + ok + `]`), want: ErrInvalidID},
		{name: "session_id with escaped slash", body: env(`"session_id":"abcd\/efgh","visitor_id":"` + testVisitor + `","seq":0,"events":[` + ok + `]`), want: ErrInvalidID},
		{name: "session_id empty", body: env(`"session_id":"","visitor_id":"` + testVisitor + `","seq":0,"events":[` + ok + `]`), want: ErrInvalidID},
		{name: "session_id number", body: env(`"session_id":12345678,"visitor_id":"` + testVisitor + `","seq":0,"events":[` + ok + `]`), want: ErrMalformed, msg: "session_id must be a string, got number"},
		{name: "session_id null", body: env(`"session_id":null,"visitor_id":"` + testVisitor + `","seq":0,"events":[` + ok + `]`), want: ErrMalformed, msg: "got null"},
		{name: "visitor_id non-ASCII", body: env(`"session_id":"` + testSession + `","visitor_id":"visitör123","seq":0,"events":[` + ok + `]`), want: ErrInvalidID},
		{name: "seq missing", body: env(`"session_id":"` + testSession + `","visitor_id":"` + testVisitor + `","events":[` + ok + `]`), want: ErrMalformed, msg: "seq is required"},
		{name: "seq float", body: env(`"session_id":"` + testSession + `","visitor_id":"` + testVisitor + `","seq":1.5,"events":[` + ok + `]`), want: ErrMalformed, msg: "seq must be an integer"},
		{name: "seq negative", body: env(`"session_id":"` + testSession + `","visitor_id":"` + testVisitor + `","seq":-1,"events":[` + ok + `]`), want: ErrMalformed, msg: "seq must be an integer"},
		{name: "seq string", body: env(`"session_id":"` + testSession + `","visitor_id":"` + testVisitor + `","seq":"1","events":[` + ok + `]`), want: ErrMalformed, msg: "got string"},
		{name: "seq 2^53", body: env(`"session_id":"` + testSession + `","visitor_id":"` + testVisitor + `","seq":9007199254740992,"events":[` + ok + `]`), want: ErrMalformed},
		{name: "seq huge", body: env(`"session_id":"` + testSession + `","visitor_id":"` + testVisitor + `","seq":1e400,"events":[` + ok + `]`), want: ErrMalformed},
		{name: "seq leading zero", body: env(`"session_id":"` + testSession + `","visitor_id":"` + testVisitor + `","seq":01,"events":[` + ok + `]`), want: ErrMalformed},
		{name: "seq bool", body: env(`"session_id":"` + testSession + `","visitor_id":"` + testVisitor + `","seq":true,"events":[` + ok + `]`), want: ErrMalformed, msg: "got boolean"},
		{name: "events missing", body: env(`"session_id":"` + testSession + `","visitor_id":"` + testVisitor + `","seq":0`), want: ErrMalformed, msg: "events is required"},
		{name: "events null", body: batchBody(`null`), want: ErrMalformed, msg: "events must be a non-empty array, got null"},
		{name: "events object", body: batchBody(`{}`), want: ErrMalformed},
		{name: "events empty", body: batchBody(`[]`), want: ErrMalformed, msg: "empty"},
		{name: "events empty with spaces", body: batchBody(`[ ]`), want: ErrMalformed, msg: "empty"},
		{name: "too many events", body: batchBody("[" + strings.Repeat(ok+",", 3) + ok + "]"), want: ErrTooManyEvents, msg: "at most 3"},
		{name: "event too large", body: batchBody(`[` + ok + `,{"type":3,"timestamp":1,"data":"` + strings.Repeat("x", 200) + `"}]`), want: ErrEventTooLarge, msg: "events[1]"},
		{name: "event a number", body: batchBody(`[` + ok + `,1]`), want: ErrMalformed, msg: "events[1] must be an object, got number"},
		{name: "event a string", body: batchBody(`["x"]`), want: ErrMalformed, msg: "events[0] must be an object, got string"},
		{name: "event an array", body: batchBody(`[[]]`), want: ErrMalformed, msg: "got array"},
		{name: "event null", body: batchBody(`[null]`), want: ErrMalformed, msg: "got null"},
		{name: "event without type", body: batchBody(`[` + ok + `,{"timestamp":1,"data":{}}]`), want: ErrMalformed, msg: "events[1]: type is required"},
		{name: "event type string", body: batchBody(`[{"type":"3","timestamp":1}]`), want: ErrMalformed, msg: "type must be an integer, got string"},
		{name: "event type float", body: batchBody(`[{"type":3.5,"timestamp":1}]`), want: ErrMalformed, msg: "type must be an integer"},
		{name: "event type null", body: batchBody(`[{"type":null,"timestamp":1}]`), want: ErrMalformed},
		{name: "event type huge", body: batchBody(`[{"type":99999999999,"timestamp":1}]`), want: ErrMalformed},
		{name: "event without timestamp", body: batchBody(`[{"type":3,"data":{}}]`), want: ErrMalformed, msg: "timestamp is required"},
		{name: "event timestamp string", body: batchBody(`[{"type":3,"timestamp":"1700000000000"}]`), want: ErrMalformed, msg: "timestamp must be a number"},
		{name: "event timestamp negative", body: batchBody(`[{"type":3,"timestamp":-5}]`), want: ErrMalformed},
		{name: "event invalid escape", body: batchBody(`[{"type":3,"timestamp":1,"data":"\x"}]`), want: ErrMalformed, msg: "invalid escape"},
		{name: "event bad unicode escape", body: batchBody(`[{"type":3,"timestamp":1,"data":"\u12G4"}]`), want: ErrMalformed},
		{name: "event raw newline in string", body: batchBody("[{\"type\":3,\"timestamp\":1,\"data\":\"a\nb\"}]"), want: ErrMalformed, msg: "control character"},
		{name: "event bad number", body: batchBody(`[{"type":3,"timestamp":1,"data":-}]`), want: ErrMalformed},
		{name: "event number with dot only", body: batchBody(`[{"type":3,"timestamp":1,"data":1.}]`), want: ErrMalformed},
		{name: "event bad literal", body: batchBody(`[{"type":3,"timestamp":1,"data":tru}]`), want: ErrMalformed},
		{name: "event NaN", body: batchBody(`[{"type":3,"timestamp":1,"data":NaN}]`), want: ErrMalformed},
		{name: "event missing comma", body: batchBody(`[{"type":3 "timestamp":1}]`), want: ErrMalformed},
		{name: "events missing comma", body: batchBody(`[` + ok + ok + `]`), want: ErrMalformed, msg: "after events[0]"},
		{name: "nested too deep", body: batchBody(`[{"type":3,"timestamp":1,"data":` + strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + `}]`), want: ErrMalformed, msg: "nested deeper"},
		{name: "user a string", body: env(`"session_id":"` + testSession + `","visitor_id":"` + testVisitor + `","seq":0,"events":[` + ok + `],"user":"bob"`), want: ErrMalformed, msg: "user must be an object"},
		{name: "user without id", body: env(`"session_id":"` + testSession + `","visitor_id":"` + testVisitor + `","seq":0,"events":[` + ok + `],"user":{"traits":{}}`), want: ErrInvalidID, msg: "user.id is required"},
		{name: "user id empty", body: env(`"session_id":"` + testSession + `","visitor_id":"` + testVisitor + `","seq":0,"events":[` + ok + `],"user":{"id":""}`), want: ErrInvalidID},
		{name: "user id too long", body: env(`"session_id":"` + testSession + `","visitor_id":"` + testVisitor + `","seq":0,"events":[` + ok + `],"user":{"id":"` + strings.Repeat("é", 257) + `"}`), want: ErrInvalidID, msg: "1 to 256 characters"},
		{name: "user id number", body: env(`"session_id":"` + testSession + `","visitor_id":"` + testVisitor + `","seq":0,"events":[` + ok + `],"user":{"id":42}`), want: ErrMalformed, msg: "user.id must be a string"},
		{name: "user traits array", body: env(`"session_id":"` + testSession + `","visitor_id":"` + testVisitor + `","seq":0,"events":[` + ok + `],"user":{"id":"u1","traits":[1]}`), want: ErrMalformed, msg: "user.traits must be an object"},
		{name: "invalid JSON in ignored field", body: env(`"session_id":"` + testSession + `","visitor_id":"` + testVisitor + `","seq":0,"events":[` + ok + `],"extra":{"a":}`), want: ErrMalformed},
	}
	red := NewRedactor(DefaultRedactRules())
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := ParseBatch(tt.body, lim, red)
			if !errors.Is(err, tt.want) {
				t.Fatalf("ParseBatch = %+v, %v; want %v", b, err, tt.want)
			}
			if tt.msg != "" && !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q does not say %q", err, tt.msg)
			}
			if _, _, ok := Code(err); !ok {
				t.Errorf("Code(%v) not mapped", err)
			}
		})
	}
}

func TestParseBatch(t *testing.T) {
	red := NewRedactor(DefaultRedactRules())
	tests := []struct {
		name   string
		body   string
		want   Batch
		events []string // compact events expected
	}{
		{
			name:   "minimal",
			body:   `{"session_id":"` + testSession + `","visitor_id":"` + testVisitor + `","seq":7,"events":[` + okEvent + `]}`,
			want:   Batch{SessionID: testSession, VisitorID: testVisitor, Seq: 7},
			events: []string{okEvent},
		},
		{
			name: "pretty printed, fields in any order, unknown fields kept",
			body: "\n{ \"events\" : [\n  {\"data\": {\"source\": 1, \"text\": \"a  b\\n \\\"c\\\" \"},\r\n\t\"timestamp\": 1700000000001, \"type\": 3, \"extra\": [1, {\"k\": null}]}\n ] ,\n" +
				" \"seq\": 2e0, \"unknown\": {\"deep\": [true, false]}, \"visitor_id\": \"" + testVisitor + "\", \"session_id\": \"" + testSession + "\" }\n",
			want:   Batch{SessionID: testSession, VisitorID: testVisitor, Seq: 2},
			events: []string{`{"data":{"source":1,"text":"a  b\n \"c\" "},"timestamp":1700000000001,"type":3,"extra":[1,{"k":null}]}`},
		},
		{
			name:   "escaped keys and ids",
			body:   `{"session\u005fid":"sess\u005f0123456789","visitor_id":"` + testVisitor + `","seq":0,"events":[{"\u0074ype":3,"timestamp":1.9,"data":{}}]}`,
			want:   Batch{SessionID: testSession, VisitorID: testVisitor},
			events: []string{`{"\u0074ype":3,"timestamp":1.9,"data":{}}`},
		},
		{
			name:   "duplicate keys: the last wins",
			body:   `{"session_id":"aaaaaaaaaa","session_id":"` + testSession + `","visitor_id":"` + testVisitor + `","seq":0,"events":[{"type":3,"timestamp":1,"type":4,"data":{"href":"https://x.test/?email=a"}}]}`,
			want:   Batch{SessionID: testSession, VisitorID: testVisitor},
			events: []string{`{"type":3,"timestamp":1,"type":4,"data":{"href":"https://x.test/?email=[redacted]"}}`},
		},
		{
			name: "user with traits",
			body: `{"session_id":"` + testSession + `","visitor_id":"` + testVisitor + `","seq":0,"events":[` + okEvent + `],"user":{"id":"user@example.com","traits":{ "plan" : "pro", "seats": 3 },"ignored":1}}`,
			want: Batch{SessionID: testSession, VisitorID: testVisitor,
				User: &User{ID: "user@example.com", Traits: json.RawMessage(`{"plan":"pro","seats":3}`)}},
			events: []string{okEvent},
		},
		{
			name:   "user null, traits null",
			body:   `{"session_id":"` + testSession + `","visitor_id":"` + testVisitor + `","seq":0,"events":[` + okEvent + `],"user":null}`,
			want:   Batch{SessionID: testSession, VisitorID: testVisitor},
			events: []string{okEvent},
		},
		{
			name:   "user without traits",
			body:   `{"session_id":"` + testSession + `","visitor_id":"` + testVisitor + `","seq":0,"events":[` + okEvent + `],"user":{"id":"42","traits":null}}`,
			want:   Batch{SessionID: testSession, VisitorID: testVisitor, User: &User{ID: "42"}},
			events: []string{okEvent},
		},
		{
			name: "meta href redacted, other fields kept",
			body: string(batchBody(`[{"type":4,"data":{"href":"https://shop.test/checkout?email=jane%40doe.com&step=2#top","width":1280,"height":720,"referrer":"x"},"timestamp":5,"sessionId":"s"}]`)),
			want: Batch{SessionID: testSession, VisitorID: testVisitor},
			events: []string{
				`{"type":4,"data":{"href":"https://shop.test/checkout?email=[redacted]&step=2#top","width":1280,"height":720,"referrer":"x"},"timestamp":5,"sessionId":"s"}`,
			},
		},
		{
			name: "meta href with escapes, pretty printed, data before type",
			body: string(batchBody("[ {\"data\": {\"href\": \"https:\\/\\/x.test\\/u\\/jane@doe.com\\/\\u00e9\" , \"width\": 1}, \"type\": 4, \"timestamp\": 5} ]")),
			want: Batch{SessionID: testSession, VisitorID: testVisitor},
			events: []string{
				`{"data":{"href":"https://x.test/u/[redacted]/é","width":1},"type":4,"timestamp":5}`,
			},
		},
		{
			name:   "meta href clean is left as sent",
			body:   string(batchBody(`[{"type":4,"data":{"href":"https:\/\/x.test\/a?b=c"},"timestamp":5}]`)),
			want:   Batch{SessionID: testSession, VisitorID: testVisitor},
			events: []string{`{"type":4,"data":{"href":"https:\/\/x.test\/a?b=c"},"timestamp":5}`},
		},
		{
			name:   "href outside meta redacted too",
			body:   string(batchBody(`[{"type":5,"data":{"href":"https://x.test/?email=a@b.cd"},"timestamp":5}]`)),
			want:   Batch{SessionID: testSession, VisitorID: testVisitor},
			events: []string{`{"type":5,"data":{"href":"https://x.test/?email=[redacted]"},"timestamp":5}`},
		},
		{
			name:   "meta without data object",
			body:   string(batchBody(`[{"type":4,"data":null,"timestamp":5},{"type":4,"timestamp":6}]`)),
			want:   Batch{SessionID: testSession, VisitorID: testVisitor},
			events: []string{`{"type":4,"data":null,"timestamp":5}`, `{"type":4,"timestamp":6}`},
		},
		{
			name:   "seq largest",
			body:   `{"session_id":"` + testSession + `","visitor_id":"` + testVisitor + `","seq":9007199254740991,"events":[` + okEvent + `]}`,
			want:   Batch{SessionID: testSession, VisitorID: testVisitor, Seq: 1<<53 - 1},
			events: []string{okEvent},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := ParseBatch([]byte(tt.body), DefaultLimits(), red)
			if err != nil {
				t.Fatalf("ParseBatch: %v", err)
			}
			var got []string
			for _, ev := range b.Events {
				got = append(got, string(ev))
			}
			if !reflect.DeepEqual(got, tt.events) {
				t.Errorf("events:\n got %q\nwant %q", got, tt.events)
			}
			checkEnvelopes(t, b)
			b.Events, b.minTS, b.maxTS, b.split = nil, 0, 0, nil // the time range and the envelopes have tests of their own
			if !reflect.DeepEqual(*b, tt.want) {
				t.Errorf("batch = %+v (user %+v), want %+v (user %+v)", *b, b.User, tt.want, tt.want.User)
			}
		})
	}
}

func TestParseBatch_nilRedactor(t *testing.T) {
	ev := `{"type":4,"data":{"href":"https://x.test/?email=a@b.cd"},"timestamp":5}`
	b, err := ParseBatch(batchBody("["+ev+"]"), DefaultLimits(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if string(b.Events[0]) != ev {
		t.Errorf("event = %s, want it unchanged", b.Events[0])
	}
}

func TestParseBatch_eventSizeAfterCompaction(t *testing.T) {
	lim := DefaultLimits()
	ev := `{"type":3,"timestamp":1,"data":"xxxxxxxxxxxxxx"}`
	lim.MaxEventBytes = len(ev)
	pretty := `{ "type" : 3 , "timestamp" : 1 , "data" : "xxxxxxxxxxxxxx" }`
	b, err := ParseBatch(batchBody("["+pretty+"]"), lim, nil)
	if err != nil {
		t.Fatalf("event at the limit once compacted: %v", err)
	}
	if string(b.Events[0]) != ev {
		t.Errorf("event = %s", b.Events[0])
	}
}

func TestParseBatch_doesNotModifyBody(t *testing.T) {
	body := batchBody(`[ {"type":4, "data":{"href":"https://x.test/?email=a@b.cd"},"timestamp":5}, ` + okEvent + ` ]`)
	orig := bytes.Clone(body)
	b, err := ParseBatch(body, DefaultLimits(), NewRedactor(DefaultRedactRules()))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(body, orig) {
		t.Error("body modified")
	}
	// Appending to an event must not write into the body.
	_ = append(b.Events[1], "garbage"...)
	if !bytes.Equal(body, orig) {
		t.Error("appending to an event wrote into the body")
	}
}

// fixtures returns the rrweb fixture files: name → events JSON.
func fixtures(t testing.TB) map[string][]byte {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", "rrweb", "*.json"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no fixtures in testdata/rrweb: %v", err)
	}
	out := map[string][]byte{}
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.Base(p)] = data
	}
	return out
}

// TestParseBatch_fixtures ingests every rrweb fixture, compact and pretty
// printed, and checks that each event comes back the same: byte for byte
// as json.Compact makes it, and semantically; only Meta hrefs may differ,
// by redaction.
func TestParseBatch_fixtures(t *testing.T) {
	red := NewRedactor(DefaultRedactRules())
	for name, data := range fixtures(t) {
		var raws []json.RawMessage
		if err := json.Unmarshal(data, &raws); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var pretty bytes.Buffer
		if err := json.Indent(&pretty, data, "", "  "); err != nil {
			t.Fatal(err)
		}
		for _, variant := range []struct {
			name   string
			events []byte
		}{{"as sent", data}, {"pretty", pretty.Bytes()}} {
			t.Run(name+"/"+variant.name, func(t *testing.T) {
				b, err := ParseBatch(batchBody(string(variant.events)), DefaultLimits(), red)
				if err != nil {
					t.Fatalf("ParseBatch: %v", err)
				}
				checkEnvelopes(t, b)
				if len(b.Events) != len(raws) {
					t.Fatalf("%d events, want %d", len(b.Events), len(raws))
				}
				for i, ev := range b.Events {
					if bytes.ContainsAny(ev, "\n\r") {
						t.Fatalf("event %d spans lines", i)
					}
					var want, got map[string]any
					if err := json.Unmarshal(raws[i], &want); err != nil {
						t.Fatal(err)
					}
					if err := json.Unmarshal(ev, &got); err != nil {
						t.Fatalf("event %d is not JSON: %v", i, err)
					}
					if typ, _, err := EventInfo(ev); err != nil || typ != int(want["type"].(float64)) {
						t.Errorf("EventInfo(event %d) = %d, %v", i, typ, err)
					}
					if want["type"] == float64(rrweb.Meta) {
						data := want["data"].(map[string]any)
						data["href"] = red.URL(data["href"].(string))
					}
					if !reflect.DeepEqual(got, want) {
						t.Fatalf("event %d differs:\n got %s\nwant %s", i, ev, raws[i])
					}
					var compact bytes.Buffer
					json.Compact(&compact, raws[i])
					if want["type"] != float64(rrweb.Meta) && !bytes.Equal(ev, compact.Bytes()) {
						t.Fatalf("event %d not byte-identical to its compact form", i)
					}
				}
			})
		}
	}
}

func TestEventInfo(t *testing.T) {
	tests := []struct {
		name    string
		ev      string
		typ     int
		ts      int64
		wantErr bool
	}{
		{name: "rrweb event", ev: okEvent, typ: 3, ts: 1700000000000},
		{name: "spaces", ev: " { \"timestamp\" : 12.7 , \"type\" : 0 } ", typ: 0, ts: 12},
		{name: "not an object", ev: `[1]`, wantErr: true},
		{name: "empty", ev: ``, wantErr: true},
		{name: "trailing data", ev: okEvent + `x`, wantErr: true},
		{name: "no type", ev: `{"timestamp":1}`, wantErr: true},
		{name: "type float", ev: `{"type":1.5,"timestamp":1}`, wantErr: true},
		{name: "timestamp string", ev: `{"type":1,"timestamp":"1"}`, wantErr: true},
		{name: "invalid JSON", ev: `{"type":1,"timestamp":1,}`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			typ, ts, err := EventInfo(json.RawMessage(tt.ev))
			if tt.wantErr {
				if !errors.Is(err, ErrMalformed) {
					t.Errorf("EventInfo = %d, %d, %v; want ErrMalformed", typ, ts, err)
				}
				return
			}
			if err != nil || typ != tt.typ || ts != tt.ts {
				t.Errorf("EventInfo = %d, %d, %v; want %d, %d", typ, ts, err, tt.typ, tt.ts)
			}
		})
	}
}

// FuzzParseBatch checks the hand-written scanner against encoding/json:
// whatever ParseBatch accepts is valid JSON with the same events, and
// whatever encoding/json rejects ParseBatch rejects too.
func FuzzParseBatch(f *testing.F) {
	f.Add(batchBody(`[` + okEvent + `]`))
	f.Add(batchBody(`[{"type":4,"data":{"href":"https://x.test/?email=a@b.cd","width":1},"timestamp":5}]`))
	f.Add([]byte(`{"session_id":"` + testSession + `","visitor_id":"` + testVisitor + `","seq":1,"events":[{"type":1,"timestamp":1,"data":{"a":[1,2.5e3,-0,"\u00e9\n",true,false,null]}}],"user":{"id":"x","traits":{"a":1}}}`))
	f.Add([]byte(` { "session_id" : "` + testSession + `" , "visitor_id" : "` + testVisitor + `" , "seq" : 0 , "events" : [ { "type" : 2 , "timestamp" : 3 } ] } `))
	f.Add([]byte(`{"a":"\ud800"}`))
	for _, data := range fixtures(f) {
		if len(data) < 4096 {
			f.Add(batchBody(string(data)))
		}
	}
	lim := DefaultLimits()
	f.Fuzz(func(t *testing.T, body []byte) {
		// No redactor: this checks the scanner against encoding/json, event
		// for event; FuzzParseBatch_redaction checks what redaction changes.
		b, err := ParseBatch(body, lim, nil)
		if !json.Valid(body) {
			if err == nil {
				t.Fatalf("accepted invalid JSON %q", body)
			}
			return
		}
		if err != nil {
			if _, _, ok := Code(err); !ok {
				t.Fatalf("error %v has no code", err)
			}
			return
		}
		var env map[string]json.RawMessage
		if err := json.Unmarshal(body, &env); err != nil {
			t.Fatalf("accepted %q, encoding/json: %v", body, err)
		}
		var events []json.RawMessage
		if err := json.Unmarshal(env["events"], &events); err != nil {
			t.Fatalf("events: %v", err)
		}
		if len(events) != len(b.Events) {
			t.Fatalf("%d events, encoding/json sees %d", len(b.Events), len(events))
		}
		for i, ev := range b.Events {
			if !json.Valid(ev) || bytes.ContainsAny(ev, "\n\r") {
				t.Fatalf("event %d: %q", i, ev)
			}
			var got, want map[string]any
			if err := json.Unmarshal(ev, &got); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(events[i], &want); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("event %d: got %s want %s", i, ev, events[i])
			}
		}
		var sid string
		if json.Unmarshal(env["session_id"], &sid) != nil || sid != b.SessionID {
			t.Fatalf("session_id %q, encoding/json %q", b.SessionID, sid)
		}
		checkEnvelopes(t, b)
	})
}

// checkEnvelopes checks that the envelopes ParseBatch read as it scanned
// are those rrweb.Split reads from the events it returned.
func checkEnvelopes(t *testing.T, b *Batch) {
	t.Helper()
	got, want := b.envelopes(), rrweb.SplitAll(b.Events)
	if len(b.split) != len(b.Events) {
		t.Fatalf("%d envelopes read while scanning, %d events", len(b.split), len(b.Events))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Type != w.Type || g.Timestamp != w.Timestamp || g.HasTimestamp != w.HasTimestamp ||
			!bytes.Equal(g.Raw, w.Raw) || !bytes.Equal(g.Data, w.Data) || (g.Data == nil) != (w.Data == nil) {
			t.Fatalf("event %d: envelope %+v, rrweb.Split reads %+v", i, g, w)
		}
	}
}

// TestParseBatch_envelopes checks the envelopes ParseBatch reads while it
// scans (which spare the recorder a second pass over every event) against
// rrweb.Split, on events whose data the scan moves (redacted, compacted) and
// on the envelope's odd cases; and that a batch whose events the recording
// rules changed since gets its envelopes read again.
func TestParseBatch_envelopes(t *testing.T) {
	red := NewRedactor(DefaultRedactRules())
	for _, events := range []string{
		`[{"type":3,"data":{"source":2,"type":2,"id":5,"x":1,"y":2},"timestamp":1700000000000}]`,
		`[{"type":4,"data":{"href":"https://x.test/?email=a@b.cd","width":1,"height":2},"timestamp":5},{"type":3,"data":{"source":1},"timestamp":6}]`,
		`[ { "type" : 3 , "data" : { "source" : 2 } , "timestamp" : 7 } ]`,
		`[{"type":3,"timestamp":8}]`,
		`[{"type":3,"data":null,"timestamp":9}]`,
		`[{"data":{"a":1},"type":3,"data":{"b":2},"timestamp":10}]`,
		`[{"type":3,"d\u0061ta":{"c":3},"timestamp":11.75}]`,
		`[{"type":5,"data":{"tag":"t","payload":{"url":"/p?token=x"}},"timestamp":12},{"type":3,"data":{},"timestamp":13,"extra":[1,{"data":2}]}]`,
	} {
		b, err := ParseBatch(batchBody(events), DefaultLimits(), red)
		if err != nil {
			t.Fatalf("%s: %v", events, err)
		}
		checkEnvelopes(t, b)
	}
	b, err := ParseBatch(batchBody(`[{"type":3,"data":{"x":1},"timestamp":1},{"type":3,"data":{"x":2},"timestamp":2}]`), DefaultLimits(), red)
	if err != nil {
		t.Fatal(err)
	}
	b.Events = b.Events[1:] // as the recording rules leave events out
	if got := b.envelopes(); len(got) != 1 || string(got[0].Data) != `{"x":2}` {
		t.Fatalf("after leaving an event out: %+v", got)
	}
}

// BenchmarkParseBatch measures ParseBatch on batches cut from the rrweb
// player's demo recording: a full snapshot of a real page and the
// incremental events after it.
func BenchmarkParseBatch(b *testing.B) {
	data, err := os.ReadFile(filepath.Join("testdata", "rrweb", "player-demo-recording.json"))
	if err != nil {
		b.Fatal(err)
	}
	var events []json.RawMessage
	if err := json.Unmarshal(data, &events); err != nil {
		b.Fatal(err)
	}
	join := func(evs []json.RawMessage) []byte {
		out, _ := json.Marshal(evs)
		return batchBody(string(out))
	}
	var pretty bytes.Buffer
	json.Indent(&pretty, join(events), "", " ")
	cases := []struct {
		name string
		body []byte
	}{
		{"whole recording", join(events)},
		{"incremental only", join(events[2:])},
		{"pretty printed", pretty.Bytes()},
	}
	red := NewRedactor(DefaultRedactRules())
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(c.body)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := ParseBatch(c.body, DefaultLimits(), red); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	// The reference point: encoding/json decoding the envelope and each event's head.
	b.Run("encoding/json reference", func(b *testing.B) {
		body := join(events)
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		for b.Loop() {
			var env struct {
				SessionID string            `json:"session_id"`
				Events    []json.RawMessage `json:"events"`
			}
			if err := json.Unmarshal(body, &env); err != nil {
				b.Fatal(err)
			}
			for _, ev := range env.Events {
				var head struct {
					Type      int   `json:"type"`
					Timestamp int64 `json:"timestamp"`
				}
				if err := json.Unmarshal(ev, &head); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}

// BenchmarkIngest measures the CPU work of one ingest request before the
// write-ahead log: gzip decompression, ParseBatch, the events' envelopes and
// the batch's facts; MB/s counts decompressed bytes. "as scanned" takes the
// envelopes ParseBatch read while it validated (what the recorder does),
// "read again" reads them in a second pass (what it did until 2026-12-06).
func BenchmarkIngest(b *testing.B) {
	data, err := os.ReadFile(filepath.Join("testdata", "rrweb", "player-demo-recording.json"))
	if err != nil {
		b.Fatal(err)
	}
	body := batchBody(string(data))
	gz := gzipBytes(b, body)
	lim := DefaultLimits()
	d := NewDecoder(lim)
	red := NewRedactor(DefaultRedactRules())
	for _, way := range []struct {
		name      string
		envelopes func(*Batch) []rrweb.Event
	}{
		{"as scanned", (*Batch).envelopes},
		{"read again", func(b *Batch) []rrweb.Event { return rrweb.SplitAll(b.Events) }},
	} {
		b.Run(way.name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				raw, err := d.Decompress(bytes.NewReader(gz), "gzip")
				if err != nil {
					b.Fatal(err)
				}
				batch, err := ParseBatch(raw, lim, red)
				if err != nil {
					b.Fatal(err)
				}
				factsOf(way.envelopes(batch))
			}
		})
	}
}

func ExampleParseBatch() {
	body := []byte(`{"session_id":"s_12345678","visitor_id":"v_12345678","seq":0,"events":[
		{"type":4,"data":{"href":"https://shop.test/?email=jane@doe.com","width":390,"height":844},"timestamp":1700000000000}]}`)
	b, err := ParseBatch(body, DefaultLimits(), NewRedactor(DefaultRedactRules()))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(string(b.Events[0]))
	// Output: {"type":4,"data":{"href":"https://shop.test/?email=[redacted]","width":390,"height":844},"timestamp":1700000000000}
}

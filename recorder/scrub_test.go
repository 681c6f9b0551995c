package recorder

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

// TestParseBatch_redactsURLsEverywhere checks that every URL an event
// carries is redacted, and that nothing else in the event changes.
func TestParseBatch_redactsURLsEverywhere(t *testing.T) {
	const (
		secretURL = "https://mail.test/inbox?email=jane@example.com&token=SECRET"
		cleanURL  = "https://mail.test/inbox?email=[redacted]&token=[redacted]"
		jwt       = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJqYW5lIn0.c2lnbmF0dXJl"
	)
	tests := []struct{ name, in, want string }{
		{
			name: "meta href",
			in:   `{"type":4,"data":{"href":"` + secretURL + `","width":1,"height":2},"timestamp":5}`,
			want: `{"type":4,"data":{"href":"` + cleanURL + `","width":1,"height":2},"timestamp":5}`,
		},
		{
			name: "trailmap/page referrer",
			in:   `{"type":5,"data":{"tag":"trailmap/page","payload":{"referrer":"` + secretURL + `","title":"Inbox"}},"timestamp":5}`,
			want: `{"type":5,"data":{"tag":"trailmap/page","payload":{"referrer":"` + cleanURL + `","title":"Inbox"}},"timestamp":5}`,
		},
		{
			name: "custom payload: absolute, relative and embedded URLs, nested",
			in:   `{"type":5,"data":{"tag":"share","payload":{"a":{"b":["/inbox?token=x","see ` + secretURL + ` now"]},"c":"?code=1","n":3}},"timestamp":5}`,
			want: `{"type":5,"data":{"tag":"share","payload":{"a":{"b":["/inbox?token=[redacted]","see ` + cleanURL + ` now"]},"c":"?code=[redacted]","n":3}},"timestamp":5}`,
		},
		{
			name: "trailmap/error source and message",
			in:   `{"type":5,"data":{"tag":"trailmap/error","payload":{"message":"fetch https://api.test/v1?api_key=K failed","source":"https://x.test/app.js?jwt=` + jwt + `","line":1}},"timestamp":5}`,
			want: `{"type":5,"data":{"tag":"trailmap/error","payload":{"message":"fetch https://api.test/v1?api_key=[redacted] failed","source":"https://x.test/app.js?jwt=[redacted]","line":1}},"timestamp":5}`,
		},
		{
			name: "full snapshot attributes",
			in: `{"type":2,"data":{"node":{"type":0,"childNodes":[{"type":2,"tagName":"a","attributes":{"href":"/u/jane@example.com","class":"x?token=keep"},"childNodes":[{"type":3,"textContent":"` + secretURL + `","id":3}],"id":2},` +
				`{"type":2,"tagName":"form","attributes":{"action":"/login?password=hunter2"},"childNodes":[],"id":4},` +
				`{"type":2,"tagName":"img","attributes":{"src":"https://cdn.test/a.png?X-Amz-Signature=abc","srcset":"https://cdn.test/a.png?sig=1 1x, data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJ 2x,/b.png?token=t 3x","style":"background: url(https://cdn.test/bg.png?token=t)"},"childNodes":[],"id":5},` +
				`{"type":2,"tagName":"video","attributes":{"poster":"/p.jpg?auth=1","src":"data:video/mp4;base64,AAAAIGZ0eXBpc29tAAACAGlzb21pc28yYXZjMW1wNDE?x=1"},"childNodes":[],"id":6}],"id":1},"initialOffset":{"left":0,"top":0}},"timestamp":5,"extra":{"href":"` + secretURL + `"}}`,
			want: `{"type":2,"data":{"node":{"type":0,"childNodes":[{"type":2,"tagName":"a","attributes":{"href":"/u/[redacted]","class":"x?token=keep"},"childNodes":[{"type":3,"textContent":"` + cleanURL + `","id":3}],"id":2},` +
				`{"type":2,"tagName":"form","attributes":{"action":"/login?password=[redacted]"},"childNodes":[],"id":4},` +
				`{"type":2,"tagName":"img","attributes":{"src":"https://cdn.test/a.png?X-Amz-Signature=[redacted]","srcset":"https://cdn.test/a.png?sig=[redacted] 1x, data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJ 2x,/b.png?token=[redacted] 3x","style":"background: url(https://cdn.test/bg.png?token=[redacted])"},"childNodes":[],"id":5},` +
				`{"type":2,"tagName":"video","attributes":{"poster":"/p.jpg?auth=[redacted]","src":"data:video/mp4;base64,AAAAIGZ0eXBpc29tAAACAGlzb21pc28yYXZjMW1wNDE?x=1"},"childNodes":[],"id":6}],"id":1},"initialOffset":{"left":0,"top":0}},"timestamp":5,"extra":{"href":"` + secretURL + `"}}`,
		},
		{
			name: "mutation: attributes, adds and texts",
			in: `{"type":3,"data":{"source":0,"texts":[{"id":9,"value":"go to ` + secretURL + `"}],"attributes":[{"id":7,"attributes":{"href":"` + secretURL + `","title":null}}],` +
				`"removes":[],"adds":[{"parentId":1,"nextId":null,"node":{"type":2,"tagName":"iframe","attributes":{"src":"/embed?session_id=abc"},"childNodes":[],"id":8}}]},"timestamp":5}`,
			want: `{"type":3,"data":{"source":0,"texts":[{"id":9,"value":"go to ` + cleanURL + `"}],"attributes":[{"id":7,"attributes":{"href":"` + cleanURL + `","title":null}}],` +
				`"removes":[],"adds":[{"parentId":1,"nextId":null,"node":{"type":2,"tagName":"iframe","attributes":{"src":"/embed?session_id=[redacted]"},"childNodes":[],"id":8}}]},"timestamp":5}`,
		},
		{
			name: "escaped slashes and unicode, data before type",
			in:   `{"data":{"href":"https:\/\/x.test\/?email=a@b.cd&t=\u00e9"},"timestamp":5,"type":4}`,
			want: `{"data":{"href":"https://x.test/?email=[redacted]&t=é"},"timestamp":5,"type":4}`,
		},
		{
			name: "escaped slashes in text",
			in:   `{"type":5,"data":{"tag":"x","payload":{"m":"at https:\/\/x.test\/?token=1\n"}},"timestamp":5}`,
			want: `{"type":5,"data":{"tag":"x","payload":{"m":"at https://x.test/?token=[redacted]\n"}},"timestamp":5}`,
		},
		{
			name: "escaped ampersand inside a URL in text (encoding/json writes \\u0026)",
			in:   `{"type":3,"data":{"source":0,"texts":[{"id":1,"value":"at https://x.test/?a=1\u0026token=2 <b>"}]},"timestamp":5}`,
			want: `{"type":3,"data":{"source":0,"texts":[{"id":1,"value":"at https://x.test/?a=1&token=[redacted] <b>"}]},"timestamp":5}`,
		},
		{
			name: "relative URLs in text are left outside custom events",
			in:   `{"type":2,"data":{"node":{"type":3,"textContent":"/inbox?token=abc"}},"timestamp":5}`,
			want: `{"type":2,"data":{"node":{"type":3,"textContent":"/inbox?token=abc"}},"timestamp":5}`,
		},
		{
			name: "clean URLs and hashed assets kept byte for byte",
			in:   `{"type":2,"data":{"node":{"type":2,"tagName":"script","attributes":{"src":"https://x.test/static/app.3f9a0c7e1b2d4f6a8c0e2b4d6f8a0c2e.js?v=2#x","href":"#top"},"childNodes":[{"type":3,"textContent":"see https://x.test/a?b=c"}]}},"timestamp":5}`,
			want: `{"type":2,"data":{"node":{"type":2,"tagName":"script","attributes":{"src":"https://x.test/static/app.3f9a0c7e1b2d4f6a8c0e2b4d6f8a0c2e.js?v=2#x","href":"#top"},"childNodes":[{"type":3,"textContent":"see https://x.test/a?b=c"}]}},"timestamp":5}`,
		},
		{
			name: "pretty printed input is compacted around the redaction",
			in:   "{ \"type\": 4,\n \"data\": { \"href\": \"/?email=a@b.cd\" },\n \"timestamp\": 5 }",
			want: `{"type":4,"data":{"href":"/?email=[redacted]"},"timestamp":5}`,
		},
	}
	red := NewRedactor(DefaultRedactRules())
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := ParseBatch(batchBody("["+tt.in+"]"), DefaultLimits(), red)
			if err != nil {
				t.Fatalf("ParseBatch: %v", err)
			}
			if got := string(b.Events[0]); got != tt.want {
				t.Errorf("got\n%s\nwant\n%s", got, tt.want)
			}
			checkEnvelopes(t, b)
			// Redacting what is stored changes nothing.
			again, err := ParseBatch(batchBody("["+string(b.Events[0])+"]"), DefaultLimits(), red)
			if err != nil {
				t.Fatal(err)
			}
			if string(again.Events[0]) != string(b.Events[0]) {
				t.Errorf("not idempotent:\n%s", again.Events[0])
			}
		})
	}
}

func TestRedactor_srcset(t *testing.T) {
	r := NewRedactor(DefaultRedactRules())
	tests := []struct{ name, in, want string }{
		{"clean", "a.png 1x, b.png 2x", "a.png 1x, b.png 2x"},
		{"no descriptors", "/a.png?token=1, /b.png?token=2", "/a.png?token=[redacted], /b.png?token=[redacted]"},
		{"a comma without a space is the URL's", "/a.png?token=1,/b.png", "/a.png?token=[redacted]"},
		{"commas in a URL", "/a.png?x=1,2&token=t 100w", "/a.png?x=1,2&token=[redacted] 100w"},
		{"spaces", "  /a.png?token=1   2x ,\n/b.png?email=a@b.cd 3x", "  /a.png?token=[redacted]   2x ,\n/b.png?email=[redacted] 3x"},
		{"empty", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := r.srcset(tt.in); got != tt.want {
				t.Errorf("srcset(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestRedactor_urlsInText(t *testing.T) {
	r := NewRedactor(DefaultRedactRules())
	tests := []struct{ name, in, want string }{
		{"none", "hello world", "hello world"},
		{"clean URL", "go to https://x.test/a?b=c now", "go to https://x.test/a?b=c now"},
		{"two", "a https://x.test/?token=1 b ftp://u:p@h.test/x c", "a https://x.test/?token=[redacted] b ftp://redacted@h.test/x c"},
		{"in quotes and parens", `fetch("https://x.test/?jwt=j") (http://y.test/?code=c)`, `fetch("https://x.test/?jwt=[redacted]") (http://y.test/?code=[redacted])`},
		{"no scheme", "a ://x.test/?token=1", "a ://x.test/?token=1"},
		{"at the start", "https://x.test/?token=1", "https://x.test/?token=[redacted]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := r.urlsInText(tt.in); got != tt.want {
				t.Errorf("urlsInText(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// FuzzParseBatch_redaction checks that redaction keeps events valid JSON
// and idempotent, whatever the strings hold.
func FuzzParseBatch_redaction(f *testing.F) {
	for _, s := range []string{"/a?token=1", "https://x.test/?email=a@b.cd", "x https://y/?code=1 z", "a.png?sig=1 1x, b 2x", "\\/x?token=1"} {
		f.Add(s)
	}
	red := NewRedactor(DefaultRedactRules())
	f.Fuzz(func(t *testing.T, s string) {
		lit := string(appendJSONString(nil, s))
		for _, ev := range []string{
			`{"type":5,"data":{"tag":"t","payload":{"p":` + lit + `}},"timestamp":1}`,
			`{"type":2,"data":{"node":{"attributes":{"href":` + lit + `,"srcset":` + lit + `},"textContent":` + lit + `}},"timestamp":1}`,
		} {
			b, err := ParseBatch(batchBody("["+ev+"]"), DefaultLimits(), red)
			if err != nil {
				if strings.Contains(err.Error(), "UTF-8") {
					return
				}
				t.Fatalf("ParseBatch(%s): %v", ev, err)
			}
			checkEnvelopes(t, b)
			again, err := ParseBatch(batchBody("["+string(b.Events[0])+"]"), DefaultLimits(), red)
			if err != nil {
				t.Fatalf("redacted event %s: %v", b.Events[0], err)
			}
			if string(again.Events[0]) != string(b.Events[0]) {
				t.Fatalf("not idempotent: %s then %s", b.Events[0], again.Events[0])
			}
		}
	})
}

// FuzzDecodeString checks decodeString against encoding/json.
func FuzzDecodeString(f *testing.F) {
	for _, s := range []string{`"a"`, `"\u00e9\n\"\\\/"`, `"\ud83d\ude00"`, `"\ud83d"`, `"\ude00x"`, `"\ud83d\u0041"`, `"\ud83d\ud83d\ude00"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, q string) {
		var want string
		if !utf8.ValidString(q) || json.Unmarshal([]byte(q), &want) != nil {
			return
		}
		if s := (jsonScan{b: []byte(q)}); s.peek() != '"' {
			return
		}
		end, esc, err := scanString([]byte(q), 0)
		if err != nil || end != len(q) {
			return
		}
		if got := decodeString([]byte(q), esc); got != want {
			t.Fatalf("decodeString(%s) = %q, want %q", q, got, want)
		}
	})
}

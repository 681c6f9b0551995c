package recorder

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/trailmap/trailmap/storage/index"
)

func TestClientBucket(t *testing.T) {
	tests := []struct{ name, ip, want string }{
		{"IPv4", "203.0.113.7", "203.0.113.7"},
		{"IPv4-mapped IPv6", "::ffff:203.0.113.7", "203.0.113.7"},
		{"IPv6 /64", "2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"},
		{"IPv6 same /64", "2001:db8:1:2:ffff::1", "2001:db8:1:2::/64"},
		{"IPv6 with zone", "fe80::1%eth0", "fe80::/64"},
		{"not an address", "unix-socket", "unix-socket"},
		{"empty", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := clientBucket(tc.ip); got != tc.want {
				t.Fatalf("clientBucket(%q) = %q, want %q", tc.ip, got, tc.want)
			}
		})
	}
}

func TestCheckTraits(t *testing.T) {
	obj := func(n int) string {
		var b strings.Builder
		b.WriteString("{")
		for i := range n {
			if i > 0 {
				b.WriteString(",")
			}
			b.WriteString(`"k` + strings.Repeat("x", i%3) + string(rune('a'+i%26)) + `":` + "1")
		}
		b.WriteString("}")
		return b.String()
	}
	tests := []struct {
		name   string
		traits string
		ok     bool
	}{
		{"empty", `{}`, true},
		{"usual", `{"plan":"pro","seats":5,"tags":["a","b"],"company":{"name":"ACME","ids":[1,2]}}`, true},
		{"keys of nested objects count", `{"a":{"b":1,"c":2}}`, true},
		{"strings in arrays are values", `{"a":["` + strings.Repeat("k", 200) + `"]}`, true},
		{"100 keys", obj(100), true},
		{"101 keys", obj(101), false},
		{"depth 3", `{"a":{"b":[1]}}`, true},
		{"depth 4", `{"a":{"b":{"c":{}}}}`, false},
		{"key of 128", `{"` + strings.Repeat("k", 128) + `":1}`, true},
		{"key of 129", `{"` + strings.Repeat("k", 129) + `":1}`, false},
		{"value of 2048 characters", `{"v":"` + strings.Repeat("é", 2048) + `"}`, true},
		{"value of 2049 characters", `{"v":"` + strings.Repeat("é", 2049) + `"}`, false},
		{"over 16 KiB", `{"a":"` + strings.Repeat("x", 2000) + `"` + strings.Repeat(`,"b":"`+strings.Repeat("x", 2000)+`"`, 8) + `}`, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if !json.Valid([]byte(tc.traits)) {
				t.Fatalf("test traits are not JSON")
			}
			err := checkTraits([]byte(tc.traits))
			if tc.ok && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if !tc.ok && !errors.Is(err, ErrInvalidTraits) {
				t.Fatalf("err %v, want ErrInvalidTraits", err)
			}
		})
	}
}

func TestProjectQuota(t *testing.T) {
	def := Quota{SessionsPerDay: 10, EventsPerDay: 20}
	tests := []struct {
		name     string
		settings string
		want     Quota
		err      bool
	}{
		{"none", ``, def, false},
		{"other keys", `{"retention_days": 3}`, def, false},
		{"override one", `{"quota": {"bytes_per_day": 5}}`, Quota{10, 20, 5}, false},
		{"lift one", `{"quota": {"sessions_per_day": 0}}`, Quota{0, 20, 0}, false},
		{"negative", `{"quota": {"events_per_day": -1}}`, def, true},
		{"not a number", `{"quota": {"events_per_day": "many"}}`, def, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := projectQuota(def, json.RawMessage(tc.settings))
			if (err != nil) != tc.err || got != tc.want {
				t.Fatalf("got %+v, %v; want %+v, error %v", got, err, tc.want, tc.err)
			}
			if tc.err && CheckProjectSettings(json.RawMessage(tc.settings)) == nil {
				t.Fatal("CheckProjectSettings accepted it")
			}
		})
	}
}

// BenchmarkQuotaTake measures the quota check on the ingest path (after the
// day's first load): batches/s it admits, from all cores at once.
func BenchmarkQuotaTake(b *testing.B) {
	q := newQuotas(func(context.Context, int64, int64) (index.Usage, error) { return index.Usage{}, nil },
		slog.New(slog.NewTextHandler(io.Discard, nil)), time.Now)
	lim := Quota{SessionsPerDay: 1 << 62, EventsPerDay: 1 << 62, BytesPerDay: 1 << 62}
	day := dayOf(time.Now().UnixMilli())
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := q.take(context.Background(), lim, charge{project: 1, day: day, use: index.Usage{Sessions: 1, Events: 50, Bytes: 20000}}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

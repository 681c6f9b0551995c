package unixms

import (
	"encoding/json"
	"math"
	"testing"
	"time"
)

func TestTime(t *testing.T) {
	tests := []struct {
		name string
		ms   int64
		want string
	}{
		{"epoch", 0, `"1970-01-01T00:00:00Z"`},
		{"ordinary", 1_700_000_000_123, `"2023-11-14T22:13:20.123Z"`},
		{"2^53-1", 1<<53 - 1, `"9999-12-31T23:59:59.999Z"`},
		{"max int64", math.MaxInt64, `"9999-12-31T23:59:59.999Z"`},
		{"min int64", math.MinInt64, `"0000-01-01T00:00:00Z"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Time(tt.ms)
			b, err := json.Marshal(got)
			if err != nil {
				t.Fatalf("Time(%d) = %v does not encode: %v", tt.ms, got, err)
			}
			if string(b) != tt.want {
				t.Fatalf("Time(%d) = %s, want %s", tt.ms, b, tt.want)
			}
			if got.Location() != time.UTC {
				t.Fatalf("location %v, want UTC", got.Location())
			}
		})
	}
}

package recorder

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestCheckTimes(t *testing.T) {
	const now = int64(1_790_000_000_000)
	lim := DefaultLimits()
	week := lim
	week.MaxEventAge = 7 * 24 * time.Hour
	minutes := func(n int64) int64 { return n * 60_000 }
	tests := []struct {
		name        string
		lim         Limits
		first, last int64
		wantErr     bool
	}{
		{"now", lim, now, now, false},
		{"ten minutes ahead", lim, now, now + minutes(10), false},
		{"just over the skew", lim, now, now + minutes(10) + 1, true},
		{"year 2100", lim, now, 4102444800000, true},
		{"2^53-1", lim, now, 1<<53 - 1, true},
		{"1970 without an age bound", lim, 0, now, false},
		{"1970 with an age bound", week, 0, now, true},
		{"six days late", week, now - 6*24*minutes(60), now, false},
		{"just over a week late", week, now - 7*24*minutes(60) - 1, now, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := &Batch{ReceivedAt: now, minTS: tt.first, maxTS: tt.last}
			err := checkTimes(b, tt.lim)
			if (err != nil) != tt.wantErr {
				t.Fatalf("checkTimes = %v, want error %v", err, tt.wantErr)
			}
			if err != nil && !errors.Is(err, ErrTimestampOutOfRange) {
				t.Fatalf("error %v does not wrap ErrTimestampOutOfRange", err)
			}
		})
	}
}

func TestParseBatch_timeRange(t *testing.T) {
	body := batchBody(`[{"type":3,"timestamp":50,"data":{}},{"type":3,"timestamp":7.9,"data":{}},{"type":3,"timestamp":900,"data":{}}]`)
	b, err := ParseBatch(body, DefaultLimits(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(b.minTS, b.maxTS); got != "7 900" {
		t.Fatalf("time range %s, want 7 900", got)
	}
}

func TestLimits_ValidateTimes(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Limits)
		ok   bool
	}{
		{"defaults", func(*Limits) {}, true},
		{"no skew", func(l *Limits) { l.MaxClockSkew = 0 }, false},
		{"skew over a week", func(l *Limits) { l.MaxClockSkew = 8 * 24 * time.Hour }, false},
		{"negative age", func(l *Limits) { l.MaxEventAge = -time.Second }, false},
		{"a week of age", func(l *Limits) { l.MaxEventAge = 7 * 24 * time.Hour }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := DefaultLimits()
			tt.edit(&l)
			if err := l.Validate(); (err == nil) != tt.ok {
				t.Fatalf("Validate = %v, want ok %v", err, tt.ok)
			}
			c := DefaultConfig(t.TempDir())
			c.Limits = l
			if err := c.Validate(); (err == nil) != tt.ok {
				t.Fatalf("Config.Validate = %v, want ok %v", err, tt.ok)
			}
		})
	}
}

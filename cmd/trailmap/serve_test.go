package main

import (
	"io"
	"strings"
	"testing"
	"time"
)

func TestParseServe_Retention(t *testing.T) {
	c, err := parseServe(nil, io.Discard)
	if err != nil || c.Retention.MaxAge != 0 {
		t.Fatalf("default: retention %v, %v; want 0 (keep forever)", c.Retention.MaxAge, err)
	}
	if c, err = parseServe([]string{"--retention-days", "30"}, io.Discard); err != nil || c.Retention.MaxAge != 30*24*time.Hour {
		t.Fatalf("--retention-days 30: %v, %v", c.Retention.MaxAge, err)
	}
	t.Setenv("TRAILMAP_RETENTION_DAYS", "90")
	if c, err = parseServe(nil, io.Discard); err != nil || c.Retention.MaxAge != 90*24*time.Hour {
		t.Fatalf("TRAILMAP_RETENTION_DAYS=90: %v, %v", c.Retention.MaxAge, err)
	}
	if _, err = parseServe([]string{"--retention-days", "-1"}, io.Discard); err == nil || !strings.Contains(err.Error(), "retention") {
		t.Fatalf("--retention-days -1: %v, want a usage error about retention", err)
	}
}

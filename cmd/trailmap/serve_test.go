package main

import (
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/trailmap/trailmap/internal/pgtest"
	"github.com/trailmap/trailmap/internal/servertest"
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

func TestProjectSettingsCommand(t *testing.T) {
	ctx := t.Context()
	data := t.TempDir()
	cmd := func(args ...string) (string, error) {
		var out strings.Builder
		err := run(ctx, append(args, "--data", data), strings.NewReader(""), &out, io.Discard)
		return out.String(), err
	}
	if _, err := cmd("project", "create", "shop"); err != nil {
		t.Fatal(err)
	}
	if out, err := cmd("project", "settings", "shop"); err != nil || strings.TrimSpace(out) != "{}" {
		t.Fatalf("fresh project: %q, %v", out, err)
	}
	if _, err := cmd("project", "settings", "shop", `{"retention_days": 30, "redact_params": ["iban_no"]}`); err != nil {
		t.Fatal(err)
	}
	out, err := cmd("project", "settings", "shop", `{"retention_days": null, "allow_params": ["utm_source"]}`)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("output %q: %v", out, err)
	}
	if _, ok := got["retention_days"]; ok || got["redact_params"] == nil || got["allow_params"] == nil {
		t.Errorf("merged settings %v: want retention_days removed, both lists kept", got)
	}
	for _, bad := range []string{`[1]`, `{"retention_days": "x"}`, `{"retention_days": 0}`, `{"redact_params": "iban"}`, `{"allow_params": [""]}`, `not json`} {
		var ue usageError
		if _, err := cmd("project", "settings", "shop", bad); !errors.As(err, &ue) {
			t.Errorf("%s: %v, want a usage error", bad, err)
		}
	}
	if out2, _ := cmd("project", "settings", "shop"); out2 != out {
		t.Errorf("rejected changes were saved: %s, want %s", out2, out)
	}
	if _, err := cmd("project", "settings", "shop", `{"retention_days": 7}`, "--replace"); err != nil {
		t.Fatal(err)
	}
	if out, _ := cmd("project", "settings", "shop"); strings.Contains(out, "redact_params") || !strings.Contains(out, `"retention_days": 7`) {
		t.Errorf("--replace: %s", out)
	}
	var ue usageError
	if _, err := cmd("project", "settings", "nope"); !errors.As(err, &ue) {
		t.Errorf("unknown project: %v, want a usage error", err)
	}
}

// --index-url postgres://… reaches PostgreSQL and says plainly which owner
// is not ready for it yet, instead of starting half a server.
func TestServe_IndexURLPostgres(t *testing.T) {
	url := pgtest.Shared(t).Database(t)
	cmd := exec.Command(servertest.Bin(t), "serve", "--data", t.TempDir(), "--addr", "127.0.0.1:0", "--index-url", url)
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("serve on PostgreSQL started although owners lack PostgreSQL migrations:\n%s", out)
	}
	if !strings.Contains(string(out), "not available on PostgreSQL yet") {
		t.Errorf("unclear refusal:\n%s", out)
	}
}

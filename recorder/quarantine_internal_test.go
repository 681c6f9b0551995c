package recorder

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// TestPurgeQuarantine: quarantined batches past their project's retention,
// or of a project that is gone, are deleted with their notes; the others,
// those of a project kept for ever, and files that are not batches stay.
func TestPurgeQuarantine(t *testing.T) {
	data := t.TempDir()
	dir := Config{DataDir: data}.quarantineDir()
	if err := os.MkdirAll(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	put := func(project int64, session string, age time.Duration) {
		b := &Batch{ProjectID: project, SessionID: session, Seq: 3, ReceivedAt: now.Add(-age).UnixMilli()}
		name := filepath.Join(dir, quarantineName(b))
		if err := writeFileSync(name+".batch", encodeBatch(b)); err != nil {
			t.Fatal(err)
		}
		if err := writeFileSync(name+".error", []byte("project …\nquarantined 2026-12-01T00:00:00Z\nrefused\n")); err != nil {
			t.Fatal(err)
		}
	}
	put(1, "expired_session", 31*day)
	put(1, "recent_session", 29*day)
	put(2, "kept_forever", 900*day)
	put(3, "project_gone", time.Hour)
	if err := os.WriteFile(filepath.Join(dir, "stray.batch"), []byte("not a batch"), 0o640); err != nil {
		t.Fatal(err)
	}
	keep := func(project int64) (time.Duration, bool) {
		switch project {
		case 1:
			return 30 * day, true
		case 2:
			return 0, true
		}
		return 0, false
	}
	n, err := PurgeQuarantine(data, now, keep)
	if err != nil || n != 2 {
		t.Fatalf("purged %d (%v), want 2", n, err)
	}
	left, err := Quarantined(data)
	if err != nil {
		t.Fatal(err)
	}
	var sessions []string
	for _, q := range left {
		sessions = append(sessions, q.SessionID)
	}
	slices.Sort(sessions)
	if want := []string{"", "kept_forever", "recent_session"}; !slices.Equal(sessions, want) {
		t.Errorf("left %q, want %q (the stray file unnamed)", sessions, want)
	}
	notes, _ := filepath.Glob(filepath.Join(dir, "*.error"))
	if len(notes) != 2 {
		t.Errorf("%d notes left, want 2: %v", len(notes), notes)
	}
	if n, err := PurgeQuarantine(data, now, keep); err != nil || n != 0 {
		t.Errorf("a second purge deleted %d (%v), want 0", n, err)
	}
}

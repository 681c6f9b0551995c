//go:build linux

package main

import (
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/trailmap/trailmap/internal/servertest"
)

// TestFaults_WALDiskFull fills the write-ahead log's disk under the running
// server: ingest answers 503 storage_full with Retry-After at once (not 500,
// not a hang), keeps nothing of the refused batches, and takes them again
// once there is room; after a kill -9 the log replays every acknowledged
// batch, once, in order.
//
// The full disk is a file size limit on the server process (prlimit
// RLIMIT_FSIZE): its writes past the limit get EFBIG — after a short write,
// exactly like ENOSPC — because the Go runtime ignores SIGXFSZ. It needs no
// root and no mount namespace, which a small tmpfs would, and it hits the
// real write path (os.File.Write) with the errno a full disk gives. Unlike a
// full disk it limits each file rather than their sum, so files that are
// already larger (the index) can still be rewritten in place.
func TestFaults_WALDiskFull(t *testing.T) {
	s := servertest.Start(t, "--segment-max-age", "1h", "--segment-max-bytes", "100000000", "--session-idle", "1h")
	clients := newFaultClients(2, 500, "disk_full") // ≈4.5 KB a batch
	for _, c := range clients {
		for range 3 {
			if a, err := c.sendNext(t, s.URL, s.WriteKey); err != nil || a.status != http.StatusAccepted {
				t.Fatalf("before the disk is full: %v %+v", err, a)
			}
		}
	}

	var walBytes int64
	files, _ := filepath.Glob(filepath.Join(s.DataDir, "wal", "*.wal"))
	for _, f := range files {
		if st, err := os.Stat(f); err == nil {
			walBytes = max(walBytes, st.Size())
		}
	}
	if walBytes == 0 {
		t.Fatalf("no write-ahead log data in %v", files)
	}
	pid := s.PID()
	var old unix.Rlimit
	if err := unix.Prlimit(pid, unix.RLIMIT_FSIZE, nil, &old); err != nil {
		t.Fatal(err)
	}
	full := unix.Rlimit{Cur: uint64(walBytes) + 6000, Max: old.Max} // room for about one more batch
	if err := unix.Prlimit(pid, unix.RLIMIT_FSIZE, &full, nil); err != nil {
		t.Fatalf("prlimit: %v", err)
	}

	refused := 0
	for _, c := range clients {
		for attempt := 0; ; attempt++ {
			a, err := c.sendNext(t, s.URL, s.WriteKey)
			if err != nil {
				t.Fatal(err)
			}
			// A batch that still fits in the log is acknowledged, but the
			// full disk stalls the index too: the server waits up to 5 s
			// for it before answering.
			if a.took > 7*time.Second {
				t.Errorf("%s: an answer on a full disk took %s", c.session, a.took)
			}
			if a.status == http.StatusAccepted {
				if attempt > 3 {
					t.Fatalf("%s: still accepting %d batches after the disk is full", c.session, attempt)
				}
				continue
			}
			if a.status != http.StatusServiceUnavailable || a.code != "storage_full" {
				t.Fatalf("%s on a full disk: %d %q, want 503 storage_full", c.session, a.status, a.code)
			}
			if ra, err := strconv.Atoi(a.retryAfter); err != nil || ra < 1 {
				t.Errorf("503 with Retry-After %q", a.retryAfter)
			}
			refused++
			if refused%3 == 0 { // refused again and again, never accepted
				break
			}
		}
	}

	if err := unix.Prlimit(pid, unix.RLIMIT_FSIZE, &old, nil); err != nil {
		t.Fatalf("prlimit: %v", err)
	}
	for _, c := range clients {
		for range 3 {
			if a, err := c.sendNext(t, s.URL, s.WriteKey); err != nil || a.status != http.StatusAccepted {
				t.Fatalf("once there is room again: %v %+v", err, a)
			}
		}
	}
	// Nothing is in a segment yet (--segment-max-age 1h): after a crash
	// everything comes back from the log.
	s.Kill(t)
	s.Restart(t)
	for _, c := range clients {
		checkMarkers(t, "events API", c.session, events(t, s, c.session, ""), c.ackedCount())
	}
}

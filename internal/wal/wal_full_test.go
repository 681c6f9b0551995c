//go:build linux

package wal

import (
	"bytes"
	"context"
	"errors"
	"os"
	"syscall"
	"testing"
)

// TestLog_DiskFull fills the disk in the middle of a record: a file size
// limit (RLIMIT_FSIZE, which the Go runtime turns into EFBIG rather than a
// fatal SIGXFSZ) lets only part of the record reach the file, as ENOSPC does.
// The append fails with ErrNoSpace; once there is room again, records
// appended after it must be replayed too, not cut off behind the torn one.
func TestLog_DiskFull(t *testing.T) {
	dir := t.TempDir()
	l, _, _ := collect(t, dir, 1<<20)
	ctx := context.Background()
	a, b, c := bytes.Repeat([]byte("a"), 100), bytes.Repeat([]byte("b"), 4000), bytes.Repeat([]byte("c"), 100)
	if _, err := l.Append(ctx, a); err != nil {
		t.Fatal(err)
	}
	size := l.Stats().Bytes

	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
		t.Fatal(err)
	}
	lim := old
	lim.Cur = uint64(size) + 1000 // room for the header and part of b
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &lim); err != nil {
		t.Fatal(err)
	}
	_, err := l.Append(ctx, b)
	if rerr := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &old); rerr != nil {
		t.Fatal(rerr)
	}
	if !errors.Is(err, ErrNoSpace) {
		t.Fatalf("append on a full disk: %v, want ErrNoSpace", err)
	}
	if st, _ := os.Stat(l.path(l.current)); st.Size() != size {
		t.Errorf("after the failed append the file holds %d bytes, want %d (the last whole record)", st.Size(), size)
	}

	if _, err := l.Append(ctx, c); err != nil {
		t.Fatalf("append once there is room again: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l2, recs, _ := collect(t, dir, 1<<20)
	defer l2.Close()
	if len(recs) != 2 || !bytes.Equal(recs[0], a) || !bytes.Equal(recs[1], c) {
		var lens []int
		for _, r := range recs {
			lens = append(lens, len(r))
		}
		t.Fatalf("replayed records of lengths %v, want [100 100] (a and c)", lens)
	}
}

// TestLog_RotateFails: when the next file cannot be created (here its
// directory is gone; on a full disk, no inode or block is left), the group
// that filled the current file is still acknowledged — it is on disk — and
// the next append fails instead, having written nothing.
func TestLog_RotateFails(t *testing.T) {
	dir := t.TempDir()
	l, _, _ := collect(t, dir, 100)
	defer l.Close()
	ctx := context.Background()
	if _, err := l.Append(ctx, bytes.Repeat([]byte("a"), 50)); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	// Fills the file (the open file takes it; only new files fail).
	if _, err := l.Append(ctx, bytes.Repeat([]byte("b"), 100)); err != nil {
		t.Fatalf("an append that fits in the current file failed: %v", err)
	}
	if _, err := l.Append(ctx, []byte("c")); err == nil {
		t.Fatal("an append that needs a new file in a removed directory succeeded")
	}
}

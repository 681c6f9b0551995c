package wal

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

func collect(t *testing.T, dir string, size int64) (*Log, [][]byte, []Pos) {
	t.Helper()
	var recs [][]byte
	var pos []Pos
	l, err := Open(dir, size, func(rec []byte, p Pos) error {
		recs = append(recs, bytes.Clone(rec))
		pos = append(pos, p)
		return nil
	})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return l, recs, pos
}

func TestLog_AppendReplayRelease(t *testing.T) {
	dir := t.TempDir()
	l, recs, _ := collect(t, dir, 1<<10)
	if len(recs) != 0 {
		t.Fatalf("fresh log replayed %d records", len(recs))
	}
	var wg sync.WaitGroup
	const n = 200
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := l.Append(context.Background(), []byte(fmt.Sprintf("record-%03d-%s", i, bytes.Repeat([]byte("x"), 50))))
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	// The concurrent appends may all have gone in one group (one write,
	// one file: the log rotates before a write); each of these is a write
	// of its own, after the file went over its size; appended in pieces
	// (AppendParts), each is one record.
	const more = 3
	for i := range more {
		if _, err := l.AppendParts(context.Background(), []byte("late-"), nil, []byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	if st := l.Stats(); st.Files < 2 {
		t.Fatalf("expected rotation, stats %+v", st)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	l, recs, pos := collect(t, dir, 1<<10)
	if len(recs) != n+more {
		t.Fatalf("replayed %d records, want %d", len(recs), n+more)
	}
	for i := range more {
		if got, want := string(recs[n+i]), fmt.Sprintf("late-%d", i); got != want {
			t.Errorf("record %d: %q, want %q", n+i, got, want)
		}
	}
	for _, p := range pos {
		if err := l.Release(p); err != nil {
			t.Fatal(err)
		}
	}
	if st := l.Stats(); st.Files != 1 {
		t.Fatalf("after releasing everything: %+v files, want only the current one", st)
	}
	l.Close()
}

func TestLog_TornTail(t *testing.T) {
	dir := t.TempDir()
	l, _, _ := collect(t, dir, 1<<20)
	for i := range 3 {
		if _, err := l.Append(context.Background(), []byte(fmt.Sprintf("r%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	files, _ := filepath.Glob(filepath.Join(dir, "*.wal"))
	last := files[len(files)-1]
	for _, f := range files {
		if st, _ := os.Stat(f); st.Size() > 0 {
			last = f
		}
	}
	f, _ := os.OpenFile(last, os.O_APPEND|os.O_WRONLY, 0)
	f.Write([]byte{200, 0, 0, 0, 1, 2}) // a header promising 200 bytes, cut short
	f.Close()

	tests := []struct {
		name string
		want int
	}{{"torn tail dropped", 3}, {"second open is clean", 3}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l, recs, _ := collect(t, dir, 1<<20)
			defer l.Close()
			if len(recs) != tc.want {
				t.Fatalf("replayed %d, want %d", len(recs), tc.want)
			}
		})
	}
}

func TestLog_AppendAfterClose(t *testing.T) {
	l, _, _ := collect(t, t.TempDir(), 1<<20)
	l.Close()
	if _, err := l.Append(context.Background(), []byte("x")); err != ErrClosed {
		t.Fatalf("got %v, want ErrClosed", err)
	}
}

package wal

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"os"
	"path/filepath"
	"testing"
)

func frame(rec []byte) []byte {
	b := make([]byte, headerSize+len(rec))
	binary.LittleEndian.PutUint32(b, uint32(len(rec)))
	binary.LittleEndian.PutUint32(b[4:], crc32.Checksum(rec, castagnoli))
	copy(b[headerSize:], rec)
	return b
}

// FuzzReplay opens logs whose files hold arbitrary bytes: an earlier file
// that is not intact is ErrCorrupt; the last file gives its intact records
// (and only those, as written) and loses its torn tail; either way Open
// never panics, and an opened log takes and replays new records.
func FuzzReplay(f *testing.F) {
	var good []byte
	for _, r := range [][]byte{[]byte(`{"session_id":"abcdefgh","seq":0}`), {}, bytes.Repeat([]byte{0xff}, 300)} {
		good = append(good, frame(r)...)
	}
	f.Add(good, []byte{})
	f.Add(good[:len(good)-3], []byte{})
	f.Add(good, good[:11])
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0}, []byte{})
	f.Add(good, append(frame([]byte("x")), 1, 2, 3))
	bad := bytes.Clone(good)
	bad[12] ^= 1
	f.Add(bad, good)
	f.Fuzz(func(t *testing.T, first, last []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "0000000000000001.wal"), first, 0o640); err != nil {
			t.Fatal(err)
		}
		if len(last) > 0 {
			if err := os.WriteFile(filepath.Join(dir, "0000000000000002.wal"), last, 0o640); err != nil {
				t.Fatal(err)
			}
		}
		var got [][]byte
		l, err := Open(dir, 1<<20, func(rec []byte, _ Pos) error {
			got = append(got, bytes.Clone(rec))
			return nil
		})
		if err != nil {
			if !errors.Is(err, ErrCorrupt) || len(last) == 0 {
				t.Fatalf("open: %v", err)
			}
			return
		}
		// Every record replayed is one that was framed intact, in order.
		want := intact(first)
		if len(last) > 0 {
			want = append(want, intact(last)...)
		}
		if len(got) != len(want) {
			t.Fatalf("replayed %d records, %d intact", len(got), len(want))
		}
		for i := range got {
			if !bytes.Equal(got[i], want[i]) {
				t.Fatalf("record %d differs", i)
			}
		}
		if _, err := l.Append(context.Background(), []byte("after")); err != nil {
			t.Fatalf("append after replay: %v", err)
		}
		l.Close()
		var again [][]byte
		l, err = Open(dir, 1<<20, func(rec []byte, _ Pos) error {
			again = append(again, bytes.Clone(rec))
			return nil
		})
		if err != nil {
			t.Fatalf("reopen: %v", err)
		}
		l.Close()
		if len(again) != len(want)+1 || string(again[len(again)-1]) != "after" {
			t.Fatalf("reopened: %d records, want %d", len(again), len(want)+1)
		}
	})
}

// intact lists the records of b up to the first that is not whole and right.
func intact(b []byte) [][]byte {
	var out [][]byte
	for len(b) >= headerSize {
		n := binary.LittleEndian.Uint32(b)
		sum := binary.LittleEndian.Uint32(b[4:])
		if n > MaxRecord || uint64(len(b)-headerSize) < uint64(n) {
			break
		}
		rec := b[headerSize : headerSize+int(n)]
		if crc32.Checksum(rec, castagnoli) != sum {
			break
		}
		out = append(out, rec)
		b = b[headerSize+int(n):]
	}
	return out
}

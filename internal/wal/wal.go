// Package wal is an append-only write-ahead log of opaque records with group
// commit: concurrent appends share one write and one fsync. Records live in
// numbered files; a file is deleted once every record in it has been released
// by its owner (for Trailmap: once the batch is in a stored segment).
package wal

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// ErrClosed is returned by Append after Close.
var ErrClosed = errors.New("wal closed")

// ErrCorrupt is returned by Open when a record in the middle of the log fails
// its checksum (a torn record at the very end is expected after a crash and is
// truncated silently).
var ErrCorrupt = errors.New("wal corrupt")

// ErrNoSpace is wrapped by Append's error when the disk refused the write for
// lack of space (ENOSPC, a quota, or a file size limit). Nothing of the
// failed records stays in the log, and appends work again once there is room.
var ErrNoSpace = errors.New("no space left for the wal")

const headerSize = 8 // uint32 length + uint32 CRC-32C

// MaxRecord is the largest record accepted.
const MaxRecord = 256 << 20

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Pos says where a record lives; Release takes it.
type Pos struct {
	File uint64
}

// Stats describes the log for metrics.
type Stats struct {
	Files int
	Bytes int64
}

// Log is the write-ahead log. It is safe for concurrent use.
type Log struct {
	dir      string
	fileSize int64

	reqs   chan *appendReq
	done   chan struct{}
	sendMu sync.RWMutex // held shared while sending on reqs, exclusively to close it
	fileMu sync.Mutex   // serialises writes to the current file with rotation

	mu      sync.Mutex
	closed  bool
	refs    map[uint64]int   // live records per file
	sizes   map[uint64]int64 // bytes per file
	current uint64           // file being appended to
	f       *os.File
	size    int64 // size of current file
	// dirty is set when a write or sync failed: the file may hold part of
	// a group after size, which must be cut off before the next write.
	dirty bool
}

type appendReq struct {
	parts [][]byte // the record, in pieces
	n     int      // its length
	pos   Pos
	err   chan error
}

// Open opens the log in dir, calling replay for every intact record in order
// (file by file). Records replayed count as live until released. A torn tail
// is truncated. fileSize is the size after which a new file is started.
func Open(dir string, fileSize int64, replay func(rec []byte, pos Pos) error) (*Log, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("create wal dir: %w", err)
	}
	l := &Log{
		dir:      dir,
		fileSize: fileSize,
		reqs:     make(chan *appendReq, 1024),
		done:     make(chan struct{}),
		refs:     map[uint64]int{},
		sizes:    map[uint64]int64{},
	}
	files, err := l.files()
	if err != nil {
		return nil, err
	}
	for i, n := range files {
		last := i == len(files)-1
		count, size, err := l.replayFile(n, last, replay)
		if err != nil {
			return nil, err
		}
		l.refs[n] = count
		l.sizes[n] = size
		if count == 0 { // Open always starts a new file, so an empty one is never needed
			if err := os.Remove(l.path(n)); err != nil {
				return nil, fmt.Errorf("remove empty wal file: %w", err)
			}
			delete(l.refs, n)
			delete(l.sizes, n)
		}
	}
	next := uint64(1)
	if len(files) > 0 {
		next = files[len(files)-1] + 1
	}
	if err := l.rotate(next); err != nil {
		return nil, err
	}
	go l.writer()
	return l, nil
}

func (l *Log) path(n uint64) string { return filepath.Join(l.dir, fmt.Sprintf("%016d.wal", n)) }

func (l *Log) files() ([]uint64, error) {
	entries, err := os.ReadDir(l.dir)
	if err != nil {
		return nil, fmt.Errorf("list wal: %w", err)
	}
	var out []uint64
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".wal")
		if !ok {
			continue
		}
		n, err := strconv.ParseUint(name, 10, 64)
		if err != nil {
			continue
		}
		out = append(out, n)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out, nil
}

func (l *Log) replayFile(n uint64, last bool, replay func([]byte, Pos) error) (count int, size int64, err error) {
	f, err := os.OpenFile(l.path(n), os.O_RDWR, 0)
	if err != nil {
		return 0, 0, fmt.Errorf("open wal file: %w", err)
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 1<<20)
	var off int64
	hdr := make([]byte, headerSize)
	var buf []byte
	for {
		_, err := io.ReadFull(r, hdr)
		if err == io.EOF {
			return count, off, nil
		}
		torn := func(why string) (int, int64, error) {
			if !last {
				return 0, 0, fmt.Errorf("%w: %s at %s offset %d", ErrCorrupt, why, l.path(n), off)
			}
			// A crash mid-append leaves a partial record that was never
			// acknowledged: cut it off.
			if err := f.Truncate(off); err != nil {
				return 0, 0, fmt.Errorf("truncate torn wal tail: %w", err)
			}
			return count, off, f.Sync()
		}
		if err != nil {
			return torn("short header")
		}
		length := binary.LittleEndian.Uint32(hdr)
		sum := binary.LittleEndian.Uint32(hdr[4:])
		if length > MaxRecord {
			return torn("record too long")
		}
		if cap(buf) < int(length) {
			buf = make([]byte, length)
		}
		buf = buf[:length]
		if _, err := io.ReadFull(r, buf); err != nil {
			return torn("short record")
		}
		if crc32.Checksum(buf, castagnoli) != sum {
			return torn("checksum mismatch")
		}
		if err := replay(buf, Pos{File: n}); err != nil {
			return 0, 0, fmt.Errorf("replay wal record: %w", err)
		}
		count++
		off += headerSize + int64(length)
	}
}

func (l *Log) rotate(n uint64) error {
	f, err := os.OpenFile(l.path(n), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return fmt.Errorf("create wal file: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("stat wal file: %w", err)
	}
	if err := SyncDir(l.dir); err != nil {
		f.Close()
		return err
	}
	l.mu.Lock()
	old := l.f
	oldN := l.current
	l.f, l.current, l.size = f, n, st.Size()
	if _, ok := l.refs[n]; !ok {
		l.refs[n] = 0
	}
	l.sizes[n] = st.Size()
	removeOld := old != nil && l.refs[oldN] == 0
	if removeOld {
		delete(l.refs, oldN)
		delete(l.sizes, oldN)
	}
	l.mu.Unlock()
	if old != nil {
		old.Close()
		if removeOld {
			if err := os.Remove(l.path(oldN)); err != nil {
				return fmt.Errorf("remove wal file: %w", err)
			}
		}
	}
	return nil
}

// Append writes rec durably: it returns once rec is fsynced. Concurrent
// appends are written and synced together.
func (l *Log) Append(ctx context.Context, rec []byte) (Pos, error) {
	return l.AppendParts(ctx, rec)
}

// AppendParts appends the record made of parts, in order, as Append does;
// the writer copies them into its write once (no record need be put
// together before). The caller must not change them until it returns.
func (l *Log) AppendParts(ctx context.Context, parts ...[]byte) (Pos, error) {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	if n > MaxRecord {
		return Pos{}, fmt.Errorf("wal record of %d bytes over the %d limit", n, MaxRecord)
	}
	req := &appendReq{parts: parts, n: n, err: make(chan error, 1)}
	l.sendMu.RLock()
	l.mu.Lock()
	closed := l.closed
	l.mu.Unlock()
	if closed {
		l.sendMu.RUnlock()
		return Pos{}, ErrClosed
	}
	select {
	case l.reqs <- req:
		l.sendMu.RUnlock()
	case <-ctx.Done():
		l.sendMu.RUnlock()
		return Pos{}, ctx.Err()
	}
	// Once queued the record will be written whatever the caller does, so
	// wait for the outcome even if ctx ends: the caller must know.
	err := <-req.err
	return req.pos, err
}

func (l *Log) writer() {
	defer close(l.done)
	var buf []byte
	hdr := make([]byte, headerSize)
	for {
		first, ok := <-l.reqs
		if !ok {
			return
		}
		group := []*appendReq{first}
	drain:
		for len(group) < 4096 {
			select {
			case r, ok := <-l.reqs:
				if !ok {
					break drain
				}
				group = append(group, r)
			default:
				break drain
			}
		}
		buf = buf[:0]
		for _, r := range group {
			var sum uint32
			for _, p := range r.parts {
				sum = crc32.Update(sum, castagnoli, p)
			}
			binary.LittleEndian.PutUint32(hdr, uint32(r.n))
			binary.LittleEndian.PutUint32(hdr[4:], sum)
			buf = append(buf, hdr...)
			for _, p := range r.parts {
				buf = append(buf, p...)
			}
		}
		l.fileMu.Lock()
		cur, err := l.writeSync(buf, len(group))
		l.fileMu.Unlock()
		for _, r := range group {
			r.pos = Pos{File: cur}
		}
		for _, r := range group {
			r.err <- err
		}
		if cap(buf) > 64<<20 {
			buf = nil
		}
	}
}

// writeSync writes and syncs one group of n records, returning the file it
// is in.
func (l *Log) writeSync(buf []byte, n int) (uint64, error) {
	l.mu.Lock()
	f, size, dirty := l.f, l.size, l.dirty
	full := size >= l.fileSize
	next := l.current + 1
	l.mu.Unlock()
	if dirty {
		if err := l.cut(f, size); err != nil {
			return 0, err
		}
	}
	// Rotate before writing, not after: a failed rotation (a full disk
	// cannot take a new file) then fails a group that was not written,
	// instead of one that is already durable.
	if full {
		if err := l.rotate(next); err != nil {
			return 0, noSpace(err)
		}
		l.mu.Lock()
		f, size = l.f, l.size
		l.mu.Unlock()
	}
	if _, err := f.Write(buf); err != nil {
		// A short write (a full disk) leaves part of the group in the file;
		// records appended after it would then sit behind a torn record
		// and be cut off, acknowledged, at the next replay.
		return 0, errors.Join(fmt.Errorf("write wal: %w", noSpace(err)), l.cut(f, size))
	}
	if err := f.Sync(); err != nil {
		return 0, errors.Join(fmt.Errorf("sync wal: %w", noSpace(err)), l.cut(f, size))
	}
	l.mu.Lock()
	l.size += int64(len(buf))
	l.sizes[l.current] = l.size
	l.refs[l.current] += n
	cur := l.current
	l.mu.Unlock()
	return cur, nil
}

// cut truncates f back to size, the end of its last whole record, after a
// failed write; until it succeeds the log stays dirty and every write tries
// again first. Cutting needs no space, so it works on a full disk.
func (l *Log) cut(f *os.File, size int64) error {
	err := f.Truncate(size)
	l.mu.Lock()
	l.dirty = err != nil
	l.mu.Unlock()
	if err != nil {
		return fmt.Errorf("cut failed wal write: %w", err)
	}
	return nil
}

// noSpace marks errors that mean the disk is full with ErrNoSpace.
func noSpace(err error) error {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EFBIG) || errors.Is(err, syscall.EDQUOT) {
		return fmt.Errorf("%w: %w", ErrNoSpace, err)
	}
	return err
}

// Release marks one record at pos as no longer needed. A file whose records
// are all released is deleted; when that is the file being appended to, a
// new one is started first, so a quiet server does not keep stored data.
func (l *Log) Release(pos Pos) error {
	l.mu.Lock()
	l.refs[pos.File]--
	drained := l.refs[pos.File] <= 0
	remove := drained && pos.File != l.current
	if remove {
		delete(l.refs, pos.File)
		delete(l.sizes, pos.File)
	}
	l.mu.Unlock()
	if drained && !remove {
		l.fileMu.Lock()
		defer l.fileMu.Unlock()
		l.mu.Lock()
		still := !l.closed && pos.File == l.current && l.refs[pos.File] <= 0 && l.size > 0
		next := l.current + 1
		l.mu.Unlock()
		if still {
			return l.rotate(next)
		}
		return nil
	}
	if remove {
		if err := os.Remove(l.path(pos.File)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove wal file: %w", err)
		}
	}
	return nil
}

// Stats reports the number of files and bytes on disk.
func (l *Log) Stats() Stats {
	l.mu.Lock()
	defer l.mu.Unlock()
	var s Stats
	for _, b := range l.sizes {
		s.Files++
		s.Bytes += b
	}
	return s
}

// Close stops the writer after pending appends and closes the current file.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	l.mu.Unlock()
	l.sendMu.Lock()
	close(l.reqs)
	l.sendMu.Unlock()
	<-l.done
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.f.Close()
}

// SyncDir fsyncs directory dir, so that entries created or renamed in it
// survive a crash.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open dir for sync: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync dir: %w", err)
	}
	return nil
}

package recorder

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
)

// walVersion is the first byte of every WAL record; bump it when the layout
// changes and keep decoding the old one.
const walVersion = 1

var errShortRecord = errors.New("short wal record")

// encodeBatch serialises b for the write-ahead log: a version byte, then
// varint-prefixed fields, then the events.
func encodeBatch(b *Batch) []byte {
	return bytes.Join(batchRecord(b), nil)
}

// batchRecord is encodeBatch's record in pieces that the log copies into
// its write (wal.AppendParts): the fields and each event's length prefix in
// one small buffer, the events themselves as they are (no copy of a
// batch's ~12 KB before the log's own).
func batchRecord(b *Batch) [][]byte {
	size := 64 + len(b.SessionID) + len(b.VisitorID) + len(b.UserAgent) + len(b.IP) + binary.MaxVarintLen64*len(b.Events)
	if b.User != nil {
		size += len(b.User.ID) + len(b.User.Traits) + 8
	}
	// Sized not to grow (a part taken before a growth would still hold
	// its bytes, in the old array).
	meta := make([]byte, 0, size)
	meta = append(meta, walVersion)
	meta = binary.AppendUvarint(meta, uint64(b.ProjectID))
	meta = appendString(meta, b.SessionID)
	meta = appendString(meta, b.VisitorID)
	meta = binary.AppendVarint(meta, b.Seq)
	meta = binary.AppendVarint(meta, b.ReceivedAt)
	meta = appendString(meta, b.UserAgent)
	meta = appendString(meta, b.IP)
	if b.User != nil {
		meta = append(meta, 1)
		meta = appendString(meta, b.User.ID)
		meta = appendString(meta, string(b.User.Traits))
	} else {
		meta = append(meta, 0)
	}
	meta = binary.AppendUvarint(meta, uint64(len(b.Events)))
	parts := make([][]byte, 0, 2*len(b.Events)+1)
	from := 0
	for _, ev := range b.Events {
		meta = binary.AppendUvarint(meta, uint64(len(ev)))
		parts = append(parts, meta[from:len(meta):len(meta)], ev)
		from = len(meta)
	}
	if from < len(meta) || len(parts) == 0 {
		parts = append(parts, meta[from:])
	}
	return parts
}

func appendString(out []byte, s string) []byte {
	out = binary.AppendUvarint(out, uint64(len(s)))
	return append(out, s...)
}

type walReader struct {
	buf []byte
	err error
}

func (r *walReader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.buf)
	if n <= 0 {
		r.err = errShortRecord
		return 0
	}
	r.buf = r.buf[n:]
	return v
}

func (r *walReader) varint() int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.buf)
	if n <= 0 {
		r.err = errShortRecord
		return 0
	}
	r.buf = r.buf[n:]
	return v
}

func (r *walReader) bytes() []byte {
	n := r.uvarint()
	if r.err != nil {
		return nil
	}
	if uint64(len(r.buf)) < n {
		r.err = errShortRecord
		return nil
	}
	out := r.buf[:n:n]
	r.buf = r.buf[n:]
	return out
}

func (r *walReader) byte1() byte {
	if r.err != nil || len(r.buf) == 0 {
		r.err = errShortRecord
		return 0
	}
	c := r.buf[0]
	r.buf = r.buf[1:]
	return c
}

// decodeBatch is the inverse of encodeBatch. The returned batch's events
// alias rec, so the caller must not reuse rec.
func decodeBatch(rec []byte) (*Batch, error) {
	r := &walReader{buf: rec}
	if v := r.byte1(); v != walVersion {
		return nil, fmt.Errorf("wal record version %d not supported", v)
	}
	b := &Batch{}
	b.ProjectID = int64(r.uvarint())
	b.SessionID = string(r.bytes())
	b.VisitorID = string(r.bytes())
	b.Seq = r.varint()
	b.ReceivedAt = r.varint()
	b.UserAgent = string(r.bytes())
	b.IP = string(r.bytes())
	if r.byte1() == 1 {
		b.User = &User{ID: string(r.bytes())}
		if t := r.bytes(); len(t) > 0 {
			b.User.Traits = json.RawMessage(t)
		}
	}
	n := r.uvarint()
	if r.err == nil && n > uint64(len(r.buf)) {
		r.err = errShortRecord
	}
	if r.err != nil {
		return nil, fmt.Errorf("decode wal record: %w", r.err)
	}
	b.Events = make([]json.RawMessage, 0, n)
	for range n {
		b.Events = append(b.Events, json.RawMessage(r.bytes()))
	}
	if r.err != nil {
		return nil, fmt.Errorf("decode wal record: %w", r.err)
	}
	return b, nil
}

package recorder

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// TestBatchRecord: the log's record of a batch keeps its layout (the bytes
// of version 1, as logs written by earlier releases hold them), whether
// put together (encodeBatch) or in the pieces the log copies
// (batchRecord), and decodes back to the batch.
func TestBatchRecord(t *testing.T) {
	full := &Batch{ProjectID: 7, SessionID: "session_golden", VisitorID: "visitor_g", Seq: 3, ReceivedAt: 1764000000123,
		UserAgent: "Mozilla/5.0", IP: "203.0.113.0", User: &User{ID: "u-1", Traits: json.RawMessage(`{"plan":"pro"}`)},
		Events: []json.RawMessage{json.RawMessage(`{"type":4,"timestamp":1}`), json.RawMessage(`{"type":3,"timestamp":2,"data":{}}`)}}
	bare := *full
	bare.User, bare.Events = nil, nil
	for _, tt := range []struct {
		name   string
		b      *Batch
		golden string
	}{
		{"user and events", full, "01070e73657373696f6e5f676f6c64656e0976697369746f725f6706f6a1bfe9d6660b4d6f7a696c6c612f352e300b3230332e302e3131332e300103752d310e7b22706c616e223a2270726f227d02187b2274797065223a342c2274696d657374616d70223a317d227b2274797065223a332c2274696d657374616d70223a322c2264617461223a7b7d7d"},
		{"neither", &bare, "01070e73657373696f6e5f676f6c64656e0976697369746f725f6706f6a1bfe9d6660b4d6f7a696c6c612f352e300b3230332e302e3131332e300000"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			want, _ := hex.DecodeString(tt.golden)
			if got := encodeBatch(tt.b); !bytes.Equal(got, want) {
				t.Errorf("encodeBatch:\n%x\nwant\n%x", got, want)
			}
			if got := bytes.Join(batchRecord(tt.b), nil); !bytes.Equal(got, want) {
				t.Errorf("batchRecord:\n%x\nwant\n%x", got, want)
			}
			back, err := decodeBatch(want)
			if err != nil {
				t.Fatal(err)
			}
			if len(back.Events) == 0 && len(tt.b.Events) == 0 {
				back.Events = tt.b.Events // none either way
			}
			if !reflect.DeepEqual(back, tt.b) {
				t.Errorf("decoded %+v, want %+v", back, tt.b)
			}
		})
	}
}

// BenchmarkBatchRecord: what logging a batch of the demo recording costs
// before the write, the record put together and then copied into the
// log's buffer (as before) or its pieces copied into it (AppendParts).
func BenchmarkBatchRecord(b *testing.B) {
	data, err := os.ReadFile(filepath.Join("testdata", "rrweb", "player-demo-recording.json"))
	if err != nil {
		b.Fatal(err)
	}
	batch, err := ParseBatch(batchBody(string(data)), DefaultLimits(), NewRedactor(DefaultRedactRules()))
	if err != nil {
		b.Fatal(err)
	}
	size := len(encodeBatch(batch))
	var buf []byte
	b.Run("joined", func(b *testing.B) {
		b.SetBytes(int64(size))
		b.ReportAllocs()
		for b.Loop() {
			buf = append(buf[:0], encodeBatch(batch)...)
		}
	})
	b.Run("parts", func(b *testing.B) {
		b.SetBytes(int64(size))
		b.ReportAllocs()
		for b.Loop() {
			buf = buf[:0]
			for _, p := range batchRecord(batch) {
				buf = append(buf, p...)
			}
		}
	})
}

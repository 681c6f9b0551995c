package index_test

import (
	"context"
	"testing"

	"github.com/trailmap/trailmap/storage/index"
	"github.com/trailmap/trailmap/storage/sqldb"
)

// Usage counters add up per project and day; identity secrets are set and
// removed; forgetting deletes a session's core rows and notes its objects —
// on both backends.
func TestGuardAndForget_Dialects(t *testing.T) {
	eachWithErrorClicks(t, func(t *testing.T, db *index.DB) {
		ctx := context.Background()
		p, in := projectIngest(t, db)
		sid, _ := record(t, in, p.ID, 0, 1000)
		for range 2 {
			err := in.Tx(ctx, func(tx *index.IngestTx) error {
				return tx.AddUsage(ctx, p.ID, 20000, index.Usage{Sessions: 1, Events: 10, Bytes: 100})
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		if u, err := db.UsageOn(ctx, p.ID, 20000); err != nil || u != (index.Usage{Sessions: 2, Events: 20, Bytes: 200}) {
			t.Fatalf("usage %+v, %v", u, err)
		}
		if u, err := db.UsageOn(ctx, p.ID, 20001); err != nil || u != (index.Usage{}) {
			t.Fatalf("usage of an empty day %+v, %v", u, err)
		}

		if err := db.SetIdentitySecret(ctx, p.ID, "s3cret"); err != nil {
			t.Fatal(err)
		}
		if got, err := db.ProjectByID(ctx, p.ID); err != nil || got.IdentitySecret != "s3cret" {
			t.Fatalf("secret %q, %v", got.IdentitySecret, err)
		}

		if _, err := db.AddPendingSegment(ctx, index.NewSegment{SessionID: sid, Key: "p/sessions/x/0-0.zst", Seqs: []byte(`[[0,0]]`), Snapshots: []byte(`[]`)}); err != nil {
			t.Fatal(err)
		}
		var counts map[string]int
		var noted int
		err := db.InSharedTx(ctx, func(tx *sqldb.Tx) error {
			var err error
			counts, noted, err = db.DeleteSessions(ctx, tx, []int64{sid}, 5000)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if counts["sessions"] != 1 || counts["pages"] != 1 || counts["custom_events"] != 1 || counts["batches"] != 1 || noted != 1 {
			t.Errorf("deleted %v, noted %d", counts, noted)
		}
		keys, err := db.BlobTrash(ctx, 10)
		if err != nil || len(keys) != 1 || keys[0] != "p/sessions/x/0-0.zst" {
			t.Errorf("trash %v, %v", keys, err)
		}
	})
}

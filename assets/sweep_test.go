package assets_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/trailmap/trailmap/assets"
	"github.com/trailmap/trailmap/storage"
	"github.com/trailmap/trailmap/storage/index"
	"github.com/trailmap/trailmap/storage/index/indextest"
)

// Copies no kept session references go: a day's once the project has no
// session that day, a content-hashed URL's once no session started since
// the day before its fetch; their objects an hour after, unless a copy of
// the same bytes is stored again meanwhile or another row still holds
// them.
func TestSweep(t *testing.T) {
	indextest.EachWith(t, schemas, func(t *testing.T, db *index.DB) {
		ctx := context.Background()
		blobs := mustFS(t)
		store := assets.NewStore(db.SQL())
		p, err := db.CreateProject(ctx, "p", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		const day = int64(86_400_000)
		kept := int64(20_400) // a day with a session
		// A session starting on day kept.
		in, err := db.Ingest(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer in.Close()
		start := kept*day + 3_600_000
		if err := in.Tx(ctx, func(tx *index.IngestTx) error {
			_, _, err := tx.UpsertSession(ctx, index.SessionStart{ProjectID: p.ID, PublicID: "s1", VisitorID: "v1", StartedAt: start, EndedAt: start, LastReceived: start})
			return err
		}); err != nil {
			t.Fatal(err)
		}
		sha := func(c byte) string { return strings.Repeat(string(c), 64) }
		copies := []assets.Copy{
			{URL: "https://cdn/logo.png", Day: kept, SHA256: sha('a')},                                              // kept: its day has a session
			{URL: "https://cdn/logo.png", Day: kept + 1, SHA256: sha('a')},                                          // gone, its bytes held by the row above
			{URL: "https://cdn/old.png", Day: kept - 3, SHA256: sha('b')},                                           // gone with its object
			{URL: "https://cdn/app.1a2b3c.css", Day: 0, SHA256: sha('c'), FetchedAt: time.UnixMilli(start - day)},   // used since its fetch: kept
			{URL: "https://cdn/new.9f8e7d.css", Day: 0, SHA256: sha('d'), FetchedAt: time.UnixMilli(start + 3*day)}, // fetched after every session: gone
			{URL: "https://cdn/again.png", Day: kept - 5, SHA256: sha('e')},                                         // gone, then the same bytes stored again
		}
		for _, c := range copies {
			c.ProjectID, c.Status, c.ContentType, c.Size = p.ID, assets.StatusStored, "image/png", 3
			if c.FetchedAt.IsZero() {
				c.FetchedAt = time.UnixMilli(c.Day*day + 1000)
			}
			if err := store.Record(ctx, c); err != nil {
				t.Fatal(err)
			}
			if err := blobs.Put(ctx, assets.Key(p.ID, c.SHA256), bytes.NewReader([]byte("png")), 3); err != nil {
				t.Fatal(err)
			}
		}
		logger := slog.New(slog.NewTextHandler(io.Discard, nil))
		now := time.UnixMilli((kept + 10) * day)
		res, err := assets.Sweep(ctx, store, db, blobs, now, time.Hour, logger)
		if err != nil || res.Rows != 4 || res.Objects != 0 {
			t.Fatalf("first sweep: %+v, %v; want 4 rows, no object yet (grace)", res, err)
		}
		// The fetcher stores the same bytes as the trashed "again.png" anew.
		if err := store.Record(ctx, assets.Copy{ProjectID: p.ID, URL: "https://cdn/again2.png", Day: kept, Status: assets.StatusStored,
			SHA256: sha('e'), ContentType: "image/png", Size: 3, FetchedAt: now}); err != nil {
			t.Fatal(err)
		}
		res, err = assets.Sweep(ctx, store, db, blobs, now.Add(2*time.Hour), time.Hour, logger)
		if err != nil || res.Rows != 0 || res.Objects != 2 {
			t.Fatalf("second sweep: %+v, %v; want the objects of old.png and new.9f8e7d.css", res, err)
		}
		for c, want := range map[byte]bool{'a': true, 'b': false, 'c': true, 'd': false, 'e': true} {
			r, err := blobs.Get(ctx, assets.Key(p.ID, sha(c)), 0, -1)
			if err == nil {
				r.Close()
			}
			if got := err == nil; got != want || (err != nil && !errors.Is(err, storage.ErrNotFound)) {
				t.Errorf("object %c: present %v (%v), want %v", c, got, err, want)
			}
		}
		rd := assets.NewReader(store, blobs)
		if _, _, err := rd.Open(ctx, p.ID, sha('a'), func(string) string { return "" }); err != nil {
			t.Errorf("kept copy unreadable: %v", err)
		}
		// Nothing left to do.
		if res, err := assets.Sweep(ctx, store, db, blobs, now.Add(4*time.Hour), time.Hour, logger); err != nil || res != (assets.SweepResult{}) {
			t.Errorf("third sweep: %+v, %v", res, err)
		}
	})
}

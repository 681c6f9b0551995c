package server

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/trailmap/trailmap/accounts"
	"github.com/trailmap/trailmap/render"
	"github.com/trailmap/trailmap/storage/index/indextest"
)

// Without ffmpeg on PATH the render routes answer 503
// renderer_unavailable, saying what to install; nothing is queued.
func TestRenders_NoFFmpeg(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	t.Setenv("FFMPEG_BIN", "")
	db := indextest.New(t, accounts.Schema, render.Schema)
	ctx := context.Background()
	if _, err := db.CreateProject(ctx, "shop", time.Now()); err != nil {
		t.Fatal(err)
	}
	tok, err := db.CreateToken(ctx, "ops", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	store := render.NewStore(db.SQL(), nil)
	svc := render.New(render.DefaultConfig(), store, nil, nil, nil, nil, slog.New(slog.DiscardHandler))
	s := New(Config{Addr: "127.0.0.1:0"}, Deps{Index: db, Logger: slog.New(slog.DiscardHandler), Extra: Extras{Renders: svc}})
	r := httptest.NewRequest(http.MethodPost, "/api/v1/renders", strings.NewReader(`{"session_id":"x","start_ms":0,"end_ms":1000}`))
	r.Header.Set("Authorization", "Bearer "+tok.Value)
	w := httptest.NewRecorder()
	s.Handler().ServeHTTP(w, r)
	var body struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	json.Unmarshal(w.Body.Bytes(), &body)
	if w.Code != http.StatusServiceUnavailable || body.Error.Code != "renderer_unavailable" || !strings.Contains(body.Error.Message, "ffmpeg") {
		t.Errorf("render without ffmpeg: %d %s", w.Code, w.Body)
	}
	if n, err := store.Pending(ctx); err != nil || n != 0 {
		t.Errorf("queued without a renderer: %d %v", n, err)
	}
}

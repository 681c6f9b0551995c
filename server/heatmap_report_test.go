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
	"github.com/trailmap/trailmap/storage/index/indextest"
	"github.com/trailmap/trailmap/ui"
)

// noHeatmaps is a heatmap service the report never reaches.
type noHeatmaps struct{ Heatmaps }

type noUsers struct{}

func (noUsers) Authenticate(context.Context, string, string) (*accounts.User, error) {
	return nil, ui.ErrBadLogin
}
func (noUsers) StartLogin(context.Context, *accounts.User) (*ui.Login, error) {
	return nil, ui.ErrBadLogin
}
func (noUsers) LoginByToken(context.Context, string) (*accounts.User, error) {
	return nil, ui.ErrBadLogin
}
func (noUsers) EndLogin(context.Context, string) error { return nil }

// Without Chromium the report answers 503 renderer_unavailable, saying
// what to install; the rest of the heatmap API is unaffected.
func TestHeatmapReport_NoChromium(t *testing.T) {
	t.Setenv("CHROMIUM_BIN", "/nonexistent/chromium")
	db := indextest.New(t)
	ctx := context.Background()
	if _, err := db.CreateProject(ctx, "shop", time.Now()); err != nil {
		t.Fatal(err)
	}
	tok, err := db.CreateToken(ctx, "ops", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	s := New(Config{Addr: "127.0.0.1:0"}, Deps{Index: db, Logger: slog.New(slog.DiscardHandler),
		Extra: Extras{Heatmaps: noHeatmaps{}, UI: noUsers{}}})
	r := httptest.NewRequest(http.MethodGet, "/api/v1/heatmaps/report.png?project=shop&url=/pricing", nil)
	r.Header.Set("Authorization", "Bearer "+tok.Value)
	w := httptest.NewRecorder()
	s.Handler().ServeHTTP(w, r)
	var body struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	json.Unmarshal(w.Body.Bytes(), &body)
	if w.Code != http.StatusServiceUnavailable || body.Error.Code != "renderer_unavailable" || !strings.Contains(body.Error.Message, "chromium") {
		t.Errorf("report without Chromium: %d %s", w.Code, w.Body)
	}
}

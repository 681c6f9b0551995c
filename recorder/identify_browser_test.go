package recorder_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/trailmap/trailmap/internal/browsertest"
	"github.com/trailmap/trailmap/internal/servertest"
	"github.com/trailmap/trailmap/recorder"
)

// TestRecorder_IdentifyVerified checks that identify passes the signature
// the site's backend made through to the server: in a project that
// requires verified identities, a signed identify joins the visitor to the
// person and an unsigned one does not (its recording is kept).
func TestRecorder_IdentifyVerified(t *testing.T) {
	srv := servertest.Start(t)
	var sec struct {
		Secret string `json:"identity_secret"`
	}
	srv.Admin(t, &sec, "project", "identity-secret", "test")
	srv.Admin(t, nil, "project", "settings", "test", `{"require_verified_identity": true}`)
	st := newSite(t, srv)
	b := browsertest.Start(t, browsertest.LoopbackOnly())
	calls := map[string]string{
		"user-signed-1":   fmt.Sprintf(`trailmap.identify("user-signed-1", {plan: "pro"}, {signature: %q})`, recorder.IdentitySignature(sec.Secret, "user-signed-1")),
		"user-signed-2":   fmt.Sprintf(`trailmap.identify("user-signed-2", null, %q)`, recorder.IdentitySignature(sec.Secret, "user-signed-2")),
		"user-unsigned-3": `trailmap.identify("user-unsigned-3", {plan: "pro"})`,
	}
	vids := map[string]string{}
	for user, call := range calls {
		ctx := b.NewContext(t)
		do(t, ctx, chromedp.Navigate(st.URL+"/a.html"))
		waitRecorder(t, ctx)
		do(t, ctx, chromedp.Evaluate[chromedp.Void](call))
		flushOK(t, ctx, user)
		vids[user] = eval[string](t, ctx, `localStorage.getItem("trailmap_vid")`)
	}
	eventually(t, 60*time.Second, "three sessions", func() (bool, string) {
		list := sessions(t, srv, "")
		got := map[string]string{}
		for _, s := range list {
			got[s.VisitorID] = s.UserID
		}
		want := map[string]string{vids["user-signed-1"]: "user-signed-1", vids["user-signed-2"]: "user-signed-2", vids["user-unsigned-3"]: ""}
		return fmt.Sprint(got) == fmt.Sprint(want), fmt.Sprintf("got %v, want %v", got, want)
	})
}

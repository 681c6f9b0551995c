package ui_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/trailmap/trailmap/internal/browsertest"
)

// Settings → Recording rules as an admin uses it: the form shows the
// stored rules, a wrong value is named under its input (by the form, and
// by the server's "field" for what only the server judges), a save
// reaches the project's settings, and the page is hidden from members.
func TestBrowser_RecordingRulesPage(t *testing.T) {
	s := start(t)
	createUser(t, s, "admin@example.com")
	createUser(t, s, "member@example.com", "--projects", "test")
	shots := shotDir(t)
	b := browsertest.Start(t, browsertest.WithTimeout(2*time.Minute), browsertest.LoopbackOnly())
	ctx := b.NewContext(t)
	con := browsertest.WatchConsole(t, ctx)
	loginInBrowser(t, ctx, s, "admin@example.com")
	run(t, ctx, chromedp.Navigate(s.URL+"/settings/recording"))
	waitFor(t, ctx, "rules form", `!document.querySelector('#rules-form').hidden`)
	if v := eval[string](t, ctx, `document.querySelector('#r-sample').value`); v != "" {
		t.Errorf("sample rate of a project without rules = %q, want empty", v)
	}

	// The form's own check, in its units.
	run(t, ctx, chromedp.SetValue("#r-sample", "250"), chromedp.Click("#r-save"))
	waitFor(t, ctx, "sample rate error", `document.querySelector('[data-field="sample_rate"] .r-error').textContent.includes('between 0 and 100')`)
	shoot(t, ctx, shots, "14-recording-rules-error")

	// The server's check, shown under the input it names: a trigger
	// event in Trailmap's own namespace.
	run(t, ctx, chromedp.SetValue("#r-sample", "25"), chromedp.SetValue("#r-deny", "/admin*"),
		chromedp.Click(`input[name="r-start"][value="event"]`))
	waitFor(t, ctx, "trigger inputs", `!document.querySelector('.r-trigger').hidden`)
	run(t, ctx, chromedp.SetValue("#r-event", "trailmap/page"), chromedp.Click("#r-save"))
	waitFor(t, ctx, "server's field error", `document.querySelector('[data-field="start_after.event"]').classList.contains('r-invalid') && document.querySelector('[data-field="start_after.event"] .r-error').textContent.includes('trailmap')`)

	// A good save.
	run(t, ctx,
		chromedp.SetValue("#r-duration", "10"),
		chromedp.Click("#r-interaction"),
		chromedp.SetValue("#r-event", "checkout"),
		chromedp.Click("#r-save"),
	)
	waitFor(t, ctx, "saved", `document.querySelector('#r-status').textContent.startsWith('Saved')`)
	var got map[string]any
	s.GetJSON(t, fmt.Sprintf("/api/v1/projects/%d/settings/recording", s.ProjectID), &got)
	if fmt.Sprint(got) != "map[deny_urls:[/admin*] min_duration_ms:10000 require_interaction:true sample_rate:0.25 start_after:map[buffer_ms:10000 event:checkout]]" {
		t.Errorf("stored rules %v", got)
	}
	shoot(t, ctx, shots, "14-recording-rules")

	// After a reload the form shows what is stored.
	run(t, ctx, chromedp.Reload())
	waitFor(t, ctx, "rules form again", `!document.querySelector('#rules-form').hidden && document.querySelector('#r-duration').value === '10'`)
	if v := eval[string](t, ctx, `document.querySelector('#r-event').value + ' ' + document.querySelector('#r-sample').value`); v != "checkout 25" {
		t.Errorf("form after reload: %q", v)
	}
	// Asset copies: extra origins, checked by the server.
	run(t, ctx, chromedp.SetValue("#a-origins", "https://cdn.example.com/images"), chromedp.Click("#a-save"))
	waitFor(t, ctx, "origin error", `document.querySelector('#a-error').textContent.includes('not an origin')`)
	run(t, ctx, chromedp.SetValue("#a-origins", "https://cdn.example.com/\nhttps://img.example.net:8443"), chromedp.Click("#a-save"))
	waitFor(t, ctx, "copy settings saved", `document.querySelector('#a-status').textContent.startsWith('Saved')`)
	var copies map[string]any
	s.GetJSON(t, fmt.Sprintf("/api/v1/projects/%d/settings/assets", s.ProjectID), &copies)
	if fmt.Sprint(copies["origins"]) != "[https://cdn.example.com https://img.example.net:8443]" {
		t.Errorf("stored asset settings %v", copies)
	}
	shoot(t, ctx, shots, "14-recording-rules-assets")
	if errs := con.Errors(); len(errs) > 0 {
		t.Errorf("console errors: %v", errs)
	}

	// A member sees no link to it, and the API's refusal on the page.
	mctx := b.NewContext(t)
	loginInBrowser(t, mctx, s, "member@example.com")
	if n := eval[int](t, mctx, `document.querySelectorAll('a[href="/settings/recording"]').length`); n != 0 {
		t.Errorf("member's nav links to the recording rules (%d links)", n)
	}
	run(t, mctx, chromedp.Navigate(s.URL+"/settings/recording"))
	waitFor(t, mctx, "member refused", `document.querySelector('#r-alert').textContent.trim() !== ''`)
	if text := eval[string](t, mctx, `document.querySelector('#r-alert').textContent`); !strings.Contains(strings.ToLower(text), "admin") {
		t.Errorf("member's page says %q, want a refusal naming admins", text)
	}
}

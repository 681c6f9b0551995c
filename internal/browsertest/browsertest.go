// Package browsertest runs a real headless Chromium for tests, driven with
// chromedp.
//
// One [Browser] is one Chromium process. Each [Browser.NewContext] is a tab in
// its own browser context (like an incognito window): two of them share no
// cookies, localStorage or cache, so they behave like two devices.
//
//	b := browsertest.Start(t)
//	ctx := b.NewContext(t)
//	err := chromedp.Do(ctx, chromedp.Navigate(url))
//
// Chromium is $CHROMIUM_BIN or /usr/bin/chromium; `make test` installs it.
// A missing browser fails the test: it is never skipped.
package browsertest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/trailmap/trailmap/internal/headless"
)

// DefaultExec is the Chromium used when $CHROMIUM_BIN is empty.
const DefaultExec = "/usr/bin/chromium"

type options struct {
	timeout      time.Duration
	startTimeout time.Duration
	loopbackOnly bool
	flags        map[string]any
}

// Option changes how [Start] runs the browser.
type Option func(*options)

// WithTimeout bounds each context that [Browser.NewContext] returns (default
// 2 minutes): every action on it fails after that.
func WithTimeout(d time.Duration) Option { return func(o *options) { o.timeout = d } }

// LoopbackOnly makes host names other than localhost fail to resolve, so a
// page cannot reach other hosts (127.0.0.1 and [::1] still work). It is
// cheap: a host-resolver rule, no request interception.
func LoopbackOnly() Option { return func(o *options) { o.loopbackOnly = true } }

// WithFlag adds a Chromium command-line flag (value true for a bare switch).
func WithFlag(name string, value any) Option {
	return func(o *options) { o.flags[name] = value }
}

// Browser is a running headless Chromium, stopped when the test ends.
type Browser struct {
	ctx     context.Context // the browser's first tab; parent of every NewContext
	timeout time.Duration
}

// Exec returns the Chromium binary to run, or an error naming `make test`
// when it is missing.
func Exec() (string, error) {
	path := os.Getenv("CHROMIUM_BIN")
	if path == "" {
		path = DefaultExec
	}
	if _, err := os.Stat(path); err != nil {
		return "", fmt.Errorf("chromium not found at %s (set CHROMIUM_BIN, or run `make test`, which installs Debian's chromium): %w", path, err)
	}
	return path, nil
}

// Start launches Chromium with a fresh profile directory. It fails the test
// when the browser is missing or does not start within a minute.
func Start(t testing.TB, opts ...Option) *Browser {
	t.Helper()
	o := options{timeout: 2 * time.Minute, startTimeout: time.Minute, flags: map[string]any{}}
	for _, f := range opts {
		f(&o)
	}
	path, err := Exec()
	if err != nil {
		t.Fatalf("browsertest: %v", err)
	}
	alloc := headless.Options(path, filepath.Join(t.TempDir(), "profile"))
	if o.loopbackOnly {
		alloc = append(alloc, chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1, EXCLUDE [::1]"))
	}
	for name, v := range o.flags {
		alloc = append(alloc, chromedp.Flag(name, v))
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), alloc...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	stop := func() { cancel(); cancelAlloc() }

	// The first Do binds the browser's life to its context, so it gets no
	// deadline; the start is bounded from outside instead.
	started := make(chan error, 1)
	go func() { started <- chromedp.Do(ctx) }()
	select {
	case err := <-started:
		if err != nil {
			stop()
			t.Fatalf("browsertest: start %s: %v", path, err)
		}
	case <-time.After(o.startTimeout):
		stop()
		t.Fatalf("browsertest: %s did not start within %s", path, o.startTimeout)
	}
	t.Cleanup(stop)
	return &Browser{ctx: ctx, timeout: o.timeout}
}

// New starts a browser and returns one fresh context in it.
func New(t testing.TB, opts ...Option) context.Context {
	t.Helper()
	return Start(t, opts...).NewContext(t)
}

// NewContext opens a tab in a new browser context that shares no storage with
// any other, bounded by the browser's timeout and closed when the test ends.
func (b *Browser) NewContext(t testing.TB) context.Context {
	t.Helper()
	tab, cancelTab := chromedp.NewContext(b.ctx, chromedp.WithNewBrowserContext())
	if err := chromedp.Do(tab); err != nil {
		cancelTab()
		t.Fatalf("browsertest: open tab: %v", err)
	}
	ctx, cancel := context.WithTimeout(tab, b.timeout)
	t.Cleanup(func() { cancel(); cancelTab() })
	return ctx
}

// Screenshot sets the viewport of ctx's tab to width×height CSS pixels and
// writes what it shows to path as a PNG.
func Screenshot(t testing.TB, ctx context.Context, path string, width, height int) {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(int64(width), int64(height))); err != nil {
		t.Fatalf("browsertest: viewport %dx%d: %v", width, height, err)
	}
	res, err := chromedp.Call(ctx, page.CaptureScreenshot, page.CaptureScreenshotParams{
		Format: page.CaptureScreenshotFormatPng,
	})
	if err != nil {
		t.Fatalf("browsertest: screenshot: %v", err)
	}
	if err := os.WriteFile(path, res.Data, 0o644); err != nil {
		t.Fatalf("browsertest: %v", err)
	}
}

// Console records what the page in one context writes to its console.
type Console struct {
	mu   sync.Mutex
	msgs []chromedp.ConsoleMessage
}

// WatchConsole starts recording the console of ctx's tab (across navigations)
// until ctx ends.
func WatchConsole(t testing.TB, ctx context.Context) *Console {
	t.Helper()
	c := &Console{}
	msgs := chromedp.Console(ctx)
	go func() {
		for m, err := range msgs {
			if err != nil {
				if !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
					c.add(chromedp.ConsoleMessage{Type: chromedp.ConsoleError, Text: "browsertest: " + err.Error()})
				}
				return
			}
			c.add(m)
		}
	}()
	return c
}

func (c *Console) add(m chromedp.ConsoleMessage) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.msgs = append(c.msgs, m)
}

// Messages returns every message so far.
func (c *Console) Messages() []chromedp.ConsoleMessage {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]chromedp.ConsoleMessage(nil), c.msgs...)
}

// Errors returns the uncaught exceptions, unhandled rejections and
// console.error calls of the page so far. Entries of the browser's own log
// (such as a failed request) are not included: see [Console.Messages].
func (c *Console) Errors() []string {
	var out []string
	for _, m := range c.Messages() {
		if m.Source == "" && (m.IsException() || m.Type == chromedp.ConsoleError) {
			out = append(out, m.String())
		}
	}
	return out
}

// Package headless runs Debian's Chromium without a screen for the
// server's own renders (heatmap report images): a fresh profile per
// browser, no network of its own beyond what a page is allowed (callers
// give pages a policy that forbids it), pages given as whole documents.
package headless

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// ErrUnavailable is returned (wrapped) when no Chromium is installed.
var ErrUnavailable = errors.New("headless Chromium is not installed")

// Binary finds Chromium: $CHROMIUM_BIN, else chromium, chromium-browser or
// google-chrome on $PATH.
func Binary() (string, error) {
	if p := os.Getenv("CHROMIUM_BIN"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%w: CHROMIUM_BIN=%s: %v", ErrUnavailable, p, err)
		}
		return p, nil
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%w (install Debian's chromium: apt-get install chromium)", ErrUnavailable)
}

// Options are the flags Trailmap runs Chromium with (here and in the
// tests' browsers): headless, no sandbox (containers), no GPU, none of
// Chromium's own network traffic, a fresh profile in dir.
func Options(bin, dir string) []chromedp.ExecAllocatorOption {
	return []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(bin),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(dir),
	}
}

// Browser is one running Chromium.
type Browser struct {
	ctx  context.Context
	stop func()
	dir  string
}

// Start launches Chromium with a fresh profile and the extra options;
// Close stops it.
func Start(ctx context.Context, extra ...chromedp.ExecAllocatorOption) (*Browser, error) {
	bin, err := Binary()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "trailmap-headless-")
	if err != nil {
		return nil, fmt.Errorf("headless: %w", err)
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, append(append(Options(bin, dir), chromedp.Flag("hide-scrollbars", true)), extra...)...)
	bctx, cancel := chromedp.NewContext(allocCtx)
	b := &Browser{ctx: bctx, dir: dir, stop: func() { cancel(); cancelAlloc(); os.RemoveAll(dir) }}
	if err := chromedp.Do(bctx); err != nil {
		b.Close()
		return nil, fmt.Errorf("headless: start %s: %w", bin, err)
	}
	return b, nil
}

// Close stops the browser and removes its profile.
func (b *Browser) Close() { b.stop() }

// Tab opens a tab for chromedp actions; close it with the function.
func (b *Browser) Tab() (context.Context, func()) { return chromedp.NewContext(b.ctx) }

// tab opens a tab bounded by timeout.
func (b *Browser) tab(timeout time.Duration) (context.Context, func()) {
	tctx, cancel := chromedp.NewContext(b.ctx)
	tctx, cancelT := context.WithTimeout(tctx, timeout)
	return tctx, func() { cancelT(); cancel() }
}

// Eval opens url in a width × height viewport, waits until the expression
// ready is true, and returns what script evaluates to (a string).
func (b *Browser) Eval(url string, width, height int, ready, script string, timeout time.Duration) (string, error) {
	ctx, cancel := b.tab(timeout)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(int64(width), int64(height)), chromedp.Navigate(url)); err != nil {
		return "", fmt.Errorf("headless: %w", err)
	}
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](ready, chromedp.WithPollingInterval(50*time.Millisecond))); err != nil {
		return "", fmt.Errorf("headless: waiting for %s: %w", ready, err)
	}
	out, err := chromedp.Run(ctx, chromedp.Evaluate[string](script))
	if err != nil {
		return "", fmt.Errorf("headless: %w", err)
	}
	return out, nil
}

// Screenshot shows html (a whole document) at width and returns a PNG of
// the whole page, once its images and fonts are in.
func (b *Browser) Screenshot(html string, width int, timeout time.Duration) ([]byte, error) {
	ctx, cancel := b.tab(timeout)
	defer cancel()
	err := chromedp.Do(ctx,
		chromedp.EmulateViewport(int64(width), 600),
		chromedp.Navigate("about:blank"),
		chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
			tree, err := chromedp.Call(ctx, page.GetFrameTree, cdp.Empty{})
			if err != nil {
				return err
			}
			_, err = chromedp.Call(ctx, page.SetDocumentContent, page.SetDocumentContentParams{FrameID: tree.FrameTree.Frame.ID, HTML: html})
			return err
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("headless: %w", err)
	}
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`document.readyState === 'complete' && document.fonts.status === 'loaded' && [...document.images].every(i => i.complete)`,
		chromedp.WithPollingInterval(50*time.Millisecond))); err != nil {
		return nil, fmt.Errorf("headless: waiting for the page: %w", err)
	}
	h, err := chromedp.Run(ctx, chromedp.Evaluate[float64](`Math.max(document.documentElement.scrollHeight, document.body ? document.body.scrollHeight : 0)`))
	if err != nil {
		return nil, fmt.Errorf("headless: %w", err)
	}
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(int64(width), int64(max(h, 1)))); err != nil {
		return nil, fmt.Errorf("headless: %w", err)
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		return nil, fmt.Errorf("headless: screenshot: %w", err)
	}
	return png, nil
}

// DataURL is b as a data: URL of type.
func DataURL(typ string, b []byte) string {
	return "data:" + typ + ";base64," + base64.StdEncoding.EncodeToString(b)
}

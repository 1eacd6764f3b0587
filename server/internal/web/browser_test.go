package web

import (
	"context"
	"flag"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/liggare/liggare/server/internal/account"
	"github.com/liggare/liggare/server/internal/registry"
)

// The browser tests drive Debian's headless Chromium over the DevTools
// protocol (chromedp). Without Chromium they fail, unless
// LIGGARE_SKIP_BROWSER=1 says that this machine cannot run them.
const (
	chromiumPath   = "/usr/bin/chromium"
	envSkipBrowser = "LIGGARE_SKIP_BROWSER"
	// envScreenshots set to 1 is the same as -update-screenshots.
	envScreenshots = "LIGGARE_UPDATE_SCREENSHOTS"
)

var updateScreenshots = flag.Bool("update-screenshots", false, "write the browser tests' screenshots to docs/screenshots/")

// screenshotDir is docs/screenshots/ at the repository's root.
var screenshotDir = filepath.Join("..", "..", "..", "docs", "screenshots")

// newBrowser starts a headless Chromium for the test, with Swedish as its
// language.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	path := chromiumPath
	if _, err := os.Stat(path); err != nil {
		if p, lerr := exec.LookPath("chromium"); lerr == nil {
			path = p
		} else if os.Getenv(envSkipBrowser) == "1" {
			t.Skipf("no Chromium at %s, and %s=1", chromiumPath, envSkipBrowser)
		} else {
			t.Fatalf("browser tests need Chromium at %s (apt-get install chromium), or %s=1 to skip them", chromiumPath, envSkipBrowser)
		}
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox, // root in CI
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("ignore-certificate-errors", true), // the test server's own certificate
		chromedp.Flag("accept-lang", "sv-SE,sv"),
		chromedp.Flag("lang", "sv-SE"),
		chromedp.WindowSize(1280, 900),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	ctx, cancelTimeout := context.WithTimeout(ctx, 2*time.Minute)
	t.Cleanup(func() {
		cancelTimeout()
		cancelCtx()
		cancelAlloc()
	})
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	return ctx
}

// screenshot saves the page as docs/screenshots/NAME.png when asked to
// (-update-screenshots or LIGGARE_UPDATE_SCREENSHOTS=1), so that an
// ordinary run never rewrites files.
func screenshot(name string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		if !*updateScreenshots && os.Getenv(envScreenshots) != "1" {
			return nil
		}
		png, err := chromedp.FullScreenshot(100)(ctx, tg)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(screenshotDir, 0o755); err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(screenshotDir, name+".png"), png, 0o644)
	})
}

// TestBrowser logs in with a password and TOTP, watches a tap appear live
// on the on-site list, makes a correction with a reason and finds it in
// the list, with screenshots of the main pages on the way.
func TestBrowser(t *testing.T) {
	w := newWorld(t)
	mgr := w.newUser(t, "chef@bygg.se", w.bygg, account.RoleSiteManager, w.siteA)
	if err := w.srv.Accounts().DisableTOTP(context.Background(), account.System("test"), mgr.id); err != nil {
		t.Fatal(err)
	}
	secret := w.enableTOTP(t, mgr.id)
	w.clock.Advance(time.Minute) // a fresh TOTP step for the login
	// A newcomer, not yet on site.
	reg := registry.NewStore(w.pool, w.keys)
	karin, err := reg.AddPerson(context.Background(), w.bygg, registry.NewPerson{Name: "Karin Nyström", IDNumber: personnummer(1985, 6, 7, 8)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reg.AddCard(context.Background(), w.bygg, registry.NewCard{CardNumber: "AB0000000009", PersonID: karin}); err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewTLSServer(w.srv.Handler())
	t.Cleanup(ts.Close) // after the browser's cleanup has closed its event stream
	ctx := newBrowser(t)
	<-w.srv.Hub().Listening()
	site := fmt.Sprintf("%s/sites/%d", ts.URL, w.siteA)

	// Log in: keyboard first (the skip link is the first stop), Swedish
	// by the browser's language.
	run(t, ctx, "keyboard",
		chromedp.Navigate(ts.URL+"/inspector"),
		chromedp.WaitVisible(chromedp.ID("code")),
		chromedp.KeyEvent("\t"),
	)
	active := value(t, ctx, chromedp.Evaluate[string](`document.activeElement.className`))
	run(t, ctx, "login page",
		chromedp.Navigate(ts.URL+"/login"),
		chromedp.WaitVisible(chromedp.ID("email")),
		screenshot("login"),
	)
	heading := value(t, ctx, chromedp.Text(chromedp.CSS("h1")))
	if heading != "Logga in" {
		t.Errorf("login heading %q, want Swedish", heading)
	}
	if active != "skip" {
		t.Errorf("first Tab stop is %q, want the skip link", active)
	}
	run(t, ctx, "password",
		chromedp.SendKeys(chromedp.ID("email"), mgr.email),
		chromedp.SendKeys(chromedp.ID("password"), testPassword),
		chromedp.Submit(chromedp.ID("password")),
		chromedp.WaitVisible(chromedp.ID("code")),
	)
	run(t, ctx, "totp",
		chromedp.SendKeys(chromedp.ID("code"), totpCode(t, secret, w.clock.Now())),
		chromedp.Submit(chromedp.ID("code")),
		chromedp.WaitVisible(chromedp.CSS("ul.cards")),
		chromedp.Navigate(site),
		chromedp.WaitVisible(chromedp.CSS("#live-status.on")), // the event stream is open
	)

	// A tap at the kiosk: stored by ingest, taken in by the reconciler,
	// announced through the hub and PostgreSQL; the page fetches its
	// fragment and shows Karin.
	w.tap(t, "TA", "AB0000000009", w.clock.Now().Add(-2*time.Minute))
	w.drain(t)
	tapped := time.Now()
	karinOnSite := `//section[contains(@class,"onsite")]//*[@class="name"][text()="Karin Nyström"]`
	run(t, ctx, "live update", chromedp.WaitVisible(chromedp.Search(karinOnSite)))
	count := value(t, ctx, chromedp.Text(chromedp.CSS(`[data-testid="onsite-count"]`)))
	t.Logf("tap shown %v after the reconciler's commit", time.Since(tapped).Round(time.Millisecond))
	if count != "3" {
		t.Errorf("on-site count %q, want 3", count)
	}
	run(t, ctx, "site screenshots",
		screenshot("site"),
		chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2)),
		screenshot("site-phone"),
		chromedp.EmulateViewport(1280, 900),
	)

	// Karin forgot to tap out: the manager sets her check-out, with a
	// reason.
	day := w.clock.Now().In(stockholm).Format("2006-01-02")
	reason := "Gick hem 06:59 enligt arbetsledaren"
	run(t, ctx, "correction",
		chromedp.Navigate(fmt.Sprintf("%s/corrections?kind=set_checkout&person=%d", site, karin)),
		chromedp.WaitVisible(chromedp.ID("set_checkout-end")),
		chromedp.SetValue(chromedp.ID("set_checkout-end"), day+"T06:59"),
		chromedp.SendKeys(chromedp.ID("set_checkout-reason"), reason),
		chromedp.Submit(chromedp.ID("set_checkout-reason")),
		chromedp.WaitVisible(chromedp.CSS("p.flash")),
		screenshot("corrections"),
	)
	flash := value(t, ctx, chromedp.Text(chromedp.CSS("p.flash")))
	table := value(t, ctx, chromedp.Text(chromedp.ID("corrections")))
	if !strings.Contains(flash, "är sparad") {
		t.Errorf("flash %q, want the saved message", flash)
	}
	for _, want := range []string{reason, "Karin Nyström", "Namn chef", "Sätt glömd utcheckning"} {
		if !strings.Contains(table, want) {
			t.Errorf("corrections list lacks %q:\n%s", want, table)
		}
	}
	// Back on the site page, Karin has left.
	run(t, ctx, "after the correction",
		chromedp.Navigate(site),
		chromedp.WaitVisible(chromedp.CSS("#live-status.on")),
	)
	count = value(t, ctx, chromedp.Text(chromedp.CSS(`[data-testid="onsite-count"]`)))
	if count != "2" {
		t.Errorf("on-site count after the check-out %q, want 2", count)
	}
}

func run(t *testing.T, ctx context.Context, step string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(sctx, actions...); err != nil {
		// Say where the browser got stuck.
		dctx, dcancel := context.WithTimeout(ctx, 5*time.Second)
		defer dcancel()
		url, _ := chromedp.Run(dctx, chromedp.Evaluate[string](`location.href`))
		text, _ := chromedp.Run(dctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
		t.Fatalf("%s: %v\nat %s:\n%.1500s", step, err, url, text)
	}
}

func value[T any](t *testing.T, ctx context.Context, a chromedp.Action[T]) T {
	t.Helper()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

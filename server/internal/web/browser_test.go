package web

import (
	"bytes"
	"context"
	"encoding/csv"
	"flag"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"

	"github.com/liggare/liggare/server/internal/account"
	"github.com/liggare/liggare/server/internal/auth"
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
		// On Linux the browser's own locale (date and time inputs) comes
		// from LANGUAGE, not --lang; its Swedish strings are Debian's
		// chromium-l10n (without it, the inputs show US formats).
		chromedp.Env("LANGUAGE=sv"),
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
// the list and the audit log, makes an enrollment code, lets an inspector
// in who downloads the PDF and CSV and finds the correction in the
// person's history, with screenshots of the main pages on the way.
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
	// TA has a credential, so that the terminals page shows one.
	if _, err := auth.NewTerminals(w.pool).Create(context.Background(), "TA"); err != nil {
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
	w.tap(t, "TA", "AB0000000009", w.clock.Now().Add(-20*time.Minute))
	w.drain(t)
	tapped := time.Now()
	karinOnSite := `//section[contains(@class,"onsite")]//*[@class="name"][text()="Karin Nyström"]`
	// Polled and read inside the page: the live region is replaced
	// whenever an event arrives, and a node found by one DevTools call
	// may be gone by the next ("could not find node").
	run(t, ctx, "live update", chromedp.Poll[chromedp.Void](fmt.Sprintf(
		`document.evaluate(%q, document, null, XPathResult.FIRST_ORDERED_NODE_TYPE, null).singleNodeValue !== null`, karinOnSite)))
	count := liveText(t, ctx, `[data-testid="onsite-count"]`)
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
	count = liveText(t, ctx, `[data-testid="onsite-count"]`)
	if count != "2" {
		t.Errorf("on-site count after the check-out %q, want 2", count)
	}

	// A new kiosk for the gate: the code is shown once, with its command.
	run(t, ctx, "enrollment code",
		chromedp.Navigate(site+"/terminals"),
		chromedp.WaitVisible(chromedp.ID("code-terminal")),
		chromedp.SendKeys(chromedp.ID("code-terminal"), "grind-2"),
		chromedp.Submit(chromedp.ID("code-terminal")),
		chromedp.WaitVisible(chromedp.ID("enroll-code")),
		screenshot("terminals"),
	)
	command := value(t, ctx, chromedp.Text(chromedp.ID("enroll-command")))
	code := value(t, ctx, chromedp.Text(chromedp.ID("enroll-code")))
	wantCommand := "liggare-terminal enroll --server wss://" + strings.TrimPrefix(ts.URL, "https://") + "/v1/sync --code " + code
	if command != wantCommand {
		t.Errorf("enroll command %q, want %q", command, wantCommand)
	}

	// The audit log has the correction, by the manager, at the site.
	run(t, ctx, "audit log",
		chromedp.Navigate(ts.URL+"/audit"),
		chromedp.WaitVisible(chromedp.ID("audit")),
		screenshot("audit"),
		chromedp.Navigate(ts.URL+"/audit?action="+ActionCorrection),
		chromedp.WaitVisible(chromedp.ID("audit")),
	)
	logText := value(t, ctx, chromedp.Text(chromedp.ID("audit")))
	for _, want := range []string{"Namn chef", "Rättelse", "Kvarteret Asken", "kind=set_checkout", "#" + itoa(karin)} {
		if !strings.Contains(logText, want) {
			t.Errorf("audit log filtered to corrections lacks %q:\n%s", want, logText)
		}
	}

	// The manager lets an inspector in, and logs out; the inspector
	// redeems the code in the same browser.
	run(t, ctx, "inspector grant",
		chromedp.Navigate(site+"/grants"),
		chromedp.WaitVisible(chromedp.ID("hours")),
		chromedp.Submit(chromedp.ID("hours")),
		chromedp.WaitVisible(chromedp.ID("grant-code")),
	)
	grantCode := value(t, ctx, chromedp.Text(chromedp.ID("grant-code")))
	run(t, ctx, "inspector login",
		chromedp.Click(chromedp.CSS(`form[action="/logout"] button`)),
		chromedp.WaitVisible(chromedp.ID("email")),
		chromedp.Navigate(ts.URL+"/inspector"),
		chromedp.WaitVisible(chromedp.ID("code")),
		chromedp.SendKeys(chromedp.ID("code"), grantCode),
		chromedp.Submit(chromedp.ID("code")),
		chromedp.WaitVisible(chromedp.CSS("#live-status")),
		chromedp.Navigate(site+"/inspect"),
		chromedp.WaitVisible(chromedp.ID("i-q")),
		screenshot("inspect"),
	)

	// The exports of the whole site: PDF text and a CSV that Excel reads
	// (UTF-8 with BOM, semicolons), names with å, ä and ö intact.
	dir := t.TempDir()
	run(t, ctx, "downloads", chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		_, err := chromedp.Call(ctx, cdpbrowser.SetDownloadBehavior, cdpbrowser.SetDownloadBehaviorParams{
			Behavior: cdpbrowser.SetDownloadBehaviorBehaviorAllowAndName, DownloadPath: dir, EventsEnabled: &[]bool{true}[0]})
		return err
	}))
	pdf := download(t, ctx, dir, `a[href*="format=pdf"]`)
	text := pdfText(t, pdf)
	for _, want := range []string{"Kvarteret Asken", "AAAAAAAAAAAA1", "Karin Nyström", "Erik Elström", personnummer(1985, 6, 7, 8)} {
		if !strings.Contains(text, want) {
			t.Errorf("PDF text lacks %q:\n%.3000s", want, text)
		}
	}
	csvFile := download(t, ctx, dir, `a[href*="format=csv"]`)
	if !bytes.HasPrefix(csvFile, []byte("\ufeff")) || !utf8.Valid(csvFile) {
		t.Fatalf("CSV is not UTF-8 with a BOM: % x", csvFile[:min(len(csvFile), 16)])
	}
	cr := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(csvFile, []byte("\ufeff"))))
	cr.Comma = ';'
	records, err := cr.ReadAll()
	if err != nil {
		t.Fatalf("CSV: %v", err)
	}
	col := map[string]int{}
	for i, h := range records[0] {
		col[h] = i
	}
	var karinRow []string
	for _, r := range records[1:] {
		if r[col["Namn"]] == "Karin Nyström" {
			karinRow = r
		}
	}
	if karinRow == nil || karinRow[col["Arbetsplats"]] != "Kvarteret Asken" || karinRow[col["Manuellt slut"]] != "ja" ||
		!strings.HasSuffix(karinRow[col["Slut"]], "06:59:00") || karinRow[col["Personnummer"]] != personnummer(1985, 6, 7, 8) {
		t.Errorf("CSV row of Karin %q (columns %v)", karinRow, records[0])
	}
	if !strings.Contains(string(csvFile), "Erik Elström") {
		t.Errorf("CSV lacks Erik Elström:\n%s", csvFile)
	}

	// The inspector searches (by POST: no number in the URL), picks Karin
	// and finds the correction on her period, with who made it.
	// The page before the search lists Karin too: the old page is marked,
	// so that the link clicked is the one of the results page (clicking a
	// node of a page being replaced fails with "could not find node").
	karinLink := `//a[text()="Karin Nyström"]`
	run(t, ctx, "search",
		chromedp.SendKeys(chromedp.ID("i-q"), "Nyström"),
		chromedp.Evaluate[chromedp.Void](`window.liggareBeforeSearch = true`),
		chromedp.Submit(chromedp.ID("i-q")),
	)
	waitJS(t, ctx, "the results page", fmt.Sprintf(`!window.liggareBeforeSearch && document.readyState === "complete" &&
		document.evaluate(%q, document, null, XPathResult.FIRST_ORDERED_NODE_TYPE, null).singleNodeValue !== null`, karinLink))
	run(t, ctx, "person history",
		chromedp.Click(chromedp.Search(karinLink)),
		chromedp.WaitVisible(chromedp.ID("person-corrections")),
		screenshot("inspect-person"),
	)
	history := value(t, ctx, chromedp.Text(chromedp.ID("main")))
	for _, want := range []string{reason, "Namn chef", "Sätt glömd utcheckning", personnummer(1985, 6, 7, 8), "Bygg AB", "Manuell"} {
		if !strings.Contains(history, want) {
			t.Errorf("person history lacks %q:\n%s", want, history)
		}
	}
	if loc := value(t, ctx, chromedp.Evaluate[string](`location.href`)); strings.Contains(loc, "198506") {
		t.Errorf("the person page's URL holds the personnummer: %s", loc)
	}
}

// download clicks a link and returns the file the browser saved in dir.
func download(t *testing.T, ctx context.Context, dir, sel string) []byte {
	t.Helper()
	progress := chromedp.Events(ctx, cdpbrowser.DownloadProgress)
	run(t, ctx, "download "+sel, chromedp.Click(chromedp.CSS(sel)))
	for ev, err := range progress {
		if err != nil {
			t.Fatalf("download %s: %v", sel, err)
		}
		switch ev.State {
		case cdpbrowser.DownloadProgressStateCompleted:
			b, err := os.ReadFile(filepath.Join(dir, ev.GUID))
			if err != nil {
				t.Fatal(err)
			}
			return b
		case cdpbrowser.DownloadProgressStateCanceled:
			t.Fatalf("download %s cancelled", sel)
		}
	}
	t.Fatalf("download %s: no progress", sel)
	return nil
}

// pdfText is the text of a PDF, by pdftotext (poppler-utils).
func pdfText(t *testing.T, pdf []byte) string {
	t.Helper()
	cmd := exec.Command("pdftotext", "-layout", "-enc", "UTF-8", "-", "-")
	cmd.Stdin = bytes.NewReader(pdf)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("pdftotext (apt-get install poppler-utils): %v", err)
	}
	return string(out)
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

// waitJS waits until a JavaScript expression is true in the page, across
// navigations (a Poll ends with its page), for at most 30 s.
func waitJS(t *testing.T, ctx context.Context, what, expr string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](expr))
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: last answer %v, %v", what, ok, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// liveText reads the text of the first element matching a CSS selector
// in one step inside the page, for elements of the live region, which an
// event may replace between two DevTools calls.
func liveText(t *testing.T, ctx context.Context, css string) string {
	t.Helper()
	return strings.TrimSpace(value(t, ctx, chromedp.Evaluate[string](fmt.Sprintf(
		`(document.querySelector(%q) || {textContent: ""}).textContent`, css))))
}

func value[T any](t *testing.T, ctx context.Context, a chromedp.Action[T]) T {
	t.Helper()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

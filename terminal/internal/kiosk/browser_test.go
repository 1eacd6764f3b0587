package kiosk

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/liggare/liggare/terminal/internal/inspect"
	"github.com/liggare/liggare/terminal/internal/uplink"
)

// screenshotDir is where LIGGARE_UPDATE_SCREENSHOTS=1 writes the screens
// that README links.
var screenshotDir = filepath.Join("..", "..", "..", "docs", "screenshots")

// browser starts headless Chromium (Debian's chromium package). Without it
// the test fails: set LIGGARE_SKIP_BROWSER=1 to skip it knowingly.
func browser(t *testing.T) context.Context {
	t.Helper()
	path := "/usr/bin/chromium"
	if _, err := os.Stat(path); err != nil {
		if p, lerr := exec.LookPath("chromium"); lerr == nil {
			path = p
		} else if os.Getenv("LIGGARE_SKIP_BROWSER") == "1" {
			t.Skip("chromium not installed and LIGGARE_SKIP_BROWSER=1")
		} else {
			t.Fatal("chromium not found: install Debian's chromium package, or set LIGGARE_SKIP_BROWSER=1 to skip")
		}
	}
	alloc, cancel := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox, // CI runs as root
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 800),
	)
	t.Cleanup(cancel)
	ctx, cancelCtx := chromedp.NewContext(alloc)
	t.Cleanup(cancelCtx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(cancelTimeout)
	return ctx
}

func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if os.Getenv("LIGGARE_UPDATE_SCREENSHOTS") != "1" {
		return
	}
	if err := os.MkdirAll(screenshotDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(screenshotDir, name), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

func waitJS(t *testing.T, ctx context.Context, what, expr string) {
	t.Helper()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(20*time.Second))); err != nil {
		t.Fatalf("waiting for %s (%s): %v", what, expr, err)
	}
}

func text(t *testing.T, ctx context.Context, id string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID(id)))
	if err != nil {
		t.Fatalf("text of #%s: %v", id, err)
	}
	return s
}

// TestBrowserKioskOnlineAndOffline renders the kiosk screen in Chromium, as
// the kiosk's full-screen browser shows it: taps arrive live over the event
// stream, online and offline, and the page loads nothing from outside.
func TestBrowserKioskOnlineAndOffline(t *testing.T) {
	ctx := browser(t)
	tm := startTerminal(t, func(tm *terminal) http.Handler {
		hash, err := inspect.HashPIN("4711")
		if err != nil {
			t.Fatal(err)
		}
		g, err := inspect.NewGuard(hash, nil)
		if err != nil {
			t.Fatal(err)
		}
		return inspect.NewHandler(&inspect.Sources{Journal: tm.journal, Outbox: tm.ob, Cards: tm.cards.Lookup,
			Link: tm.link.State, TerminalID: "K1", Site: "Kvarteret Ängen"}, g, inspect.HandlerOptions{})
	})
	var mu sync.Mutex
	var urls []string
	if err := chromedp.Listen(ctx, func(ev any) {
		if e, ok := ev.(*network.EventRequestWillBeSent); ok {
			mu.Lock()
			urls = append(urls, e.Request.URL)
			mu.Unlock()
		}
	}); err != nil {
		t.Fatal(err)
	}

	// Online: a worker checks in.
	tm.link.set(uplink.State{Connected: true, LastAck: time.Now()})
	if err := chromedp.Do(ctx, chromedp.Navigate(tm.url+"/"), chromedp.WaitVisible(chromedp.ID("idle"))); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "the event stream", `document.body.dataset.live === "yes"`)
	if s := text(t, ctx, "status-text"); !strings.Contains(s, "Ansluten") {
		t.Errorf("online status = %q", s)
	}
	tm.tap("AA0000000001")
	waitJS(t, ctx, "Åsa's check-in", `document.getElementById("name").textContent === "Åsa Öberg" && !document.getElementById("tap").hidden`)
	if cls, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("panel").className`)); cls != "panel ok" {
		t.Errorf("panel class = %q, want panel ok", cls)
	}
	if s := text(t, ctx, "title"); s != "Välkommen" {
		t.Errorf("title = %q, want Välkommen", s)
	}
	if s := text(t, ctx, "detail"); !strings.HasPrefix(s, "Incheckad kl. ") {
		t.Errorf("detail = %q", s)
	}
	screenshot(t, ctx, "kiosk-online.png")

	// The network goes down: the status turns amber and says taps are kept,
	// and a blocked card is refused with its reason, still recorded.
	tm.link.set(uplink.State{Connected: false, LastAck: time.Now().Add(-40 * time.Minute)})
	waitJS(t, ctx, "the offline status", `document.getElementById("status").className === "status offline"`)
	if s := text(t, ctx, "status-text"); !strings.Contains(s, "Ingen nätverksanslutning") || !strings.Contains(s, "1 i kö") {
		t.Errorf("offline status = %q", s)
	}
	tm.tap("CC0000000003")
	waitJS(t, ctx, "the refusal", `document.getElementById("panel").className === "panel refused"`)
	if s := text(t, ctx, "title"); s != "Kort spärrat hos ID06" {
		t.Errorf("refusal title = %q", s)
	}
	if s := text(t, ctx, "title-en"); s != "Card blocked by ID06" {
		t.Errorf("refusal in English = %q", s)
	}
	if href, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("tap-icon").getAttribute("href")`)); href != "#i-cross" {
		t.Errorf("refusal icon = %q, want #i-cross (never colour alone)", href)
	}
	screenshot(t, ctx, "kiosk-offline.png")

	// The inspector, still offline, behind the site PIN.
	if err := chromedp.Do(ctx, chromedp.Navigate(tm.url+"/inspect/"), chromedp.WaitVisible(chromedp.ID("pin")),
		chromedp.SendKeys(chromedp.ID("pin"), "4711"), chromedp.Submit(chromedp.ID("pin"))); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.ID("onsite"))); err != nil {
		t.Fatalf("waiting for the on-site list: %v", err)
	}
	body, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.textContent`))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Åsa Öberg", "Cecilia Ek", "Kort spärrat hos ID06", "Ingen anslutning till servern"} {
		if !strings.Contains(body, want) {
			t.Errorf("on-site list lacks %q", want)
		}
	}
	screenshot(t, ctx, "kiosk-inspect.png")

	mu.Lock()
	defer mu.Unlock()
	if len(urls) == 0 {
		t.Error("no requests seen: the request log does not work")
	}
	for _, u := range urls {
		if !strings.HasPrefix(u, tm.url+"/") {
			t.Errorf("the page loaded %s: everything must come from the kiosk itself", u)
		}
	}
}

package web

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/liggare/liggare/server/internal/account"
)

// TestBrowserAdmin sets a customer up in the browser: the org admin
// creates a site, puts a contractor on it and invites a site manager for
// it; the site manager logs in with the one-time password, changes it,
// enrols TOTP and finds the site. Screenshots of the sites and users
// pages are taken on the way.
func TestBrowserAdmin(t *testing.T) {
	w := newWorld(t)
	admin := w.newUser(t, "admin@bygg.se", w.bygg, account.RoleOrgAdmin)
	if err := w.srv.Accounts().DisableTOTP(context.Background(), account.System("test"), admin.id); err != nil {
		t.Fatal(err)
	}
	secret := w.enableTOTP(t, admin.id)
	w.clock.Advance(time.Minute) // a fresh TOTP step for the login
	ts := httptest.NewTLSServer(w.srv.Handler())
	t.Cleanup(ts.Close)
	ctx := newBrowser(t)

	run(t, ctx, "admin logs in",
		chromedp.Navigate(ts.URL+"/login"),
		chromedp.WaitVisible(chromedp.ID("email")),
		chromedp.SendKeys(chromedp.ID("email"), admin.email),
		chromedp.SendKeys(chromedp.ID("password"), testPassword),
		chromedp.Submit(chromedp.ID("password")),
		chromedp.WaitVisible(chromedp.ID("code")),
		chromedp.SendKeys(chromedp.ID("code"), totpCode(t, secret, w.clock.Now())),
		chromedp.Submit(chromedp.ID("code")),
		chromedp.WaitVisible(chromedp.ID("site-list")),
	)
	form := fmt.Sprintf("#site-form-%d ", w.bygg)
	run(t, ctx, "create a site",
		chromedp.Click(chromedp.CSS("details.form-card summary")),
		chromedp.WaitVisible(chromedp.CSS(form+`[name="ident"]`)),
		chromedp.SendKeys(chromedp.CSS(form+`[name="ident"]`), "EEEEEEEEEEEE5"),
		chromedp.SendKeys(chromedp.CSS(form+`[name="name"]`), "Kvarteret Eken"),
		chromedp.SendKeys(chromedp.CSS(form+`[name="address"]`), "Ekvägen 3, Uppsala"),
		chromedp.SendKeys(chromedp.CSS(form+`[name="byggherre"]`), "Fastighets AB Eken"),
		chromedp.SendKeys(chromedp.CSS(form+`[name="byggherre_nr"]`), "556036-0793"),
		chromedp.Submit(chromedp.CSS(form+`[name="ident"]`)),
		chromedp.WaitVisible(chromedp.Search(`//ul[@id="site-list"]//strong[text()="Kvarteret Eken"]`)),
		chromedp.Click(chromedp.CSS("details.form-card summary")),
		screenshot("admin-sites"),
	)
	var site int64
	if err := w.pool.QueryRow(context.Background(), `SELECT site_id FROM sites WHERE site_ident = 'EEEEEEEEEEEE5'`).Scan(&site); err != nil {
		t.Fatal(err)
	}

	run(t, ctx, "add a contractor",
		chromedp.Navigate(fmt.Sprintf("%s/sites/%d/contractors", ts.URL, site)),
		chromedp.WaitVisible(chromedp.ID("c-orgnr")),
		chromedp.SendKeys(chromedp.ID("c-orgnr"), "556677-8899"), // El AB, known already
		chromedp.Submit(chromedp.ID("c-orgnr")),
		chromedp.WaitVisible(chromedp.Search(`//ul[@id="chain"]//strong[text()="El AB"]`)),
		chromedp.SendKeys(chromedp.ID("c-orgnr"), "556000-0001"),
		chromedp.SendKeys(chromedp.ID("c-name"), "Måleri AB"),
		chromedp.SetValue(chromedp.ID("c-hired"), itoa(w.el)),
		chromedp.Submit(chromedp.ID("c-orgnr")),
		chromedp.WaitVisible(chromedp.Search(`//ul[@id="chain"]/li[@data-depth="2"]//strong[text()="Måleri AB"]`)),
	)

	run(t, ctx, "invite a site manager",
		chromedp.Navigate(fmt.Sprintf("%s/orgs/%d/users", ts.URL, w.bygg)),
		chromedp.WaitVisible(chromedp.ID("users")),
		chromedp.Click(chromedp.CSS("details.form-card summary")),
		chromedp.WaitVisible(chromedp.ID("u-email")),
		chromedp.SendKeys(chromedp.ID("u-email"), "sara@bygg.se"),
		chromedp.SendKeys(chromedp.ID("u-name"), "Sara Platschef"),
		chromedp.SetValue(chromedp.ID("u-role"), "site_manager"),
		chromedp.Click(chromedp.CSS(fmt.Sprintf(`#invite-form input[name="site"][value="%d"]`, site))),
		chromedp.Submit(chromedp.ID("u-email")),
		chromedp.WaitVisible(chromedp.ID("one-time-password")),
		screenshot("admin-users"),
	)
	password := value(t, ctx, chromedp.Text(chromedp.ID("one-time-password")))
	if len(password) != 24 {
		t.Fatalf("one-time password %q, want 20 characters in groups", password)
	}

	// The site manager's first login: the one-time password, a new one,
	// TOTP, then the site.
	const newPassword = "ekar och björkar i regn"
	run(t, ctx, "site manager's first login",
		chromedp.Click(chromedp.CSS(`form[action="/logout"] button`)),
		chromedp.WaitVisible(chromedp.ID("email")),
		chromedp.SendKeys(chromedp.ID("email"), "sara@bygg.se"),
		chromedp.SendKeys(chromedp.ID("password"), password),
		chromedp.Submit(chromedp.ID("password")),
		chromedp.WaitVisible(chromedp.ID("password2")),
		chromedp.SendKeys(chromedp.ID("password"), newPassword),
		chromedp.SendKeys(chromedp.ID("password2"), newPassword),
		chromedp.Submit(chromedp.ID("password2")),
		chromedp.WaitVisible(chromedp.CSS(`form[action="/account/totp/begin"] button`)),
		chromedp.Click(chromedp.CSS(`form[action="/account/totp/begin"] button`)),
		chromedp.WaitVisible(chromedp.ID("secret")),
	)
	totp := strings.ReplaceAll(value(t, ctx, chromedp.Text(chromedp.ID("secret"))), " ", "")
	run(t, ctx, "site manager enrols TOTP",
		chromedp.SendKeys(chromedp.ID("code"), totpCode(t, totp, w.clock.Now())),
		chromedp.Submit(chromedp.ID("code")),
		chromedp.WaitVisible(chromedp.CSS("a.button")),
		chromedp.Click(chromedp.CSS("a.button")),
		chromedp.WaitVisible(chromedp.Search(`//ul[@id="site-list"]//strong[text()="Kvarteret Eken"]`)),
	)
	sites := value(t, ctx, chromedp.Text(chromedp.ID("site-list")))
	if strings.Contains(sites, "Kvarteret Asken") {
		t.Errorf("the new site manager sees other sites:\n%s", sites)
	}
}

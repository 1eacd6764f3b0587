package loadgen

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/liggare/liggare/internal/webclient"
	"github.com/liggare/liggare/terminal/internal/enroll"
)

// The customer the tap-to-screen setup creates: its organisation, its
// admin, and the contractor it puts on every site. The organisation
// numbers pass the Luhn check.
const (
	customerName      = "Lastgenerator Bygg AB"
	customerOrgNumber = "556900-0002"
	customerAdmin     = "admin@lastgenerator.test"
	contractorName    = "Lastgenerator El AB"
	contractorNumber  = "556900-0010"
	// sitePrefix starts each site's identifikationsnummer (13 characters
	// in all) and its name, by which the site list is read back.
	sitePrefix = "LGS"
	siteName   = "Lastplats "
	// personName starts each worker's name; a fixed-width number follows,
	// so that no name is part of another.
	personName = "Arbetare "
	// cardValidity is how long the imported cards are valid.
	cardValidity = 365 * 24 * time.Hour
	// webProcs is how many requests the setup sends at once: the server
	// shares the machine, and a browser-like client would not send more.
	webProcs = 8
	// importRows is how many people go in one imported file, below the
	// import's limit of registry.MaxImportRows (20 000).
	importRows = 10_000
	// codeTTLHours is the enrollment codes' lifetime, one the page offers.
	codeTTLHours = 24
)

// Customer is an organisation set up as an operator and its admin would:
// "liggare-server org create", then the admin's first sign-in and the web
// UI's pages (sites, a contractor on each, the staff list imported,
// enrollment codes), and terminals enrolled through the enrollment
// endpoint. Each terminal's taps use cards of people imported for it
// alone, one person per tap, so that each tap shows on its site's page as
// a person who was not there before.
type Customer struct {
	// Web is the admin's signed-in browser.
	Web *webclient.Client
	// Org is the organisation's id.
	Org int64
	// Sites are the sites, in order.
	Sites []*Site
	// Members are the terminals, not started, each enrolled at one site.
	Members []Member
	// Seconds is how long the setup took.
	Seconds float64

	base string
	csrf string
}

// Site is one of a Customer's sites.
type Site struct {
	ID    int64
	Ident string
	// Terminals are the terminals enrolled at the site.
	Terminals []Member
	// People maps each card tapped at the site to its holder's name.
	People map[string]string
}

// CustomerConfig says how big a Customer is.
type CustomerConfig struct {
	// Kind is the kind of simulated terminal: KindOutbox or KindSim.
	Kind string
	// Sites is how many sites; the terminals are spread over them in
	// turn.
	Sites int
	// Terminals is how many terminals.
	Terminals int
	// Taps is how many taps each terminal records: one imported person
	// each.
	Taps int
}

// SetUpCustomer creates the customer over the real interfaces (see
// Customer). Its terminals are closed by the Env's Close.
func SetUpCustomer(ctx context.Context, env *Env, cfg CustomerConfig) (*Customer, error) {
	if cfg.Sites < 1 || cfg.Terminals < cfg.Sites || cfg.Taps < 1 {
		return nil, fmt.Errorf("loadgen: customer: want at least one site, a terminal per site and a tap each (got %d sites, %d terminals, %d taps)",
			cfg.Sites, cfg.Terminals, cfg.Taps)
	}
	if err := checkKind(cfg.Kind); err != nil {
		return nil, err
	}
	began := time.Now()
	oneTime, err := env.CreateOrg(ctx, customerName, customerOrgNumber, customerAdmin)
	if err != nil {
		return nil, err
	}
	c := &Customer{Web: webclient.New(), base: env.WebURL()}
	if err := c.Web.FirstSignIn(ctx, c.base, customerAdmin, oneTime); err != nil {
		return nil, fmt.Errorf("loadgen: customer: sign in: %w", err)
	}
	if err := c.readSitesPage(ctx); err != nil {
		return nil, err
	}
	steps := []func(context.Context, CustomerConfig) error{c.createSites, c.addContractors, c.importPeople}
	for _, step := range steps {
		if err := step(ctx, cfg); err != nil {
			return nil, err
		}
	}
	if err := c.enrollTerminals(ctx, env, cfg); err != nil {
		return nil, err
	}
	c.Seconds = time.Since(began).Seconds()
	return c, nil
}

var orgFormRe = regexp.MustCompile(`id="site-form-(\d+)"`)

// readSitesPage finds the CSRF token (one per session) and the
// organisation on the admin's site list.
func (c *Customer) readSitesPage(ctx context.Context) error {
	page, err := c.Web.Page(ctx, "GET", c.base+"/sites", nil, http.StatusOK, "")
	if err != nil {
		return fmt.Errorf("loadgen: customer: %w", err)
	}
	if c.csrf, err = webclient.FormToken(page); err != nil {
		return fmt.Errorf("loadgen: customer: %w", err)
	}
	m := orgFormRe.FindStringSubmatch(page)
	if m == nil {
		return fmt.Errorf("loadgen: customer: the site list has no form to create a site:\n%.500s", page)
	}
	c.Org, _ = strconv.ParseInt(m[1], 10, 64)
	return nil
}

// post sends a form with the session's CSRF token and wants status back.
func (c *Customer) post(ctx context.Context, path string, form url.Values, status int) (string, error) {
	form.Set("csrf_token", c.csrf)
	page, err := c.Web.Page(ctx, "POST", c.base+path, form, status, "")
	if err != nil {
		return "", fmt.Errorf("loadgen: customer: %w", err)
	}
	return page, nil
}

// each runs f for i in [0, n), webProcs at a time.
func each(ctx context.Context, n int, f func(ctx context.Context, i int) error) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(webProcs)
	for i := range n {
		g.Go(func() error { return f(gctx, i) })
	}
	return g.Wait()
}

var siteLinkRe = regexp.MustCompile(`href="/sites/(\d+)"><strong>` + siteName + `([A-Z0-9]{13})</strong>`)

// createSites creates the sites on the admin's site list and reads their
// ids back from it.
func (c *Customer) createSites(ctx context.Context, cfg CustomerConfig) error {
	c.Sites = make([]*Site, cfg.Sites)
	for i := range c.Sites {
		c.Sites[i] = &Site{Ident: fmt.Sprintf("%s%010d", sitePrefix, i+1), People: make(map[string]string)}
	}
	err := each(ctx, cfg.Sites, func(ctx context.Context, i int) error {
		s := c.Sites[i]
		_, err := c.post(ctx, fmt.Sprintf("/orgs/%d/sites", c.Org), url.Values{"ident": {s.Ident}, "name": {siteName + s.Ident},
			"address": {fmt.Sprintf("Lastgatan %d, Uppsala", i+1)}, "byggherre": {customerName},
			"byggherre_nr": {customerOrgNumber}, "tz": {"Europe/Stockholm"}}, http.StatusSeeOther)
		return err
	})
	if err != nil {
		return err
	}
	page, err := c.Web.Page(ctx, "GET", c.base+"/sites", nil, http.StatusOK, "")
	if err != nil {
		return fmt.Errorf("loadgen: customer: %w", err)
	}
	ids := make(map[string]int64)
	for _, m := range siteLinkRe.FindAllStringSubmatch(page, -1) {
		ids[m[2]], _ = strconv.ParseInt(m[1], 10, 64)
	}
	for _, s := range c.Sites {
		if s.ID = ids[s.Ident]; s.ID == 0 {
			return fmt.Errorf("loadgen: customer: site %s is not on the site list", s.Ident)
		}
	}
	return nil
}

// addContractors puts the same contractor on every site: the first
// request creates its organisation, the others find it by its number.
func (c *Customer) addContractors(ctx context.Context, _ CustomerConfig) error {
	add := func(ctx context.Context, i int) error {
		_, err := c.post(ctx, fmt.Sprintf("/sites/%d/contractors", c.Sites[i].ID),
			url.Values{"name": {contractorName}, "orgnr": {contractorNumber}}, http.StatusSeeOther)
		return err
	}
	if err := add(ctx, 0); err != nil {
		return err
	}
	return each(ctx, len(c.Sites)-1, func(ctx context.Context, i int) error { return add(ctx, i+1) })
}

// importPeople imports one person per tap the terminals will record, a
// file of importRows at a time, through the import page of the first
// site (an import adds the importer's staff, who may then work on any of
// its sites).
func (c *Customer) importPeople(ctx context.Context, cfg CustomerConfig) error {
	n := cfg.Terminals * cfg.Taps
	validUntil := time.Now().Add(cardValidity).Format("2006-01-02")
	var file strings.Builder
	flush := func() error {
		if file.Len() == 0 {
			return nil
		}
		_, err := c.Web.Upload(ctx, fmt.Sprintf("%s/sites/%d/import", c.base, c.Sites[0].ID), url.Values{"csrf_token": {c.csrf}},
			"file", "personal.csv", []byte(file.String()), http.StatusOK, "")
		file.Reset()
		if err != nil {
			return fmt.Errorf("loadgen: customer: import: %w", err)
		}
		return nil
	}
	for k := range n {
		if k%importRows == 0 {
			if err := flush(); err != nil {
				return err
			}
			file.WriteString("namn;personnummer;land;kortnummer;giltig till\n")
		}
		// Each site's terminals tap its people: terminal t is at site
		// t % sites (see enrollTerminals), and records taps k of its own.
		t := k / cfg.Taps
		name, card := fmt.Sprintf("%s%07d", personName, k+1), fmt.Sprintf("LG%010d", k+1)
		fmt.Fprintf(&file, "%s;LG-%07d;PL;%s;%s\n", name, k+1, card, validUntil)
		c.Sites[t%len(c.Sites)].People[card] = name
	}
	return flush()
}

var enrollCodeRe = regexp.MustCompile(`id="enroll-code">([^<]+)<`)

// enrollTerminals creates an enrollment code on its site's terminals page
// for each terminal (terminal t at site t % sites), enrolls the terminal
// with it, and opens the terminals with their credentials.
func (c *Customer) enrollTerminals(ctx context.Context, env *Env, cfg CustomerConfig) error {
	dir := filepath.Join(env.Dir(), "credentials")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("loadgen: customer: %w", err)
	}
	ids := env.NewIDs("scr", cfg.Terminals)
	creds := make([]string, len(ids))
	err := each(ctx, len(ids), func(ctx context.Context, t int) error {
		site := c.Sites[t%len(c.Sites)]
		page, err := c.post(ctx, fmt.Sprintf("/sites/%d/enrollment-codes", site.ID),
			url.Values{"terminal": {ids[t]}, "direction": {"toggle"}, "hours": {strconv.Itoa(codeTTLHours)}}, http.StatusOK)
		if err != nil {
			return err
		}
		m := enrollCodeRe.FindStringSubmatch(page)
		if m == nil {
			return fmt.Errorf("loadgen: customer: no enrollment code on the terminals page of site %s", site.Ident)
		}
		res, err := enroll.Enroll(ctx, enroll.Options{Server: env.SyncURL(), AgentVersion: "loadgen",
			CredentialPath: filepath.Join(dir, ids[t]+".cred")}, m[1], ids[t])
		if err != nil {
			return fmt.Errorf("loadgen: customer: enroll %s: %w", ids[t], err)
		}
		creds[t] = res.Credential
		return nil
	})
	if err != nil {
		return err
	}
	if c.Members, err = env.OpenMembers(cfg.Kind, ids, creds); err != nil {
		return err
	}
	for t, m := range c.Members {
		a := m.tracker()
		for k := range cfg.Taps {
			a.cards = append(a.cards, fmt.Sprintf("LG%010d", t*cfg.Taps+k+1))
		}
		site := c.Sites[t%len(c.Sites)]
		site.Terminals = append(site.Terminals, m)
	}
	return nil
}

package web

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/liggare/liggare/server/internal/account"
	"github.com/liggare/liggare/server/internal/ledger"
)

func (s *Server) siteRoutes() []route {
	return []route{
		{pattern: "GET /sites", access: loggedIn, h: s.siteList},
		{pattern: "GET /fleet", access: operator, h: s.fleetPage},
		{pattern: "GET /sites/{site}", access: site, action: account.ActViewSite, h: s.sitePage},
		{pattern: "GET /sites/{site}/onsite", access: site, action: account.ActViewSite, h: s.onsiteFragment},
		{pattern: "GET /sites/{site}/events", access: site, action: account.ActViewSite, h: s.events},
	}
}

func (s *Server) siteList(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	if rc.P.Inspector != nil {
		http.Redirect(w, r, "/sites/"+strconv.FormatInt(rc.P.Inspector.SiteID, 10), http.StatusSeeOther)
		return nil
	}
	return s.renderSites(w, r, rc, http.StatusOK, view{Title: rc.T("sites.title")}, siteForm{})
}

type fleetData struct {
	Info  terminalsInfo
	Total int
}

func (s *Server) fleetPage(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	ts, total, err := s.fleet(r.Context(), rc.Now)
	if err != nil {
		return err
	}
	d := fleetData{Info: terminalsData(ts), Total: total}
	d.Info.ShowSite = true
	s.render(w, rc, http.StatusOK, "fleet", view{Title: rc.T("fleet.title"), D: d})
	return nil
}

// terminalsInfo is the terminal health section.
type terminalsInfo struct {
	Terminals []terminal
	Alerts    int
	// ShowSite adds each terminal's site (the fleet page).
	ShowSite bool
	// ShowCreds adds each terminal's credential state (terminal.Cred);
	// Manage adds the revoke and re-enroll buttons (the terminals page).
	ShowCreds, Manage bool
}

func terminalsData(ts []terminal) terminalsInfo {
	d := terminalsInfo{Terminals: ts}
	for _, t := range ts {
		if t.Alert {
			d.Alerts++
		}
	}
	return d
}

// company is one employer's people on site.
type company struct {
	OrgID     int64
	Name      string
	OrgNumber string
	People    []ledger.PeriodRow
}

// liveData is the part of the site page that live updates replace.
type liveData struct {
	SiteID    int64
	OnSite    int
	Companies []company
	Today     []ledger.PeriodRow
	// Attention lists forgotten check-outs and check-ins.
	Attention    []ledger.PeriodRow
	UnknownCards []ledger.UnknownCard
	Updated      time.Time
	// CanCorrect: the principal may correct; WholeSite: it sees the whole
	// site (so may assign unknown cards).
	CanCorrect, WholeSite bool
}

// siteData is the site page's data.
type siteData struct {
	Live      liveData
	Terminals *terminalsInfo
}

func (s *Server) liveData(ctx context.Context, rc *reqCtx) (liveData, error) {
	viewer, staff := rc.Access.Viewer, rc.Access.StaffOf
	loc := s.cfg.Location
	local := rc.Now.In(loc)
	dayStart := time.Date(local.Year(), local.Month(), local.Day(), 0, 0, 0, 0, loc)
	d := liveData{SiteID: rc.Site.ID, Updated: rc.Now, CanCorrect: rc.Access.Allowed[account.ActCorrect], WholeSite: wholeSite(rc)}
	on, err := s.ledger.OnSite(ctx, viewer, ledger.PeriodQuery{SiteID: rc.Site.ID, OrgID: staff, Now: rc.Now})
	if err != nil {
		return d, err
	}
	d.OnSite = len(on)
	idx := map[int64]int{}
	for _, p := range on {
		i, ok := idx[p.OrgID]
		if !ok {
			i = len(d.Companies)
			idx[p.OrgID] = i
			d.Companies = append(d.Companies, company{OrgID: p.OrgID, Name: p.OrgName, OrgNumber: p.OrgNumber})
		}
		d.Companies[i].People = append(d.Companies[i].People, p)
	}
	sortCompanies(d.Companies)
	d.Today, err = s.ledger.Periods(ctx, viewer, ledger.PeriodQuery{SiteID: rc.Site.ID, OrgID: staff,
		From: dayStart, To: dayStart.AddDate(0, 0, 1), Now: rc.Now})
	if err != nil {
		return d, err
	}
	recent, err := s.ledger.Periods(ctx, viewer, ledger.PeriodQuery{SiteID: rc.Site.ID, OrgID: staff,
		From: dayStart.AddDate(0, 0, -s.cfg.AttentionDays), To: rc.Now.Add(time.Minute), Now: rc.Now})
	if err != nil {
		return d, err
	}
	for _, p := range recent {
		if p.Overdue || p.MissingCheckout || p.MissingCheckin {
			d.Attention = append(d.Attention, p)
		}
	}
	if d.WholeSite {
		if d.UnknownCards, err = s.ledger.UnknownCards(ctx, viewer, rc.Site.ID); err != nil {
			return d, err
		}
	}
	return d, nil
}

func sortCompanies(cs []company) {
	// Insertion sort by name: a site has few companies.
	for i := 1; i < len(cs); i++ {
		for j := i; j > 0 && cs[j].Name < cs[j-1].Name; j-- {
			cs[j], cs[j-1] = cs[j-1], cs[j]
		}
	}
}

func (s *Server) sitePage(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	ld, err := s.liveData(r.Context(), rc)
	if err != nil {
		return err
	}
	d := siteData{Live: ld}
	if rc.Access.Allowed[account.ActViewTerminals] {
		ts, err := s.siteTerminals(r.Context(), rc.Site.ID, rc.Now)
		if err != nil {
			return err
		}
		ti := terminalsData(ts)
		d.Terminals = &ti
	}
	s.render(w, rc, http.StatusOK, "site", view{Title: rc.Site.Name, D: d})
	return nil
}

// onsiteFragment is the live part of the site page, fetched again on each
// change event.
func (s *Server) onsiteFragment(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	ld, err := s.liveData(r.Context(), rc)
	if err != nil {
		return err
	}
	s.renderFragment(w, rc, "site", "live", view{D: ld})
	return nil
}

// events is the site's server-sent event stream: "change" when its ledger
// changed, a comment every Heartbeat. The session is checked again at each
// heartbeat, and the stream ends when it has ended ("expired" event) or
// when the server stops.
func (s *Server) events(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	ctl := http.NewResponseController(w)
	sub := s.hub.Subscribe(rc.Site.ID)
	defer sub.Close()
	h := w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	write := func(msg string) error {
		if _, err := io.WriteString(w, msg); err != nil {
			return err
		}
		return ctl.Flush()
	}
	if err := write("retry: 3000\n: live\n\n"); err != nil {
		return nil
	}
	beat := time.NewTicker(s.cfg.Heartbeat)
	defer beat.Stop()
	end := time.NewTimer(rc.Sess.ExpiresAt.Sub(rc.Now)) // the server's clock, as the session's
	defer end.Stop()
	siteID := strconv.FormatInt(rc.Site.ID, 10)
	for {
		select {
		case <-r.Context().Done():
			return nil
		case <-s.stopping:
			return nil
		case <-end.C:
			write("event: expired\ndata: session\n\n")
			return nil
		case <-sub.C:
			if err := write("event: change\ndata: " + siteID + "\n\n"); err != nil {
				return nil
			}
		case <-beat.C:
			if _, err := s.accounts.Session(r.Context(), rc.Token); err != nil {
				if errors.Is(err, account.ErrNoSession) {
					write("event: expired\ndata: session\n\n")
				}
				return nil
			}
			if err := write(": heartbeat\n\n"); err != nil {
				return nil
			}
		}
	}
}

// notFound answers a path no route has.
func (s *Server) notFound(http.ResponseWriter, *http.Request, *reqCtx) error { return errNotFound }

package web

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"time"

	"github.com/liggare/liggare/server/internal/account"
)

func (s *Server) grantRoutes() []route {
	return []route{
		{pattern: "GET /sites/{site}/grants", access: site, action: account.ActGrantInspector, h: s.grantsPage},
		{pattern: "POST /sites/{site}/grants", access: site, action: account.ActGrantInspector, h: s.grantPost},
		{pattern: "POST /sites/{site}/grants/{grant}/revoke", access: site, action: account.ActGrantInspector, h: s.grantRevoke},
	}
}

// grantTTLs are the lifetimes offered for a grant, in hours.
var grantTTLs = []int{1, 2, 4, 8, 12, 24}

type grantRow struct {
	account.Grant
	CreatedByName string
	Active        bool
}

type grantsData struct {
	Grants []grantRow
	TTLs   []int
	// Issued is a grant just made: its link and code are shown once.
	Issued *issued
}

type issued struct {
	Link, Code string
	ExpiresAt  time.Time
}

func (s *Server) grantsPage(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	return s.renderGrants(w, r, rc, http.StatusOK, view{Title: rc.T("grants.title")}, nil)
}

func (s *Server) renderGrants(w http.ResponseWriter, r *http.Request, rc *reqCtx, status int, v view, iss *issued) error {
	gs, err := s.accounts.Grants(r.Context(), rc.P, rc.Site.ID)
	if err != nil {
		return err
	}
	var ids []int64
	for _, g := range gs {
		ids = append(ids, g.CreatedBy)
	}
	names, err := s.userNames(r.Context(), ids)
	if err != nil {
		return err
	}
	d := grantsData{TTLs: grantTTLs, Issued: iss}
	for _, g := range gs {
		d.Grants = append(d.Grants, grantRow{Grant: g, CreatedByName: names[g.CreatedBy],
			Active: g.RevokedAt == nil && g.ExpiresAt.After(rc.Now) && g.Uses < g.MaxUses})
	}
	v.D = d
	s.render(w, rc, status, "grants", v)
	return nil
}

func (s *Server) grantPost(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	hours, err := strconv.Atoi(r.PostFormValue("hours"))
	if err != nil || hours < 1 || hours > int(account.MaxGrantTTL/time.Hour) {
		hours = 8
	}
	g, err := s.accounts.CreateGrant(r.Context(), rc.P, account.NewGrant{SiteID: rc.Site.ID, TTL: time.Duration(hours) * time.Hour})
	if errors.Is(err, account.ErrForbidden) {
		return errForbidden
	}
	if err != nil {
		return err
	}
	iss := &issued{Link: s.baseURL(r) + "/inspector#" + g.LinkToken, Code: g.Code, ExpiresAt: g.ExpiresAt}
	return s.renderGrants(w, r, rc, http.StatusOK, view{Title: rc.T("grants.title"), Flash: rc.T("grants.created")}, iss)
}

func (s *Server) grantRevoke(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	id, err := strconv.ParseInt(r.PathValue("grant"), 10, 64)
	if err != nil {
		return errNotFound
	}
	gs, err := s.accounts.Grants(r.Context(), rc.P, rc.Site.ID)
	if err != nil {
		return err
	}
	found := false
	for _, g := range gs {
		found = found || g.ID == id
	}
	if !found {
		return errNotFound
	}
	if err := s.accounts.RevokeGrant(r.Context(), rc.P, id); err != nil {
		if errors.Is(err, account.ErrNotFound) {
			return errNotFound
		}
		return err
	}
	http.Redirect(w, r, fmt.Sprintf("/sites/%d/grants", rc.Site.ID), http.StatusSeeOther)
	return nil
}

// baseURL is the scheme and host the browser reached us at: https behind
// TLS or a trusted proxy that says so.
func (s *Server) baseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	} else if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		if a, err := netip.ParseAddr(host); err == nil && s.trusted(a.Unmap()) && r.Header.Get("X-Forwarded-Proto") == "https" {
			scheme = "https"
		}
	}
	return scheme + "://" + r.Host
}

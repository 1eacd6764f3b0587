// Package web serves Liggare's pages: logging in (password, TOTP, forced
// password change and TOTP enrolment), the site list, a site's live
// attendance with forgotten check-outs, unknown cards and terminal health,
// corrections of the ledger, import of people and cards, inspector grants
// and their redemption, the inspector's view of the combined ledger (per
// company, per person, as of any moment) and its exports, the audit log,
// a site's terminals with their enrollment codes, revocation and
// re-enrollment, the operator's fleet health, and an org admin's set-up:
// creating sites, putting contractors on them (the chain of who hired
// whom), and the organisation's users (invitations with a one-time
// password shown once, roles, managed sites, disabling, password resets).
//
// # Shape
//
// Pages are rendered on the server with html/template; CSS and a little
// JavaScript (live.js: EventSource and a fragment fetch) are embedded files
// served under /static/. Nothing needs a build step, and every page works
// without JavaScript: the live list then updates on reload.
//
// Every route is one entry of a table (routes.go): its method and pattern,
// who may call it (public, any logged-in principal, a site action of
// account's access table, the operator) and its handler. The wrapper the
// table applies does the work common to all: security headers, the
// session and its Principal, the user's set-up steps (a forced password
// change, TOTP enrolment), CSRF on every unsafe method, the site's Access
// for site routes, language, and turning errors into pages. To add pages
// (an inspector's view, say), write a file with a method returning
// []route, add it to Server.routes, and put the page's template in
// templates/pages/NAME.html: it is parsed with the layout and partials and
// rendered with Server.render. The access table test then asks for the new
// routes' expected status per role.
//
// # Tenancy
//
// A site route loads the site's owner and contractors (account.Site) and
// asks account.SiteAccess what the principal may do there; the ledger and
// registry are then asked with Access.Viewer, and Access.StaffOf narrows
// lists and corrections to one employer's people. A principal with no
// relation to the site gets 404, one whose relation lacks the action 403.
// An operator sees terminals and no personal data. The audit log is not a
// site route: an org admin reads its organisation's log, a site manager
// the entries about its sites (auditScopes), nobody else. The
// administration routes are an organisation's ({org}: orgAdmin) or a
// site's ({site}: siteAdmin) and need an org admin of it, or of the
// site's owner; another tenant's principal gets 404 there too.
//
// # Personal data in requests
//
// A person is named in URLs by the opaque person id, never by an
// identity number; searching by number is a query the server answers
// without echoing it into links. Every page showing a person's ledger
// reads it through export.View, which writes the audit entry first.
//
// # Live updates
//
// The site page subscribes with EventSource to /sites/{site}/events, a
// server-sent event stream fed by a live.Hub (LISTEN/NOTIFY across
// replicas), authorised when it opens and re-checked with the session at
// every 15 s heartbeat. On each "change" event the page fetches
// /sites/{site}/onsite, an HTML fragment of who is on site, today's periods
// and what needs attention, rendered with the caller's own scope.
//
// # Language and time
//
// Swedish first, English second: a ?lang= parameter (remembered in a
// cookie), then the cookie, then Accept-Language choose; every string is in
// the catalogue of i18n.go in both languages. Times are shown in
// Europe/Stockholm in Swedish formats (2026-03-02 07:15).
package web

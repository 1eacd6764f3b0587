package web

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/liggare/liggare/server/internal/account"
	"github.com/liggare/liggare/server/internal/enroll"
)

// The reads here are the pages' own: site names, terminal health and the
// people a form may name. Ledger rows come from package ledger, accounts
// from package account; every query here is scoped the same way, by the
// Access the wrapper computed.

// siteInfo is a site as pages show it, with what authorization needs.
type siteInfo struct {
	account.Site
	Ident, Name, Address string
	OwnerName            string
}

const siteColumns = `s.site_id, s.org_id, s.site_ident, s.name, s.address, o.name,
	coalesce((SELECT array_agg(sc.org_id ORDER BY sc.org_id) FROM site_contractors sc WHERE sc.site_id = s.site_id), '{}')`

func scanSite(row pgx.Row) (siteInfo, error) {
	var si siteInfo
	err := row.Scan(&si.ID, &si.Owner, &si.Ident, &si.Name, &si.Address, &si.OwnerName, &si.Contractors)
	return si, err
}

// site loads a site; errNotFound when there is none.
func (s *Server) site(ctx context.Context, id int64) (siteInfo, error) {
	si, err := scanSite(s.cfg.Pool.QueryRow(ctx, `SELECT `+siteColumns+`
		FROM sites s JOIN organisations o ON o.org_id = s.org_id WHERE s.site_id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return siteInfo{}, errNotFound
	}
	if err != nil {
		return siteInfo{}, fmt.Errorf("web: site: %w", err)
	}
	return si, nil
}

// maxSiteList bounds the site list.
const maxSiteList = 1000

// visibleSites lists the sites whose ledger p may read, by name: those of
// the organisations p acts for (owned or as a contractor), those it
// manages, an inspector's one site. The access table decides; the query
// only finds candidates.
func (s *Server) visibleSites(ctx context.Context, p account.Principal) ([]siteInfo, error) {
	orgs := p.ActingOrgs()
	var ids []int64
	for id := range p.ManagedSites {
		ids = append(ids, id)
	}
	if p.Inspector != nil {
		ids = append(ids, p.Inspector.SiteID)
	}
	if len(orgs) == 0 && len(ids) == 0 {
		return nil, nil
	}
	rows, err := s.cfg.Pool.Query(ctx, `SELECT `+siteColumns+`
		FROM sites s JOIN organisations o ON o.org_id = s.org_id
		WHERE s.org_id = ANY($1) OR s.site_id = ANY($2)
		   OR EXISTS (SELECT 1 FROM site_contractors sc WHERE sc.site_id = s.site_id AND sc.org_id = ANY($1))
		ORDER BY s.ended_at IS NOT NULL, s.name, s.site_id LIMIT $3`, orgs, ids, maxSiteList)
	if err != nil {
		return nil, fmt.Errorf("web: sites: %w", err)
	}
	all, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (siteInfo, error) { return scanSite(row) })
	if err != nil {
		return nil, fmt.Errorf("web: sites: %w", err)
	}
	return slices.DeleteFunc(all, func(si siteInfo) bool { return !account.CanViewSite(p, si.Site) }), nil
}

// terminal is a terminal's health, without personal data.
type terminal struct {
	ID           string
	Direction    string
	SiteID       int64
	SiteName     string
	SiteIdent    string
	LastSeen     *time.Time
	StatusAt     *time.Time
	OutboxDepth  *int64
	OldestUnack  *time.Time
	ClockOffset  *int64 // microseconds
	ReaderState  string
	Alarms       []string
	AgentVersion string
	// Computed by assess.
	Online bool
	Alert  bool
	// Cred is the credential state, on the terminals page; nil for a
	// terminal that never had a credential.
	Cred *enroll.CredentialState
}

const terminalColumns = `t.terminal_id, a.direction, a.site_id, st.name, st.site_ident, t.last_seen_at, t.status_at,
	t.outbox_depth, t.oldest_unacked_at, t.clock_offset_us, coalesce(t.reader_state, ''), coalesce(t.alarms, '{}'),
	t.agent_version`

func scanTerminal(row pgx.CollectableRow) (terminal, error) {
	var t terminal
	err := row.Scan(&t.ID, &t.Direction, &t.SiteID, &t.SiteName, &t.SiteIdent, &t.LastSeen, &t.StatusAt,
		&t.OutboxDepth, &t.OldestUnack, &t.ClockOffset, &t.ReaderState, &t.Alarms, &t.AgentVersion)
	return t, err
}

// siteTerminals lists the terminals standing at a site now.
func (s *Server) siteTerminals(ctx context.Context, siteID int64, now time.Time) ([]terminal, error) {
	rows, err := s.cfg.Pool.Query(ctx, `
		WITH cand AS (SELECT DISTINCT terminal_id FROM terminal_assignments WHERE site_id = $1)
		SELECT `+terminalColumns+`
		FROM cand JOIN terminals t USING (terminal_id)
		JOIN LATERAL (SELECT ta.site_id, ta.direction FROM terminal_assignments ta
		              WHERE ta.terminal_id = t.terminal_id AND ta.valid_from <= $2
		              ORDER BY ta.valid_from DESC LIMIT 1) a ON a.site_id = $1
		JOIN sites st ON st.site_id = a.site_id
		ORDER BY t.terminal_id`, siteID, now)
	if err != nil {
		return nil, fmt.Errorf("web: terminals: %w", err)
	}
	ts, err := pgx.CollectRows(rows, scanTerminal)
	if err != nil {
		return nil, fmt.Errorf("web: terminals: %w", err)
	}
	for i := range ts {
		s.assess(&ts[i], now)
	}
	return ts, nil
}

// maxFleet bounds the fleet page.
const maxFleet = 500

// fleet lists terminals with an assignment, those needing attention
// first (silent longest), for the operator.
func (s *Server) fleet(ctx context.Context, now time.Time) ([]terminal, int, error) {
	var total int
	if err := s.cfg.Pool.QueryRow(ctx, `SELECT count(*) FROM terminals`).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("web: fleet: %w", err)
	}
	rows, err := s.cfg.Pool.Query(ctx, `
		SELECT `+terminalColumns+`
		FROM terminals t
		JOIN LATERAL (SELECT ta.site_id, ta.direction FROM terminal_assignments ta
		              WHERE ta.terminal_id = t.terminal_id AND ta.valid_from <= $1
		              ORDER BY ta.valid_from DESC LIMIT 1) a ON true
		JOIN sites st ON st.site_id = a.site_id
		ORDER BY (cardinality(coalesce(t.alarms, '{}')) > 0 OR coalesce(t.outbox_depth, 0) > 0) DESC,
		         t.last_seen_at ASC NULLS FIRST, t.terminal_id
		LIMIT $2`, now, maxFleet)
	if err != nil {
		return nil, 0, fmt.Errorf("web: fleet: %w", err)
	}
	ts, err := pgx.CollectRows(rows, scanTerminal)
	if err != nil {
		return nil, 0, fmt.Errorf("web: fleet: %w", err)
	}
	for i := range ts {
		s.assess(&ts[i], now)
	}
	return ts, total, nil
}

// assess sets whether a terminal is online and whether its silence is an
// alert: offline for OfflineAlert during working hours.
func (s *Server) assess(t *terminal, now time.Time) {
	t.Online = t.LastSeen != nil && now.Sub(*t.LastSeen) <= s.cfg.OnlineWithin
	silent := t.LastSeen == nil || now.Sub(*t.LastSeen) > s.cfg.OfflineAlert
	t.Alert = silent && s.workingHours(now)
}

// workingHours reports whether now is within the working hours of a
// weekday, local time.
func (s *Server) workingHours(now time.Time) bool {
	local := now.In(s.cfg.Location)
	if wd := local.Weekday(); wd == time.Saturday || wd == time.Sunday {
		return false
	}
	return local.Hour() >= s.cfg.WorkingHours.From && local.Hour() < s.cfg.WorkingHours.To
}

// person is someone a correction form may name.
type person struct {
	ID       int64
	Name     string
	IDMasked string
	OrgID    int64
	OrgName  string
}

// maxPeople bounds the people offered in a form.
const maxPeople = 5000

// sitePeople lists the people the request's principal may name in a
// correction at its site: the staff of the site's owner and contractors
// when it reads the whole site, otherwise its own organisation's staff.
func (s *Server) sitePeople(ctx context.Context, rc *reqCtx) ([]person, error) {
	rows, err := s.cfg.Pool.Query(ctx, `
		SELECT p.person_id, p.name, p.id_masked, p.org_id, o.name
		FROM persons p JOIN organisations o ON o.org_id = p.org_id
		WHERE p.anonymised_at IS NULL
		  AND (p.org_id = $2 OR p.org_id IN (SELECT org_id FROM site_contractors WHERE site_id = $1))
		  AND ($3::bigint = 0 OR p.org_id = $3)
		ORDER BY o.name, p.name, p.person_id LIMIT $4`,
		rc.Site.ID, rc.Site.Owner, staffScope(rc), maxPeople)
	if err != nil {
		return nil, fmt.Errorf("web: people: %w", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowToStructByPos[person])
	if err != nil {
		return nil, fmt.Errorf("web: people: %w", err)
	}
	return out, nil
}

// staffScope is the one employer whose people the request may see and
// correct, or 0 for everyone on the site: Access.StaffOf, and the viewer
// itself on a site it does not own.
func staffScope(rc *reqCtx) int64 {
	if rc.Access.StaffOf != 0 {
		return rc.Access.StaffOf
	}
	if rc.Access.Viewer != rc.Site.Owner {
		return rc.Access.Viewer
	}
	return 0
}

// wholeSite reports whether the request sees and corrects the combined
// ledger of its site (the owner, unrestricted).
func wholeSite(rc *reqCtx) bool { return staffScope(rc) == 0 && rc.Access.Viewer == rc.Site.Owner }

// userNames maps user ids to names, for authors of corrections and
// grants.
func (s *Server) userNames(ctx context.Context, ids []int64) (map[int64]string, error) {
	out := make(map[int64]string)
	if len(ids) == 0 {
		return out, nil
	}
	rows, err := s.cfg.Pool.Query(ctx, `SELECT user_id, name FROM users WHERE user_id = ANY($1)`, ids)
	if err != nil {
		return nil, fmt.Errorf("web: user names: %w", err)
	}
	var id int64
	var name string
	_, err = pgx.ForEachRow(rows, []any{&id, &name}, func() error {
		out[id] = name
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("web: user names: %w", err)
	}
	return out, nil
}

// actorNames maps audit-log actors (account.Principal.Actor) to what a
// page shows: a user's name, an inspector's grant, or the actor as it is
// (a system job, a terminal).
func (s *Server) actorNames(ctx context.Context, rc *reqCtx, actors []string) (map[string]string, error) {
	var ids []int64
	for _, a := range actors {
		if id, ok := userOf(a); ok {
			ids = append(ids, id)
		}
	}
	un, err := s.userNames(ctx, ids)
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(actors))
	for _, a := range actors {
		out[a] = a
		if id, ok := userOf(a); ok && un[id] != "" {
			out[a] = un[id]
		} else if grant, ok := strings.CutPrefix(a, "inspector:grant:"); ok {
			out[a] = rc.T("actor.inspector", grant)
		}
	}
	return out, nil
}

// actorChoice is a user as the audit log's actor filter offers them.
type actorChoice struct {
	Actor string // "user:ID"
	Name  string
}

// maxActorChoices bounds the users the audit log's actor filter offers.
const maxActorChoices = 500

// orgUsers lists the users holding a role in org, by name, as audit-log
// actors.
func (s *Server) orgUsers(ctx context.Context, org int64) ([]actorChoice, error) {
	rows, err := s.cfg.Pool.Query(ctx, `
		SELECT 'user:' || u.user_id, u.name FROM users u
		WHERE EXISTS (SELECT 1 FROM memberships m WHERE m.user_id = u.user_id AND m.org_id = $1)
		ORDER BY u.name, u.user_id LIMIT $2`, org, maxActorChoices)
	if err != nil {
		return nil, fmt.Errorf("web: users: %w", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowToStructByPos[actorChoice])
	if err != nil {
		return nil, fmt.Errorf("web: users: %w", err)
	}
	return out, nil
}

// terminalSite is the site a terminal stands at now, 0 for none.
func (s *Server) terminalSite(ctx context.Context, terminalID string, now time.Time) (int64, error) {
	var site int64
	err := s.cfg.Pool.QueryRow(ctx, `
		SELECT site_id FROM terminal_assignments WHERE terminal_id = $1 AND valid_from <= $2
		ORDER BY valid_from DESC LIMIT 1`, terminalID, now).Scan(&site)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("web: terminal site: %w", err)
	}
	return site, nil
}

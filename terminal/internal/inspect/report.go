package inspect

import (
	"bytes"
	"cmp"
	"encoding/csv"
	"fmt"
	"slices"
	"strings"
	"time"
	_ "time/tzdata" // a kiosk image without zoneinfo still shows Stockholm time

	"github.com/liggare/liggare/syncproto"
	"github.com/liggare/liggare/terminal/internal/agent"
	"github.com/liggare/liggare/terminal/internal/outbox"
	"github.com/liggare/liggare/terminal/internal/uplink"
)

// MaxPendingScan bounds the unsynced taps a report reads from the outbox
// (weeks offline at a busy site); Report.Truncated says when it was hit.
const MaxPendingScan = 200_000

// CardLookup finds a card's holder: cardcache.Cache.Lookup.
type CardLookup func(cardID string) (syncproto.CardInfo, bool)

// Sources are what the terminal's on-site list is made of. Journal is
// required; the rest may be nil.
type Sources struct {
	Journal *Journal
	// Outbox holds the taps the server has not acknowledged yet.
	Outbox *outbox.Outbox
	// Cards gives names and employers: the roster the server last sent.
	Cards CardLookup
	// Link is the uplink's state (uplink.Uplink.State).
	Link       func() uplink.State
	TerminalID string
	// Site names the site on the report (the terminal is not told it).
	Site     string
	Location *time.Location
	Now      func() time.Time
}

// Report is the terminal's on-site list and its recent taps.
type Report struct {
	GeneratedAt time.Time
	Location    *time.Location
	TerminalID  string
	Site        string
	Online      bool
	LastAck     time.Time
	// Unsynced is how many taps the server has not acknowledged yet.
	Unsynced  int
	Truncated bool
	// Present, by employer then name.
	Present []Present
	// Taps of the last Window, newest first.
	Taps   []TapLine
	Window time.Duration
	Modes  string
}

// Present is one card holder the terminal counts as on site.
type Present struct {
	Name, Employer string
	// Known: the card is in the card cache (else Name is empty).
	Known    bool
	CardID   string
	Since    time.Time
	Unsynced bool
	// Note is the kiosk's answer to the last tap when it was not "accepted"
	// ("Kort spärrat hos ID06").
	Note string
}

// TapLine is one tap of the report.
type TapLine struct {
	At             time.Time
	Name, Employer string
	CardID         string
	Direction      Direction
	Answer         string
	Unsynced       bool
}

// Report derives the on-site list now from the journal and the outbox.
func (s *Sources) Report() (*Report, error) {
	now := time.Now()
	if s.Now != nil {
		now = s.Now()
	}
	loc := s.Location
	if loc == nil {
		loc = stockholm
	}
	opts := s.Journal.opts
	r := &Report{GeneratedAt: now, Location: loc, TerminalID: s.TerminalID, Site: s.Site, Window: opts.Retain, Modes: opts.Modes.String()}
	if s.Link != nil {
		st := s.Link()
		r.Online, r.LastAck = st.Connected, st.LastAck
	}
	taps := make(map[TapKey]Tap)
	for _, t := range s.Journal.Taps() {
		taps[TapKey{t.Epoch, t.Seq}] = t
	}
	if s.Outbox != nil {
		pending, err := s.Outbox.Pending(0, MaxPendingScan)
		if err != nil {
			return nil, fmt.Errorf("inspect: report: %w", err)
		}
		r.Unsynced = int(s.Outbox.Stats().Depth)
		r.Truncated = len(pending) == MaxPendingScan
		epoch := s.Outbox.Epoch()
		for _, p := range pending {
			k := TapKey{epoch, p.Seq}
			t, ok := taps[k]
			if !ok {
				t = Tap{Epoch: epoch, Seq: p.Seq, CardID: p.CardID, Reader: p.Reader,
					At: time.UnixMicro(p.Clock.WallMicros), Answer: p.Answer}
			}
			t.Unsynced = true
			taps[k] = t
		}
	}
	all := make([]Tap, 0, len(taps))
	for _, t := range taps {
		all = append(all, t)
	}
	present, dirs := Derive(all, opts.Modes, opts.Rules, now)

	holder := func(t Tap) (name, employer string, known bool) {
		if s.Cards != nil {
			if ci, ok := s.Cards(t.CardID); ok {
				return ci.Name, ci.Employer, true
			}
		}
		return t.Name, t.Employer, t.Name != ""
	}
	for _, p := range present {
		name, employer, known := holder(p.Last)
		e := Present{Name: name, Employer: employer, Known: known, CardID: p.CardID, Since: p.Since, Unsynced: p.Last.Unsynced}
		if p.Last.Answer != agent.AnswerAccepted && p.Last.Answer != "" {
			e.Note = agent.KioskText(p.Last.Answer)
		}
		r.Present = append(r.Present, e)
	}
	slices.SortFunc(r.Present, func(a, b Present) int {
		return cmp.Or(cmp.Compare(unknown(a), unknown(b)), cmp.Compare(sortKey(a.Employer), sortKey(b.Employer)),
			cmp.Compare(sortKey(a.Name), sortKey(b.Name)), a.Since.Compare(b.Since), cmp.Compare(a.CardID, b.CardID))
	})
	cutoff := now.Add(-opts.Retain)
	sortTaps(all)
	for i := len(all) - 1; i >= 0; i-- {
		t := all[i]
		if t.At.Before(cutoff) {
			break
		}
		name, employer, _ := holder(t)
		r.Taps = append(r.Taps, TapLine{At: t.At, Name: name, Employer: employer, CardID: t.CardID,
			Direction: dirs[TapKey{t.Epoch, t.Seq}], Answer: t.Answer, Unsynced: t.Unsynced})
	}
	return r, nil
}

// sortKey orders names as a Swedish reader expects: case-insensitive, å ä ö
// after z (as the server's export package does).
func sortKey(s string) string {
	return swedishOrder.Replace(strings.ToLower(s))
}

var swedishOrder = strings.NewReplacer("å", "{", "ä", "|", "æ", "|", "ö", "}", "ø", "}", "é", "e", "ü", "y")

// unknown sorts unknown cards last.
func unknown(p Present) int {
	if p.Known {
		return 0
	}
	return 1
}

// Local formats t in the report's time zone.
func (r *Report) Local(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.In(r.Location).Format("2006-01-02 15:04:05")
}

// CSV writes the on-site list as the server's exports do: semicolons,
// UTF-8 with a BOM (Excel), CRLF, RFC 4180 quoting, a Swedish header.
func (r *Report) CSV() ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteString("\ufeff")
	w := csv.NewWriter(&buf)
	w.Comma = ';'
	w.UseCRLF = true
	w.Write([]string{"Namn", "Arbetsgivare", "Kort", "Incheckad sedan", "Ej synkad med servern", "Anmärkning",
		"Terminal", "Framtagen"})
	yes := func(b bool) string {
		if b {
			return "ja"
		}
		return "nej"
	}
	for _, p := range r.Present {
		name := p.Name
		if !p.Known {
			name = "Okänt kort"
		}
		w.Write([]string{cell(name), cell(p.Employer), p.CardID, r.Local(p.Since), yes(p.Unsynced), p.Note,
			r.TerminalID, r.Local(r.GeneratedAt)})
	}
	w.Flush()
	if err := w.Error(); err != nil {
		return nil, fmt.Errorf("inspect: csv: %w", err)
	}
	return buf.Bytes(), nil
}

// cell guards free text against spreadsheet formula injection (see the
// server's export package).
func cell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

var stockholm = mustLoad("Europe/Stockholm")

func mustLoad(name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		panic(err) // time/tzdata is linked in: cannot happen
	}
	return loc
}

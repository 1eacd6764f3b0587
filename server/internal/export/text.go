package export

import (
	"fmt"
	"strings"
	"time"
)

// Time layouts. Local times are the site's (Europe/Stockholm); the JSON
// file carries RFC 3339 with the offset, which is never ambiguous.
const (
	// localLayout is ISO 8601 without the offset, which Excel reads as a
	// date and time. In the hour the clocks go back it is ambiguous; the
	// JSON file is not.
	localLayout = "2006-01-02 15:04:05"
	shortLayout = "2006-01-02 15:04"
)

// Local formats t in the site's time zone, "" for the zero time.
func (l *Ledger) Local(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.In(l.Location).Format(localLayout)
}

func (l *Ledger) short(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.In(l.Location).Format(shortLayout)
}

// Filename names the export file: the site and the moment, no personal
// data (a filename ends up in download lists and logs).
func (l *Ledger) Filename(f Format) string {
	return fmt.Sprintf("personalliggare-%s-%s.%s", l.Site.Ident, l.Moment.In(l.Location).Format("20060102-1504"), f)
}

// DisplayID is the person's identity number as a reader expects it:
// YYYYMMDD-NNNN for a personnummer or samordningsnummer, "DE 1234" for a
// foreign number, and the masked form with a note when the full number
// cannot be read.
func (p Person) DisplayID() string {
	n := p.IDNumber
	switch {
	case n == "" && p.Anonymised:
		return "anonymiserad"
	case n == "":
		return p.IDMasked
	case p.IDKind == "foreign":
		cc, num, ok := strings.Cut(n, ":")
		if ok {
			return cc + " " + num
		}
		return n
	case len(n) == 12:
		return n[:8] + "-" + n[8:]
	}
	return n
}

// wireID is the identity number in the JSON file: twelve digits for a
// Swedish number, the number alone for a foreign one (its country is a
// field of its own).
func (p Person) wireID() string {
	if p.IDKind == "foreign" {
		if _, num, ok := strings.Cut(p.IDNumber, ":"); ok {
			return num
		}
	}
	return p.IDNumber
}

// Flags lists, in Swedish, what a reader must notice about a period.
func (l *Ledger) Flags(p Period) []string {
	var out []string
	if p.StartManual {
		out = append(out, "manuell start")
	}
	if p.EndManual {
		out = append(out, "manuellt slut")
	}
	if p.MissingCheckin {
		out = append(out, "incheckning saknas")
	}
	switch {
	case p.MissingCheckout:
		out = append(out, "utcheckning saknas")
	case p.Overdue:
		out = append(out, fmt.Sprintf("utcheckning saknas (över %d h)", int(l.MaxOpen.Hours())))
	case p.Open():
		out = append(out, "pågår")
	}
	return out
}

// correctionKinds names the kinds of correction in Swedish.
var correctionKinds = map[string]string{
	"manual_period": "Manuellt arbetspass",
	"set_checkout":  "Utcheckning tillagd",
	"void_tap":      "Stämpling makulerad",
	"reassign_tap":  "Stämpling flyttad till annan person",
	"assign_card":   "Okänt kort kopplat till person",
	"withdraw":      "Rättelse återkallad",
}

// CorrectionKind names a kind of correction in Swedish.
func CorrectionKind(kind string) string {
	if s, ok := correctionKinds[kind]; ok {
		return s
	}
	return kind
}

// describeFilter says in Swedish what the ledger was narrowed to.
func (l *Ledger) describeFilter() string {
	var parts []string
	if l.Filter.OrgID != 0 {
		c, _ := l.Contractor(l.Filter.OrgID)
		parts = append(parts, "företag "+strings.TrimSpace(c.Name+" "+c.OrgNumber))
	}
	if l.Filter.PersonID != 0 {
		p, _ := l.Person(l.Filter.PersonID)
		parts = append(parts, "person "+p.Name)
	}
	if !l.Filter.From.IsZero() {
		parts = append(parts, "arbetspass från "+l.short(l.Filter.From))
	}
	if !l.Filter.To.IsZero() {
		parts = append(parts, "arbetspass före "+l.short(l.Filter.To))
	}
	if len(parts) == 0 {
		return "hela arbetsplatsen, alla företag och personer"
	}
	return strings.Join(parts, ", ")
}

// describeMoment says in Swedish which state of the ledger is shown.
func (l *Ledger) describeMoment() string {
	if l.Current {
		return "aktuell, " + l.Local(l.Moment)
	}
	return "som den var känd " + l.Local(l.Moment)
}

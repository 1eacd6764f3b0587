package export

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"strings"
)

// bom is the UTF-8 byte order mark: without it Excel reads a CSV file as
// the local ANSI code page and shows "Ã¥" for "å".
const bom = "\ufeff"

// csvHeader names the columns, in Swedish.
var csvHeader = []string{
	"Identifikationsnummer", "Arbetsplats", "Företag", "Organisationsnummer", "Namn", "Personnummer",
	"Start", "Slut", "Manuell start", "Manuellt slut", "Incheckning saknas", "Utcheckning saknas", "Pågår",
}

// renderCSV writes one row per period: semicolon-separated (Excel's
// separator where the decimal mark is a comma, as in Sweden), UTF-8 with a
// BOM, CRLF line ends and RFC 4180 quoting. Times are the site's local
// time, "2006-01-02 15:04:05".
func renderCSV(l *Ledger) ([]byte, error) {
	var buf bytes.Buffer
	buf.Grow(64 + 160*len(l.Periods))
	buf.WriteString(bom)
	w := csv.NewWriter(&buf)
	w.Comma = ';'
	w.UseCRLF = true
	if err := w.Write(csvHeader); err != nil {
		return nil, fmt.Errorf("export: csv: %w", err)
	}
	persons := make(map[int64]Person, len(l.Persons))
	for _, p := range l.Persons {
		persons[p.PersonID] = p
	}
	orgs := make(map[int64]Contractor, len(l.Contractors))
	for _, c := range l.Contractors {
		orgs[c.OrgID] = c
	}
	yes := func(b bool) string {
		if b {
			return "ja"
		}
		return "nej"
	}
	row := make([]string, len(csvHeader))
	for _, p := range l.Periods {
		person, org := persons[p.PersonID], orgs[p.OrgID]
		row = append(row[:0], l.Site.Ident, cell(l.Site.Name), cell(org.Name), org.OrgNumber, cell(person.Name), person.DisplayID(),
			l.Local(p.Start), l.Local(p.End), yes(p.StartManual), yes(p.EndManual), yes(p.MissingCheckin),
			yes(p.MissingCheckout || p.Overdue), yes(p.Open() && !p.MissingCheckout && !p.Overdue))
		if err := w.Write(row); err != nil {
			return nil, fmt.Errorf("export: csv: %w", err)
		}
	}
	w.Flush()
	if err := w.Error(); err != nil {
		return nil, fmt.Errorf("export: csv: %w", err)
	}
	return buf.Bytes(), nil
}

// cell guards free text against spreadsheet formula injection: a cell that
// starts with = + - @ (or a tab or carriage return) is run as a formula by
// Excel, so such text gets a leading apostrophe, which Excel shows as text
// (OWASP "CSV injection"). Names and company names are typed by people.
func cell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

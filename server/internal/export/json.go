package export

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// SchemaV1 names the shape of the machine-readable file; see the package
// documentation. Fields are only ever added to a version; a change that
// removes or redefines one is a new version.
const SchemaV1 = "liggare.personalliggare/v1"

// Render writes the ledger in a format.
func Render(l *Ledger, f Format) ([]byte, error) {
	switch f {
	case FormatPDF:
		return renderPDF(l)
	case FormatCSV:
		return renderCSV(l)
	case FormatJSON:
		return renderJSON(l)
	}
	return nil, fmt.Errorf("%w: format %q", ErrInvalid, f)
}

type jsonFile struct {
	Schema      string           `json:"schema"`
	GeneratedAt string           `json:"generated_at"`
	AsOf        string           `json:"as_of"`
	Current     bool             `json:"current"`
	TimeZone    string           `json:"time_zone"`
	Selection   jsonSelection    `json:"selection"`
	Site        jsonSite         `json:"site"`
	Byggherre   jsonOrg          `json:"byggherre"`
	Contractors []jsonContractor `json:"contractors"`
	Persons     []jsonPerson     `json:"persons"`
	WorkPeriods []jsonPeriod     `json:"work_periods"`
	OnSite      []jsonPresence   `json:"on_site"`
	Corrections []jsonCorrection `json:"corrections"`
}

type jsonSelection struct {
	Contractor *string `json:"contractor"`
	Person     *string `json:"person"`
	From       *string `json:"from"`
	To         *string `json:"to"`
}

type jsonSite struct {
	Identifikationsnummer string `json:"identifikationsnummer"`
	Name                  string `json:"name"`
	Address               string `json:"address"`
}

type jsonOrg struct {
	Name      string `json:"name"`
	OrgNumber string `json:"org_number"`
}

type jsonContractor struct {
	Ref          string   `json:"ref"`
	Name         string   `json:"name"`
	OrgNumber    string   `json:"org_number"`
	SiteOwner    bool     `json:"site_owner"`
	HiredBy      *string  `json:"hired_by"`
	HiredByChain []string `json:"hired_by_chain"`
	AddedAt      *string  `json:"added_at"`
	RemovedAt    *string  `json:"removed_at"`
}

type jsonPerson struct {
	Ref             string   `json:"ref"`
	Name            string   `json:"name"`
	IdentityKind    string   `json:"identity_kind"`
	IdentityNumber  *string  `json:"identity_number"`
	IdentityCountry *string  `json:"identity_country"`
	Anonymised      bool     `json:"anonymised"`
	Contractor      string   `json:"contractor"`
	ActualEmployer  *jsonOrg `json:"actual_employer"`
}

type jsonPeriod struct {
	Person          string  `json:"person"`
	Contractor      string  `json:"contractor"`
	Start           *string `json:"start"`
	End             *string `json:"end"`
	StartManual     bool    `json:"start_manual"`
	EndManual       bool    `json:"end_manual"`
	MissingCheckin  bool    `json:"missing_checkin"`
	MissingCheckout bool    `json:"missing_checkout"`
	Open            bool    `json:"open"`
	Overdue         bool    `json:"overdue"`
	StartSource     string  `json:"start_source"`
	EndSource       string  `json:"end_source"`
	RecordedFrom    string  `json:"recorded_from"`
}

type jsonPresence struct {
	Person     string `json:"person"`
	Contractor string `json:"contractor"`
	Since      string `json:"since"`
}

type jsonCorrection struct {
	Ref         string  `json:"ref"`
	Kind        string  `json:"kind"`
	Person      *string `json:"person"`
	Tap         *string `json:"tap"`
	CardIdent   *string `json:"card_ident"`
	Start       *string `json:"start"`
	End         *string `json:"end"`
	Withdraws   *string `json:"withdraws"`
	WithdrawnBy *string `json:"withdrawn_by"`
	Reason      string  `json:"reason"`
	Author      string  `json:"author"`
	CreatedAt   string  `json:"created_at"`
}

func renderJSON(l *Ledger) ([]byte, error) {
	ts := func(t time.Time) string { return t.In(l.Location).Format(time.RFC3339Nano) }
	opt := func(t time.Time) *string {
		if t.IsZero() {
			return nil
		}
		s := ts(t)
		return &s
	}
	str := func(s string) *string {
		if s == "" {
			return nil
		}
		return &s
	}
	orgRef := func(id int64) string { return "c" + strconv.FormatInt(id, 10) }
	personRef := func(id int64) string { return "p" + strconv.FormatInt(id, 10) }
	source := func(ref string) string {
		switch {
		case ref == "":
			return ""
		case len(ref) > 11 && ref[:11] == "correction:":
			return "correction"
		case len(ref) > 4 && ref[:4] == "tap:":
			return "tap"
		}
		return "other"
	}

	f := jsonFile{
		Schema: SchemaV1, GeneratedAt: ts(l.GeneratedAt), AsOf: ts(l.Moment), Current: l.Current,
		TimeZone:    l.Location.String(),
		Site:        jsonSite{Identifikationsnummer: l.Site.Ident, Name: l.Site.Name, Address: l.Site.Address},
		Byggherre:   jsonOrg{Name: l.Site.ByggherreName, OrgNumber: l.Site.ByggherreOrgNumber},
		Contractors: make([]jsonContractor, 0, len(l.Contractors)),
		Persons:     make([]jsonPerson, 0, len(l.Persons)),
		WorkPeriods: make([]jsonPeriod, 0, len(l.Periods)),
		OnSite:      make([]jsonPresence, 0, len(l.OnSite)),
		Corrections: make([]jsonCorrection, 0, len(l.Corrections)),
	}
	if l.Filter.OrgID != 0 {
		f.Selection.Contractor = str(orgRef(l.Filter.OrgID))
	}
	if l.Filter.PersonID != 0 {
		f.Selection.Person = str(personRef(l.Filter.PersonID))
	}
	f.Selection.From, f.Selection.To = opt(l.Filter.From), opt(l.Filter.To)
	for _, c := range l.Contractors {
		jc := jsonContractor{Ref: orgRef(c.OrgID), Name: c.Name, OrgNumber: c.OrgNumber, SiteOwner: c.SiteOwner,
			HiredByChain: []string{}, AddedAt: opt(c.AddedAt), RemovedAt: opt(deref(c.RemovedAt))}
		for i, h := range l.HiredByChain(c.OrgID) {
			if i == 0 {
				jc.HiredBy = str(orgRef(h.OrgID))
			}
			jc.HiredByChain = append(jc.HiredByChain, orgRef(h.OrgID))
		}
		f.Contractors = append(f.Contractors, jc)
	}
	for _, p := range l.Persons {
		jp := jsonPerson{Ref: personRef(p.PersonID), Name: p.Name, IdentityKind: p.IDKind, IdentityNumber: str(p.wireID()),
			IdentityCountry: str(p.IDCountry), Anonymised: p.Anonymised, Contractor: orgRef(p.OrgID)}
		if e := p.ActualEmployer; e != nil {
			jp.ActualEmployer = &jsonOrg{Name: e.Name, OrgNumber: e.OrgNumber}
		}
		f.Persons = append(f.Persons, jp)
	}
	for _, p := range l.Periods {
		f.WorkPeriods = append(f.WorkPeriods, jsonPeriod{Person: personRef(p.PersonID), Contractor: orgRef(p.OrgID),
			Start: opt(p.Start), End: opt(p.End), StartManual: p.StartManual, EndManual: p.EndManual,
			MissingCheckin: p.MissingCheckin, MissingCheckout: p.MissingCheckout || p.Overdue, Open: p.Open(), Overdue: p.Overdue,
			StartSource: source(p.StartRef), EndSource: source(p.EndRef), RecordedFrom: ts(p.RecordedFrom)})
	}
	for _, o := range l.OnSite {
		f.OnSite = append(f.OnSite, jsonPresence{Person: personRef(o.PersonID), Contractor: orgRef(o.OrgID), Since: ts(o.Since)})
	}
	for _, c := range l.Corrections {
		jc := jsonCorrection{Ref: "k" + strconv.FormatInt(c.ID, 10), Kind: c.Kind, Tap: str(c.Tap), CardIdent: str(c.CardIdent),
			Start: opt(c.Start), End: opt(c.End), Reason: c.Reason, Author: c.Author, CreatedAt: ts(c.CreatedAt)}
		if c.PersonID != 0 {
			jc.Person = str(personRef(c.PersonID))
		}
		if c.Withdraws != 0 {
			jc.Withdraws = str("k" + strconv.FormatInt(c.Withdraws, 10))
		}
		if c.WithdrawnBy != 0 {
			jc.WithdrawnBy = str("k" + strconv.FormatInt(c.WithdrawnBy, 10))
		}
		f.Corrections = append(f.Corrections, jc)
	}
	return f.encode(len(l.Periods))
}

// encode writes the file with one record per line: readable, diffable, and
// without the second pass over the bytes that indenting the whole takes.
func (f *jsonFile) encode(periods int) ([]byte, error) {
	var buf bytes.Buffer
	buf.Grow(4096 + 420*periods)
	w := &jsonWriter{buf: &buf, enc: json.NewEncoder(&buf)}
	w.enc.SetEscapeHTML(false)
	buf.WriteString("{\n")
	w.field("schema", f.Schema)
	w.field("generated_at", f.GeneratedAt)
	w.field("as_of", f.AsOf)
	w.field("current", f.Current)
	w.field("time_zone", f.TimeZone)
	w.field("selection", f.Selection)
	w.field("site", f.Site)
	w.field("byggherre", f.Byggherre)
	writeArray(w, "contractors", f.Contractors)
	writeArray(w, "persons", f.Persons)
	writeArray(w, "work_periods", f.WorkPeriods)
	writeArray(w, "on_site", f.OnSite)
	writeArray(w, "corrections", f.Corrections)
	buf.Truncate(buf.Len() - 2) // the last field's ",\n"
	buf.WriteString("\n}\n")
	if w.err != nil {
		return nil, fmt.Errorf("export: json: %w", w.err)
	}
	return buf.Bytes(), nil
}

type jsonWriter struct {
	buf *bytes.Buffer
	enc *json.Encoder
	err error
}

// value writes v compact, without the encoder's newline.
func (w *jsonWriter) value(v any) {
	if w.err != nil {
		return
	}
	if w.err = w.enc.Encode(v); w.err == nil {
		w.buf.Truncate(w.buf.Len() - 1)
	}
}

func (w *jsonWriter) field(key string, v any) {
	w.buf.WriteString("  ")
	w.value(key)
	w.buf.WriteString(": ")
	w.value(v)
	w.buf.WriteString(",\n")
}

func writeArray[T any](w *jsonWriter, key string, items []T) {
	w.buf.WriteString("  ")
	w.value(key)
	if len(items) == 0 {
		w.buf.WriteString(": [],\n")
		return
	}
	w.buf.WriteString(": [\n")
	for i := range items {
		w.buf.WriteString("    ")
		w.value(&items[i])
		if i < len(items)-1 {
			w.buf.WriteByte(',')
		}
		w.buf.WriteByte('\n')
	}
	w.buf.WriteString("  ],\n")
}

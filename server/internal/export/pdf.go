package export

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"unicode"

	"github.com/go-pdf/fpdf"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/unicode/norm"
)

// The PDF uses the core Helvetica font, which every PDF reader has, so the
// file embeds no font and stays small; its text is Windows-1252 (cp1252),
// which holds Swedish and the other Western European letters. A letter
// outside it (Polish ł, Romanian ș, ...) is printed as its base letter
// (l, s): names are still recognisable on paper, and the CSV and JSON files
// carry them exactly. This file is the only one that imports fpdf.

// Page geometry, in millimetres (A4 portrait).
const (
	pdfMargin   = 15.0
	pdfWidth    = 210.0 - 2*pdfMargin
	pdfLine     = 4.2 // line height of table text
	pdfBodySize = 8.5
	pdfFont     = "Helvetica"
)

type pdfDoc struct {
	f  *fpdf.Fpdf
	l  *Ledger
	tr func(string) string
}

func renderPDF(l *Ledger) ([]byte, error) {
	f := fpdf.New("P", "mm", "A4", "")
	d := &pdfDoc{f: f, l: l, tr: f.UnicodeTranslatorFromDescriptor("")}
	f.SetMargins(pdfMargin, pdfMargin, pdfMargin)
	f.SetAutoPageBreak(true, pdfMargin+5)
	f.AliasNbPages("{nb}")
	f.SetTitle("Personalliggare "+l.Site.Ident, true)
	f.SetSubject(l.Site.Name, true)
	f.SetCreator("Liggare", true)
	f.SetLang("sv-SE")
	f.SetCreationDate(l.GeneratedAt)
	f.SetModificationDate(l.GeneratedAt)
	f.SetCatalogSort(true)
	f.SetHeaderFuncMode(d.header, true)
	f.SetFooterFunc(d.footer)
	f.AddPage()

	d.titleBlock()
	d.onSite()
	d.periods()
	d.corrections()
	d.legend()

	var buf bytes.Buffer
	if err := f.Output(&buf); err != nil {
		return nil, fmt.Errorf("export: pdf: %w", err)
	}
	return buf.Bytes(), nil
}

// t makes text printable in the core font.
func (d *pdfDoc) t(s string) string { return d.tr(foldCP1252(s)) }

func (d *pdfDoc) header() {
	f, l := d.f, d.l
	f.SetFont(pdfFont, "B", 9)
	f.CellFormat(pdfWidth*0.6, 5, d.t("Personalliggare – "+l.Site.Name+" ("+l.Site.Ident+")"), "", 0, "L", false, 0, "")
	f.SetFont(pdfFont, "", 9)
	f.CellFormat(0, 5, d.t("Tidpunkt: "+l.short(l.Moment)), "", 1, "R", false, 0, "")
	f.SetDrawColor(120, 120, 120)
	f.Line(pdfMargin, f.GetY()+1, pdfMargin+pdfWidth, f.GetY()+1)
	f.Ln(4)
}

func (d *pdfDoc) footer() {
	f := d.f
	f.SetY(-pdfMargin)
	f.SetFont(pdfFont, "", 8)
	f.CellFormat(pdfWidth/2, 5, d.t("Utskriven "+d.l.Local(d.l.GeneratedAt)+" · Liggare"), "", 0, "L", false, 0, "")
	f.CellFormat(0, 5, d.t("Sida "+strconv.Itoa(f.PageNo())+" av {nb}"), "", 0, "R", false, 0, "")
}

func (d *pdfDoc) heading(s string) {
	f := d.f
	if f.GetY() > 297-pdfMargin-30 {
		f.AddPage()
	}
	f.Ln(3)
	f.SetFont(pdfFont, "B", 12)
	f.CellFormat(0, 7, d.t(s), "", 1, "L", false, 0, "")
	f.Ln(1)
}

func (d *pdfDoc) para(s string) {
	d.f.SetFont(pdfFont, "", pdfBodySize+0.5)
	d.f.MultiCell(0, 4.6, d.t(s), "", "L", false)
}

func (d *pdfDoc) titleBlock() {
	f, l := d.f, d.l
	f.SetFont(pdfFont, "B", 20)
	f.CellFormat(0, 10, d.t("Personalliggare"), "", 1, "L", false, 0, "")
	f.SetFont(pdfFont, "", 10)
	f.CellFormat(0, 5, d.t("Den samlade personalliggaren för byggarbetsplatsen (SFL 39 kap. 11 a §)"), "", 1, "L", false, 0, "")
	f.Ln(3)
	bh := l.Site.ByggherreName
	if l.Site.ByggherreOrgNumber != "" {
		bh += ", org.nr " + l.Site.ByggherreOrgNumber
	}
	owner, _ := l.Contractor(l.Site.OwnerOrgID)
	kv := [][2]string{
		{"Identifikationsnummer", l.Site.Ident},
		{"Arbetsplats", l.Site.Name},
		{"Adress", l.Site.Address},
		{"Byggherre", bh},
		{"Liggaren förs av", strings.TrimSpace(owner.Name + ", org.nr " + owner.OrgNumber)},
		{"Personalliggaren", l.describeMoment()},
		{"Urval", l.describeFilter()},
		{"Utskriven", l.Local(l.GeneratedAt)},
		{"Tider", "lokal tid, " + l.Location.String()},
	}
	for _, row := range kv {
		f.SetFont(pdfFont, "B", 9.5)
		f.CellFormat(45, 5.2, d.t(row[0]+":"), "", 0, "L", false, 0, "")
		f.SetFont(pdfFont, "", 9.5)
		f.MultiCell(0, 5.2, d.t(row[1]), "", "L", false)
	}
	f.Ln(2)
	people := "personer"
	if len(l.OnSite) == 1 {
		people = "person"
	}
	d.para(fmt.Sprintf("Närvarande vid tidpunkten: %d %s. Arbetspass: %d. Företag: %d. Rättelser: %d.",
		len(l.OnSite), people, len(l.Periods), len(l.Contractors), len(l.Corrections)))
}

func (d *pdfDoc) onSite() {
	l := d.l
	d.heading("Närvarande " + l.short(l.Moment))
	if len(l.OnSite) == 0 {
		d.para("Ingen är registrerad som närvarande vid tidpunkten.")
		return
	}
	tb := d.table([]float64{52, 30, 68, 30}, []string{"Namn", "Personnummer", "Företag", "Incheckad"})
	for _, o := range l.OnSite {
		p, _ := l.Person(o.PersonID)
		c, _ := l.Contractor(o.OrgID)
		tb.row(p.Name, p.DisplayID(), c.Name+" ("+c.OrgNumber+")", l.short(o.Since))
	}
}

func (d *pdfDoc) periods() {
	l := d.l
	d.heading("Arbetspass per företag")
	byOrg := make(map[int64][]Period)
	for _, p := range l.Periods {
		byOrg[p.OrgID] = append(byOrg[p.OrgID], p)
	}
	persons := make(map[int64]Person, len(l.Persons))
	for _, p := range l.Persons {
		persons[p.PersonID] = p
	}
	for _, c := range l.Contractors {
		f := d.f
		if f.GetY() > 297-pdfMargin-35 {
			f.AddPage()
		}
		f.Ln(2)
		f.SetFont(pdfFont, "B", 10.5)
		f.MultiCell(0, 5.5, d.t(c.Name+" – org.nr "+c.OrgNumber), "", "L", false)
		f.SetFont(pdfFont, "", pdfBodySize+0.5)
		var role string
		if c.SiteOwner {
			role = "Har byggherrens ansvar för liggaren."
		} else if chain := l.HiredByChain(c.OrgID); len(chain) > 0 {
			role = "Anlitad av " + chain[0].Name + " (" + chain[0].OrgNumber + ")."
		}
		if c.RemovedAt != nil {
			role += " Lämnade arbetsplatsen " + l.short(*c.RemovedAt) + "."
		}
		if role = strings.TrimSpace(role); role != "" {
			f.MultiCell(0, 4.6, d.t(role), "", "L", false)
		}
		f.Ln(1)
		ps := byOrg[c.OrgID]
		if len(ps) == 0 {
			d.para("Inga arbetspass i urvalet.")
			continue
		}
		tb := d.table([]float64{44, 27, 29, 29, 51}, []string{"Namn", "Personnummer", "Start", "Slut", "Anmärkning"})
		for _, p := range ps {
			person := persons[p.PersonID]
			tb.row(person.Name, person.DisplayID(), l.short(p.Start), l.short(p.End), strings.Join(l.Flags(p), ", "))
		}
	}
}

func (d *pdfDoc) corrections() {
	l := d.l
	d.heading("Rättelser")
	if len(l.Corrections) == 0 {
		d.para("Inga rättelser i urvalet.")
		return
	}
	d.para("Rättelser läggs till; det ursprungliga står kvar. Varje rättelse visar vem som gjorde den, när och varför.")
	tb := d.table([]float64{11, 28, 32, 30, 30, 29, 20}, []string{"Nr", "Gjord", "Typ", "Person", "Avser", "Orsak", "Av"})
	for _, c := range l.Corrections {
		var who string
		if p, ok := l.Person(c.PersonID); ok {
			who = p.Name
		}
		var about string
		switch {
		case !c.Start.IsZero() && !c.End.IsZero():
			about = l.short(c.Start) + " – " + l.short(c.End)
		case !c.End.IsZero():
			about = "utcheckning " + l.short(c.End)
		case c.Withdraws != 0:
			about = "rättelse nr " + strconv.FormatInt(c.Withdraws, 10)
		case c.Tap != "":
			about = "stämpling " + strings.TrimPrefix(c.Tap, "tap:")
		case c.CardIdent != "":
			about = "kort " + c.CardIdent
		}
		kind := CorrectionKind(c.Kind)
		if c.WithdrawnBy != 0 {
			kind += " (återkallad, nr " + strconv.FormatInt(c.WithdrawnBy, 10) + ")"
		}
		tb.row(strconv.FormatInt(c.ID, 10), l.short(c.CreatedAt), kind, who, about, c.Reason, c.Author)
	}
}

func (d *pdfDoc) legend() {
	d.heading("Förklaringar")
	for _, s := range []string{
		"Närvarande: personer med ett påbörjat arbetspass utan utcheckning vid tidpunkten, som inte är flaggat.",
		"Manuell start / manuellt slut: tiden är inlagd i efterhand av en person, med orsak (se Rättelser).",
		"Utcheckning saknas: personen checkade in igen utan att checka ut, eller passet har varit öppet längre än tillåtet.",
		"Incheckning saknas: en utcheckning utan föregående incheckning.",
		"Pågår: passet är påbörjat och ännu inte avslutat.",
		"Tidpunkten anger hur personalliggaren var känd vid det ögonblicket; senare inkomna stämplingar och rättelser ingår inte.",
	} {
		d.para("• " + s)
	}
}

// table draws rows with wrapped cells and repeats its header on each new
// page.
type pdfTable struct {
	d      *pdfDoc
	widths []float64
	head   []string
}

func (d *pdfDoc) table(widths []float64, head []string) *pdfTable {
	tb := &pdfTable{d: d, widths: widths, head: head}
	tb.drawHead()
	return tb
}

func (tb *pdfTable) drawHead() {
	f := tb.d.f
	f.SetFont(pdfFont, "B", pdfBodySize)
	f.SetFillColor(225, 225, 225)
	tb.draw(tb.head, true)
	f.SetFont(pdfFont, "", pdfBodySize)
}

func (tb *pdfTable) row(cells ...string) {
	f := tb.d.f
	f.SetFont(pdfFont, "", pdfBodySize)
	if f.GetY()+tb.height(cells) > 297-pdfMargin-5 {
		f.AddPage()
		tb.drawHead()
	}
	tb.draw(cells, false)
}

func (tb *pdfTable) height(cells []string) float64 {
	n := 1
	for i, c := range cells {
		n = max(n, len(tb.d.f.SplitLines([]byte(tb.d.t(c)), tb.widths[i])))
	}
	return float64(n)*pdfLine + 1
}

func (tb *pdfTable) draw(cells []string, fill bool) {
	f := tb.d.f
	h := tb.height(cells)
	x, y := f.GetX(), f.GetY()
	f.SetDrawColor(160, 160, 160)
	for i, c := range cells {
		w := tb.widths[i]
		style := "D"
		if fill {
			style = "FD"
		}
		f.Rect(x, y, w, h, style)
		f.SetXY(x, y+0.5)
		f.MultiCell(w, pdfLine, tb.d.t(c), "", "L", false)
		x += w
	}
	f.SetXY(pdfMargin, y+h)
}

// foldCP1252 replaces each letter Windows-1252 lacks by its base letter
// (ł → l, ș → s), or "?" when it has none.
func foldCP1252(s string) string {
	ok := true
	for _, r := range s {
		if !inCP1252(r) {
			ok = false
			break
		}
	}
	if ok {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		switch {
		case inCP1252(r):
			b.WriteRune(r)
		case baseLetters[r] != "":
			b.WriteString(baseLetters[r])
		default:
			base := false
			for _, d := range norm.NFD.String(string(r)) {
				if unicode.Is(unicode.Mn, d) {
					continue
				}
				if inCP1252(d) {
					b.WriteRune(d)
					base = true
				}
			}
			if !base {
				b.WriteByte('?')
			}
		}
	}
	return b.String()
}

func inCP1252(r rune) bool {
	if r < 0x80 {
		return true
	}
	_, ok := charmap.Windows1252.EncodeRune(r)
	return ok
}

// baseLetters are letters without a Unicode decomposition to a base letter.
var baseLetters = map[rune]string{
	'ł': "l", 'Ł': "L", 'đ': "d", 'Đ': "D", 'ħ': "h", 'Ħ': "H", 'ı': "i", 'ŧ': "t", 'Ŧ': "T",
	'ŀ': "l", 'Ŀ': "L", 'ĸ': "k", 'ŉ': "n",
}

package export

import (
	"bytes"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite golden files")

var stockholm = mustLoc("Europe/Stockholm")

func mustLoc(name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		panic(err)
	}
	return loc
}

func at(s string) time.Time {
	t, err := time.ParseInLocation("2006-01-02 15:04", s, stockholm)
	if err != nil {
		panic(err)
	}
	return t
}

// sampleLedger is a small site with everything a file must show: Swedish
// letters, a foreign worker, a subcontractor hired by another, a manual
// period, a missing check-out, an overdue and an open period, corrections
// (one withdrawn), and a name that needs quoting in CSV.
func sampleLedger() *Ledger {
	removed := at("2026-11-19 18:00")
	return &Ledger{
		Site: Site{ID: 1, Ident: "ABCDEFGHIJ123", Name: "Kvarteret Ängen", Address: "Storgatan 1, 111 22 Stockholm",
			TimeZone: "Europe/Stockholm", ByggherreName: "Fastighets AB Älven", ByggherreOrgNumber: "556036-0793", OwnerOrgID: 1},
		Moment: at("2026-11-20 12:00"), GeneratedAt: at("2026-11-20 12:00").Add(3 * time.Second),
		Location: stockholm, MaxOpen: 16 * time.Hour,
		Contractors: []Contractor{
			{OrgID: 1, Name: "Bygg & Betong AB", OrgNumber: "556036-0793", SiteOwner: true},
			{OrgID: 2, Name: "Elfirma Öst AB", OrgNumber: "556703-7485", HiredBy: 1, AddedAt: at("2026-11-01 07:00")},
			{OrgID: 3, Name: "Rör; \"Special\" AB", OrgNumber: "556677-8899", HiredBy: 2, AddedAt: at("2026-11-02 07:00"), RemovedAt: &removed},
		},
		Persons: []Person{
			{PersonID: 10, OrgID: 1, Name: "Åsa Öberg", IDKind: "personnummer", IDNumber: "198112189876", IDMasked: "19811218-****"},
			{PersonID: 11, OrgID: 1, Name: "=Ärlig Ström", IDKind: "samordningsnummer", IDNumber: "199001722389", IDMasked: "19900172-****"},
			{PersonID: 12, OrgID: 2, Name: "Łukasz Żółć", IDKind: "foreign", IDCountry: "PL", IDNumber: "PL:ABC123456", IDMasked: "PL ******3456"},
			{PersonID: 13, OrgID: 3, Name: "René Ångström", IDKind: "personnummer", IDMasked: "19700101-****", Anonymised: true},
		},
		Periods: []Period{
			{PeriodID: 100, PersonID: 10, OrgID: 1, Start: at("2026-11-19 07:00"), End: at("2026-11-19 16:00"),
				StartRef: "tap:K1/7/1", EndRef: "tap:K1/7/2", RecordedFrom: at("2026-11-19 16:00")},
			{PeriodID: 101, PersonID: 10, OrgID: 1, Start: at("2026-11-20 06:58"), StartRef: "tap:K1/7/3", RecordedFrom: at("2026-11-20 06:58")},
			{PeriodID: 102, PersonID: 11, OrgID: 1, Start: at("2026-11-20 07:00"), End: at("2026-11-20 11:00"), StartManual: true,
				EndManual: true, StartRef: "correction:1", EndRef: "correction:1", RecordedFrom: at("2026-11-20 11:30")},
			{PeriodID: 103, PersonID: 12, OrgID: 2, Start: at("2026-11-18 07:00"), MissingCheckout: true, StartRef: "tap:K1/7/0",
				RecordedFrom: at("2026-11-19 07:05")},
			{PeriodID: 104, PersonID: 12, OrgID: 2, Start: at("2026-11-19 07:05"), Overdue: true, StartRef: "tap:K1/7/4",
				RecordedFrom: at("2026-11-19 07:05")},
			{PeriodID: 105, PersonID: 13, OrgID: 3, End: at("2026-11-19 15:00"), MissingCheckin: true, EndRef: "tap:K2/9/1",
				RecordedFrom: at("2026-11-19 15:00")},
		},
		OnSite: []Presence{{PersonID: 10, OrgID: 1, Since: at("2026-11-20 06:58")}},
		Corrections: []Correction{
			{ID: 1, Kind: "manual_period", PersonID: 11, Start: at("2026-11-20 07:00"), End: at("2026-11-20 11:00"),
				Reason: "glömt kort", Author: "user:3", CreatedAt: at("2026-11-20 11:30")},
			{ID: 2, Kind: "void_tap", Tap: "tap:K1/7/9", Reason: "dubbelblipp", Author: "user:3", CreatedAt: at("2026-11-20 11:31"), WithdrawnBy: 3},
			{ID: 3, Kind: "withdraw", Withdraws: 2, Reason: "fel stämpling", Author: "user:4", CreatedAt: at("2026-11-20 11:40")},
		},
	}
}

func TestJSONGolden(t *testing.T) {
	got, err := Render(sampleLedger(), FormatJSON)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("testdata", "v1.golden.json")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("JSON (-golden +got), a schema change? Rewrite with -update:\n%s", diff)
	}
}

func TestCSVBytes(t *testing.T) {
	l := sampleLedger()
	l.Periods = l.Periods[:4] // Åsa twice, Ärlig (manual), Łukasz (missing check-out)
	got, err := Render(l, FormatCSV)
	if err != nil {
		t.Fatal(err)
	}
	want := "\xef\xbb\xbf" +
		"Identifikationsnummer;Arbetsplats;Företag;Organisationsnummer;Namn;Personnummer;Start;Slut;Manuell start;Manuellt slut;Incheckning saknas;Utcheckning saknas;Pågår\r\n" +
		"ABCDEFGHIJ123;Kvarteret Ängen;Bygg & Betong AB;556036-0793;Åsa Öberg;19811218-9876;2026-11-19 07:00:00;2026-11-19 16:00:00;nej;nej;nej;nej;nej\r\n" +
		"ABCDEFGHIJ123;Kvarteret Ängen;Bygg & Betong AB;556036-0793;Åsa Öberg;19811218-9876;2026-11-20 06:58:00;;nej;nej;nej;nej;ja\r\n" +
		"ABCDEFGHIJ123;Kvarteret Ängen;Bygg & Betong AB;556036-0793;'=Ärlig Ström;19900172-2389;2026-11-20 07:00:00;2026-11-20 11:00:00;ja;ja;nej;nej;nej\r\n" +
		"ABCDEFGHIJ123;Kvarteret Ängen;Elfirma Öst AB;556703-7485;Łukasz Żółć;PL ABC123456;2026-11-18 07:00:00;;nej;nej;nej;ja;nej\r\n"
	if diff := cmp.Diff(want, string(got)); diff != "" {
		t.Errorf("CSV (-want +got):\n%s", diff)
	}

	// A field holding the separator or a quote is quoted, quotes doubled.
	l = sampleLedger()
	l.Periods = l.Periods[5:]
	got, err = Render(l, FormatCSV)
	if err != nil {
		t.Fatal(err)
	}
	wantRow := "ABCDEFGHIJ123;Kvarteret Ängen;\"Rör; \"\"Special\"\" AB\";556677-8899;René Ångström;anonymiserad;;2026-11-19 15:00:00;nej;nej;ja;nej;nej\r\n"
	if !strings.HasSuffix(string(got), wantRow) {
		t.Errorf("CSV = %q, want it to end with %q", got, wantRow)
	}
}

// pdfText returns the text of a PDF by pdftotext (poppler-utils).
func pdfText(t *testing.T, pdf []byte) string {
	t.Helper()
	bin, err := exec.LookPath("pdftotext")
	if err != nil {
		if os.Getenv("LIGGARE_SKIP_PDFTOTEXT") == "1" {
			t.Skip("pdftotext not installed and LIGGARE_SKIP_PDFTOTEXT=1")
		}
		t.Fatal("pdftotext not found: install poppler-utils, or set LIGGARE_SKIP_PDFTOTEXT=1 to skip")
	}
	path := filepath.Join(t.TempDir(), "ledger.pdf")
	if err := os.WriteFile(path, pdf, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "-enc", "UTF-8", "-layout", path, "-").Output()
	if err != nil {
		t.Fatalf("pdftotext: %v", err)
	}
	return string(out)
}

func TestPDFText(t *testing.T) {
	l := sampleLedger()
	// Enough periods for several pages, to see the page numbers and the
	// table header repeated.
	for i := range 150 {
		start := at("2026-11-01 07:00").Add(time.Duration(i) * time.Hour)
		l.Periods = append(l.Periods, Period{PeriodID: int64(200 + i), PersonID: 10, OrgID: 1, Start: start, End: start.Add(30 * time.Minute)})
	}
	l.sort()
	body, err := Render(l, FormatPDF)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(body, []byte("%PDF-")) {
		t.Fatalf("Render(pdf) = %q..., want a PDF", body[:min(len(body), 20)])
	}
	text := pdfText(t, body)
	pages := regexp.MustCompile(`Sida (\d+) av (\d+)`).FindAllStringSubmatch(text, -1)
	if len(pages) < 3 {
		t.Fatalf("PDF has %d page footers, want at least 3; text:\n%s", len(pages), text)
	}
	for i, m := range pages {
		if m[1] != strconv.Itoa(i+1) || m[2] != strconv.Itoa(len(pages)) {
			t.Errorf("page %d footer = %q, want Sida %d av %d", i+1, m[0], i+1, len(pages))
		}
	}
	for _, want := range []string{
		"Personalliggare",
		"ABCDEFGHIJ123", "Kvarteret Ängen", "Storgatan 1, 111 22 Stockholm",
		"Fastighets AB Älven, org.nr 556036-0793",
		"Åsa Öberg", "19811218-9876", // the personnummer in full
		"19900172-2389", // a samordningsnummer
		"René Ångström", "anonymiserad",
		"Lukasz Zólc", "PL ABC123456", // ł, ż, ć have no cp1252 form: base letters
		"Elfirma Öst AB – org.nr 556703-7485", "Anlitad av Bygg & Betong AB (556036-0793)",
		"Anlitad av Elfirma Öst AB",
		"manuell start, manuellt slut", "utcheckning saknas", "incheckning saknas", "pågår",
		"utcheckning saknas (över 16 h)",
		"Närvarande 2026-11-20 12:00",
		"2026-11-19 07:00", "2026-11-19 16:00",
		"Rättelser", "glömt kort", "Manuellt arbetspass", "återkallad, nr 3",
		"Utskriven 2026-11-20 12:00:03",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("PDF text lacks %q", want)
		}
	}
	if strings.Count(text, "Personnummer") < 3 {
		t.Errorf("table header printed %d times, want it repeated on new pages", strings.Count(text, "Personnummer"))
	}
}

func TestFoldCP1252(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"Åsa Öberg", "Åsa Öberg"},
		{"René Müller", "René Müller"},
		{"Łukasz Żółć", "Lukasz Zólc"},
		{"Ștefan Băsescu", "Stefan Basescu"},
		{"Đorđe", "Dorde"},
		{"李", "?"},
		{"– …", "– …"},
	} {
		if got := foldCP1252(tc.in); got != tc.want {
			t.Errorf("foldCP1252(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestFilenameHasNoPersonalData(t *testing.T) {
	l := sampleLedger()
	l.Filter.PersonID = 10
	for _, f := range Formats {
		name := l.Filename(f)
		if want := "personalliggare-ABCDEFGHIJ123-20261120-1200." + string(f); name != want {
			t.Errorf("Filename(%s) = %q, want %q", f, name, want)
		}
	}
}

func TestParseFormat(t *testing.T) {
	for _, s := range []string{"pdf", "CSV", " json "} {
		if _, err := ParseFormat(s); err != nil {
			t.Errorf("ParseFormat(%q) = %v", s, err)
		}
	}
	if _, err := ParseFormat("xml"); err == nil {
		t.Error("ParseFormat(xml) = nil error, want one")
	}
}

package registry

import (
	"bytes"
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/liggare/liggare/server/internal/idnum"
	"github.com/liggare/liggare/server/internal/pgtest"
	"github.com/liggare/liggare/server/internal/pii"
)

type world struct {
	s          *Store
	pool       *pgxpool.Pool
	owner, sub int64
	other      int64
	site       int64
}

func newWorld(t *testing.T) *world {
	t.Helper()
	pool := pgtest.New(t)
	s := NewStore(pool, pii.NewTestKeys())
	s.now = func() time.Time { return time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC) }
	ctx := context.Background()
	w := &world{s: s, pool: pool}
	var err error
	must := func(id int64, err error) int64 {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	w.owner = must(s.CreateOrganisation(ctx, NewOrganisation{Name: "Bygg AB", OrgNumber: "556036-0793"}))
	w.sub = must(s.CreateOrganisation(ctx, NewOrganisation{Name: "El AB", OrgNumber: "556703-7485"}))
	w.other = must(s.CreateOrganisation(ctx, NewOrganisation{Name: "Annat AB", OrgNumber: "556677-8899"}))
	w.site = must(s.CreateSite(ctx, w.owner, NewSite{Ident: "abcdefghij123", Name: "Kvarteret Eken", Address: "Storgatan 1",
		ByggherreName: "Fastighets AB", ByggherreOrgNumber: "556036-0793"}))
	if err = s.AddContractor(ctx, w.owner, w.site, w.sub, 0); err != nil {
		t.Fatal(err)
	}
	return w
}

func TestPersonNumberEncryptedAndFoundByIndex(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	id, err := w.s.AddPerson(ctx, w.sub, NewPerson{Name: "Bertil Ström", IDNumber: "811218-9876"})
	if err != nil {
		t.Fatal(err)
	}
	// Stored encrypted: no form of the number appears in the row.
	var enc []byte
	var masked string
	if err := w.pool.QueryRow(ctx, `SELECT id_enc, id_masked FROM persons WHERE person_id = $1`, id).Scan(&enc, &masked); err != nil {
		t.Fatal(err)
	}
	for _, form := range []string{"8112189876", "198112189876", "9876"} {
		if bytes.Contains(enc, []byte(form)) || strings.Contains(masked, form) {
			t.Errorf("stored row contains %q", form)
		}
	}
	if masked != "19811218-****" {
		t.Errorf("masked = %q", masked)
	}
	// Found by the number in any accepted form; the same number again is
	// the same person.
	p, err := w.s.FindPerson(ctx, w.sub, "19811218-9876", "")
	if err != nil || p.PersonID != id {
		t.Fatalf("FindPerson = %+v, %v", p, err)
	}
	again, err := w.s.AddPerson(ctx, w.sub, NewPerson{Name: "Bertil Ström", IDNumber: "198112189876"})
	if err != nil || again != id {
		t.Errorf("AddPerson again = %d, %v; want %d", again, err, id)
	}
	// The full number: for the employer, and for the owner of a site the
	// employer works on; not for anyone else.
	for _, tc := range []struct {
		viewer int64
		ok     bool
	}{{w.sub, true}, {w.owner, true}, {w.other, false}} {
		got, err := w.s.IdentityNumber(ctx, tc.viewer, id)
		if tc.ok && (err != nil || got != "198112189876") {
			t.Errorf("IdentityNumber by %d = %q, %v", tc.viewer, got, err)
		}
		if !tc.ok && !errors.Is(err, ErrNotFound) {
			t.Errorf("IdentityNumber by an outsider = %q, %v; want ErrNotFound", got, err)
		}
	}
	if _, err := w.s.FindPerson(ctx, w.other, "811218-9876", ""); !errors.Is(err, ErrNotFound) {
		t.Errorf("another tenant found the person: %v", err)
	}
	// A ciphertext moved to another row does not open.
	other, _ := w.s.AddPerson(ctx, w.sub, NewPerson{Name: "Cecilia", IDNumber: "19121212-1212"})
	if _, err := w.pool.Exec(ctx, `UPDATE persons SET id_enc = $1 WHERE person_id = $2`, enc, other); err != nil {
		t.Fatal(err)
	}
	if _, err := w.s.IdentityNumber(ctx, w.sub, other); err == nil {
		t.Error("a ciphertext copied to another row opened")
	}
}

func TestCardsAndTerminals(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	bertil, _ := w.s.AddPerson(ctx, w.sub, NewPerson{Name: "Bertil", IDNumber: "811218-9876"})
	cecilia, _ := w.s.AddPerson(ctx, w.sub, NewPerson{Name: "Cecilia", IDNumber: "19121212-1212"})
	if _, err := w.s.AddCard(ctx, w.sub, NewCard{CardNumber: "ab-0123-456789", ChipUIDs: []string{"04:a1:b2:c3:d4:e5:f6"}, PersonID: bertil}); err != nil {
		t.Fatal(err)
	}
	var num, chip string
	w.pool.QueryRow(ctx, `SELECT c.card_number, ch.chip_uid FROM cards c JOIN card_chips ch USING (card_id)`).Scan(&num, &chip)
	if num != "AB0123456789" || chip != "04A1B2C3D4E5F6" {
		t.Errorf("stored card %q chip %q, want canonical forms", num, chip)
	}
	if _, err := w.s.AddCard(ctx, w.sub, NewCard{CardNumber: "AB0123456789", PersonID: cecilia}); !errors.Is(err, ErrExists) {
		t.Errorf("the same card for another person: %v, want ErrExists", err)
	}
	if _, err := w.s.AddCard(ctx, w.other, NewCard{CardNumber: "CC0000000001", PersonID: bertil}); !errors.Is(err, ErrNotFound) {
		t.Errorf("a card for another tenant's worker: %v, want ErrNotFound", err)
	}
	if _, err := w.pool.Exec(ctx, `INSERT INTO terminals (terminal_id) VALUES ('K1')`); err != nil {
		t.Fatal(err)
	}
	if err := w.s.AssignTerminal(ctx, w.other, "K1", w.site, "in", time.Time{}, "x"); !errors.Is(err, ErrNotFound) {
		t.Errorf("assigning a terminal to another tenant's site: %v", err)
	}
	if err := w.s.AssignTerminal(ctx, w.owner, "K1", w.site, "sideways", time.Time{}, "x"); !errors.Is(err, ErrInvalid) {
		t.Errorf("bad direction: %v", err)
	}
	if err := w.s.AssignTerminal(ctx, w.owner, "K1", w.site, "toggle", time.Time{}, "x"); err != nil {
		t.Fatal(err)
	}
	if err := w.s.AssignTerminal(ctx, w.owner, "NOPE", w.site, "toggle", time.Time{}, "x"); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown terminal: %v", err)
	}
}

func TestCreateRefusals(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	if _, err := w.s.CreateSite(ctx, w.owner, NewSite{Ident: "SHORT", Name: "x", ByggherreOrgNumber: "556036-0793"}); !errors.Is(err, ErrInvalid) {
		t.Errorf("bad site id: %v", err)
	}
	if _, err := w.s.CreateSite(ctx, w.sub, NewSite{Ident: "ABCDEFGHIJ123", Name: "x", ByggherreOrgNumber: "556036-0793"}); !errors.Is(err, ErrExists) {
		t.Errorf("site registered twice: %v", err)
	}
	_, err := w.s.CreateOrganisation(ctx, NewOrganisation{Name: "x", OrgNumber: "556036-0794"})
	var ie *InputError
	if !errors.Is(err, ErrInvalid) || !errors.Is(err, idnum.ErrCheckDigit) || !errors.As(err, &ie) || ie.Field != FieldOrgNumber {
		t.Errorf("bad check digit: %v, want an InputError on %s matching ErrInvalid and idnum.ErrCheckDigit", err, FieldOrgNumber)
	}
	_, err = w.s.CreateSite(ctx, w.owner, NewSite{Ident: "ABCDEFGHIJ124", Name: " ", ByggherreOrgNumber: "556036-0793"})
	if !errors.As(err, &ie) || ie.Field != FieldSiteName || ie.Err != nil {
		t.Errorf("empty site name: %v, want an InputError on %s", err, FieldSiteName)
	}
	if err := w.s.AddContractor(ctx, w.sub, w.site, w.other, 0); !errors.Is(err, ErrNotFound) {
		t.Errorf("a contractor adds to the owner's site: %v", err)
	}
	if err := w.s.AddContractor(ctx, w.owner, w.site, w.other, w.sub); err != nil {
		t.Errorf("a sub-subcontractor hired by the subcontractor: %v", err)
	}
	var hiredBy int64
	w.pool.QueryRow(ctx, `SELECT hired_by_org_id FROM site_contractors WHERE org_id = $1`, w.other).Scan(&hiredBy)
	if hiredBy != w.sub {
		t.Errorf("hired_by = %d, want the subcontractor %d", hiredBy, w.sub)
	}
}

func TestRemoveContractor(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	if err := w.s.AddContractor(ctx, w.owner, w.site, w.other, w.sub); err != nil {
		t.Fatal(err)
	}
	removed := func(org int64) bool {
		return count(t, w, `SELECT count(*) FROM site_contractors WHERE org_id = `+strconv.FormatInt(org, 10)+` AND removed_at IS NOT NULL`) == 1
	}
	if err := w.s.RemoveContractor(ctx, w.sub, w.site, w.other); !errors.Is(err, ErrNotFound) {
		t.Errorf("a contractor removes from the owner's site: %v, want ErrNotFound", err)
	}
	if err := w.s.RemoveContractor(ctx, w.owner, w.site, w.sub); !errors.Is(err, ErrHiredOthers) || removed(w.sub) {
		t.Errorf("removing the hirer of a contractor still on the site: %v, want ErrHiredOthers", err)
	}
	if err := w.s.RemoveContractor(ctx, w.owner, w.site, w.other); err != nil || !removed(w.other) {
		t.Fatalf("remove the sub-subcontractor: %v", err)
	}
	if err := w.s.RemoveContractor(ctx, w.owner, w.site, w.other); !errors.Is(err, ErrNotFound) {
		t.Errorf("removed twice: %v, want ErrNotFound", err)
	}
	if err := w.s.RemoveContractor(ctx, w.owner, w.site, w.sub); err != nil || !removed(w.sub) {
		t.Fatalf("remove the subcontractor once it hires nobody on the site: %v", err)
	}
	if err := w.s.AddContractor(ctx, w.owner, w.site, w.other, w.sub); !errors.Is(err, ErrInvalid) {
		t.Errorf("a removed contractor as hirer: %v, want ErrInvalid", err)
	}
	if err := w.s.AddContractor(ctx, w.owner, w.site, w.sub, 0); err != nil || removed(w.sub) {
		t.Errorf("adding a removed contractor again: %v, want it back on the site", err)
	}
}

// TestRemoveContractorRace: a contractor hired while its hirer is being
// removed either makes the removal fail or fails itself; the chain never
// names a removed hirer of a contractor still on the site.
func TestRemoveContractorRace(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	for i := range 50 {
		if _, err := w.pool.Exec(ctx, `DELETE FROM site_contractors WHERE org_id = $1`, w.other); err != nil {
			t.Fatal(err)
		}
		if _, err := w.pool.Exec(ctx, `UPDATE site_contractors SET removed_at = NULL WHERE org_id = $1`, w.sub); err != nil {
			t.Fatal(err)
		}
		errs := make(chan error, 2)
		go func() { errs <- w.s.AddContractor(ctx, w.owner, w.site, w.other, w.sub) }()
		go func() { errs <- w.s.RemoveContractor(ctx, w.owner, w.site, w.sub) }()
		for range 2 {
			if err := <-errs; err != nil && !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrHiredOthers) {
				t.Fatalf("round %d: %v", i, err)
			}
		}
		if n := count(t, w, `SELECT count(*) FROM site_contractors c JOIN site_contractors h
			ON h.site_id = c.site_id AND h.org_id = c.hired_by_org_id
			WHERE c.removed_at IS NULL AND h.removed_at IS NOT NULL`); n != 0 {
			t.Fatalf("round %d: %d contractors on the site hired by a removed one", i, n)
		}
	}
}

func TestImportCSV(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	good := "\xef\xbb\xbfNamn;Personnummer;Kortnummer;Chip;Giltig till\n" +
		"Åsa Öberg;811218-9876;AB0123456789;04A1B2C3D4E5F6;2027-06-30\n" +
		"Cecilia Ek;19121212-1212;;;\n" +
		"\n" +
		"Pedro Silva;AB123456;CD0000000001;;\n"
	// Pedro has a foreign number: the file needs a country column for him.
	bad := good
	res, err := w.s.ImportCSV(ctx, w.sub, strings.NewReader(bad))
	var ie *ImportError
	if !errors.As(err, &ie) || len(ie.Lines) != 1 || ie.Lines[0].Line != 5 {
		t.Fatalf("ImportCSV = %+v, %v; want one error on line 5", res, err)
	}
	if strings.Contains(err.Error(), "8112189876") {
		t.Errorf("error text contains an identity number: %v", err)
	}
	if n := count(t, w, `SELECT count(*) FROM persons`); n != 0 {
		t.Fatalf("a refused file imported %d people", n)
	}
	fixed := strings.Replace(good, "Giltig till\n", "Giltig till;Land\n", 1)
	fixed = strings.Replace(fixed, "Pedro Silva;AB123456;CD0000000001;;\n", "Pedro Silva;AB123456;CD0000000001;;;PT\n", 1)
	res, err = w.s.ImportCSV(ctx, w.sub, strings.NewReader(fixed))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(ImportResult{People: 3, Cards: 2}, res); diff != "" {
		t.Errorf("ImportResult (-want +got):\n%s", diff)
	}
	// Importing the same file again updates; it does not duplicate.
	if _, err := w.s.ImportCSV(ctx, w.sub, strings.NewReader(fixed)); err != nil {
		t.Fatal(err)
	}
	if n := count(t, w, `SELECT count(*) FROM persons`); n != 3 {
		t.Errorf("people after a second import = %d, want 3", n)
	}
}

func TestImportCSVLineErrors(t *testing.T) {
	w := newWorld(t)
	file := "name,id,card\n" +
		"Anna,811218-9875,\n" + // check digit
		",19121212-1212,\n" + // no name
		"Bo,811218-9876,XX1\n" + // card number
		"Bo igen,19811218-9876,\n" // the same person twice
	_, err := w.s.ImportCSV(context.Background(), w.sub, strings.NewReader(file))
	var ie *ImportError
	if !errors.As(err, &ie) {
		t.Fatalf("err = %v", err)
	}
	var got []string
	for _, l := range ie.Lines {
		got = append(got, l.Error())
	}
	want := []int{2, 3, 4, 5}
	if len(got) != len(want) {
		t.Fatalf("errors %q, want one on each of lines %v", got, want)
	}
	for i, l := range ie.Lines {
		if l.Line != want[i] {
			t.Errorf("error %d on line %d, want %d: %s", i, l.Line, want[i], l.Message)
		}
	}
	if _, err := w.s.ImportCSV(context.Background(), w.sub, strings.NewReader("foo;bar\n1;2\n")); !errors.As(err, &ie) ||
		!strings.Contains(ie.Lines[0].Message, "missing column") {
		t.Errorf("file without the columns: %v", err)
	}
}

func count(t *testing.T, w *world, sql string) int {
	t.Helper()
	var n int
	if err := w.pool.QueryRow(context.Background(), sql).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestOrganisationByNumber(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	sole, err := w.s.CreateOrganisation(ctx, NewOrganisation{Name: "Bertils Måleri", OrgNumber: "811218-9876"})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		number string
		id     int64
		name   string
		err    error
	}{
		{"5567037485", w.sub, "El AB", nil},
		{"556703-7485", w.sub, "El AB", nil},
		{"19811218-9876", sole, "Bertils Måleri", nil}, // a sole trader, by the index
		{"556000-0001", 0, "", ErrNotFound},
		{"556703-7486", 0, "", ErrInvalid},
	} {
		id, name, err := w.s.OrganisationByNumber(ctx, c.number)
		if id != c.id || name != c.name || !errors.Is(err, c.err) {
			t.Errorf("OrganisationByNumber(%s) = %d, %q, %v; want %d, %q, %v", c.number, id, name, err, c.id, c.name, c.err)
		}
	}
}

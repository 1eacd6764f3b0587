package main

import (
	"context"
	"errors"
	"fmt"
	"github.com/liggare/liggare/server/internal/account"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/liggare/liggare/firmware-bridge/cmd/liggare-bridge/crew"
	"github.com/liggare/liggare/server/internal/pii"
	"github.com/liggare/liggare/server/internal/registry"
)

// demoSite is the demo's construction site identifikationsnummer.
const demoSite = "DEMO0SITE0001"

var firstNames = []string{"Anna", "Erik", "Maria", "Lars", "Karin", "Johan", "Sara", "Mikael", "Elin", "Ahmed", "Piotr", "Fatima", "Nils", "Ida", "Oskar", "Leila"}
var lastNames = []string{"Andersson", "Johansson", "Karlsson", "Nilsson", "Eriksson", "Larsson", "Olsson", "Persson", "Svensson", "Gustafsson", "Kowalski", "Hassan", "Lindberg", "Berg", "Öberg", "Åström"}

// demoKeys returns the demo's PII keys, made once and kept in dir, so the
// demo's database stays readable across runs, and the two keys as the
// server's configuration strings.
func demoKeys(dir string) (*pii.Keys, []string, error) {
	path := filepath.Join(dir, "pii-keys")
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		b = []byte(pii.GenerateKeyB64() + "\n" + pii.GenerateKeyB64() + "\n")
		if err := os.WriteFile(path, b, 0o600); err != nil {
			return nil, nil, err
		}
	} else if err != nil {
		return nil, nil, err
	}
	lines := strings.Fields(string(b))
	if len(lines) != 2 {
		return nil, nil, fmt.Errorf("%s: want two keys", path)
	}
	keys, err := pii.LoadKeys(lines[0], lines[1])
	return keys, lines, err
}

// demoAdmin is the site admin the demo creates, for signing in to the web UI.
const demoAdmin = "admin@demo.liggare.se"

// seedAdmin creates the demo's org admin once and keeps the one-time
// password in dir/admin-password (mode 0600) for the demo to print.
func seedAdmin(ctx context.Context, pool *pgxpool.Pool, keys *pii.Keys, dir string) (string, error) {
	path := filepath.Join(dir, "admin-password")
	if b, err := os.ReadFile(path); err == nil {
		return strings.TrimSpace(string(b)), nil
	}
	var org int64
	if err := pool.QueryRow(ctx, `SELECT org_id FROM sites WHERE site_ident = $1`, demoSite).Scan(&org); err != nil {
		return "", err
	}
	_, password, err := account.NewStore(pool, keys, account.Options{}).BootstrapOrgAdmin(ctx, org, demoAdmin, "Platschef Demo")
	if err != nil {
		return "", err
	}
	return password, os.WriteFile(path, []byte(password+"\n"), 0o600)
}

// personnummer makes a valid personnummer for demo person i.
func personnummer(i int) string {
	birth := time.Date(1965+i%35, time.Month(1+i%12), 1+i%28, 0, 0, 0, 0, time.UTC)
	base := birth.Format("060102") + fmt.Sprintf("%03d", 200+i)
	sum := 0
	for k, c := range base {
		d := int(c - '0')
		if k%2 == 0 {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
	}
	return birth.Format("20060102")[:2] + base[:6] + "-" + base[6:] + fmt.Sprint((10-sum%10)%10)
}

// seed registers the demo's companies, site, workers and cards, and places
// the terminals on the site, unless a previous run already did. Worker i
// carries card crew.CardNumber(i) (AB0000001000 onwards), on a chip with
// UID crew.ChipUID(i): the tapsource simulator yields card numbers, the
// simulated OSDP, PN532 and line readers yield chip UIDs, and the registry
// knows a card by both. The last worker's card is left unregistered so the
// ledger shows an unknown card.
func seed(ctx context.Context, pool *pgxpool.Pool, keys *pii.Keys, terminals []string, workers int) error {
	var done bool
	if err := pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM sites WHERE site_ident = $1)`, demoSite).Scan(&done); err != nil {
		return err
	}
	if done {
		return seedChips(ctx, pool, workers)
	}
	reg := registry.NewStore(pool, keys)
	owner, err := reg.CreateOrganisation(ctx, registry.NewOrganisation{Name: "Demo Bygg AB", OrgNumber: "556036-0793"})
	if err != nil {
		return err
	}
	sub, err := reg.CreateOrganisation(ctx, registry.NewOrganisation{Name: "Demo El & VVS AB", OrgNumber: "556703-7485"})
	if err != nil {
		return err
	}
	site, err := reg.CreateSite(ctx, owner, registry.NewSite{Ident: demoSite, Name: "Kvarteret Eken", Address: "Storgatan 1, Uppsala",
		ByggherreName: "Fastighets AB Eken", ByggherreOrgNumber: "556036-0793"})
	if err != nil {
		return err
	}
	if err := reg.AddContractor(ctx, owner, site, sub, 0); err != nil {
		return err
	}
	for i := 0; i < workers-1; i++ {
		org := owner
		if i%3 == 2 {
			org = sub
		}
		name := firstNames[i%len(firstNames)] + " " + lastNames[(i*7)%len(lastNames)]
		p, err := reg.AddPerson(ctx, org, registry.NewPerson{Name: name, IDNumber: personnummer(i)})
		if err != nil {
			return fmt.Errorf("demo person %d: %w", i, err)
		}
		if _, err := reg.AddCard(ctx, org, registry.NewCard{CardNumber: crew.CardNumber(i), ChipUIDs: []string{chipUID(i)},
			PersonID: p, ValidUntil: time.Now().AddDate(2, 0, 0)}); err != nil {
			return fmt.Errorf("demo card %d: %w", i, err)
		}
	}
	for _, id := range terminals {
		if err := reg.AssignTerminal(ctx, owner, id, site, "toggle", time.Now().Add(-time.Minute), "liggare-demo"); err != nil {
			return fmt.Errorf("place terminal %s: %w", id, err)
		}
	}
	return nil
}

// chipUID is worker i's chip UID as the registry writes it.
func chipUID(i int) string { return fmt.Sprintf("%X", crew.ChipUID(i)) }

// seedChips gives the cards of a demo database seeded before the simulated
// readers existed their chip UIDs; a card that has its UID already is left
// alone.
func seedChips(ctx context.Context, pool *pgxpool.Pool, workers int) error {
	var numbers, uids []string
	for i := 0; i < workers-1; i++ {
		numbers, uids = append(numbers, crew.CardNumber(i)), append(uids, chipUID(i))
	}
	_, err := pool.Exec(ctx, `
		INSERT INTO card_chips (org_id, chip_uid, card_id)
		SELECT c.org_id, w.uid, c.card_id
		FROM unnest($1::text[], $2::text[]) AS w(number, uid)
		JOIN cards c ON c.card_number = w.number
		ON CONFLICT (org_id, chip_uid) DO NOTHING`, numbers, uids)
	if err != nil {
		return fmt.Errorf("demo chip UIDs: %w", err)
	}
	return nil
}

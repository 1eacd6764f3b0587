package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/liggare/liggare/firmware-bridge/ptypair"
)

// The kinds of card reader a demo kiosk can have.
const (
	readerOSDP  = "osdp"
	readerPN532 = "pn532"
	readerLine  = "line"
	readerSim   = "sim"
)

// demoOSDPAddr is the simulated OSDP readers' bus address.
const demoOSDPAddr = 1

// readerKinds parses --readers into the kinds the kiosks take in turn.
func readerKinds(s string) ([]string, error) {
	switch s {
	case "mix", "":
		return []string{readerOSDP, readerPN532, readerLine}, nil
	case readerSim:
		return []string{readerSim}, nil
	}
	var kinds []string
	for k := range strings.SplitSeq(s, ",") {
		switch k = strings.TrimSpace(k); k {
		case readerOSDP, readerPN532, readerLine:
			kinds = append(kinds, k)
		default:
			return nil, fmt.Errorf("--readers %q: want mix, sim, or a list of osdp, pn532 and line", s)
		}
	}
	return kinds, nil
}

// ptysWork reports whether this machine gives out pseudo-terminals.
func ptysWork() error {
	p, err := ptypair.Open()
	if err != nil {
		return err
	}
	return p.Close()
}

// kiosk is one demo terminal and its reader.
type kiosk struct {
	id   string
	kind string
	link string // the simulated reader's stable path; "" for sim
	spec string // the terminal's --reader
}

func newKiosk(id, kind, link string, cfg config) kiosk {
	k := kiosk{id: id, kind: kind, link: link}
	switch kind {
	case readerOSDP:
		k.spec = fmt.Sprintf("osdp:%s?addr=%d", link, demoOSDPAddr)
	case readerPN532:
		k.spec = "pn532:" + link
	case readerLine:
		k.spec = "line:" + link
	default:
		k.link = ""
		k.spec = fmt.Sprintf("sim:workers=%d,interval=%s,prefix=AB", cfg.workers, cfg.interval)
	}
	return k
}

// simulateArgs are liggare-bridge's arguments for the kiosk's reader: the
// whole crew, each kiosk presenting at the demo's interval.
func (k kiosk) simulateArgs(cfg config) []string {
	args := []string{"simulate", "--protocol", k.kind, "--link", k.link,
		"--cards", fmt.Sprint(cfg.workers), "--interval", cfg.interval.String()}
	if k.kind == readerOSDP {
		args = append(args, "--addr", fmt.Sprint(demoOSDPAddr))
	}
	return args
}

// describe says which reader the kiosk uses, for the demo's printout.
func (k kiosk) describe(dir string) string {
	link := filepath.Join(dir, filepath.Base(k.link))
	switch k.kind {
	case readerOSDP:
		return fmt.Sprintf("OSDP reader, address %d, simulated at %s   --reader %s", demoOSDPAddr, link, k.spec)
	case readerPN532:
		return fmt.Sprintf("PN532 NFC module, simulated at %s   --reader %s", link, k.spec)
	case readerLine:
		return fmt.Sprintf("USB line reader, simulated at %s   --reader %s", link, k.spec)
	}
	return "built-in simulator   --reader " + k.spec
}

func describeKiosks(ks []kiosk, dir string) string {
	var b strings.Builder
	b.WriteString("  Kiosks and their card readers:\n")
	for _, k := range ks {
		fmt.Fprintf(&b, "    %s  %s\n", k.id, k.describe(dir))
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// waitPath waits for a simulator to make its reader's path.
func waitPath(ctx context.Context, path string) error {
	for range 100 {
		if _, err := os.Stat(path); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s did not appear within 5s", path)
}

// tapsSince counts the taps each terminal stored since t.
func tapsSince(ctx context.Context, pool *pgxpool.Pool, t time.Time) (map[string]int64, error) {
	rows, err := pool.Query(ctx, `SELECT terminal_id, count(*) FROM taps WHERE received_at >= $1 GROUP BY terminal_id`, t)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make(map[string]int64)
	for rows.Next() {
		var id string
		var n int64
		if err := rows.Scan(&id, &n); err != nil {
			return nil, err
		}
		out[id] = n
	}
	return out, rows.Err()
}

func kioskCounts(ks []kiosk, counts map[string]int64) string {
	parts := make([]string, len(ks))
	for i, k := range ks {
		parts[i] = fmt.Sprintf("%s %s %d", k.id, k.kind, counts[k.id])
	}
	return strings.Join(parts, ", ")
}

// checkRun is the verdict of a demo run with --duration: every kiosk's
// taps reached the database, and the ledger made work periods of them.
func checkRun(ks []kiosk, counts map[string]int64, taps, periods int64, dir string) error {
	var errs []error
	for i, k := range ks {
		if counts[k.id] == 0 {
			errs = append(errs, fmt.Errorf("kiosk %s (%s reader) stored no taps (see %s and %s)", k.id, k.kind,
				filepath.Join(dir, "logs", k.id+".log"), filepath.Join(dir, "logs", fmt.Sprintf("reader-%d.log", i+1))))
		}
	}
	if periods == 0 {
		errs = append(errs, errors.New("no work periods formed"))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	fmt.Printf("demo ok: %d taps stored (this run: %s), %d work periods\n", taps, kioskCounts(ks, counts), periods)
	return nil
}

package cardtotap

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/liggare/liggare/terminal/internal/outbox"
)

// buildBinaries builds liggare-bridge and liggare-terminal into a
// temporary directory.
func buildBinaries(t *testing.T) string {
	t.Helper()
	gomod, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil || len(bytes.TrimSpace(gomod)) == 0 {
		t.Fatalf("go env GOMOD: %q, %v", gomod, err)
	}
	dir := t.TempDir()
	cmd := exec.Command("go", "build", "-o", dir+string(filepath.Separator),
		"./firmware-bridge/cmd/liggare-bridge", "./terminal/cmd/liggare-terminal")
	cmd.Dir = filepath.Dir(string(bytes.TrimSpace(gomod)))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return dir
}

// TestBinaries runs the real liggare-terminal on each kind of simulated
// reader that "liggare-bridge simulate" runs (as make demo does): every
// card the simulator says it presented is in the terminal's outbox, once.
// The terminal has no server; taps are recorded offline.
func TestBinaries(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binaries")
	}
	bin := buildBinaries(t)
	for _, proto := range []string{"osdp", "pn532", "line"} {
		t.Run(proto, func(t *testing.T) {
			dir := t.TempDir()
			link, ob := filepath.Join(dir, "reader"), filepath.Join(dir, "outbox.db")
			var simOut, termOut bytes.Buffer
			sim := exec.Command(filepath.Join(bin, "liggare-bridge"), "simulate", "--protocol", proto, "--link", link,
				"--cards", "8", "--interval", "100ms", "--count", "5", "--seed", "11")
			sim.Stdout, sim.Stderr = &simOut, &simOut
			if err := sim.Start(); err != nil {
				t.Fatal(err)
			}
			defer sim.Process.Kill()
			spec := map[string]string{"osdp": "osdp:" + link + "?addr=1", "pn532": "pn532:" + link, "line": "line:" + link}[proto]
			term := exec.Command(filepath.Join(bin, "liggare-terminal"), "--server", "ws://127.0.0.1:1/v1/sync",
				"--outbox", ob, "--reader", spec)
			term.Env = append(os.Environ(), "LIGGARE_CREDENTIAL=kiosk-1.c2VjcmV0c2VjcmV0c2VjcmV0")
			term.Stdout, term.Stderr = &termOut, &termOut
			if err := term.Start(); err != nil {
				t.Fatal(err)
			}
			defer term.Process.Kill()

			// The simulator ends by itself once the driver took its cards.
			waitExit(t, sim, "liggare-bridge simulate", &simOut)
			if err := term.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			waitExit(t, term, "liggare-terminal", &termOut)

			var want []string
			for _, m := range regexp.MustCompile(`presented chip ([0-9A-F]+)`).FindAllStringSubmatch(simOut.String(), -1) {
				want = append(want, m[1])
			}
			if len(want) != 5 {
				t.Fatalf("simulate presented %d cards, want 5:\n%s", len(want), simOut.String())
			}
			slices.Sort(want)
			o, err := outbox.Open(ob, outbox.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer o.Close()
			taps, err := o.Pending(0, 1000)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, tp := range taps {
				got = append(got, tp.CardID)
			}
			slices.Sort(got)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("outbox card ids (-presented +stored):\n%s\nsimulate:\n%s\nterminal:\n%s", diff, simOut.String(), termOut.String())
			}
		})
	}
}

// waitExit waits for cmd to exit successfully.
func waitExit(t *testing.T, cmd *exec.Cmd, name string, out *bytes.Buffer) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("%s: %v\n%s", name, err, strings.TrimSpace(out.String()))
		}
	case <-time.After(bound):
		cmd.Process.Kill()
		<-done
		t.Fatalf("%s did not end within %v\n%s", name, bound, out.String())
	}
}

package e2e

import (
	"io"
	"os"
	"testing"
)

// The tests in this file restore one side from an older backup: the
// database (the server lost taps it acknowledged) or a terminal's outbox
// (the terminal lost taps the server holds).

// TestServerRestoredFromBackup: the database is restored from a backup that
// predates taps the server had acknowledged (and the terminal deleted).
// Those taps are gone; the terminal must still get its later taps
// acknowledged and drain its outbox.
func TestServerRestoredFromBackup(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	sys := newSystem(t)
	creds := sys.addTerminals("S1")
	sv := sys.newServer()
	if err := sv.start(ctx); err != nil {
		t.Fatal(err)
	}
	tm := sys.newTerminal("S1", creds["S1"], sv.addr)
	if err := tm.start(); err != nil {
		t.Fatal(err)
	}
	d := newDriver(tm)
	if _, err := d.tapN(ctx, 20); err != nil {
		t.Fatal(err)
	}
	if err := sys.waitSynced(ctx, map[string]uint64{"S1": 20}); err != nil {
		t.Fatal(err)
	}
	stopAll(t, tm)
	// What a backup taken after seq 10 holds.
	if _, err := sys.db().Exec(ctx, `
		DELETE FROM taps WHERE terminal_id = 'S1' AND seq > 10;
		UPDATE ingest_cursors SET acked_through = 10, max_seen = 10 WHERE terminal_id = 'S1'`); err != nil {
		t.Fatal(err)
	}

	if err := tm.start(); err != nil {
		t.Fatal(err)
	}
	after, err := d.tapN(ctx, 5)
	if err != nil {
		t.Fatal(err)
	}
	if err := sys.waitEmptyOutboxes(ctx, "S1"); err != nil {
		t.Error(err)
	}
	stopAll(t, tm)
	if st := tm.inspect(t); st.Depth != 0 {
		t.Errorf("outbox after the server was restored = %+v, want depth 0", st)
	}
	for _, card := range after {
		var n int
		if err := sys.db().QueryRow(ctx, `SELECT count(*) FROM taps WHERE card_id = $1`, card).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 1 {
			t.Errorf("card %s, tapped after the restore, stored %d times, want once", card, n)
		}
	}
	// The lost range is on record as an alarm for a person.
	var gaps int
	if err := sys.db().QueryRow(ctx, `SELECT count(*) FROM tap_gaps WHERE terminal_id = 'S1' AND resolved_at IS NULL`).Scan(&gaps); err != nil {
		t.Fatal(err)
	}
	if gaps != 1 {
		t.Errorf("open tap gaps = %d, want 1 (the taps the restore lost)", gaps)
	}
}

// TestOutboxRestoredFromBackup: a kiosk's disk is restored from a backup of
// its outbox, so the outbox's epoch is one the server already holds beyond
// the outbox's last seq. The taps made afterwards reuse identities the
// server holds with other content: design invariant 3 wants them kept and
// quarantined, never dropped.
func TestOutboxRestoredFromBackup(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	sys := newSystem(t)
	creds := sys.addTerminals("S2")
	sv := sys.newServer()
	if err := sv.start(ctx); err != nil {
		t.Fatal(err)
	}
	tm := sys.newTerminal("S2", creds["S2"], sv.addr)
	backup := tm.outbox + ".backup"
	session := func(first, n int) []string {
		t.Helper()
		if err := tm.start(); err != nil {
			t.Fatal(err)
		}
		d := newDriver(tm)
		d.next = first - 1      // unique card ids across drivers
		d.epochMayChange = true // the restored outbox rebases mid-session
		cards, err := d.tapN(ctx, n)
		if err != nil {
			t.Fatal(err)
		}
		return cards
	}

	session(1, 10)
	if err := sys.waitSynced(ctx, map[string]uint64{"S2": 10}); err != nil {
		t.Fatal(err)
	}
	stopAll(t, tm)
	copyFile(t, tm.outbox, backup)
	session(101, 10)
	if err := sys.waitSynced(ctx, map[string]uint64{"S2": 20}); err != nil {
		t.Fatal(err)
	}
	stopAll(t, tm)
	copyFile(t, backup, tm.outbox)

	restored := session(201, 5) // seqs 11..15 again
	// A reboot: the next session is where the taps go missing.
	stopAll(t, tm)
	if err := tm.start(); err != nil {
		t.Fatal(err)
	}
	if err := sys.waitEmptyOutboxes(ctx, "S2"); err != nil {
		t.Error(err)
	}
	stopAll(t, tm)
	for _, card := range restored {
		var stored, quarantined int
		if err := sys.db().QueryRow(ctx, `
			SELECT (SELECT count(*) FROM taps WHERE card_id = $1),
			       (SELECT count(*) FROM tap_conflicts WHERE payload->>'CardID' = $1)`, card).Scan(&stored, &quarantined); err != nil {
			t.Fatal(err)
		}
		if stored+quarantined == 0 {
			t.Errorf("card %s, confirmed by the terminal after its outbox was restored, is neither stored nor quarantined", card)
		}
	}
}

func copyFile(t testing.TB, src, dst string) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

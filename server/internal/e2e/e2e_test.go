package e2e

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/sync/errgroup"

	"github.com/liggare/liggare/server/internal/pgtest"
)

var chaosSeed = flag.Uint64("e2e.seed", 0, "seed of the schedules of TestExactlyOnceUnderFaults and TestReplicas (0: from the clock)")

func TestMain(m *testing.M) { pgtest.Main(m) }

// testTimeout bounds a whole test, so that a hang fails with the processes'
// logs instead of the go test timeout's stack dump.
const testTimeout = 5 * time.Minute

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// TestExactlyOnceUnderFaults is the headline test: terminals tap thousands
// of cards while terminals, network, server and PostgreSQL fail at random;
// every confirmed tap must arrive exactly once, and nothing else. It does
// not run in parallel: it crashes the PostgreSQL cluster the package's
// other tests share.
func TestExactlyOnceUnderFaults(t *testing.T) {
	const (
		numTerminals = 4
		minTaps      = 1500 // per terminal; taps go on while the chaos lasts
		maxPause     = 30 * time.Millisecond
	)
	// Small batches make a backlog (taps made while the network was down)
	// travel as many batches in flight at once, whose Acks come back in
	// any order, and whose loss to a fault the terminal must survive.
	// 0 keeps the default (1024).
	batchSizes := [numTerminals]int{0, 64, 8, 1}
	ctx := testContext(t)
	seed := *chaosSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("chaos seed %d (replay the schedule with -e2e.seed=%d)", seed, seed)
	cluster := pgtest.Cluster()
	if cluster == nil {
		t.Logf("%s is set: PostgreSQL is shared, so it will not be crashed", pgtest.EnvURL)
	}

	sys := newSystem(t)
	if cluster != nil {
		// A test that fails with PostgreSQL down leaves it to the next
		// tests (and to the cleanup that drops the database) running.
		t.Cleanup(func() {
			if t.Failed() {
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				if err := cluster.Restart(ctx); err != nil {
					t.Errorf("restart PostgreSQL after the failure: %v", err)
				}
			}
		})
	}
	ids := make([]string, numTerminals)
	for i := range ids {
		ids[i] = fmt.Sprintf("T%d", i+1)
	}
	creds := sys.addTerminals(ids...)
	sv := sys.newServer()
	if err := sv.start(ctx); err != nil {
		t.Fatal(err)
	}
	px := newProxy(t, sv.addr)
	terms := make([]*terminal, numTerminals)
	drivers := make([]*driver, numTerminals)
	for i, id := range ids {
		var extra []string
		if batchSizes[i] > 0 {
			extra = []string{"--batch", fmt.Sprint(batchSizes[i])}
		}
		terms[i] = sys.newTerminal(id, creds[id], px.Addr(), extra...)
		if err := terms[i].start(); err != nil {
			t.Fatal(err)
		}
		drivers[i] = newDriver(terms[i])
		drivers[i].pause = crowd(rand.New(rand.NewPCG(seed, uint64(i+1))), maxPause)
	}

	ch := &chaos{t: t, rng: rand.New(rand.NewPCG(seed, 0)), proxy: px, server: sv, terms: terms, cluster: cluster}
	var chaosDone atomic.Bool
	began := time.Now()
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		defer chaosDone.Store(true)
		return ch.run(gctx)
	})
	for _, d := range drivers {
		g.Go(func() error {
			return d.tapUntil(gctx, func() bool { return chaosDone.Load() && d.madeCount() >= minTaps })
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	t.Logf("taps and chaos done after %.1fs; faults: %s; proxy connections: %d",
		time.Since(began).Seconds(), faultSummary(ch.counts), px.accepted.Load())
	for _, d := range drivers {
		t.Logf("terminal %s: %d taps confirmed, %d unanswered, %d runs, mean answer time %v",
			d.term.id, len(d.made), len(d.maybe), d.term.runs, d.busy/time.Duration(len(d.made)+len(d.maybe)))
	}
	for _, k := range ch.kinds() {
		if ch.counts[k] < minFaults {
			t.Errorf("fault %s happened %d times, want at least %d", k, ch.counts[k], minFaults)
		}
	}

	// Everything confirmed must reach the server, and every outbox drain.
	want := make(map[string]uint64, numTerminals)
	for _, d := range drivers {
		want[d.term.id] = d.lastMadeSeq()
	}
	if err := sys.waitSynced(ctx, want); err != nil {
		t.Error(err) // and go on: the checks below say which taps are missing
	}
	stopAll(t, terms...)
	if err := sv.stop(stopTimeout); err != nil {
		t.Errorf("server exited with %v after SIGTERM, want a clean exit", err)
	}

	pool := sys.db()
	var total, maybeStored, maybeLost int
	for _, d := range drivers {
		st := d.term.inspect(t)
		stored, lost := checkTerminal(t, ctx, pool, d, st)
		total += len(d.made) + stored
		maybeStored += stored
		maybeLost += lost
	}
	checkNoOtherTaps(t, ctx, pool, ids...)
	checkNoDeadLettersOrConflicts(t, ctx, pool)
	t.Logf("%d taps stored: %d confirmed, %d unconfirmed (terminal killed before answering); %d unconfirmed never stored",
		total, total-maybeStored, maybeStored, maybeLost)
}

func faultSummary(counts [numFaultKinds]int) string {
	var parts []string
	for k, n := range counts {
		parts = append(parts, fmt.Sprintf("%s=%d", faultKind(k), n))
	}
	return strings.Join(parts, " ")
}

// TestReplacedOutboxNewEpoch replaces a terminal's outbox file (a kiosk's
// disk swapped): the new outbox has a new epoch and starts again at seq 1,
// and the server keeps the taps of both epochs, each whole and apart.
func TestReplacedOutboxNewEpoch(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	sys := newSystem(t)
	creds := sys.addTerminals("R1")
	sv := sys.newServer()
	if err := sv.start(ctx); err != nil {
		t.Fatal(err)
	}
	tm := sys.newTerminal("R1", creds["R1"], sv.addr)

	// tapSession starts the terminal, makes n taps, waits until the server
	// holds them and the outbox is empty, and stops the terminal.
	tapSession := func(n int) ([]string, outboxState) {
		t.Helper()
		if err := tm.start(); err != nil {
			t.Fatal(err)
		}
		d := newDriver(tm)
		cards, err := d.tapN(ctx, n)
		if err != nil {
			t.Fatal(err)
		}
		if len(d.maybe) > 0 {
			t.Fatalf("%d taps unanswered without a fault", len(d.maybe))
		}
		for i, c := range cards {
			if d.made[c] != uint64(i+1) {
				t.Fatalf("tap %d (%s) confirmed as seq %d, want %d: a new outbox starts at 1", i+1, c, d.made[c], i+1)
			}
		}
		if err := sys.waitSynced(ctx, map[string]uint64{"R1": uint64(n)}); err != nil {
			t.Fatal(err)
		}
		stopAll(t, tm)
		st := tm.inspect(t)
		if st.Depth != 0 || st.LastSeq != uint64(n) || st.AckedThrough != uint64(n) {
			t.Errorf("outbox after sync = %+v, want depth 0, last_seq and acked_through %d", st, n)
		}
		return cards, st
	}

	oldCards, oldState := tapSession(40)
	if err := os.Remove(tm.outbox); err != nil {
		t.Fatal(err)
	}
	newCards, newState := tapSession(25)
	if newState.StoreEpoch == oldState.StoreEpoch {
		t.Fatalf("replaced outbox kept store epoch %d, want a new one", newState.StoreEpoch)
	}

	pool := sys.db()
	checkEpoch(t, ctx, pool, "R1", oldState.StoreEpoch, oldCards)
	checkEpoch(t, ctx, pool, "R1", newState.StoreEpoch, newCards)
	var epochs int
	if err := pool.QueryRow(ctx, `SELECT count(DISTINCT store_epoch) FROM taps WHERE terminal_id = 'R1'`).Scan(&epochs); err != nil {
		t.Fatal(err)
	}
	if epochs != 2 {
		t.Errorf("taps of R1 have %d epochs, want 2", epochs)
	}
	checkNoOtherTaps(t, ctx, pool, "R1")
	checkNoDeadLettersOrConflicts(t, ctx, pool)
}

var refusedRe = regexp.MustCompile(`msg=uplink_session_ended err="uplink: server refused the credential"`)

// TestRevokedCredentialRefused revokes one terminal's credential: its next
// connection is refused and its new taps stay in its outbox, while another
// terminal goes on syncing.
func TestRevokedCredentialRefused(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	sys := newSystem(t)
	creds := sys.addTerminals("A", "B")
	sv := sys.newServer()
	if err := sv.start(ctx); err != nil {
		t.Fatal(err)
	}
	a := sys.newTerminal("A", creds["A"], sv.addr)
	b := sys.newTerminal("B", creds["B"], sv.addr)
	for _, tm := range []*terminal{a, b} {
		if err := tm.start(); err != nil {
			t.Fatal(err)
		}
	}
	dA, dB := newDriver(a), newDriver(b)
	aBefore, err := dA.tapN(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	bBefore, err := dB.tapN(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if err := sys.waitSynced(ctx, map[string]uint64{"A": 10, "B": 10}); err != nil {
		t.Fatal(err)
	}

	// Revocation is checked when a terminal connects: restart A so that
	// it must connect again.
	sys.revoke("A")
	stopAll(t, a)
	if err := a.start(); err != nil {
		t.Fatal(err)
	}
	aAfter, err := dA.tapN(ctx, 5)
	if err != nil {
		t.Fatal(err)
	}
	refusedBefore := len(refusedRe.FindAllString(a.runLog(), -1))
	bAfter, err := dB.tapN(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	// A connection attempt made after A's new taps were durable must have
	// been refused; B's taps must all arrive meanwhile.
	if err := waitFor(ctx, syncTimeout, "terminal A to be refused again", func() (bool, error) {
		return len(refusedRe.FindAllString(a.runLog(), -1)) > refusedBefore, a.exitedOnItsOwn()
	}); err != nil {
		t.Fatal(err)
	}
	if err := sys.waitSynced(ctx, map[string]uint64{"B": 20}); err != nil {
		t.Fatal(err)
	}
	stopAll(t, a, b)

	st := a.inspect(t)
	if st.Depth != uint64(len(aAfter)) || st.LastSeq != 15 || st.AckedThrough != 10 {
		t.Errorf("outbox of the revoked terminal = %+v, want depth %d, last_seq 15, acked_through 10", st, len(aAfter))
	}
	pool := sys.db()
	checkEpoch(t, ctx, pool, "A", st.StoreEpoch, aBefore)
	checkEpoch(t, ctx, pool, "B", b.inspect(t).StoreEpoch, append(bBefore, bAfter...))
	checkNoOtherTaps(t, ctx, pool, "A", "B")
	checkNoDeadLettersOrConflicts(t, ctx, pool)
}

// storedTap is a row of taps, the columns the tests check.
type storedTap struct {
	Epoch  int64
	Seq    int64
	CardID string
	Reader string
	Answer string
}

func storedTaps(t testing.TB, ctx context.Context, pool *pgxpool.Pool, terminalID string) []storedTap {
	t.Helper()
	rows, err := pool.Query(ctx, `
		SELECT store_epoch, seq, card_id, reader, answer FROM taps
		WHERE terminal_id = $1 ORDER BY store_epoch, seq`, terminalID)
	if err != nil {
		t.Fatal(err)
	}
	taps, err := pgx.CollectRows(rows, pgx.RowToStructByPos[storedTap])
	if err != nil {
		t.Fatal(err)
	}
	return taps
}

// checkCursor checks that the ingest cursor of (terminal, epoch) stands at
// n: every seq up to n is held and none beyond.
func checkCursor(t testing.TB, ctx context.Context, pool *pgxpool.Pool, terminalID string, epoch int64, n int) {
	t.Helper()
	var acked, maxSeen int64
	err := pool.QueryRow(ctx, `
		SELECT acked_through, max_seen FROM ingest_cursors WHERE terminal_id = $1 AND store_epoch = $2`,
		terminalID, epoch).Scan(&acked, &maxSeen)
	if err != nil {
		t.Errorf("ingest cursor of %s/%d: %v", terminalID, epoch, err)
		return
	}
	if acked != int64(n) || maxSeen != int64(n) {
		t.Errorf("ingest cursor of %s/%d: acked_through %d, max_seen %d, want both %d", terminalID, epoch, acked, maxSeen, n)
	}
}

// checkEpoch checks that the server holds exactly cards as seqs 1..n of
// (terminal, epoch), with the content the feed gave them.
func checkEpoch(t testing.TB, ctx context.Context, pool *pgxpool.Pool, terminalID string, epoch int64, cards []string) {
	t.Helper()
	var got []storedTap
	for _, r := range storedTaps(t, ctx, pool, terminalID) {
		if r.Epoch == epoch {
			got = append(got, r)
		}
	}
	if len(got) != len(cards) {
		t.Errorf("%s/%d: %d taps stored, want %d", terminalID, epoch, len(got), len(cards))
	}
	for i, r := range got {
		want := storedTap{Epoch: epoch, Seq: int64(i + 1), Answer: "recorded"}
		if i < len(cards) {
			want.CardID = cards[i]
		}
		if r != want {
			t.Errorf("%s/%d: tap %d = %+v, want %+v", terminalID, epoch, i+1, r, want)
		}
	}
	checkCursor(t, ctx, pool, terminalID, epoch, len(cards))
}

// checkTerminal checks one terminal of the chaos test against its driver's
// record and its stopped outbox. It returns how many unconfirmed taps were
// stored and how many were not.
func checkTerminal(t testing.TB, ctx context.Context, pool *pgxpool.Pool, d *driver, st outboxState) (maybeStored, maybeLost int) {
	t.Helper()
	id := d.term.id
	taps := storedTaps(t, ctx, pool, id)
	n := len(taps)
	if st.Depth != 0 || st.LastSeq != uint64(n) || st.AckedThrough != uint64(n) {
		t.Errorf("%s: stopped outbox = %+v, want depth 0 and last_seq = acked_through = %d taps stored", id, st, n)
	}
	seen := make(map[string]int, n)
	bad := 0
	for i, r := range taps {
		// A tap with its identity, seq 1..n of the outbox's one epoch.
		if r.Epoch != st.StoreEpoch || r.Seq != int64(i+1) {
			if bad++; bad <= 10 {
				t.Errorf("%s: tap %d has identity (%d, %d), want (%d, %d): an epoch or seq is wrong, missing or repeated",
					id, i+1, r.Epoch, r.Seq, st.StoreEpoch, i+1)
			}
		}
		seen[r.CardID]++
		seq, made := d.made[r.CardID]
		switch {
		case made && seq != uint64(r.Seq):
			t.Errorf("%s: card %s stored as seq %d, confirmed as seq %d", id, r.CardID, r.Seq, seq)
		case !made && !d.maybe[r.CardID]:
			t.Errorf("%s: card %s stored as seq %d was never presented to this terminal", id, r.CardID, r.Seq)
		}
		if r.Reader != "" || r.Answer != "recorded" {
			t.Errorf("%s: seq %d has reader %q and answer %q, want \"\" and \"recorded\"", id, r.Seq, r.Reader, r.Answer)
		}
	}
	for card, c := range seen {
		if c > 1 {
			t.Errorf("%s: card %s stored %d times, want once", id, card, c)
		}
	}
	missing := 0
	for card, seq := range d.made {
		if seen[card] == 0 {
			if missing++; missing <= 10 {
				t.Errorf("%s: confirmed card %s (seq %d) is not stored", id, card, seq)
			}
		}
	}
	if missing > 0 {
		t.Errorf("%s: %d of %d confirmed taps missing", id, missing, len(d.made))
	}
	for card := range d.maybe {
		if seen[card] > 0 {
			maybeStored++
		} else {
			maybeLost++
		}
	}
	checkCursor(t, ctx, pool, id, st.StoreEpoch, n)
	return maybeStored, maybeLost
}

// checkNoOtherTaps checks that the server holds taps of no terminal but
// these, and cursors of no other epoch than those its taps have.
func checkNoOtherTaps(t testing.TB, ctx context.Context, pool *pgxpool.Pool, ids ...string) {
	t.Helper()
	var others int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM taps WHERE terminal_id <> ALL($1)`, ids).Scan(&others); err != nil {
		t.Fatal(err)
	}
	if others != 0 {
		t.Errorf("%d taps of terminals other than %v stored", others, ids)
	}
	var strayCursors int
	if err := pool.QueryRow(ctx, `
		SELECT count(*) FROM ingest_cursors c
		WHERE NOT EXISTS (SELECT FROM taps t WHERE t.terminal_id = c.terminal_id AND t.store_epoch = c.store_epoch)`).
		Scan(&strayCursors); err != nil {
		t.Fatal(err)
	}
	if strayCursors != 0 {
		t.Errorf("%d ingest cursors for an epoch without taps, want 0", strayCursors)
	}
}

func checkNoDeadLettersOrConflicts(t testing.TB, ctx context.Context, pool *pgxpool.Pool) {
	t.Helper()
	var dead, conflicts int
	if err := pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM dead_letters), (SELECT count(*) FROM tap_conflicts)`).
		Scan(&dead, &conflicts); err != nil {
		t.Fatal(err)
	}
	if dead != 0 || conflicts != 0 {
		t.Errorf("%d dead letters and %d tap conflicts, want none", dead, conflicts)
	}
}

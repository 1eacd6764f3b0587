package ingest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/liggare/liggare/server/internal/pgtest"
	"github.com/liggare/liggare/syncproto"
)

var t0 = time.Date(2026, 11, 21, 6, 30, 0, 0, time.UTC)

func session(terminal string, epoch int64) *Session {
	return &Session{
		TerminalID:    terminal,
		StoreEpoch:    epoch,
		HelloClock:    syncproto.Clock{WallMicros: t0.UnixMicro(), BootID: "boot-1", MonoNanos: 1e12},
		HelloReceived: t0,
	}
}

// makeTaps returns taps first..last with content derived from the identity.
func makeTaps(terminal string, first, last uint64) []syncproto.Tap {
	var out []syncproto.Tap
	for s := first; s <= last; s++ {
		out = append(out, syncproto.Tap{
			Seq:    s,
			CardID: fmt.Sprintf("%s-card-%d", terminal, s%7),
			Clock: syncproto.Clock{
				WallMicros: t0.Add(-time.Duration(1000-s) * time.Second).UnixMicro(),
				BootID:     "boot-1",
				MonoNanos:  int64(s) * 1e9,
			},
			Answer: "recorded",
		})
	}
	return out
}

func sub(sess *Session, id uint64, taps []syncproto.Tap) *Submission {
	return &Submission{Session: sess, Batch: &syncproto.Batch{BatchID: id, Taps: taps}, Received: t0.Add(time.Minute)}
}

func apply(t testing.TB, s *Store, subs ...*Submission) []*syncproto.Ack {
	t.Helper()
	acks, err := s.Apply(context.Background(), subs)
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	return acks
}

// storedTap is the content of one taps row that does not depend on when or
// in which session it arrived.
type storedTap struct {
	Terminal string
	Epoch    int64
	Seq      int64
	CardID   string
	Answer   string
	Wall     int64
	Boot     string
	Mono     int64
}

func stored(t testing.TB, pool *pgxpool.Pool) []storedTap {
	t.Helper()
	rows, err := pool.Query(context.Background(), `
		SELECT terminal_id, store_epoch, seq, card_id, answer, device_wall_us, boot_id, mono_ns
		FROM taps ORDER BY terminal_id, store_epoch, seq`)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowToStructByPos[storedTap])
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func count(t testing.TB, pool *pgxpool.Pool, query string, args ...any) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

func TestApplyStoresEachTapOnce(t *testing.T) {
	pool := pgtest.New(t)
	s := NewStore(pool, nil)
	sess := session("T1", 7)
	acks := apply(t, s, sub(sess, 1, makeTaps("T1", 1, 10)))
	if diff := cmp.Diff([]*syncproto.Ack{{BatchID: 1, AckedThrough: 10}}, acks); diff != "" {
		t.Errorf("first Apply acks (-want +got):\n%s", diff)
	}
	// The same batch again gets the same answer and stores nothing new.
	acks = apply(t, s, sub(sess, 2, makeTaps("T1", 1, 10)))
	if diff := cmp.Diff([]*syncproto.Ack{{BatchID: 2, AckedThrough: 10}}, acks); diff != "" {
		t.Errorf("repeated Apply acks (-want +got):\n%s", diff)
	}
	if n := count(t, pool, `SELECT count(*) FROM taps`); n != 10 {
		t.Errorf("taps = %d, want 10", n)
	}
	acked, err := s.OpenSession(context.Background(), sess, "test", 0)
	if err != nil || acked != 10 {
		t.Errorf("OpenSession = %d, %v, want 10, nil", acked, err)
	}
}

func TestApplyOutOfOrderBatchesAdvanceCursorWhenGapFills(t *testing.T) {
	pool := pgtest.New(t)
	s := NewStore(pool, nil)
	sess := session("T1", 7)
	acks := apply(t, s, sub(sess, 2, makeTaps("T1", 11, 20)))
	if acks[0].AckedThrough != 0 {
		t.Fatalf("ack after a batch beyond a gap: AckedThrough = %d, want 0", acks[0].AckedThrough)
	}
	acks = apply(t, s, sub(sess, 3, makeTaps("T1", 21, 25)))
	if acks[0].AckedThrough != 0 {
		t.Fatalf("AckedThrough = %d, want 0", acks[0].AckedThrough)
	}
	acks = apply(t, s, sub(sess, 1, makeTaps("T1", 1, 10)))
	if acks[0].AckedThrough != 25 {
		t.Fatalf("ack filling the gap: AckedThrough = %d, want 25", acks[0].AckedThrough)
	}
}

func TestApplyConflictIsQuarantinedAndOriginalKept(t *testing.T) {
	pool := pgtest.New(t)
	s := NewStore(pool, nil)
	sess := session("T1", 7)
	apply(t, s, sub(sess, 1, makeTaps("T1", 1, 5)))
	changed := makeTaps("T1", 3, 4)
	changed[0].CardID = "someone-else"
	for range 2 { // a repeated conflict gets the same answer and one alarm row
		acks := apply(t, s, sub(sess, 2, changed))
		want := []*syncproto.Ack{{BatchID: 2, AckedThrough: 5, Rejected: []syncproto.Rejection{*conflictRejection(3)}}}
		if diff := cmp.Diff(want, acks); diff != "" {
			t.Errorf("conflicting batch acks (-want +got):\n%s", diff)
		}
	}
	if n := count(t, pool, `SELECT count(*) FROM tap_conflicts WHERE seq = 3`); n != 1 {
		t.Errorf("tap_conflicts rows = %d, want 1", n)
	}
	var card string
	if err := pool.QueryRow(context.Background(), `SELECT card_id FROM taps WHERE seq = 3`).Scan(&card); err != nil || card != "T1-card-3" {
		t.Errorf("original tap card = %q, %v; want T1-card-3 kept", card, err)
	}
}

func TestApplyConflictWithinOneGroup(t *testing.T) {
	pool := pgtest.New(t)
	s := NewStore(pool, nil)
	sess := session("T1", 7)
	a := makeTaps("T1", 1, 3)
	b := makeTaps("T1", 1, 3)
	b[1].CardID = "other"
	acks := apply(t, s, sub(sess, 1, a), sub(sess, 2, b))
	want := []*syncproto.Ack{
		{BatchID: 1, AckedThrough: 3},
		{BatchID: 2, AckedThrough: 3, Rejected: []syncproto.Rejection{*conflictRejection(2)}},
	}
	if diff := cmp.Diff(want, acks); diff != "" {
		t.Errorf("acks (-want +got):\n%s", diff)
	}
	if n := count(t, pool, `SELECT count(*) FROM tap_conflicts`); n != 1 {
		t.Errorf("tap_conflicts rows = %d, want 1", n)
	}
}

func TestApplyInvalidTapIsDeadLetteredAndDoesNotBlock(t *testing.T) {
	pool := pgtest.New(t)
	s := NewStore(pool, nil)
	sess := session("T1", 7)
	taps := makeTaps("T1", 1, 5)
	taps[1].CardID = ""
	want := []*syncproto.Ack{{BatchID: 1, AckedThrough: 5, Rejected: []syncproto.Rejection{
		{Seq: 2, Code: syncproto.RejectInvalid, Reason: "empty card id"},
	}}}
	for range 2 { // the resend gets the same answer
		acks := apply(t, s, sub(sess, 1, taps))
		if diff := cmp.Diff(want, acks); diff != "" {
			t.Errorf("acks (-want +got):\n%s", diff)
		}
	}
	if n := count(t, pool, `SELECT count(*) FROM dead_letters`); n != 1 {
		t.Errorf("dead_letters = %d, want 1", n)
	}
	if n := count(t, pool, `SELECT count(*) FROM taps`); n != 4 {
		t.Errorf("taps = %d, want 4", n)
	}
	// The same identity with valid content is a conflict, not a second life.
	fixed := makeTaps("T1", 2, 2)
	acks := apply(t, s, sub(sess, 2, fixed))
	if len(acks[0].Rejected) != 1 || acks[0].Rejected[0].Code != syncproto.RejectConflict {
		t.Errorf("valid tap reusing a dead-lettered identity: %+v, want a conflict", acks[0])
	}
}

func TestApplyNewEpochKeepsBoth(t *testing.T) {
	pool := pgtest.New(t)
	s := NewStore(pool, nil)
	apply(t, s, sub(session("T1", 1), 1, makeTaps("T1", 1, 5)))
	acks := apply(t, s, sub(session("T1", 2), 1, makeTaps("T1", 1, 3)))
	if acks[0].AckedThrough != 3 || len(acks[0].Rejected) != 0 {
		t.Errorf("new epoch ack = %+v, want AckedThrough 3 and nothing rejected", acks[0])
	}
	if n := count(t, pool, `SELECT count(*) FROM taps WHERE terminal_id = 'T1'`); n != 8 {
		t.Errorf("taps = %d, want 8 (5 of epoch 1, 3 of epoch 2)", n)
	}
}

// TestApplyReplayProperty: the same taps, split into batches differently,
// repeated, reordered and grouped differently, always give the same rows.
func TestApplyReplayProperty(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))

	type stream struct {
		sess *Session
		taps []syncproto.Tap
	}
	streams := []stream{
		{session("T1", 1), makeTaps("T1", 1, 120)},
		{session("T1", 2), makeTaps("T1", 1, 40)},
		{session("T2", 9), makeTaps("T2", 1, 80)},
	}
	streams[0].taps[17].CardID = "" // one invalid tap, dead-lettered
	var want []storedTap
	for round := range 4 {
		pool := pgtest.New(t)
		s := NewStore(pool, nil)
		var subs []*Submission
		for _, st := range streams {
			for copies := 1 + rng.IntN(2); copies > 0; copies-- {
				for i := 0; i < len(st.taps); {
					n := 1 + rng.IntN(30)
					j := min(i+n, len(st.taps))
					subs = append(subs, sub(st.sess, uint64(len(subs)), st.taps[i:j]))
					i = j
				}
			}
		}
		rng.Shuffle(len(subs), func(i, j int) { subs[i], subs[j] = subs[j], subs[i] })
		for len(subs) > 0 {
			n := min(1+rng.IntN(6), len(subs))
			acks := apply(t, s, subs[:n]...)
			for i, a := range acks {
				for _, r := range a.Rejected {
					if r.Code != syncproto.RejectInvalid || r.Seq != 18 || subs[i].Session.TerminalID != "T1" {
						t.Fatalf("round %d: unexpected rejection %+v", round, r)
					}
				}
			}
			subs = subs[n:]
		}
		got := stored(t, pool)
		if round == 0 {
			want = got
			if len(want) != 120+40+80-1 {
				t.Fatalf("stored %d taps, want %d", len(want), 239)
			}
		} else if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("round %d stored different taps (-round 0 +this round):\n%s", round, diff)
		}
		for _, st := range streams {
			acked, err := s.OpenSession(context.Background(), st.sess, "test", 0)
			if err != nil || acked != uint64(len(st.taps)) {
				t.Fatalf("round %d: cursor of %s/%d = %d, %v; want %d", round, st.sess.TerminalID, st.sess.StoreEpoch, acked, err, len(st.taps))
			}
		}
		if n := count(t, pool, `SELECT count(*) FROM dead_letters`); n != 1 {
			t.Fatalf("round %d: dead letters = %d, want 1", round, n)
		}
	}
}

// TestApplyConcurrentWritersOfOneTerminal: two connections of the same
// terminal (an old one not yet timed out and a new one) upload overlapping
// batches at once; each tap is stored once and nothing deadlocks.
func TestApplyConcurrentWritersOfOneTerminal(t *testing.T) {
	pool := pgtest.New(t)
	s := NewStore(pool, nil)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := uint64(0); i < 20; i++ {
				subs := []*Submission{
					sub(session("T1", 1), i, makeTaps("T1", i*10+1, i*10+10)),
					sub(session(fmt.Sprintf("T%d", 2+w%2), 1), i, makeTaps("T2", i*5+1, i*5+5)),
				}
				if _, err := s.Apply(context.Background(), subs); err != nil && !retryable(err) {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("Apply: %v", err)
	}
	if n := count(t, pool, `SELECT count(*) FROM taps WHERE terminal_id = 'T1'`); n != 200 {
		t.Errorf("T1 taps = %d, want 200", n)
	}
}

// TestOpenSessionRecordsLostTaps: a server restored behind a terminal (it
// acknowledged taps it no longer holds) records the gap as an alarm and
// resumes after it, instead of waiting forever for taps the terminal has
// dropped.
func TestOpenSessionRecordsLostTaps(t *testing.T) {
	pool := pgtest.New(t)
	s := NewStore(pool, nil)
	sess := session("T1", 7)
	apply(t, s, sub(sess, 1, makeTaps("T1", 1, 10)))
	// Taps 21..25 arrived out of order before the restore; 11..20 are lost.
	apply(t, s, sub(sess, 2, makeTaps("T1", 21, 25)))
	acked, err := s.OpenSession(context.Background(), sess, "test", 20)
	if err != nil || acked != 25 {
		t.Fatalf("OpenSession = %d, %v; want 25 (gap 11..20 declared, 21..25 held)", acked, err)
	}
	var from, to int64
	if err := pool.QueryRow(context.Background(), `SELECT seq_from, seq_to FROM tap_gaps`).Scan(&from, &to); err != nil || from != 11 || to != 20 {
		t.Errorf("gap = %d..%d, %v; want 11..20", from, to, err)
	}
	// Said again, nothing more is recorded.
	if acked, _ := s.OpenSession(context.Background(), sess, "test", 20); acked != 25 {
		t.Errorf("second OpenSession = %d", acked)
	}
	if n := count(t, pool, `SELECT count(*) FROM tap_gaps`); n != 1 {
		t.Errorf("gaps = %d, want 1", n)
	}
	// The next batch is acknowledged normally.
	if acks := apply(t, s, sub(sess, 3, makeTaps("T1", 26, 27))); acks[0].AckedThrough != 27 {
		t.Errorf("next Ack = %+v", acks[0])
	}
}

// TestOpenSessionsAnswersAsOpenSession opens several sessions together:
// each gets the answer OpenSession would give, a gap is recorded as it
// would be, and every terminal is marked as seen.
func TestOpenSessionsAnswersAsOpenSession(t *testing.T) {
	pool := pgtest.New(t)
	s := NewStore(pool, nil)
	ctx := context.Background()
	for _, id := range []string{"T1", "T2", "T3", "T4"} {
		if _, err := pool.Exec(ctx, `INSERT INTO terminals (terminal_id) VALUES ($1)`, id); err != nil {
			t.Fatal(err)
		}
	}
	apply(t, s, sub(session("T1", 7), 1, makeTaps("T1", 1, 10)))
	apply(t, s, sub(session("T2", 7), 1, makeTaps("T2", 1, 10)))
	apply(t, s, sub(session("T2", 7), 2, makeTaps("T2", 21, 25)))
	opens := []*Opening{
		{Session: session("T1", 7), AgentVersion: "v2"},                  // resumes after 10
		{Session: session("T2", 7), AgentVersion: "v2", OutboxAcked: 20}, // 11..20 lost: a gap
		{Session: session("T3", 7), AgentVersion: "v2"},                  // new
		{Session: session("T4", 7), AgentVersion: "v2", OutboxAcked: 3},  // restored behind, no cursor
		{Session: session("T1", 8), AgentVersion: "v2", OutboxAcked: 0},  // a new epoch
	}
	if err := s.OpenSessions(ctx, opens); err != nil {
		t.Fatal(err)
	}
	want := []uint64{10, 25, 0, 3, 0}
	for i, o := range opens {
		if o.Err != nil || o.Acked != want[i] {
			t.Errorf("session %d (%s): Acked, Err = %d, %v; want %d, nil", i, o.Session.TerminalID, o.Acked, o.Err, want[i])
		}
	}
	if n := count(t, pool, `SELECT count(*) FROM tap_gaps`); n != 2 {
		t.Errorf("gaps = %d, want 2 (T2 11..20, T4 1..3)", n)
	}
	if n := count(t, pool, `SELECT count(*) FROM terminals WHERE agent_version = 'v2' AND last_seen_at IS NOT NULL`); n != 4 {
		t.Errorf("terminals seen = %d, want 4", n)
	}
}

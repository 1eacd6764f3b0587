package retention

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/liggare/liggare/server/internal/audit"
	"github.com/liggare/liggare/server/internal/ledger"
	"github.com/liggare/liggare/server/internal/registry"
	"github.com/liggare/liggare/syncproto"
)

// people are the workers of the retention scenario, with what identifies
// them.
type people struct {
	anna, bertil, cecilia, david, erik, fanny int64
}

const longCardID = "XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX" // over MaxIDBytes

// scenario fills the world with people whose data is at every stage of
// retention at 1 March 2026.
func (w *world) scenario() people {
	w.t.Helper()
	var p people
	// Anna (Bygg, calendar year): last worked in March 2023, kept until the
	// end of 2025. Taps by card number and by chip, an unknown card assigned
	// to her, and a manual period.
	p.anna = w.person(w.bygg, "Anna Andersson", "811218-9876", "AB0000000001", "04A1B2C3D4E5F6", "2021-01-10")
	w.tap("EKEN", "04DEADBEEF0001", "2023-02-01 07:00:00", "2023-02-01 15:00:00")
	w.correct(w.bygg, ledger.Correction{Kind: ledger.AssignCard, SiteID: w.eken, PersonID: p.anna, CardIdent: "04DEADBEEF0001"}, "2023-02-05 09:00:00")
	w.tap("EKEN", "AB0000000001", "2023-03-01 07:00:00")
	w.tap("EKEN", "AB0000000001", "2023-03-01 16:00:00") // a second upload: the period gets a new version
	w.tap("EKEN", "04A1B2C3D4E5F6", "2023-03-02 07:00:00", "2023-03-02 16:00:00")
	w.correct(w.bygg, ledger.Correction{Kind: ledger.ManualPeriod, SiteID: w.eken, PersonID: p.anna,
		Start: w.at("2023-03-03 08:00:00"), End: w.at("2023-03-03 16:00:00")}, "2023-03-04 09:00:00")
	// Bertil (El, tax year ending April): worked May 2023, which is El's
	// tax year ending April 2024: kept until the end of 2026, though Bygg,
	// owning the site, could let go at the end of 2025.
	p.bertil = w.person(w.el, "Bertil Berg", "750301-1236", "EL0000000002", "04B1B2C3D4E5F6", "2021-01-10")
	w.tap("EKEN", "EL0000000002", "2023-05-10 07:00:00", "2023-05-10 16:00:00")
	// Cecilia works for Hold AB, under legal hold: kept whatever her age.
	p.cecilia = w.person(w.hold, "Cecilia Ceder", "820504-2347", "HO0000000003", "04C1B2C3D4E5F6", "2019-06-01")
	w.tap("BJORKEN", "HO0000000003", "2020-03-01 07:00:00", "2020-03-01 16:00:00")
	// David (Bygg) worked long ago and again in 2025.
	p.david = w.person(w.bygg, "David Dahl", "690715-3453", "AB0000000004", "04D1B2C3D4E5F6", "2021-01-10")
	w.tap("EKEN", "AB0000000004", "2022-04-01 07:00:00", "2022-04-01 16:00:00", "2025-06-01 07:00:00", "2025-06-01 16:00:00")
	// Erik (El) worked long ago, but on Hold AB's site: Hold's hold keeps him.
	p.erik = w.person(w.el, "Erik Ek", "850920-4569", "EL0000000005", "04E1B2C3D4E5F6", "2021-01-10")
	w.tap("BJORKEN", "EL0000000005", "2021-03-01 07:00:00", "2021-03-01 16:00:00")
	// Fanny (Bygg) was registered in 2021 and never came.
	p.fanny = w.person(w.bygg, "Fanny Fors", "771111-5670", "AB0000000006", "04F1B2C3D4E5F6", "2021-01-10")

	// Unknown cards: old and recent at Eken, old at Björken (on hold), and
	// old at a terminal placed nowhere (the default rule).
	w.tap("EKEN", "04CAFE00000001", "2022-01-10 07:00:00")
	w.tap("EKEN", "04CAFE00000002", "2025-06-01 07:00:00")
	w.tap("BJORKEN", "04CAFE00000003", "2021-01-10 07:00:00")
	w.tap("NOWHERE", "04CAFE00000004", "2021-06-01 07:00:00")

	// Rejected taps at Eken in 2022: a card id too long (dead letter), and
	// the same tap identity sent twice with different cards (conflict).
	w.received = w.at("2022-02-01 08:00:00")
	w.tap("EKEN", longCardID, "2022-02-01 07:00:00")
	w.tap("EKEN", "04C0FF1C700001", "2022-02-01 07:30:00")
	w.seqs["EKEN"]--
	w.tap("EKEN", "04C0FF1C700002", "2022-02-01 07:30:00")
	w.received = time.Now()
	return p
}

func TestRetention(t *testing.T) {
	w := newWorld(t)
	p := w.scenario()
	ctx := context.Background()
	if n := scalar[int](t, w.pool, `SELECT count(*)::int FROM dead_letters`); n != 1 {
		t.Fatalf("scenario: %d dead letters, want 1", n)
	}
	if n := scalar[int](t, w.pool, `SELECT count(*)::int FROM tap_conflicts`); n != 1 {
		t.Fatalf("scenario: %d tap conflicts, want 1", n)
	}
	annaPeriods := scalar[int](t, w.pool, `SELECT count(*)::int FROM work_periods WHERE person_id = $1`, p.anna)
	if annaPeriods < 4 {
		t.Fatalf("scenario: Anna has %d work period versions, want at least 4", annaPeriods)
	}

	job := &Job{Pool: w.pool, Batch: 1} // batches of one tap: the loops must go on until done
	now := w.at("2026-03-01 12:00:00")
	rep, err := job.RunOnce(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	want := Report{
		Orgs: []OrgReport{
			{OrgID: 0, UnknownTaps: 1},                            // the terminal placed nowhere
			{OrgID: w.bygg, PersonsAnonymised: 2, UnknownTaps: 2}, // Anna, Fanny; 04CAFE..01 and the conflict's original
			{OrgID: w.el, PersonsHeld: 1},                         // Erik, for Hold's sake
		},
		OrgsOnHold:   1,
		RejectedTaps: 2,
	}
	if diff := cmp.Diff(want, rep); diff != "" {
		t.Errorf("RunOnce(%v) report (-want +got):\n%s", now, diff)
	}

	// Anna and Fanny are anonymous, everywhere.
	for _, id := range []int64{p.anna, p.fanny} {
		var name, masked string
		var enc []byte
		var country *string
		var anonAt *time.Time
		if err := w.pool.QueryRow(ctx, `SELECT name, id_enc, id_masked, id_country, anonymised_at FROM persons WHERE person_id = $1`, id).
			Scan(&name, &enc, &masked, &country, &anonAt); err != nil {
			t.Fatal(err)
		}
		if name != AnonymousName || len(enc) != 0 || masked != AnonymousMasked || country != nil || anonAt == nil || !anonAt.Equal(now) {
			t.Errorf("person %d after retention: %q %x %q %v %v", id, name, enc, masked, country, anonAt)
		}
		if _, err := w.reg.IdentityNumber(ctx, w.bygg, id); !errors.Is(err, registry.ErrNotFound) {
			t.Errorf("IdentityNumber of an anonymised person = %v, want ErrNotFound", err)
		}
	}
	gone := []string{
		"Anna Andersson", "811218-9876", "8112189876", "19811218-****", "AB0000000001", "04A1B2C3D4E5F6", "04DEADBEEF0001",
		"Fanny Fors", "771111", "AB0000000006", "04F1B2C3D4E5F6",
		"04CAFE00000001", "04CAFE00000004", longCardID, "04C0FF1C700001", "04C0FF1C700002",
	}
	for _, s := range gone {
		if got := w.rowsHolding(s); len(got) > 0 {
			t.Errorf("rows still holding %q: %v", s, got)
		}
	}
	kept := []string{
		"Bertil Berg", "EL0000000002", "04B1B2C3D4E5F6", "Cecilia Ceder", "HO0000000003", "David Dahl", "AB0000000004",
		"Erik Ek", "EL0000000005", "04CAFE00000002", "04CAFE00000003",
	}
	for _, s := range kept {
		if got := w.rowsHolding(s); len(got) == 0 {
			t.Errorf("%q is gone, but it is not past retention", s)
		}
	}
	// The ledger keeps its shape: every version of Anna's periods is there,
	// shown as the anonymous person's.
	if n := scalar[int](t, w.pool, `SELECT count(*)::int FROM work_periods WHERE person_id = $1`, p.anna); n != annaPeriods {
		t.Errorf("Anna's work periods: %d versions after retention, want %d", n, annaPeriods)
	}
	periods, err := w.ledger.Periods(ctx, w.bygg, ledger.PeriodQuery{SiteID: w.eken, PersonID: p.anna})
	if err != nil || len(periods) != 4 {
		t.Fatalf("Periods(Anna) = %d periods, %v; want 4", len(periods), err)
	}
	for _, r := range periods {
		if r.PersonName != AnonymousName || r.PersonIDMasked != AnonymousMasked || r.Start == nil || r.End == nil {
			t.Errorf("period after retention: %+v", r)
		}
	}

	// Every change is in the audit log, with counts only.
	entries, err := audit.List(ctx, w.pool, w.bygg, audit.Filter{Action: audit.ActionRetentionAnonymise})
	if err != nil {
		t.Fatal(err)
	}
	byPerson := map[int64]audit.Entry{}
	for _, e := range entries {
		byPerson[e.PersonID] = e
	}
	annaEntry := byPerson[p.anna]
	if len(entries) != 2 || annaEntry.Actor != Actor || annaEntry.OrgID != w.bygg || byPerson[p.fanny].Actor != Actor {
		t.Fatalf("audit entries of anonymisation = %+v", entries)
	}
	wantDetail := map[string]any{"cards": 1.0, "chips": 1.0, "taps": 6.0, "corrections": 1.0, "kept_until": "2026-01-01T00:00:00+01:00"}
	if diff := cmp.Diff(wantDetail, annaEntry.Detail); diff != "" {
		t.Errorf("Anna's audit detail (-want +got):\n%s", diff)
	}
	if n := scalar[int](t, w.pool, `SELECT count(*)::int FROM audit_log WHERE action IN ($1, $2)`,
		audit.ActionRetentionUnknownTaps, audit.ActionRetentionRejectedTaps); n == 0 {
		t.Error("no audit entries for anonymised unknown and rejected taps")
	}

	// Again: nothing more to do, nothing more logged.
	before := scalar[int](t, w.pool, `SELECT count(*)::int FROM audit_log`)
	rep, err = job.RunOnce(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	want = Report{Orgs: []OrgReport{{OrgID: w.el, PersonsHeld: 1}}, OrgsOnHold: 1}
	if diff := cmp.Diff(want, rep); diff != "" {
		t.Errorf("second RunOnce report (-want +got):\n%s", diff)
	}
	if after := scalar[int](t, w.pool, `SELECT count(*)::int FROM audit_log`); after != before {
		t.Errorf("second run wrote %d audit entries", after-before)
	}

	// A new year: Bertil's broken tax year has run out too.
	now = w.at("2027-01-01 00:00:00")
	if rep, err = job.RunOnce(ctx, now); err != nil {
		t.Fatal(err)
	}
	if rep.PersonsAnonymised() != 1 || w.anonymised(p.bertil) == nil || w.anonymised(p.david) != nil {
		t.Errorf("RunOnce(%v) = %+v; Bertil anonymised %v, David %v", now, rep, w.anonymised(p.bertil), w.anonymised(p.david))
	}
	if got := w.rowsHolding("EL0000000002"); len(got) > 0 {
		t.Errorf("Bertil's card number remains in %v", got)
	}

	// The hold is lifted: Hold's own people and those it kept go.
	exec(t, w.pool, `UPDATE organisations SET legal_hold = false WHERE org_id = $1`, w.hold)
	if rep, err = job.RunOnce(ctx, now); err != nil {
		t.Fatal(err)
	}
	if rep.OrgsOnHold != 0 || w.anonymised(p.cecilia) == nil || w.anonymised(p.erik) == nil || rep.UnknownTaps() != 1 {
		t.Errorf("after the hold: %+v; Cecilia %v, Erik %v", rep, w.anonymised(p.cecilia), w.anonymised(p.erik))
	}
	for _, s := range []string{"HO0000000003", "EL0000000005", "04CAFE00000003"} {
		if got := w.rowsHolding(s); len(got) > 0 {
			t.Errorf("%q remains in %v", s, got)
		}
	}
	if w.anonymised(p.david) != nil {
		t.Error("David, who worked in 2025, was anonymised")
	}
}

func (w *world) anonymised(person int64) *time.Time {
	w.t.Helper()
	return scalar[*time.Time](w.t, w.pool, `SELECT anonymised_at FROM persons WHERE person_id = $1`, person)
}

// TestLateTapKeepsPerson: a person due by the first look is kept when a
// tap of theirs arrives before the job gets to them: the check under lock
// sees it.
func TestLateTapKeepsPerson(t *testing.T) {
	w := newWorld(t)
	anna := w.person(w.bygg, "Anna Andersson", "811218-9876", "AB0000000001", "04A1B2C3D4E5F6", "2021-01-10")
	w.tap("EKEN", "AB0000000001", "2022-03-01 07:00:00")
	ctx := context.Background()
	now := w.at("2026-03-01 12:00:00")
	var outcome personOutcome
	tx, err := w.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	w.tap("EKEN", "AB0000000001", "2026-02-27 07:00:00") // arrives between the scan and the transaction
	if outcome, err = anonymiseIfDue(ctx, tx, w.bygg, anna, now); err != nil || outcome != outcomeNotDue {
		t.Errorf("anonymiseIfDue after a new tap = %v, %v; want not due", outcome, err)
	}
}

func TestRunOnceSkipsWhileAnotherReplicaRuns(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	conn, err := w.pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, LockKey); err != nil {
		t.Fatal(err)
	}
	job := &Job{Pool: w.pool}
	if rep, err := job.RunOnce(ctx, time.Now()); err != nil || !rep.Skipped {
		t.Errorf("RunOnce while locked = %+v, %v; want skipped", rep, err)
	}
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_unlock($1)`, LockKey); err != nil {
		t.Fatal(err)
	}
	if rep, err := job.RunOnce(ctx, time.Now()); err != nil || rep.Skipped {
		t.Errorf("RunOnce after unlock = %+v, %v", rep, err)
	}
}

// runLog signals each finished run and records every message.
type runLog struct {
	done chan struct{}
	msgs chan string
}

func (h *runLog) Enabled(context.Context, slog.Level) bool { return true }
func (h *runLog) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Message)
	r.Attrs(func(a slog.Attr) bool {
		b.WriteString(" " + a.Key + "=" + a.Value.String())
		return true
	})
	select {
	case h.msgs <- b.String():
	default:
	}
	if r.Message == "retention_run_done" {
		h.done <- struct{}{}
	}
	return nil
}
func (h *runLog) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *runLog) WithGroup(string) slog.Handler      { return h }

func TestRunRunsAtOnceAndStopsWithContext(t *testing.T) {
	w := newWorld(t)
	w.person(w.bygg, "Fanny Fors", "771111-5670", "AB0000000006", "04F1B2C3D4E5F6", "2021-01-10")
	h := &runLog{done: make(chan struct{}, 1), msgs: make(chan string, 100)}
	ctx, cancel := context.WithCancel(context.Background())
	job := &Job{Pool: w.pool, Logger: slog.New(h), Interval: time.Hour}
	errc := make(chan error, 1)
	go func() { errc <- job.Run(ctx) }()
	<-h.done
	cancel()
	if err := <-errc; err != nil {
		t.Errorf("Run = %v, want nil after the context ends", err)
	}
	close(h.msgs)
	for m := range h.msgs {
		// Logs carry ids and counts, never names or numbers.
		for _, s := range []string{"Fanny", "771111", "AB0000000006", "04F1B2C3D4E5F6"} {
			if strings.Contains(m, s) {
				t.Errorf("log %q holds %q", m, s)
			}
		}
	}
}

// TestRejectedTapPayloadStaysATap checks that an anonymised dead letter is
// still a tap ingest can read back (it does, to answer a repeat), with only
// its card id changed.
func TestRejectedTapPayloadStaysATap(t *testing.T) {
	w := newWorld(t)
	w.received = w.at("2022-02-01 08:00:00")
	w.tap("EKEN", longCardID, "2022-02-01 07:00:00")
	ctx := context.Background()
	if _, err := (&Job{Pool: w.pool}).RunOnce(ctx, w.at("2026-03-01 12:00:00")); err != nil {
		t.Fatal(err)
	}
	var payload []byte
	if err := w.pool.QueryRow(ctx, `SELECT payload FROM dead_letters`).Scan(&payload); err != nil {
		t.Fatal(err)
	}
	var got syncproto.Tap
	if err := json.Unmarshal(payload, &got); err != nil {
		t.Fatalf("anonymised payload %s: %v", payload, err)
	}
	want := syncproto.Tap{Seq: 1, CardID: AnonymousCardIdent,
		Clock: syncproto.Clock{WallMicros: w.at("2022-02-01 07:00:00").UnixMicro(), BootID: "b", MonoNanos: 1}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("anonymised dead letter (-want +got):\n%s", diff)
	}
}

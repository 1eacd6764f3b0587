package retention

import (
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/liggare/liggare/server/internal/audit"
)

// Defaults of a Job.
const (
	// DefaultInterval is how often Run runs the job.
	DefaultInterval = 24 * time.Hour
	// DefaultBatch is how many taps one transaction anonymises.
	DefaultBatch = 5000
)

// LockKey is the pg_advisory_lock key RunOnce holds while it runs, so that
// of several server replicas only one runs the job at a time: the ASCII
// bytes "LiggareR" read as a big-endian int64.
const LockKey int64 = 0x4c69676761726552

// Actor is the audit log's actor for what the job does.
const Actor = "system:retention"

// What anonymised data is replaced with.
const (
	// AnonymousName replaces a person's name.
	AnonymousName = "Anonymiserad"
	// AnonymousMasked replaces a person's masked identity number.
	AnonymousMasked = "********-****"
	// AnonymousCardIdent replaces the card id of an anonymised tap (taps,
	// tap_resolutions), of a correction, and of a rejected tap's payload.
	AnonymousCardIdent = "ANONYMISED"
	// AnonymousCardPrefix, followed by the card's id, replaces the card
	// number of an anonymised person's card: unique, as the schema wants, and
	// never a valid ID06 number (two letters, then digits).
	AnonymousCardPrefix = "ANON"
)

// Log keys.
const (
	logErr       = "err"
	logOrg       = "org_id"
	logPersons   = "persons"
	logHeld      = "persons_held"
	logUnknown   = "unknown_taps"
	logRejected  = "rejected_taps"
	logHeldOrgs  = "orgs_on_hold"
	logDuration  = "duration"
	logNextRunIn = "next_run_in"
)

// Job anonymises personal data whose retention has ended. Set Pool; the
// other fields have defaults.
type Job struct {
	Pool *pgxpool.Pool
	// Logger receives a summary of each run; nil discards it.
	Logger *slog.Logger
	// Interval is the time between runs of Run; 0 means DefaultInterval.
	Interval time.Duration
	// Batch is how many taps one transaction anonymises; 0 means
	// DefaultBatch.
	Batch int
}

// Report says what one run did.
type Report struct {
	// Skipped: another replica was running the job; this run did nothing.
	Skipped bool
	// Orgs has one entry for each organisation the run changed something
	// of, or kept something of because of a legal hold elsewhere, by id.
	Orgs []OrgReport
	// OrgsOnHold is how many organisations are under legal hold: none of
	// their people, nor the unknown taps at their sites, were looked at.
	OrgsOnHold int
	// RejectedTaps is how many dead-lettered and conflicting taps had their
	// card id anonymised.
	RejectedTaps int
}

// OrgReport is what a run did for one organisation.
type OrgReport struct {
	OrgID int64
	// PersonsAnonymised is how many of its people were anonymised.
	PersonsAnonymised int
	// PersonsHeld is how many of its people are past its own retention but
	// were kept because a site they worked on belongs to an organisation
	// under legal hold or with a longer retention.
	PersonsHeld int
	// UnknownTaps is how many taps of unknown cards at its sites (or, for
	// OrgID 0, at no site) had their card id anonymised.
	UnknownTaps int
}

// PersonsAnonymised returns the number of people the run anonymised.
func (r Report) PersonsAnonymised() int {
	n := 0
	for _, o := range r.Orgs {
		n += o.PersonsAnonymised
	}
	return n
}

// UnknownTaps returns the number of unknown taps the run anonymised.
func (r Report) UnknownTaps() int {
	n := 0
	for _, o := range r.Orgs {
		n += o.UnknownTaps
	}
	return n
}

func (j *Job) logger() *slog.Logger {
	if j.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return j.Logger
}

func (j *Job) batch() int {
	if j.Batch <= 0 {
		return DefaultBatch
	}
	return j.Batch
}

// Run runs the job at once and then every Interval until ctx ends. A failed
// run is logged and tried again at the next interval. It returns nil when
// ctx ends.
func (j *Job) Run(ctx context.Context) error {
	interval := j.Interval
	if interval <= 0 {
		interval = DefaultInterval
	}
	for {
		if _, err := j.RunOnce(ctx, time.Now()); err != nil && ctx.Err() == nil {
			j.logger().Error("retention_run_failed", logErr, err, logNextRunIn, interval)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(interval):
		}
	}
}

// org is an organisation's retention settings.
type org struct {
	id    int64
	month int
	years int
	hold  bool
}

func (o org) cutoff(now time.Time) time.Time { return Cutoff(now, o.month, o.years) }

// RunOnce anonymises, as of now, what is past retention and under no legal
// hold:
//   - each person whose latest activity is past the retention of their
//     employer and of every organisation owning a site they worked on;
//   - the card ids of unknown taps past the retention of the site's owner
//     (of the default rule for taps at no site);
//   - the card ids of dead-lettered and conflicting taps, reckoned the same
//     way from where the terminal stood when they arrived.
//
// Each person is anonymised in a transaction of their own, with an audit
// entry; taps in batches. A run stopped half-way leaves only whole steps
// done, and the next run goes on from there: doing it again changes nothing.
func (j *Job) RunOnce(ctx context.Context, now time.Time) (Report, error) {
	began := time.Now()
	var rep Report
	conn, err := j.Pool.Acquire(ctx)
	if err != nil {
		return rep, fmt.Errorf("retention: %w", err)
	}
	defer conn.Release()
	var locked bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, LockKey).Scan(&locked); err != nil {
		return rep, fmt.Errorf("retention: lock: %w", err)
	}
	if !locked {
		rep.Skipped = true
		j.logger().Info("retention_skipped_other_replica_running")
		return rep, nil
	}
	defer func() {
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if _, err := conn.Exec(uctx, `SELECT pg_advisory_unlock($1)`, LockKey); err != nil {
			// A lock we cannot release would stop every later run: drop
			// the connection, which releases it.
			conn.Conn().Close(uctx)
		}
	}()

	orgs, err := j.loadOrgs(ctx)
	if err != nil {
		return rep, err
	}
	reports := make(map[int64]*OrgReport)
	at := func(id int64) *OrgReport {
		if reports[id] == nil {
			reports[id] = &OrgReport{OrgID: id}
		}
		return reports[id]
	}
	ids := make([]int64, 0, len(orgs))
	for id, o := range orgs {
		if o.hold {
			rep.OrgsOnHold++
			continue
		}
		ids = append(ids, id)
	}
	slices.Sort(ids)
	// A failure with one organisation or step must not hold back the
	// others: it is reported, and the next run tries again.
	var errs []error
	for _, id := range ids {
		if ctx.Err() != nil {
			break
		}
		done, held, err := j.anonymisePersons(ctx, orgs[id], now)
		if done > 0 || held > 0 {
			at(id).PersonsAnonymised += done
			at(id).PersonsHeld += held
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	if ctx.Err() == nil {
		if err := j.anonymiseUnknownTaps(ctx, orgs, now, func(org int64, n int) { at(org).UnknownTaps += n }); err != nil {
			errs = append(errs, err)
		}
	}
	if ctx.Err() == nil {
		n, err := j.anonymiseRejectedTaps(ctx, orgs, now)
		rep.RejectedTaps = n
		if err != nil {
			errs = append(errs, err)
		}
	}
	if err := ctx.Err(); err != nil && len(errs) == 0 {
		errs = append(errs, fmt.Errorf("retention: %w", err))
	}
	runErr := errors.Join(errs...)

	for _, r := range reports {
		rep.Orgs = append(rep.Orgs, *r)
	}
	slices.SortFunc(rep.Orgs, func(a, b OrgReport) int { return cmp.Compare(a.OrgID, b.OrgID) })
	log := j.logger()
	for _, r := range rep.Orgs {
		log.Info("retention_org_done", logOrg, r.OrgID, logPersons, r.PersonsAnonymised, logHeld, r.PersonsHeld, logUnknown, r.UnknownTaps)
	}
	log.Info("retention_run_done", logPersons, rep.PersonsAnonymised(), logUnknown, rep.UnknownTaps(),
		logRejected, rep.RejectedTaps, logHeldOrgs, rep.OrgsOnHold, logDuration, time.Since(began))
	return rep, runErr
}

// loadOrgs reads every organisation's retention settings.
func (j *Job) loadOrgs(ctx context.Context) (map[int64]org, error) {
	rows, err := j.Pool.Query(ctx, `SELECT org_id, tax_year_end_month, retention_years, legal_hold FROM organisations`)
	if err != nil {
		return nil, fmt.Errorf("retention: load organisations: %w", err)
	}
	out := make(map[int64]org)
	var o org
	_, err = pgx.ForEachRow(rows, []any{&o.id, &o.month, &o.years, &o.hold}, func() error {
		out[o.id] = o
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("retention: load organisations: %w", err)
	}
	return out, nil
}

// activitySQL finds, for people of organisation $1 not yet anonymised (all
// of them, or only person $2), those whose latest activity is before $3,
// with that activity and the owners of every site they appear at.
// Activity is anything that shows the person's data in use: the person's
// registration, their cards' registration or update, every version of their
// work periods, their taps, and corrections concerning them.
//
// Taps are read from tap_marks, not tap_resolutions: a counted tap (the
// view's other rows) is named by a current period of the person, at its
// site and at the time of that period's end (migration 0014), so the
// periods already bring its site and time. The view would parse and join
// every period's refs for nothing.
const activitySQL = `
	SELECT a.person_id, a.latest, ARRAY(
		SELECT DISTINCT s.org_id FROM sites s WHERE s.site_id IN (
			SELECT wp.site_id FROM work_periods wp WHERE wp.person_id = a.person_id
			UNION SELECT tm.site_id FROM tap_marks tm WHERE tm.person_id = a.person_id
			UNION SELECT c.site_id FROM corrections c WHERE c.person_id = a.person_id)) AS owners
	FROM (
		SELECT p.person_id, greatest(p.created_at,
			(SELECT max(greatest(wp.start_at, wp.end_at)) FROM work_periods wp WHERE wp.person_id = p.person_id),
			(SELECT max(tm.event_time) FROM tap_marks tm WHERE tm.person_id = p.person_id),
			(SELECT max(greatest(c.created_at, c.start_at, c.end_at)) FROM corrections c WHERE c.person_id = p.person_id),
			(SELECT max(greatest(k.created_at, k.updated_at)) FROM cards k WHERE k.person_id = p.person_id)) AS latest
		FROM persons p
		WHERE p.org_id = $1 AND p.anonymised_at IS NULL AND ($2::bigint = 0 OR p.person_id = $2)
		  AND p.created_at < $3
	) a
	WHERE a.latest < $3
	ORDER BY a.person_id`

// candidate is a person past their employer's retention.
type candidate struct {
	personID int64
	latest   time.Time
	owners   []int64
}

func scanCandidates(rows pgx.Rows) ([]candidate, error) {
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (candidate, error) {
		var c candidate
		err := row.Scan(&c.personID, &c.latest, &c.owners)
		return c, err
	})
}

// anonymisePersons anonymises the people of employer that are due at now,
// and reports how many it anonymised and how many it kept for another
// organisation's sake.
func (j *Job) anonymisePersons(ctx context.Context, employer org, now time.Time) (done, held int, err error) {
	rows, err := j.Pool.Query(ctx, activitySQL, employer.id, 0, employer.cutoff(now))
	if err != nil {
		return 0, 0, fmt.Errorf("retention: find people of organisation %d: %w", employer.id, err)
	}
	cands, err := scanCandidates(rows)
	if err != nil {
		return 0, 0, fmt.Errorf("retention: find people of organisation %d: %w", employer.id, err)
	}
	failed := 0
	var first error
	for _, c := range cands {
		if err := ctx.Err(); err != nil {
			return done, held, fmt.Errorf("retention: %w", err)
		}
		var outcome personOutcome
		err := pgx.BeginFunc(ctx, j.Pool, func(tx pgx.Tx) error {
			var err error
			outcome, err = anonymiseIfDue(ctx, tx, employer.id, c.personID, now)
			return err
		})
		if err != nil {
			// One person's failure must not keep the others: go on, and
			// report. The error names no person.
			failed++
			if first == nil {
				first = err
			}
			j.logger().Error("retention_person_failed", logOrg, employer.id, logErr, err)
			continue
		}
		switch outcome {
		case outcomeAnonymised:
			done++
		case outcomeHeld:
			held++
		}
	}
	if failed > 0 {
		return done, held, fmt.Errorf("retention: %d people of organisation %d not anonymised, the first because: %w",
			failed, employer.id, first)
	}
	return done, held, nil
}

type personOutcome int

const (
	outcomeNotDue personOutcome = iota // not (or no longer) due, or done already
	outcomeHeld                        // due for the employer, kept for a site owner
	outcomeAnonymised
)

// anonymiseIfDue checks again, in tx and with the person and the
// organisations concerned locked, that the person is due, and anonymises
// them. Checking again under the locks makes the job safe against a tap
// arriving, a legal hold being set or another replica running meanwhile.
func anonymiseIfDue(ctx context.Context, tx pgx.Tx, employer, personID int64, now time.Time) (personOutcome, error) {
	var found bool
	err := tx.QueryRow(ctx, `SELECT true FROM persons WHERE person_id = $1 AND org_id = $2 AND anonymised_at IS NULL
		FOR NO KEY UPDATE`, personID, employer).Scan(&found)
	if errors.Is(err, pgx.ErrNoRows) {
		return outcomeNotDue, nil
	}
	if err != nil {
		return 0, err
	}
	// Lock the organisations' rows FOR SHARE: a legal hold set now waits
	// for this transaction, and this transaction sees any set before.
	var emp org
	err = tx.QueryRow(ctx, `SELECT org_id, tax_year_end_month, retention_years, legal_hold FROM organisations
		WHERE org_id = $1 FOR SHARE`, employer).Scan(&emp.id, &emp.month, &emp.years, &emp.hold)
	if err != nil {
		return 0, err
	}
	if emp.hold {
		return outcomeNotDue, nil
	}
	rows, err := tx.Query(ctx, activitySQL, employer, personID, emp.cutoff(now))
	if err != nil {
		return 0, err
	}
	cands, err := scanCandidates(rows)
	if err != nil {
		return 0, err
	}
	if len(cands) == 0 {
		return outcomeNotDue, nil
	}
	c := cands[0]
	keep := KeepUntil(c.latest, emp.month, emp.years)
	rows, err = tx.Query(ctx, `SELECT org_id, tax_year_end_month, retention_years, legal_hold FROM organisations
		WHERE org_id = ANY($1) ORDER BY org_id FOR SHARE`, c.owners)
	if err != nil {
		return 0, err
	}
	owners, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (org, error) {
		var o org
		err := row.Scan(&o.id, &o.month, &o.years, &o.hold)
		return o, err
	})
	if err != nil {
		return 0, err
	}
	for _, o := range owners {
		if o.hold || !c.latest.Before(o.cutoff(now)) {
			return outcomeHeld, nil
		}
		if k := KeepUntil(c.latest, o.month, o.years); k.After(keep) {
			keep = k
		}
	}
	counts, err := anonymise(ctx, tx, personID, now)
	if err != nil {
		return 0, err
	}
	counts["kept_until"] = keep.Format(time.RFC3339)
	err = audit.Record(ctx, tx, audit.Entry{
		Actor: Actor, Action: audit.ActionRetentionAnonymise, OrgID: employer, PersonID: personID, Detail: counts,
	})
	if err != nil {
		return 0, err
	}
	return outcomeAnonymised, nil
}

// anonymise replaces every identifying datum of a person in tx and says how
// many rows of each kind it changed. See the package documentation for
// what is replaced and why.
func anonymise(ctx context.Context, tx pgx.Tx, personID int64, now time.Time) (map[string]any, error) {
	// A random blind index: unique as the schema wants, and matching no
	// identity number ever again, so registering the person anew makes a
	// new person.
	index := make([]byte, 32)
	rand.Read(index) // never fails since Go 1.24
	if _, err := tx.Exec(ctx, `
		UPDATE persons SET name = $2, id_enc = '\x'::bytea, id_index = $3, id_masked = $4, id_country = NULL,
			anonymised_at = $5
		WHERE person_id = $1`, personID, AnonymousName, index, AnonymousMasked, now); err != nil {
		return nil, fmt.Errorf("person: %w", err)
	}
	rows, err := tx.Query(ctx, `
		UPDATE cards SET card_number = $2::text || card_id::text, updated_at = $3 WHERE person_id = $1 RETURNING card_id`,
		personID, AnonymousCardPrefix, now)
	if err != nil {
		return nil, fmt.Errorf("cards: %w", err)
	}
	cards, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, fmt.Errorf("cards: %w", err)
	}
	chips, err := tx.Exec(ctx, `DELETE FROM card_chips WHERE card_id = ANY($1)`, cards)
	if err != nil {
		return nil, fmt.Errorf("card chips: %w", err)
	}
	var taps int64
	err = tx.QueryRow(ctx, `
		WITH res AS (
			-- The person's taps: rows of tap_marks, and counted taps, whose
			-- card id the view reads from taps (migration 0010).
			SELECT terminal_id, store_epoch, seq FROM tap_resolutions WHERE person_id = $1 AND card_ident <> $2),
		marks AS (
			UPDATE tap_marks tm SET card_ident = $2 FROM res
			WHERE tm.terminal_id = res.terminal_id AND tm.store_epoch = res.store_epoch AND tm.seq = res.seq),
		raw AS (
			UPDATE taps t SET card_id = $2 FROM res
			WHERE t.terminal_id = res.terminal_id AND t.store_epoch = res.store_epoch AND t.seq = res.seq
			RETURNING 1)
		SELECT count(*) FROM raw`, personID, AnonymousCardIdent).Scan(&taps)
	if err != nil {
		return nil, fmt.Errorf("taps: %w", err)
	}
	corr, err := tx.Exec(ctx, `UPDATE corrections SET card_ident = $2 WHERE person_id = $1 AND card_ident <> $2`,
		personID, AnonymousCardIdent)
	if err != nil {
		return nil, fmt.Errorf("corrections: %w", err)
	}
	return map[string]any{
		"cards": len(cards), "chips": chips.RowsAffected(), "taps": taps, "corrections": corr.RowsAffected(),
	}, nil
}

// cutoffs returns, for the organisations not under legal hold, their ids
// and cutoffs at now, as arrays for SQL. An organisation under hold is
// missing, and SQL reads a missing cutoff as "keep".
func cutoffs(orgs map[int64]org, now time.Time) ([]int64, []time.Time) {
	var ids []int64
	var cuts []time.Time
	for id, o := range orgs {
		if !o.hold {
			ids, cuts = append(ids, id), append(cuts, o.cutoff(now))
		}
	}
	return ids, cuts
}

// group is a count of taps anonymised for one organisation (and site).
type group struct {
	org, site int64
	taps      int
}

// anonymiseUnknownTaps anonymises the card ids of taps nobody was found for
// that are past the retention of the site's owner, in batches, and reports
// the counts per owner through add.
func (j *Job) anonymiseUnknownTaps(ctx context.Context, orgs map[int64]org, now time.Time, add func(org int64, n int)) error {
	ids, cuts := cutoffs(orgs, now)
	noSite := Cutoff(now, DefaultTaxYearEndMonth, DefaultRetentionYears)
	for {
		n := 0
		var done []group
		err := pgx.BeginFunc(ctx, j.Pool, func(tx pgx.Tx) error {
			rows, err := tx.Query(ctx, `
				WITH rules AS (SELECT * FROM unnest($1::bigint[], $2::timestamptz[]) AS r(org_id, cutoff)),
				hit AS (
					SELECT tr.terminal_id, tr.store_epoch, tr.seq FROM tap_marks tr
					LEFT JOIN sites s ON s.site_id = tr.site_id
					LEFT JOIN rules r ON r.org_id = s.org_id
					WHERE tr.person_id IS NULL AND tr.card_ident <> $3
					  AND tr.event_time < CASE WHEN tr.site_id IS NULL THEN $4::timestamptz ELSE r.cutoff END
					LIMIT $5),
				res AS (
					UPDATE tap_marks tr SET card_ident = $3 FROM hit
					WHERE tr.terminal_id = hit.terminal_id AND tr.store_epoch = hit.store_epoch AND tr.seq = hit.seq
					  AND tr.person_id IS NULL
					RETURNING tr.terminal_id, tr.store_epoch, tr.seq, tr.site_id),
				raw AS (
					UPDATE taps t SET card_id = $3 FROM res
					WHERE t.terminal_id = res.terminal_id AND t.store_epoch = res.store_epoch AND t.seq = res.seq
					RETURNING 1)
				SELECT coalesce(s.org_id, 0), coalesce(res.site_id, 0), count(*)::int
				FROM res LEFT JOIN sites s ON s.site_id = res.site_id
				GROUP BY 1, 2 ORDER BY 1, 2`,
				ids, cuts, AnonymousCardIdent, noSite, j.batch())
			if err != nil {
				return err
			}
			groups, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (group, error) {
				var g group
				err := row.Scan(&g.org, &g.site, &g.taps)
				return g, err
			})
			if err != nil {
				return err
			}
			for _, g := range groups {
				n += g.taps
				err := audit.Record(ctx, tx, audit.Entry{Actor: Actor, Action: audit.ActionRetentionUnknownTaps,
					OrgID: g.org, SiteID: g.site, Detail: map[string]any{"taps": g.taps}})
				if err != nil {
					return err
				}
			}
			done = groups
			return nil
		})
		if err != nil {
			return fmt.Errorf("retention: anonymise unknown taps: %w", err)
		}
		for _, g := range done {
			add(g.org, g.taps)
		}
		if n == 0 {
			return nil
		}
	}
}

// rejectedSQL anonymises the card id in the payload of up to $5 rows of a
// table of rejected taps ({{table}}: dead_letters or tap_conflicts, keyed by
// {{key}}) that arrived before the cutoff of the owner of the site where the
// terminal stood then ($4 where it stood nowhere), and counts them per owner.
const rejectedSQL = `
	WITH rules AS (SELECT * FROM unnest($1::bigint[], $2::timestamptz[]) AS r(org_id, cutoff)),
	hit AS (
		SELECT {{key}}, o.org_id FROM {{table}} x
		LEFT JOIN LATERAL (
			SELECT s.org_id FROM terminal_assignments ta JOIN sites s ON s.site_id = ta.site_id
			WHERE ta.terminal_id = x.terminal_id AND ta.valid_from <= x.received_at
			ORDER BY ta.valid_from DESC LIMIT 1) o ON true
		LEFT JOIN rules r ON r.org_id = o.org_id
		WHERE x.payload ? 'CardID' AND x.payload->>'CardID' <> $3
		  AND x.received_at < CASE WHEN o.org_id IS NULL THEN $4::timestamptz ELSE r.cutoff END
		LIMIT $5),
	res AS (
		UPDATE {{table}} x SET payload = jsonb_set(x.payload, '{CardID}', to_jsonb($3::text))
		FROM hit WHERE ({{xkey}}) = ({{hkey}})
		RETURNING hit.org_id)
	SELECT coalesce(org_id, 0), count(*)::int FROM res GROUP BY 1 ORDER BY 1`

// anonymiseRejectedTaps anonymises the card ids kept in dead letters and
// quarantined conflicts, like those of unknown taps. It returns the count.
func (j *Job) anonymiseRejectedTaps(ctx context.Context, orgs map[int64]org, now time.Time) (int, error) {
	ids, cuts := cutoffs(orgs, now)
	noSite := Cutoff(now, DefaultTaxYearEndMonth, DefaultRetentionYears)
	total := 0
	for _, tbl := range []struct{ table, key, xkey, hkey string }{
		{"dead_letters", "x.terminal_id, x.store_epoch, x.seq",
			"x.terminal_id, x.store_epoch, x.seq", "hit.terminal_id, hit.store_epoch, hit.seq"},
		{"tap_conflicts", "x.conflict_id", "x.conflict_id", "hit.conflict_id"},
	} {
		sql := strings.NewReplacer("{{table}}", tbl.table, "{{key}}", tbl.key, "{{xkey}}", tbl.xkey, "{{hkey}}", tbl.hkey).
			Replace(rejectedSQL)
		for {
			n := 0
			err := pgx.BeginFunc(ctx, j.Pool, func(tx pgx.Tx) error {
				rows, err := tx.Query(ctx, sql, ids, cuts, AnonymousCardIdent, noSite, j.batch())
				if err != nil {
					return err
				}
				groups, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (group, error) {
					var g group
					err := row.Scan(&g.org, &g.taps)
					return g, err
				})
				if err != nil {
					return err
				}
				for _, g := range groups {
					n += g.taps
					err := audit.Record(ctx, tx, audit.Entry{Actor: Actor, Action: audit.ActionRetentionRejectedTaps,
						OrgID: g.org, Detail: map[string]any{tbl.table: g.taps}})
					if err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				return total, fmt.Errorf("retention: anonymise %s: %w", tbl.table, err)
			}
			total += n
			if n == 0 {
				break
			}
		}
	}
	return total, nil
}

package ingest

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/liggare/liggare/server/internal/pgarray"
	"github.com/liggare/liggare/syncproto"
)

// Log keys used by this package.
const (
	logTerminal = "terminal_id"
	logEpoch    = "store_epoch"
	logSeq      = "seq"
	logErr      = "err"
)

// Store applies uploaded batches to PostgreSQL.
type Store struct {
	pool   *pgxpool.Pool
	logger *slog.Logger
}

// NewStore returns a Store on pool. logger may be nil.
func NewStore(pool *pgxpool.Pool, logger *slog.Logger) *Store {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Store{pool: pool, logger: logger}
}

// Submission is one Batch from one session, waiting to be applied.
type Submission struct {
	Session  *Session
	Batch    *syncproto.Batch
	Received time.Time
}

// OpenSession records that a terminal connected and returns the cursor it
// resumes from: the highest sequence held contiguously for its epoch.
// outboxAcked is the highest sequence the terminal had acknowledged and
// dropped; a cursor below it means acknowledged taps were lost here, which
// is recorded in tap_gaps as an alarm, and the cursor moves past the gap.
func (s *Store) OpenSession(ctx context.Context, sess *Session, agentVersion string, outboxAcked uint64) (uint64, error) {
	var acked int64
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `
			UPDATE terminals SET last_seen_at = now(), agent_version = $2, clock_offset_us = $3
			WHERE terminal_id = $1`, sess.TerminalID, agentVersion, sess.ClockOffset().Microseconds()); err != nil {
			return err
		}
		if outboxAcked == 0 {
			err := tx.QueryRow(ctx, `
				SELECT acked_through FROM ingest_cursors WHERE terminal_id = $1 AND store_epoch = $2`,
				sess.TerminalID, sess.StoreEpoch).Scan(&acked)
			if errors.Is(err, pgx.ErrNoRows) {
				acked = 0
				return nil
			}
			return err
		}
		cursors, err := lockCursors(ctx, tx, []key{{sess.TerminalID, sess.StoreEpoch}})
		if err != nil {
			return err
		}
		c := cursors[key{sess.TerminalID, sess.StoreEpoch}]
		if outboxAcked > MaxSeq || c.acked >= outboxAcked {
			acked = int64(c.acked)
			return nil
		}
		if _, err := tx.Exec(ctx, `
			INSERT INTO tap_gaps (terminal_id, store_epoch, seq_from, seq_to) VALUES ($1, $2, $3, $4)`,
			sess.TerminalID, sess.StoreEpoch, int64(c.acked+1), int64(outboxAcked)); err != nil {
			return err
		}
		s.logger.Error("tap_gap_detected", logTerminal, sess.TerminalID, logEpoch, sess.StoreEpoch,
			"seq_from", c.acked+1, "seq_to", outboxAcked)
		c.acked = outboxAcked
		c.maxSeen = max(c.maxSeen, outboxAcked)
		// Taps held above the gap may now be contiguous.
		if c.maxSeen > c.acked {
			if c.acked, err = scanContiguous(ctx, tx, key{sess.TerminalID, sess.StoreEpoch}, c.acked, c.maxSeen); err != nil {
				return err
			}
		}
		k := key{sess.TerminalID, sess.StoreEpoch}
		if err := saveCursors(ctx, tx, []key{k}, map[key]cursor{k: c}); err != nil {
			return err
		}
		acked = int64(c.acked)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("ingest: open session: %w", err)
	}
	return uint64(acked), nil
}

// Opening is one session for OpenSessions: what OpenSession takes, and
// what it answers.
type Opening struct {
	Session      *Session
	AgentVersion string
	OutboxAcked  uint64
	// Acked and Err are OpenSession's answers for this session.
	Acked uint64
	Err   error
}

// OpenSessions does what OpenSession does for many sessions, most of them
// in one transaction: a reconnection storm opens ten thousand sessions, and
// a commit (an fsync) each would make them wait in line. The highest
// contiguous sequence is read without locking the cursor: a batch of the
// terminal's previous session committing at the same moment may not be
// counted yet, and the terminal then sends its taps again, which the
// server answers as duplicates. A session whose terminal reports more
// acknowledged than the server holds (a gap) goes through OpenSession, as
// that records the gap under the cursor's lock. Each Opening gets its
// answer; the error returned is that of the shared transaction.
func (s *Store) OpenSessions(ctx context.Context, opens []*Opening) error {
	ids := make([]string, len(opens))
	versions := make([]string, len(opens))
	offsets := make([]int64, len(opens))
	epochs := make([]int64, len(opens))
	for i, o := range opens {
		ids[i], versions[i], epochs[i] = o.Session.TerminalID, o.AgentVersion, o.Session.StoreEpoch
		offsets[i] = o.Session.ClockOffset().Microseconds()
	}
	acked := make([]int64, len(opens))
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `
			UPDATE terminals t SET last_seen_at = now(), agent_version = u.v, clock_offset_us = u.o
			FROM unnest($1::text[], $2::text[], $3::bigint[]) AS u(id, v, o)
			WHERE t.terminal_id = u.id`, ids, versions, offsets); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `
			SELECT u.i, c.acked_through
			FROM unnest($1::text[], $2::bigint[]) WITH ORDINALITY AS u(id, epoch, i)
			JOIN ingest_cursors c ON c.terminal_id = u.id AND c.store_epoch = u.epoch`, ids, epochs)
		if err != nil {
			return err
		}
		var i, a int64
		_, err = pgx.ForEachRow(rows, []any{&i, &a}, func() error {
			acked[i-1] = a
			return nil
		})
		return err
	})
	if err != nil {
		err = fmt.Errorf("ingest: open sessions: %w", err)
		for _, o := range opens {
			o.Err = err
		}
		return err
	}
	for i, o := range opens {
		o.Acked = uint64(acked[i])
		if o.OutboxAcked > o.Acked && o.OutboxAcked <= MaxSeq {
			o.Acked, o.Err = s.OpenSession(ctx, o.Session, o.AgentVersion, o.OutboxAcked)
		}
	}
	return nil
}

// MaxSeq is the highest sequence the server stores (syncproto.MaxSeq).
const MaxSeq = syncproto.MaxSeq

// RecordStatus keeps a terminal's latest Status report.
func (s *Store) RecordStatus(ctx context.Context, sess *Session, st *syncproto.Status, received time.Time) error {
	offset := received.Sub(time.UnixMicro(st.Clock.WallMicros)).Microseconds()
	var oldest *time.Time
	if st.OldestUnackedMicros != 0 {
		t := time.UnixMicro(st.OldestUnackedMicros)
		oldest = &t
	}
	alarms := st.Alarms
	if alarms == nil {
		alarms = []string{}
	}
	_, err := s.pool.Exec(ctx, `
		UPDATE terminals SET last_seen_at = $2, status_at = $2, outbox_depth = $3,
			oldest_unacked_at = $4, clock_offset_us = $5, reader_state = $6, alarms = $7
		WHERE terminal_id = $1`,
		sess.TerminalID, received, int64(st.OutboxDepth), oldest, offset, st.ReaderState, alarms)
	if err != nil {
		return fmt.Errorf("ingest: record status: %w", err)
	}
	return nil
}

// key names one (terminal, store epoch) stream of sequences.
type key struct {
	terminal string
	epoch    int64
}

func (k key) compare(o key) int {
	if k.terminal != o.terminal {
		if k.terminal < o.terminal {
			return -1
		}
		return 1
	}
	switch {
	case k.epoch < o.epoch:
		return -1
	case k.epoch > o.epoch:
		return 1
	}
	return 0
}

// ident is a tap's identity.
type ident struct {
	key
	seq uint64
}

// verdict is the server's answer for one identity.
type verdict struct {
	rejected *syncproto.Rejection // nil when accepted
}

// pending is one tap of the group with the session it came in.
type pending struct {
	sub *Submission
	tap *syncproto.Tap
}

type cursor struct {
	acked, maxSeen uint64
}

// Apply stores a group of submissions in one transaction and returns one Ack
// per submission, in order. Nothing is acknowledged unless the transaction
// committed; on error the caller must not acknowledge any of them.
func (s *Store) Apply(ctx context.Context, subs []*Submission) ([]*syncproto.Ack, error) {
	var acks []*syncproto.Ack
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		acks, err = s.apply(ctx, tx, subs)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("ingest: apply %d batches: %w", len(subs), err)
	}
	return acks, nil
}

func (s *Store) apply(ctx context.Context, tx pgx.Tx, subs []*Submission) ([]*syncproto.Ack, error) {
	// 1. Lock the cursors of every stream in the group, in sorted order.
	var keys []key
	for _, sub := range subs {
		keys = append(keys, key{sub.Session.TerminalID, sub.Session.StoreEpoch})
	}
	slices.SortFunc(keys, key.compare)
	keys = slices.Compact(keys)
	cursors, err := lockCursors(ctx, tx, keys)
	if err != nil {
		return nil, err
	}

	// 2. Classify each distinct identity: new (above max_seen), or maybe
	// held already. Within a batch sequences ascend (syncproto checks), but
	// batches of the group may repeat each other.
	first := make(map[ident]pending)
	var order []ident
	var maybeHeld []ident
	for _, sub := range subs {
		k := key{sub.Session.TerminalID, sub.Session.StoreEpoch}
		for i := range sub.Batch.Taps {
			t := &sub.Batch.Taps[i]
			id := ident{k, t.Seq}
			if _, dup := first[id]; dup {
				continue
			}
			first[id] = pending{sub, t}
			order = append(order, id)
			if t.Seq <= cursors[k].maxSeen {
				maybeHeld = append(maybeHeld, id)
			}
		}
	}
	verdicts := make(map[ident]verdict, len(order))
	held, err := lookupHeld(ctx, tx, maybeHeld)
	if err != nil {
		return nil, err
	}

	var newTaps [][]any
	var deadIDs []ident
	var conflicts []ident
	for _, id := range order {
		p := first[id]
		if h, ok := held[id]; ok {
			switch {
			case h.tap != nil && sameTap(h.tap, p.tap):
				verdicts[id] = verdict{}
			case h.tap == nil && h.deadTap != nil && sameTap(h.deadTap, p.tap):
				verdicts[id] = verdict{rejected: h.rejection}
			default:
				conflicts = append(conflicts, id)
				verdicts[id] = verdict{rejected: conflictRejection(id.seq)}
			}
			continue
		}
		if err := p.tap.Check(); err != nil {
			deadIDs = append(deadIDs, id)
			verdicts[id] = verdict{rejected: &syncproto.Rejection{Seq: id.seq, Code: syncproto.RejectInvalid, Reason: err.Error()}}
			continue
		}
		verdicts[id] = verdict{}
		newTaps = append(newTaps, tapRow(p))
	}

	// Repeats inside the group: same content, same answer; otherwise conflict.
	var extraConflicts []pending
	for _, sub := range subs {
		k := key{sub.Session.TerminalID, sub.Session.StoreEpoch}
		for i := range sub.Batch.Taps {
			t := &sub.Batch.Taps[i]
			id := ident{k, t.Seq}
			if p := first[id]; p.tap != t && !sameTap(p.tap, t) {
				extraConflicts = append(extraConflicts, pending{sub, t})
			}
		}
	}

	// 3. Write.
	if len(newTaps) > 0 {
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"taps"}, tapColumns, pgx.CopyFromRows(newTaps)); err != nil {
			return nil, fmt.Errorf("copy taps: %w", err)
		}
		if err := queueReconcile(ctx, tx, newTaps); err != nil {
			return nil, err
		}
	}
	for _, id := range deadIDs {
		p := first[id]
		payload, _ := json.Marshal(p.tap)
		r := verdicts[id].rejected
		if _, err := tx.Exec(ctx, `
			INSERT INTO dead_letters (terminal_id, store_epoch, seq, code, reason, payload, received_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7)`,
			id.terminal, id.epoch, int64(id.seq), int16(r.Code), r.Reason, payload, p.sub.Received); err != nil {
			return nil, fmt.Errorf("insert dead letter: %w", err)
		}
	}
	for _, id := range conflicts {
		if err := s.quarantine(ctx, tx, first[id]); err != nil {
			return nil, err
		}
	}
	for _, p := range extraConflicts {
		if err := s.quarantine(ctx, tx, p); err != nil {
			return nil, err
		}
	}

	// 4. Advance the cursors over what is now held.
	seqs := make(map[key][]uint64, len(keys))
	for _, id := range order {
		seqs[id.key] = append(seqs[id.key], id.seq)
	}
	for _, k := range keys {
		c := cursors[k]
		ss := seqs[k]
		slices.Sort(ss)
		for _, q := range ss {
			if q == c.acked+1 {
				c.acked = q
			}
			c.maxSeen = max(c.maxSeen, q)
		}
		if c.maxSeen > c.acked {
			if c.acked, err = scanContiguous(ctx, tx, k, c.acked, c.maxSeen); err != nil {
				return nil, err
			}
		}
		cursors[k] = c
	}
	if err := saveCursors(ctx, tx, keys, cursors); err != nil {
		return nil, err
	}

	// 5. Answer every batch, repeats included.
	acks := make([]*syncproto.Ack, len(subs))
	for i, sub := range subs {
		k := key{sub.Session.TerminalID, sub.Session.StoreEpoch}
		ack := &syncproto.Ack{BatchID: sub.Batch.BatchID, AckedThrough: cursors[k].acked}
		for j := range sub.Batch.Taps {
			t := &sub.Batch.Taps[j]
			id := ident{k, t.Seq}
			r := verdicts[id].rejected
			if p := first[id]; p.tap != t && !sameTap(p.tap, t) {
				r = conflictRejection(t.Seq)
			}
			if r != nil {
				ack.Rejected = append(ack.Rejected, *r)
			}
		}
		acks[i] = ack
	}
	return acks, nil
}

func conflictRejection(seq uint64) *syncproto.Rejection {
	return &syncproto.Rejection{Seq: seq, Code: syncproto.RejectConflict,
		Reason: "the server holds a different tap with this identity; quarantined"}
}

func (s *Store) quarantine(ctx context.Context, tx pgx.Tx, p pending) error {
	payload, err := json.Marshal(p.tap)
	if err != nil {
		return fmt.Errorf("quarantine: %w", err)
	}
	sum := sha256.Sum256(payload)
	tag, err := tx.Exec(ctx, `
		INSERT INTO tap_conflicts (terminal_id, store_epoch, seq, payload, payload_sha256, received_at)
		VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING`,
		p.sub.Session.TerminalID, p.sub.Session.StoreEpoch, int64(p.tap.Seq), payload, sum[:], p.sub.Received)
	if err != nil {
		return fmt.Errorf("quarantine: %w", err)
	}
	if tag.RowsAffected() > 0 {
		s.logger.Error("tap_identity_conflict",
			logTerminal, p.sub.Session.TerminalID, logEpoch, p.sub.Session.StoreEpoch, logSeq, p.tap.Seq)
	}
	return nil
}

var tapColumns = []string{
	"terminal_id", "store_epoch", "seq", "card_id", "reader", "answer",
	"device_wall_us", "boot_id", "mono_ns", "received_at", "clock_offset_us",
	"event_time", "time_source",
}

func tapRow(p pending) []any {
	t := p.tap
	sess := p.sub.Session
	at, src := sess.EventTime(t.Clock, p.sub.Received)
	return []any{
		sess.TerminalID, sess.StoreEpoch, int64(t.Seq), t.CardID, t.Reader, t.Answer,
		t.Clock.WallMicros, t.Clock.BootID, t.Clock.MonoNanos, p.sub.Received,
		sess.ClockOffset().Microseconds(), at, string(src),
	}
}

// sameTap reports whether two taps with the same identity carry the same
// content.
func sameTap(a, b *syncproto.Tap) bool {
	return a.Seq == b.Seq && a.CardID == b.CardID && a.Clock == b.Clock &&
		a.Reader == b.Reader && a.Answer == b.Answer
}

func lockCursors(ctx context.Context, tx pgx.Tx, keys []key) (map[key]cursor, error) {
	terms := make([]string, len(keys))
	epochs := make([]int64, len(keys))
	for i, k := range keys {
		terms[i], epochs[i] = k.terminal, k.epoch
	}
	if _, err := tx.Exec(ctx, `
		INSERT INTO ingest_cursors (terminal_id, store_epoch)
		SELECT * FROM unnest($1::text[], $2::bigint[])
		ON CONFLICT DO NOTHING`, terms, epochs); err != nil {
		return nil, fmt.Errorf("create cursors: %w", err)
	}
	rows, err := tx.Query(ctx, `
		SELECT terminal_id, store_epoch, acked_through, max_seen FROM ingest_cursors
		WHERE (terminal_id, store_epoch) IN (SELECT * FROM unnest($1::text[], $2::bigint[]))
		ORDER BY terminal_id, store_epoch
		FOR UPDATE`, terms, epochs)
	if err != nil {
		return nil, fmt.Errorf("lock cursors: %w", err)
	}
	defer rows.Close()
	out := make(map[key]cursor, len(keys))
	for rows.Next() {
		var k key
		var acked, maxSeen int64
		if err := rows.Scan(&k.terminal, &k.epoch, &acked, &maxSeen); err != nil {
			return nil, fmt.Errorf("lock cursors: %w", err)
		}
		out[k] = cursor{uint64(acked), uint64(maxSeen)}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("lock cursors: %w", err)
	}
	if len(out) != len(keys) {
		return nil, fmt.Errorf("lock cursors: locked %d of %d", len(out), len(keys))
	}
	return out, nil
}

// heldTap is what the server already holds for an identity.
type heldTap struct {
	tap       *syncproto.Tap       // stored in taps
	deadTap   *syncproto.Tap       // or kept in dead_letters,
	rejection *syncproto.Rejection // with this answer
}

func lookupHeld(ctx context.Context, tx pgx.Tx, ids []ident) (map[ident]heldTap, error) {
	out := make(map[ident]heldTap)
	if len(ids) == 0 {
		return out, nil
	}
	terms := make([]string, len(ids))
	epochs := make([]int64, len(ids))
	seqs := make([]int64, len(ids))
	for i, id := range ids {
		terms[i], epochs[i], seqs[i] = id.terminal, id.epoch, int64(id.seq)
	}
	rows, err := tx.Query(ctx, `
		SELECT terminal_id, store_epoch, seq, card_id, reader, answer, device_wall_us, boot_id, mono_ns
		FROM taps
		WHERE (terminal_id, store_epoch, seq) IN (SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[]))`,
		terms, epochs, seqs)
	if err != nil {
		return nil, fmt.Errorf("look up taps: %w", err)
	}
	for rows.Next() {
		var id ident
		var seq int64
		t := new(syncproto.Tap)
		if err := rows.Scan(&id.terminal, &id.epoch, &seq, &t.CardID, &t.Reader, &t.Answer,
			&t.Clock.WallMicros, &t.Clock.BootID, &t.Clock.MonoNanos); err != nil {
			rows.Close()
			return nil, fmt.Errorf("look up taps: %w", err)
		}
		id.seq, t.Seq = uint64(seq), uint64(seq)
		out[id] = heldTap{tap: t}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("look up taps: %w", err)
	}
	rows, err = tx.Query(ctx, `
		SELECT terminal_id, store_epoch, seq, code, reason, payload
		FROM dead_letters
		WHERE (terminal_id, store_epoch, seq) IN (SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[]))`,
		terms, epochs, seqs)
	if err != nil {
		return nil, fmt.Errorf("look up dead letters: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id ident
		var seq int64
		var code int16
		var reason string
		var payload []byte
		if err := rows.Scan(&id.terminal, &id.epoch, &seq, &code, &reason, &payload); err != nil {
			return nil, fmt.Errorf("look up dead letters: %w", err)
		}
		id.seq = uint64(seq)
		t := new(syncproto.Tap)
		if err := json.Unmarshal(payload, t); err != nil {
			return nil, fmt.Errorf("look up dead letters: payload of seq %d: %w", seq, err)
		}
		out[id] = heldTap{deadTap: t, rejection: &syncproto.Rejection{
			Seq: id.seq, Code: syncproto.RejectCode(code), Reason: reason}}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("look up dead letters: %w", err)
	}
	return out, nil
}

// scanContiguous returns the highest sequence reachable from acked without a
// gap, reading what is held above it. Only needed when batches arrived out of
// order, so it pages rather than loading everything.
func scanContiguous(ctx context.Context, tx pgx.Tx, k key, acked, maxSeen uint64) (uint64, error) {
	const page = 8192
	for acked < maxSeen {
		rows, err := tx.Query(ctx, `
			SELECT seq FROM taps WHERE terminal_id = $1 AND store_epoch = $2 AND seq > $3 AND seq <= $4
			UNION ALL
			SELECT seq FROM dead_letters WHERE terminal_id = $1 AND store_epoch = $2 AND seq > $3 AND seq <= $4
			ORDER BY seq`, k.terminal, k.epoch, int64(acked), int64(min(acked+page, maxSeen)))
		if err != nil {
			return 0, fmt.Errorf("scan cursor: %w", err)
		}
		seqs, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return 0, fmt.Errorf("scan cursor: %w", err)
		}
		before := acked
		for _, q := range seqs {
			if uint64(q) == acked+1 {
				acked++
			} else if uint64(q) > acked+1 {
				return acked, nil
			}
		}
		if acked == before || acked < min(before+page, maxSeen) {
			return acked, nil
		}
	}
	return acked, nil
}

func saveCursors(ctx context.Context, tx pgx.Tx, keys []key, cursors map[key]cursor) error {
	terms := make([]string, len(keys))
	epochs := make([]int64, len(keys))
	acked := make([]int64, len(keys))
	maxSeen := make([]int64, len(keys))
	for i, k := range keys {
		c := cursors[k]
		terms[i], epochs[i], acked[i], maxSeen[i] = k.terminal, k.epoch, int64(c.acked), int64(c.maxSeen)
	}
	_, err := tx.Exec(ctx, `
		UPDATE ingest_cursors c SET acked_through = u.acked, max_seen = u.max_seen, updated_at = now()
		FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[]) AS u(terminal_id, store_epoch, acked, max_seen)
		WHERE c.terminal_id = u.terminal_id AND c.store_epoch = u.store_epoch`,
		terms, epochs, acked, maxSeen)
	if err != nil {
		return fmt.Errorf("save cursors: %w", err)
	}
	return nil
}

// queueReconcile records, in the transaction that stores them, which new
// taps the ledger must take in: the maximal runs of consecutive sequence
// numbers among them, per (terminal, epoch), each with its taps' card ids
// and event times (what the reconciler reads of them). Only the taps this
// transaction inserts are queued, and a tap is inserted once (the key of
// taps, under the stream's cursor lock), so the inbox's ranges never
// overlap: every tap is queued exactly once, and the reconciler takes each
// inbox row once (design invariant 4 holds without a guard of its own).
// A range from the lowest to the highest new seq would also cover taps
// held before (batches that came out of order) and queue them again.
func queueReconcile(ctx context.Context, tx pgx.Tx, rows [][]any) error {
	type queued struct {
		k    key
		seq  int64
		card string
		at   time.Time
	}
	taps := make([]queued, len(rows))
	for i, r := range rows {
		taps[i] = queued{key{r[0].(string), r[1].(int64)}, r[2].(int64), r[cardColumn].(string), r[eventTimeColumn].(time.Time)}
	}
	slices.SortFunc(taps, func(a, b queued) int { return cmp.Or(a.k.compare(b.k), cmp.Compare(a.seq, b.seq)) })
	cards := make([]string, len(taps))
	times := make([]time.Time, len(taps))
	for i, t := range taps {
		cards[i], times[i] = t.card, t.at
	}
	var runs [][]any
	for i := 0; i < len(taps); {
		j := i + 1
		for j < len(taps) && taps[j].k == taps[i].k && taps[j].seq == taps[j-1].seq+1 {
			j++
		}
		runs = append(runs, []any{taps[i].k.terminal, taps[i].k.epoch, taps[i].seq, taps[j-1].seq,
			pgarray.Text(cards[i:j]), pgarray.Timestamptz(times[i:j])})
		i = j
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"reconcile_inbox"}, inboxColumns, pgx.CopyFromRows(runs)); err != nil {
		return fmt.Errorf("queue reconcile: %w", err)
	}
	return nil
}

var inboxColumns = []string{"terminal_id", "store_epoch", "seq_from", "seq_to", "card_ids", "event_times"}

// The places in a tapRow of what the inbox carries.
var (
	cardColumn      = slices.Index(tapColumns, "card_id")
	eventTimeColumn = slices.Index(tapColumns, "event_time")
)

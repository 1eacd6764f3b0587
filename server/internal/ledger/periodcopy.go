package ledger

import (
	"bytes"
	"context"
	"encoding/binary"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// periodRow is a work_periods row to insert.
type periodRow struct {
	site, person, org  int64
	p                  Period
	startMode, endMode *string
}

// periodCopyColumns are the columns periodCopy writes, in order.
const periodCopyColumns = "site_id, person_id, org_id, start_at, end_at, start_ref, end_ref, " +
	"start_manual, end_manual, missing_checkout, missing_checkin, recorded_from, start_mode, end_mode"

// copyBufs holds the buffers of periodCopy between steps: at the morning
// peak a step copies a few thousand periods, about half a megabyte.
var copyBufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// copyPeriods inserts rows into work_periods with one COPY (periodCopy).
func copyPeriods(ctx context.Context, tx pgx.Tx, rows []periodRow, now time.Time) error {
	c := newPeriodCopy(now)
	for _, r := range rows {
		c.add(r)
	}
	return c.send(ctx, tx)
}

// periodCopy is one COPY into work_periods in PostgreSQL's binary COPY
// format, encoded here as the rows are added: pgx's CopyFrom boxes every
// value in an interface and looks up its encoder, which at the peak cost
// more Go time than deriving the periods, and it needs the rows in a slice
// first. The values are those CopyFrom would send: the same columns and
// types, times as microseconds since 2000-01-01 UTC, truncated as pgx
// truncates them. recorded_from is now for every row.
type periodCopy struct {
	buf *bytes.Buffer
	now time.Time
	n   int
}

func newPeriodCopy(now time.Time) *periodCopy {
	buf := copyBufs.Get().(*bytes.Buffer)
	buf.Reset()
	buf.WriteString("PGCOPY\n\377\r\n\000")
	buf.Write([]byte{0, 0, 0, 0, 0, 0, 0, 0}) // flags, header extension length
	return &periodCopy{buf: buf, now: now}
}

func (c *periodCopy) add(r periodRow) {
	w := copyWriter{c.buf.AvailableBuffer()}
	w.b = binary.BigEndian.AppendUint16(w.b, 14)
	w.int8(r.site)
	w.int8(r.person)
	w.int8(r.org)
	w.time(r.p.Start)
	w.time(r.p.End)
	w.text(r.p.StartRef)
	w.text(r.p.EndRef)
	w.bool(r.p.StartManual)
	w.bool(r.p.EndManual)
	w.bool(r.p.MissingCheckout)
	w.bool(r.p.MissingCheckin)
	w.time(c.now)
	w.textPtr(r.startMode)
	w.textPtr(r.endMode)
	c.buf.Write(w.b)
	c.n++
}

// send runs the COPY, if there are rows, and gives the buffer back.
func (c *periodCopy) send(ctx context.Context, tx pgx.Tx) error {
	defer copyBufs.Put(c.buf)
	if c.n == 0 {
		return nil
	}
	c.buf.Write([]byte{0xff, 0xff}) // the end
	_, err := tx.Conn().PgConn().CopyFrom(ctx, bytes.NewReader(c.buf.Bytes()),
		"COPY work_periods ("+periodCopyColumns+") FROM STDIN BINARY")
	return err
}

// copyWriter appends fields in binary COPY format: a length (-1 for NULL)
// and the value's binary form.
type copyWriter struct{ b []byte }

func (w *copyWriter) null() { w.b = binary.BigEndian.AppendUint32(w.b, 0xffffffff) }

func (w *copyWriter) int8(v int64) {
	w.b = binary.BigEndian.AppendUint32(w.b, 8)
	w.b = binary.BigEndian.AppendUint64(w.b, uint64(v))
}

// pgEpochMicros is 2000-01-01 UTC, PostgreSQL's epoch, in Unix
// microseconds.
const pgEpochMicros = 946684800000000

// time writes a timestamptz; the zero time is NULL (nullTime).
func (w *copyWriter) time(t time.Time) {
	if t.IsZero() {
		w.null()
		return
	}
	micros := t.Unix()*1000000 + int64(t.Nanosecond())/1000
	w.int8(micros - pgEpochMicros)
}

// text writes a text; "" is NULL (nullString).
func (w *copyWriter) text(s string) {
	if s == "" {
		w.null()
		return
	}
	w.b = binary.BigEndian.AppendUint32(w.b, uint32(len(s)))
	w.b = append(w.b, s...)
}

func (w *copyWriter) textPtr(s *string) {
	if s == nil {
		w.null()
		return
	}
	w.b = binary.BigEndian.AppendUint32(w.b, uint32(len(*s)))
	w.b = append(w.b, *s...)
}

func (w *copyWriter) bool(v bool) {
	w.b = binary.BigEndian.AppendUint32(w.b, 1)
	if v {
		w.b = append(w.b, 1)
	} else {
		w.b = append(w.b, 0)
	}
}

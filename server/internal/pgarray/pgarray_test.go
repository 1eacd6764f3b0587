package pgarray_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
	"github.com/liggare/liggare/server/internal/pgarray"
	"github.com/liggare/liggare/server/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// The arrays arrive in PostgreSQL as pgx's own encoding of the plain
// slices would send them, NULL for a nil slice and empty for an empty one.
func TestRoundTrip(t *testing.T) {
	pool := pgtest.New(t)
	ctx := context.Background()
	stockholm, err := time.LoadLocation("Europe/Stockholm")
	if err != nil {
		t.Fatal(err)
	}
	ints := []int64{0, -1, 1 << 40, 7}
	times := []time.Time{time.Date(2026, 3, 29, 2, 30, 0, 123000, time.UTC), time.Date(2026, 10, 25, 2, 30, 0, 0, stockholm)}
	texts := []string{"", "K1", "åäö", "a,b{c}\"d"}
	var gotInts []int64
	var gotTimes []time.Time
	var gotTexts []string
	if err := pool.QueryRow(ctx, `SELECT $1::bigint[], $2::timestamptz[], $3::text[]`,
		pgarray.Int8(ints), pgarray.Timestamptz(times), pgarray.Text(texts)).Scan(&gotInts, &gotTimes, &gotTexts); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ints, gotInts) || !slices.Equal(texts, gotTexts) {
		t.Errorf("got %v %q, want %v %q", gotInts, gotTexts, ints, texts)
	}
	for i := range times {
		if !times[i].Equal(gotTimes[i]) {
			t.Errorf("time %d: got %v, want %v", i, gotTimes[i], times[i])
		}
	}
	var nulls, empties int
	if err := pool.QueryRow(ctx, `SELECT num_nulls($1::bigint[], $2::timestamptz[], $3::text[]),
		(cardinality($4::bigint[]) = 0)::int + (cardinality($5::timestamptz[]) = 0)::int + (cardinality($6::text[]) = 0)::int`,
		pgarray.Int8(nil), pgarray.Timestamptz(nil), pgarray.Text(nil),
		pgarray.Int8{}, pgarray.Timestamptz{}, pgarray.Text{}).Scan(&nulls, &empties); err != nil {
		t.Fatal(err)
	}
	if nulls != 3 || empties != 3 {
		t.Errorf("%d of 3 nil slices NULL, %d of 3 empty slices empty", nulls, empties)
	}
}

// Encoding allocates per array, not per element.
func TestEncodeAllocations(t *testing.T) {
	m := pgtype.NewMap()
	const n = 1000
	ints := make([]int64, n)
	times := make([]time.Time, n)
	texts := make([]string, n)
	for i := range n {
		ints[i], times[i], texts[i] = int64(i)<<20, time.Unix(int64(i)*3600, 0), "K"
	}
	buf := make([]byte, 0, 64<<10)
	for _, c := range []struct {
		name  string
		oid   uint32
		value any
		plain any
	}{
		{"bigint[]", pgtype.Int8ArrayOID, pgarray.Int8(ints), ints},
		{"timestamptz[]", pgtype.TimestamptzArrayOID, pgarray.Timestamptz(times), times},
		{"text[]", pgtype.TextArrayOID, pgarray.Text(texts), texts},
	} {
		encode := func(v any) func() {
			return func() {
				if _, err := m.Encode(c.oid, pgtype.BinaryFormatCode, v, buf[:0]); err != nil {
					t.Fatal(err)
				}
			}
		}
		want, err := m.Encode(c.oid, pgtype.BinaryFormatCode, c.plain, nil)
		if err != nil {
			t.Fatal(err)
		}
		got, err := m.Encode(c.oid, pgtype.BinaryFormatCode, c.value, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(want, got) {
			t.Errorf("%s: encoded differently from pgx's own encoding of the slice", c.name)
		}
		allocs, plain := testing.AllocsPerRun(10, encode(c.value)), testing.AllocsPerRun(10, encode(c.plain))
		t.Logf("%s of %d: %.0f allocations (plain slice: %.0f)", c.name, n, allocs, plain)
		if allocs >= n/10 {
			t.Errorf("%s of %d: %.0f allocations, want a few per array", c.name, n, allocs)
		}
	}
}

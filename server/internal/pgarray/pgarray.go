// Package pgarray sends Go slices as PostgreSQL array parameters without
// an allocation per element.
//
// pgx encodes a []int64 or []time.Time parameter through its generic array
// plan, which boxes every element into an interface (and a time twice):
// at the reconciler's morning peak, arrays of a few thousand people made a
// third of all its allocations. These slice types hand pgx a pointer to
// each element instead, of a type that gives its value without boxing
// (pgtype.Int64Valuer, TimestamptzValuer, TextValuer).
//
//	tx.Query(ctx, `SELECT ... FROM unnest($1::bigint[], $2::timestamptz[])`,
//		pgarray.Int8(ids), pgarray.Timestamptz(times))
package pgarray

import (
	"time"

	"github.com/jackc/pgx/v5/pgtype"
)

// dims returns the dimensions of a one-dimensional array of n elements;
// nil (SQL NULL) for a nil slice.
func dims(isNil bool, n int) []pgtype.ArrayDimension {
	if isNil {
		return nil
	}
	return []pgtype.ArrayDimension{{Length: int32(n), LowerBound: 1}}
}

// Int8 is a bigint[] parameter.
type Int8 []int64

// Dimensions implements pgtype.ArrayGetter.
func (a Int8) Dimensions() []pgtype.ArrayDimension { return dims(a == nil, len(a)) }

// Index implements pgtype.ArrayGetter.
func (a Int8) Index(i int) any { return (*int8Elem)(&a[i]) }

// IndexType implements pgtype.ArrayGetter.
func (a Int8) IndexType() any { return new(int8Elem) }

type int8Elem int64

func (e *int8Elem) Int64Value() (pgtype.Int8, error) {
	return pgtype.Int8{Int64: int64(*e), Valid: true}, nil
}

// Timestamptz is a timestamptz[] parameter. A zero time is sent as is
// (0001-01-01), not as NULL.
type Timestamptz []time.Time

// Dimensions implements pgtype.ArrayGetter.
func (a Timestamptz) Dimensions() []pgtype.ArrayDimension { return dims(a == nil, len(a)) }

// Index implements pgtype.ArrayGetter.
func (a Timestamptz) Index(i int) any { return (*timestamptzElem)(&a[i]) }

// IndexType implements pgtype.ArrayGetter.
func (a Timestamptz) IndexType() any { return new(timestamptzElem) }

type timestamptzElem time.Time

func (e *timestamptzElem) TimestamptzValue() (pgtype.Timestamptz, error) {
	return pgtype.Timestamptz{Time: time.Time(*e), Valid: true}, nil
}

// Text is a text[] parameter.
type Text []string

// Dimensions implements pgtype.ArrayGetter.
func (a Text) Dimensions() []pgtype.ArrayDimension { return dims(a == nil, len(a)) }

// Index implements pgtype.ArrayGetter.
func (a Text) Index(i int) any { return (*textElem)(&a[i]) }

// IndexType implements pgtype.ArrayGetter.
func (a Text) IndexType() any { return new(textElem) }

type textElem string

func (e *textElem) TextValue() (pgtype.Text, error) {
	return pgtype.Text{String: string(*e), Valid: true}, nil
}

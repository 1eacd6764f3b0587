package outbox

import (
	"fmt"

	"github.com/liggare/liggare/syncproto"
)

// recordV1 is the first byte of a record in format 1: the rest is the
// syncproto.Tap in deterministic CBOR with integer keys. Seq is stored in
// the record as well as in the key, so a record read back can be checked
// against the key it was found under.
const recordV1 = 1

// maxRecordBytes bounds a record read back from disk before it is decoded.
const maxRecordBytes = 16 << 10

// encode returns the record stored for t.
func (o *Outbox) encode(t *syncproto.Tap) ([]byte, error) {
	body, err := o.enc.Marshal(t)
	if err != nil {
		return nil, fmt.Errorf("encode tap %d: %w", t.Seq, err)
	}
	rec := make([]byte, 0, 1+len(body))
	rec = append(rec, recordV1)
	return append(rec, body...), nil
}

// decode parses the record stored under seq. The bytes are not retained:
// bbolt's values live only as long as their transaction.
func (o *Outbox) decode(seq uint64, rec []byte) (syncproto.Tap, error) {
	var t syncproto.Tap
	switch {
	case len(rec) == 0:
		return t, fmt.Errorf("%w: tap %d: empty record", ErrCorrupt, seq)
	case len(rec) > maxRecordBytes:
		return t, fmt.Errorf("%w: tap %d: record of %d bytes", ErrCorrupt, seq, len(rec))
	case rec[0] != recordV1:
		return t, fmt.Errorf("%w: tap %d: unknown record version %d", ErrCorrupt, seq, rec[0])
	}
	if err := o.dec.Unmarshal(rec[1:], &t); err != nil {
		return t, fmt.Errorf("%w: tap %d: %v", ErrCorrupt, seq, err)
	}
	if t.Seq != seq {
		return t, fmt.Errorf("%w: record under key %d holds seq %d", ErrCorrupt, seq, t.Seq)
	}
	return t, nil
}

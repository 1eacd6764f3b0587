package syncproto

import (
	"errors"
	"fmt"

	"github.com/fxamacker/cbor/v2"
)

// Limits. Each is checked before the bytes it guards are allocated or
// decoded; a message that breaks one is refused with ErrTooLarge.
const (
	// MaxMessageBytes bounds one websocket message (one Envelope).
	MaxMessageBytes = 2 << 20
	// MaxBatchTaps bounds the taps in one Batch, and every CBOR array.
	MaxBatchTaps = 4096
	// MaxMapPairs bounds every CBOR map. Our largest struct has far fewer
	// fields; the slack lets newer peers add fields.
	MaxMapPairs = 64
	// MaxNesting bounds how deeply CBOR arrays and maps nest, the envelope
	// counting as the first level. A Batch uses five: envelope, body, taps,
	// tap, clock.
	MaxNesting = 8
	// MaxTextBytes bounds every CBOR text or byte string.
	MaxTextBytes = 1024
	// MaxIDBytes bounds identifiers: terminal ids, card ids, boot ids, reader
	// names and answers.
	MaxIDBytes = 64
	// MaxAlarms bounds Status.Alarms.
	MaxAlarms = 32
)

// Errors returned by Decode and Encode. The error returned wraps one of them
// and says more precisely what was wrong.
var (
	// ErrTooLarge means the message breaks one of the limits above.
	ErrTooLarge = errors.New("syncproto: message exceeds a limit")
	// ErrMalformed means the bytes are not a well-formed, strictly encoded
	// Envelope, or a field fails validation.
	ErrMalformed = errors.New("syncproto: malformed message")
	// ErrUnknownType means a well-formed Envelope of a type this version does
	// not know. Peers close the session: a newer peer must not send types the
	// negotiated version lacks.
	ErrUnknownType = errors.New("syncproto: unknown message type")
)

// envelope is the outer CBOR map of every websocket message:
// {1: message type, 2: message body}.
type envelope struct {
	Type MsgType         `cbor:"1,keyasint"`
	Body cbor.RawMessage `cbor:"2,keyasint"`
}

// rawEnvelope is envelope as decoded: the type is read wide and through a
// pointer, so that a type beyond 255 is reported as unknown rather than as an
// overflow, and a missing type is told apart from type 0.
type rawEnvelope struct {
	Type *uint64         `cbor:"1,keyasint"`
	Body cbor.RawMessage `cbor:"2,keyasint"`
}

// validator is implemented by messages with rules beyond their CBOR shape.
type validator interface {
	Validate() error
}

var (
	encMode cbor.EncMode
	decMode cbor.DecMode
	// storeDec decodes wire values kept on disk: strict like decMode, but
	// without the per-message limits, which concern the network.
	storeDec cbor.DecMode
)

// StorageModes returns the CBOR modes for keeping wire values (a Tap, a
// CardInfo) on disk, as the terminal's outbox and card cache do: the
// protocol's deterministic encoding, and a strict decoder (no duplicate
// keys, no indefinite lengths, no tags, valid UTF-8) that ignores fields it
// does not know, so a newer agent's records still read.
func StorageModes() (cbor.EncMode, cbor.DecMode) { return encMode, storeDec }

func init() {
	var err error
	// Core deterministic encoding (RFC 8949 section 4.2.1): shortest
	// integers, sorted map keys, definite lengths.
	encMode, err = cbor.CoreDetEncOptions().EncMode()
	if err != nil {
		panic(err)
	}
	// scan enforces all of these first; the library's own checks stay as a
	// second line.
	decMode, err = cbor.DecOptions{
		DupMapKey:        cbor.DupMapKeyEnforcedAPF,
		IndefLength:      cbor.IndefLengthForbidden,
		TagsMd:           cbor.TagsForbidden,
		MaxNestedLevels:  MaxNesting, // the library counts the envelope as level 1, as scan does
		MaxArrayElements: MaxBatchTaps,
		MaxMapPairs:      MaxMapPairs,
		UTF8:             cbor.UTF8RejectInvalid,
	}.DecMode()
	if err != nil {
		panic(err)
	}
	storeDec, err = cbor.DecOptions{
		DupMapKey:   cbor.DupMapKeyEnforcedAPF,
		IndefLength: cbor.IndefLengthForbidden,
		TagsMd:      cbor.TagsForbidden,
		UTF8:        cbor.UTF8RejectInvalid,
	}.DecMode()
	if err != nil {
		panic(err)
	}
}

// Encode returns the wire bytes of m wrapped in its Envelope. It refuses what
// Decode would refuse (a message failing its Validate method, or beyond a
// limit), so a mistake shows up at the sender rather than as a closed session.
func Encode(m Message) ([]byte, error) {
	if m == nil {
		return nil, errors.New("syncproto: encode nil message")
	}
	body, err := encMode.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("syncproto: encode %s: %w", m.MsgType(), err)
	}
	if body[0]>>5 != majorMap { // a nil *Hello and the like encode as null
		return nil, fmt.Errorf("syncproto: encode %s: nil message", m.MsgType())
	}
	if v, ok := m.(validator); ok {
		if err := v.Validate(); err != nil {
			return nil, fmt.Errorf("syncproto: encode %s: %w", m.MsgType(), err)
		}
	}
	out, err := encMode.Marshal(envelope{Type: m.MsgType(), Body: body})
	if err != nil {
		return nil, fmt.Errorf("syncproto: encode %s envelope: %w", m.MsgType(), err)
	}
	if len(out) > MaxMessageBytes {
		return nil, fmt.Errorf("syncproto: encode %s: %d bytes, limit %d: %w",
			m.MsgType(), len(out), MaxMessageBytes, ErrTooLarge)
	}
	if err := scan(out); err != nil {
		return nil, fmt.Errorf("syncproto: encode %s: %w", m.MsgType(), err)
	}
	return out, nil
}

// Decode parses one Envelope and returns its message as a pointer to one of
// the message structs (*Hello, *Batch, ...). Unknown fields are ignored;
// duplicate map keys, indefinite lengths, tags, invalid UTF-8, trailing bytes
// and values beyond the limits are refused. A decoded message has passed its
// Validate method.
func Decode(data []byte) (Message, error) {
	if len(data) > MaxMessageBytes {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(data), MaxMessageBytes)
	}
	if err := scan(data); err != nil {
		return nil, err
	}
	var env rawEnvelope
	if err := decMode.Unmarshal(data, &env); err != nil {
		return nil, fmt.Errorf("%w: envelope: %v", ErrMalformed, err)
	}
	if env.Type == nil {
		return nil, fmt.Errorf("%w: envelope without type", ErrMalformed)
	}
	if len(env.Body) == 0 || env.Body[0]>>5 != majorMap {
		return nil, fmt.Errorf("%w: envelope body is not a map", ErrMalformed)
	}
	var m Message
	switch t := *env.Type; t {
	case uint64(TypeHello):
		m = new(Hello)
	case uint64(TypeWelcome):
		m = new(Welcome)
	case uint64(TypeBatch):
		m = new(Batch)
	case uint64(TypeAck):
		m = new(Ack)
	case uint64(TypeStatus):
		m = new(Status)
	case uint64(TypeError):
		m = new(Error)
	case uint64(TypeCardUpdate):
		m = new(CardUpdate)
	case uint64(TypeCardAck):
		m = new(CardAck)
	default:
		return nil, fmt.Errorf("%w: %d", ErrUnknownType, t)
	}
	if err := decMode.Unmarshal(env.Body, m); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrMalformed, m.MsgType(), err)
	}
	if v, ok := m.(validator); ok {
		if err := v.Validate(); err != nil {
			return nil, fmt.Errorf("%s: %w", m.MsgType(), err)
		}
	}
	return m, nil
}

// ErrorCodeFor maps an error from Decode or Negotiate to the ErrorCode sent
// to the peer before closing. Any other error is ErrorCodeInternal.
func ErrorCodeFor(err error) ErrorCode {
	switch {
	case errors.Is(err, ErrTooLarge):
		return ErrorCodeTooLarge
	case errors.Is(err, ErrUnknownType):
		return ErrorCodeUnknownType
	case errors.Is(err, ErrMalformed):
		return ErrorCodeMalformed
	case errors.Is(err, ErrVersion):
		return ErrorCodeVersion
	}
	return ErrorCodeInternal
}

package syncproto

import (
	"errors"
	"fmt"
	"unicode/utf8"

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
	// MaxNesting bounds how deeply CBOR containers nest.
	MaxNesting = 8
	// MaxTextBytes bounds every CBOR text or byte string.
	MaxTextBytes = 1024
	// MaxIDBytes bounds identifiers: terminal ids, card ids, boot ids, reader
	// names and answers.
	MaxIDBytes = 64
	// MaxAlarms bounds Status.Alarms.
	MaxAlarms = 32
)

// Errors returned by Decode. Each wraps a more precise cause.
var (
	// ErrTooLarge: the message breaks one of the limits above.
	ErrTooLarge = errors.New("syncproto: message exceeds a limit")
	// ErrMalformed: the bytes are not a well-formed, strictly encoded
	// Envelope, or a field fails validation.
	ErrMalformed = errors.New("syncproto: malformed message")
	// ErrUnknownType: a well-formed Envelope of a type this version does not
	// know. Peers close the session: a newer peer must not send types the
	// negotiated version lacks.
	ErrUnknownType = errors.New("syncproto: unknown message type")
)

// envelope is the outer CBOR map of every websocket message:
// {1: message type, 2: message body}.
type envelope struct {
	Type MsgType         `cbor:"1,keyasint"`
	Body cbor.RawMessage `cbor:"2,keyasint"`
}

var (
	encMode cbor.EncMode
	decMode cbor.DecMode
)

func init() {
	var err error
	// Core deterministic encoding (RFC 8949 section 4.2.1): shortest
	// integers, sorted map keys, definite lengths.
	encMode, err = cbor.CoreDetEncOptions().EncMode()
	if err != nil {
		panic(err)
	}
	decMode, err = cbor.DecOptions{
		DupMapKey:        cbor.DupMapKeyEnforcedAPF,
		IndefLength:      cbor.IndefLengthForbidden,
		TagsMd:           cbor.TagsForbidden,
		MaxNestedLevels:  MaxNesting + 1, // the library counts the outermost level
		MaxArrayElements: MaxBatchTaps,
		MaxMapPairs:      MaxMapPairs,
		UTF8:             cbor.UTF8RejectInvalid,
	}.DecMode()
	if err != nil {
		panic(err)
	}
}

// Encode returns the wire bytes of m wrapped in its Envelope.
func Encode(m Message) ([]byte, error) {
	if m == nil {
		return nil, errors.New("syncproto: encode nil message")
	}
	body, err := encMode.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("syncproto: encode %s: %w", m.MsgType(), err)
	}
	out, err := encMode.Marshal(envelope{Type: m.MsgType(), Body: body})
	if err != nil {
		return nil, fmt.Errorf("syncproto: encode %s envelope: %w", m.MsgType(), err)
	}
	if len(out) > MaxMessageBytes {
		return nil, fmt.Errorf("syncproto: encode %s: %d bytes, limit %d: %w",
			m.MsgType(), len(out), MaxMessageBytes, ErrTooLarge)
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
	var env envelope
	if err := decMode.Unmarshal(data, &env); err != nil {
		return nil, fmt.Errorf("%w: envelope: %v", ErrMalformed, err)
	}
	if env.Body == nil {
		return nil, fmt.Errorf("%w: envelope without body", ErrMalformed)
	}
	var m Message
	switch env.Type {
	case TypeHello:
		m = new(Hello)
	case TypeWelcome:
		m = new(Welcome)
	case TypeBatch:
		m = new(Batch)
	case TypeAck:
		m = new(Ack)
	case TypeStatus:
		m = new(Status)
	case TypeError:
		m = new(Error)
	default:
		return nil, fmt.Errorf("%w: %d", ErrUnknownType, env.Type)
	}
	if err := decMode.Unmarshal(env.Body, m); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrMalformed, env.Type, err)
	}
	if v, ok := m.(interface{ Validate() error }); ok {
		if err := v.Validate(); err != nil {
			return nil, fmt.Errorf("%s: %w", env.Type, err)
		}
	}
	return m, nil
}

// ErrorCodeFor maps a Decode error to the ErrorCode sent to the peer.
func ErrorCodeFor(err error) ErrorCode {
	switch {
	case errors.Is(err, ErrTooLarge):
		return ErrorCodeTooLarge
	case errors.Is(err, ErrUnknownType):
		return ErrorCodeUnknownType
	case errors.Is(err, ErrMalformed):
		return ErrorCodeMalformed
	}
	return ErrorCodeInternal
}

// scan walks the CBOR item headers of data without allocating and checks the
// limits the CBOR library cannot: the length of every string. It also refuses
// indefinite lengths, counts beyond the limits and truncated items early.
func scan(data []byte) error {
	rest, err := scanItem(data, 0)
	if err != nil {
		return err
	}
	if len(rest) != 0 {
		return fmt.Errorf("%w: %d trailing bytes", ErrMalformed, len(rest))
	}
	return nil
}

func scanItem(data []byte, depth int) ([]byte, error) {
	if depth > MaxNesting {
		return nil, fmt.Errorf("%w: nesting deeper than %d", ErrTooLarge, MaxNesting)
	}
	if len(data) == 0 {
		return nil, fmt.Errorf("%w: truncated", ErrMalformed)
	}
	major := data[0] >> 5
	info := data[0] & 0x1f
	data = data[1:]
	var arg uint64
	switch {
	case info < 24:
		arg = uint64(info)
	case info <= 27:
		n := 1 << (info - 24)
		if len(data) < n {
			return nil, fmt.Errorf("%w: truncated", ErrMalformed)
		}
		for _, b := range data[:n] {
			arg = arg<<8 | uint64(b)
		}
		data = data[n:]
	case info == 31:
		return nil, fmt.Errorf("%w: indefinite length", ErrMalformed)
	default:
		return nil, fmt.Errorf("%w: reserved additional information %d", ErrMalformed, info)
	}
	switch major {
	case 0, 1, 7: // integers, simple values and floats: no content
		return data, nil
	case 2, 3: // byte and text strings
		if arg > MaxTextBytes {
			return nil, fmt.Errorf("%w: string of %d bytes, limit %d", ErrTooLarge, arg, MaxTextBytes)
		}
		if uint64(len(data)) < arg {
			return nil, fmt.Errorf("%w: truncated string", ErrMalformed)
		}
		if major == 3 && !utf8.Valid(data[:arg]) {
			return nil, fmt.Errorf("%w: invalid UTF-8", ErrMalformed)
		}
		return data[arg:], nil
	case 4: // array
		if arg > MaxBatchTaps {
			return nil, fmt.Errorf("%w: array of %d, limit %d", ErrTooLarge, arg, MaxBatchTaps)
		}
		for i := uint64(0); i < arg; i++ {
			var err error
			if data, err = scanItem(data, depth+1); err != nil {
				return nil, err
			}
		}
		return data, nil
	case 5: // map
		if arg > MaxMapPairs {
			return nil, fmt.Errorf("%w: map of %d pairs, limit %d", ErrTooLarge, arg, MaxMapPairs)
		}
		for i := uint64(0); i < 2*arg; i++ {
			var err error
			if data, err = scanItem(data, depth+1); err != nil {
				return nil, err
			}
		}
		return data, nil
	default: // 6: tags
		return nil, fmt.Errorf("%w: CBOR tags are not used by this protocol", ErrMalformed)
	}
}

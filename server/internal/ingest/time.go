package ingest

import (
	"time"

	"github.com/liggare/liggare/syncproto"
)

// TimeSource says how a tap's event time was derived (design invariant 5).
type TimeSource string

// Time sources, as stored in taps.time_source.
const (
	// TimeDevice: the device clock was within TrustedSkew of the server's
	// when the session began, and is used as it is.
	TimeDevice TimeSource = "device"
	// TimeOffset: the device clock was off, but the tap was made during the
	// boot the session was measured in, so its time is the server time of
	// the Hello moved back by the monotonic time between tap and Hello.
	TimeOffset TimeSource = "offset"
	// TimeReceived: the device clock was off and the tap comes from an
	// earlier boot, so nothing on the device can be trusted: the server's
	// receive time is used, and says so.
	TimeReceived TimeSource = "received"
)

// DefaultTrustedSkew is how far a device clock may be from the server's and
// still be used as it is.
const DefaultTrustedSkew = 30 * time.Second

// Session is what the server measured when a terminal said Hello; it is used
// to derive the event time of every tap uploaded in the session.
type Session struct {
	TerminalID string
	StoreEpoch int64
	// HelloClock is the terminal's clock reading carried in the Hello.
	HelloClock syncproto.Clock
	// HelloReceived is the server time the Hello arrived.
	HelloReceived time.Time
	// TrustedSkew overrides DefaultTrustedSkew when positive.
	TrustedSkew time.Duration
}

// ClockOffset is the server clock minus the device wall clock, measured at
// Hello. It includes the one-way network delay, which is small against the
// skews that matter here.
func (s *Session) ClockOffset() time.Duration {
	return s.HelloReceived.Sub(time.UnixMicro(s.HelloClock.WallMicros))
}

// EventTime derives a tap's event time and says how.
func (s *Session) EventTime(c syncproto.Clock, received time.Time) (time.Time, TimeSource) {
	skew := s.TrustedSkew
	if skew <= 0 {
		skew = DefaultTrustedSkew
	}
	if off := s.ClockOffset(); off.Abs() <= skew {
		return time.UnixMicro(c.WallMicros), TimeDevice
	}
	if c.BootID != "" && c.BootID == s.HelloClock.BootID {
		// Same boot: the monotonic clock links the tap to the Hello, whose
		// server time is known, however wrong the wall clock is.
		since := time.Duration(c.MonoNanos - s.HelloClock.MonoNanos)
		return s.HelloReceived.Add(since).Truncate(time.Microsecond), TimeOffset
	}
	return received.Truncate(time.Microsecond), TimeReceived
}

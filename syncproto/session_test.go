package syncproto

import (
	"errors"
	"testing"
)

func TestNegotiate(t *testing.T) {
	for _, tc := range []struct {
		peer uint32
		want uint32
		err  error
	}{
		{0, 0, ErrVersion},
		{MinProtocolVersion - 1, 0, ErrVersion},
		{MinProtocolVersion, MinProtocolVersion, nil},
		{ProtocolVersion, ProtocolVersion, nil},
		{ProtocolVersion + 1, ProtocolVersion, nil},
		{^uint32(0), ProtocolVersion, nil},
	} {
		got, err := Negotiate(tc.peer)
		if got != tc.want || !errors.Is(err, tc.err) || (err == nil) != (tc.err == nil) {
			t.Errorf("Negotiate(%d) = %d, %v, want %d, %v", tc.peer, got, err, tc.want, tc.err)
		}
	}
}

func TestKeepalive(t *testing.T) {
	// A peer must survive one lost ping and the next one's round trip.
	if PeerTimeout <= 2*PingInterval {
		t.Errorf("PeerTimeout %v <= 2 * PingInterval %v", PeerTimeout, PingInterval)
	}
}

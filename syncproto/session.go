package syncproto

import (
	"errors"
	"fmt"
	"time"
)

// SyncPath is the HTTP path of the websocket endpoint. The version in the
// path is the transport's; the protocol version is negotiated in Hello.
const SyncPath = "/v1/sync"

// Keepalive. Both use websocket ping and pong control frames, which carry no
// syncproto message; any frame received counts as a sign of life.
const (
	// PingInterval is how often the server pings a terminal.
	PingInterval = 30 * time.Second
	// PeerTimeout is how long either side waits without receiving any frame
	// before it considers the peer dead and drops the connection. It spans
	// two missed pings and a round trip.
	PeerTimeout = 75 * time.Second
)

// ErrVersion means the peer's protocol version is outside what this package
// supports. ErrorCodeFor maps it to ErrorCodeVersion.
var ErrVersion = errors.New("syncproto: unsupported protocol version")

// Negotiate returns the protocol version a session runs at when the peer
// speaks up to peer: the lower of peer and ProtocolVersion. It fails with
// ErrVersion when that is below MinProtocolVersion. The server calls it with
// Hello.ProtocolVersion and answers Welcome or Error; the terminal checks
// Welcome.ProtocolVersion the same way and also refuses a version above the
// one it offered.
func Negotiate(peer uint32) (uint32, error) {
	v := min(peer, ProtocolVersion)
	if v < MinProtocolVersion {
		return 0, fmt.Errorf("%w: peer speaks up to %d, this side %d to %d",
			ErrVersion, peer, MinProtocolVersion, ProtocolVersion)
	}
	return v, nil
}

package loadgen

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/sync/errgroup"

	"github.com/liggare/liggare/syncproto"
)

// idleBufferBytes sizes the client side of an idle connection: it only
// ever reads a Welcome and answers pings.
const idleBufferBytes = 1024

// IdleConn is a terminal session with nothing to upload: it has said Hello,
// been welcomed, and now only answers the server's pings, as a kiosk on a
// quiet site does. It keeps no outbox.
type IdleConn struct {
	// Welcome is the server's answer to the Hello.
	Welcome *syncproto.Welcome

	ws   *websocket.Conn
	done chan struct{} // closed when the reader has returned
	err  error         // why the reader returned, valid after done
}

// DialIdle opens a session with credential and returns once the server has
// welcomed it. The connection stays open, answering pings, until Close.
func (e *Env) DialIdle(ctx context.Context, credential string) (*IdleConn, error) {
	id, _, ok := strings.Cut(credential, ".")
	if !ok {
		return nil, errors.New("loadgen: dial idle: credential must be <terminal-id>.<secret>")
	}
	dialer := websocket.Dialer{
		HandshakeTimeout: 30 * time.Second,
		ReadBufferSize:   idleBufferBytes,
		WriteBufferSize:  idleBufferBytes,
	}
	ws, resp, err := dialer.DialContext(ctx, e.ReplicaSyncURL(e.nextReplica()), http.Header{"Authorization": {"Bearer " + credential}})
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("loadgen: dial idle %s: %s: %w", id, resp.Status, err)
		}
		return nil, fmt.Errorf("loadgen: dial idle %s: %w", id, err)
	}
	ws.SetReadLimit(syncproto.MaxMessageBytes)
	fail := func(err error) (*IdleConn, error) {
		ws.Close()
		return nil, fmt.Errorf("loadgen: dial idle %s: %w", id, err)
	}
	var b [8]byte
	rand.Read(b[:])
	hello, err := syncproto.Encode(&syncproto.Hello{
		ProtocolVersion: syncproto.ProtocolVersion,
		TerminalID:      id,
		StoreEpoch:      int64(binary.BigEndian.Uint64(b[:])>>1) | 1,
		AgentVersion:    "loadgen-idle",
		Clock:           e.clock.Now(),
	})
	if err != nil {
		return fail(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	ws.SetWriteDeadline(deadline)
	if err := ws.WriteMessage(websocket.BinaryMessage, hello); err != nil {
		return fail(err)
	}
	ws.SetReadDeadline(deadline)
	_, data, err := ws.ReadMessage()
	if err != nil {
		return fail(err)
	}
	m, err := syncproto.Decode(data)
	if err != nil {
		return fail(err)
	}
	welcome, ok := m.(*syncproto.Welcome)
	if !ok {
		return fail(fmt.Errorf("got %s, want Welcome", m.MsgType()))
	}
	ws.SetReadDeadline(time.Time{})
	ws.SetWriteDeadline(time.Time{})
	c := &IdleConn{Welcome: welcome, ws: ws, done: make(chan struct{})}
	// Reading is what makes gorilla answer pings; nothing else is expected.
	go func() {
		defer close(c.done)
		for {
			if _, _, err := ws.ReadMessage(); err != nil {
				c.err = err
				return
			}
		}
	}()
	return c, nil
}

// Alive reports whether the connection is still open.
func (c *IdleConn) Alive() bool {
	select {
	case <-c.done:
		return false
	default:
		return true
	}
}

// Close closes the connection and waits for its reader.
func (c *IdleConn) Close() error {
	err := c.ws.Close()
	<-c.done
	return err
}

// DialIdleAll dials one idle session per credential, concurrency at a time,
// and returns them in order. On error it closes those it opened.
func (e *Env) DialIdleAll(ctx context.Context, creds []string, concurrency int) ([]*IdleConn, error) {
	conns := make([]*IdleConn, len(creds))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(concurrency, 1))
	for i, cred := range creds {
		g.Go(func() error {
			c, err := e.DialIdle(gctx, cred)
			conns[i] = c
			return err
		})
	}
	if err := g.Wait(); err != nil {
		CloseIdle(conns)
		return nil, err
	}
	return conns, nil
}

// CloseIdle closes every connection (nil entries are skipped).
func CloseIdle(conns []*IdleConn) {
	for _, c := range conns {
		if c != nil {
			c.Close()
		}
	}
}

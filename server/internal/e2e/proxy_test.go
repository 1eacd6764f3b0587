package e2e

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// proxy is a TCP proxy standing for the network between the terminals and
// the server, which the test can break the ways a site's uplink breaks:
//
//   - Cut closes every connection, both sides, at once (a router reboot).
//   - Blackhole stops every byte in both directions for a while without
//     closing anything, for connections old and new (a partition): only
//     keepalives and acknowledgement timeouts can notice. The bytes are
//     held, not dropped, and flow again when the blackhole ends, as TCP
//     retransmission would deliver them.
//   - SetUpstream points new connections at another address (the server
//     came back on another port); until then they fail as a dead server's
//     would.
type proxy struct {
	ln       net.Listener
	accepted atomic.Int64

	mu       sync.Mutex
	upstream string
	pairs    map[*pair]struct{}
	hole     chan struct{} // non-nil during a blackhole; closed when it ends
	holeGen  uint64
	wg       sync.WaitGroup
}

// pair is one proxied connection.
type pair struct {
	client net.Conn
	ctx    context.Context // ends when the pair is closed
	cancel context.CancelFunc

	mu       sync.Mutex
	upstream net.Conn
	closed   bool
}

func (pr *pair) close() {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	if pr.closed {
		return
	}
	pr.closed = true
	pr.cancel()
	pr.client.Close()
	if pr.upstream != nil {
		pr.upstream.Close()
	}
}

// setUpstream attaches the server side, unless the pair was closed first.
func (pr *pair) setUpstream(c net.Conn) bool {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	if pr.closed {
		c.Close()
		return false
	}
	pr.upstream = c
	return true
}

// newProxy starts a proxy on a loopback port, forwarding to upstream. The
// test's cleanup closes it.
func newProxy(t testing.TB, upstream string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, upstream: upstream, pairs: make(map[*pair]struct{})}
	p.wg.Add(1)
	go p.acceptLoop()
	t.Cleanup(p.close)
	return p
}

// Addr is the address clients connect to.
func (p *proxy) Addr() string { return p.ln.Addr().String() }

// SetUpstream sends new connections to addr.
func (p *proxy) SetUpstream(addr string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.upstream = addr
}

// Cut closes every current connection on both sides and reports how many.
func (p *proxy) Cut() int {
	p.mu.Lock()
	pairs := make([]*pair, 0, len(p.pairs))
	for pr := range p.pairs {
		pairs = append(pairs, pr)
	}
	p.mu.Unlock()
	for _, pr := range pairs {
		pr.close()
	}
	return len(pairs)
}

// Blackhole stops all traffic for d from now. A blackhole already under way
// is extended if it would end sooner.
func (p *proxy) Blackhole(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.hole == nil {
		p.hole = make(chan struct{})
	}
	p.holeGen++
	gen, hole := p.holeGen, p.hole
	time.AfterFunc(d, func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.holeGen == gen && p.hole == hole {
			close(hole)
			p.hole = nil
		}
	})
}

// waitOpen waits until no blackhole is under way. It reports false if the
// pair was closed meanwhile.
func (p *proxy) waitOpen(pr *pair) bool {
	p.mu.Lock()
	hole := p.hole
	p.mu.Unlock()
	if hole == nil {
		return true
	}
	select {
	case <-hole:
		return true
	case <-pr.ctx.Done():
		return false
	}
}

func (p *proxy) close() {
	p.ln.Close()
	p.Cut()
	p.wg.Wait()
}

func (p *proxy) acceptLoop() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return // closed
		}
		p.accepted.Add(1)
		pr := &pair{client: c}
		pr.ctx, pr.cancel = context.WithCancel(context.Background())
		p.mu.Lock()
		p.pairs[pr] = struct{}{}
		p.mu.Unlock()
		p.wg.Add(1)
		go p.serve(pr)
	}
}

func (p *proxy) serve(pr *pair) {
	defer p.wg.Done()
	defer func() {
		pr.close()
		p.mu.Lock()
		delete(p.pairs, pr)
		p.mu.Unlock()
	}()
	// During a blackhole not even the TCP handshake with the server gets
	// through.
	if !p.waitOpen(pr) {
		return
	}
	p.mu.Lock()
	addr := p.upstream
	p.mu.Unlock()
	ctx, cancel := context.WithTimeout(pr.ctx, 5*time.Second)
	up, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	cancel()
	if err != nil || !pr.setUpstream(up) {
		return
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); p.pump(pr, pr.client, up) }()
	go func() { defer wg.Done(); p.pump(pr, up, pr.client) }()
	wg.Wait()
}

// pump copies src to dst, holding bytes during blackholes. Whichever side
// ends first ends the pair.
func (p *proxy) pump(pr *pair, src, dst net.Conn) {
	defer pr.close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if !p.waitOpen(pr) {
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

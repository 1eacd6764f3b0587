package tapsource

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
)

// MaxFeedLine bounds one line of the feed protocol.
const MaxFeedLine = 256

// Feed is a line-driven reader for tests and tools: it listens on a loopback
// TCP address; each line a client writes is a card presentation,
// "<card-id>" or "<card-id> <reader>", and each line is answered once the tap
// is durable (or refused) with "ok <seq>" or "err <answer>". A client that
// sees "ok" knows the tap was recorded, exactly as a worker who sees the
// reader's green light, whatever the kiosk said about the card.
//
// With Answers the recorded line also says what the kiosk showed,
// "ok <seq> <answer>" (e.g. "ok 12 blocked_id06"). It is off by default
// because clients written for "ok <seq>" parse the rest of the line as the
// sequence.
type Feed struct {
	Addr string
	// Answers adds the kiosk's answer to every "ok" line.
	Answers bool

	mu sync.Mutex
	ln net.Listener
}

// Listen opens the listener ahead of Run, so callers can learn the address.
func (f *Feed) Listen() (net.Addr, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ln != nil {
		return f.ln.Addr(), nil
	}
	ln, err := net.Listen("tcp", f.Addr)
	if err != nil {
		return nil, fmt.Errorf("tapsource: feed: %w", err)
	}
	f.ln = ln
	return ln.Addr(), nil
}

// Run serves clients until ctx ends.
func (f *Feed) Run(ctx context.Context, h Handler) error {
	if _, err := f.Listen(); err != nil {
		return err
	}
	f.mu.Lock()
	ln := f.ln
	f.mu.Unlock()
	var wg sync.WaitGroup
	defer wg.Wait()
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("tapsource: feed: %w", err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			f.serve(ctx, c, h)
		}()
	}
}

func (f *Feed) serve(ctx context.Context, c net.Conn, h Handler) {
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	sc := bufio.NewScanner(c)
	sc.Buffer(make([]byte, MaxFeedLine), MaxFeedLine)
	w := bufio.NewWriter(c)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		card, reader, _ := strings.Cut(line, " ")
		fb := h(ctx, Read{CardID: card, Reader: strings.TrimSpace(reader)})
		switch {
		case fb.Recorded && f.Answers && fb.Answer != "":
			fmt.Fprintf(w, "ok %d %s\n", fb.Seq, fb.Answer)
		case fb.Recorded:
			fmt.Fprintf(w, "ok %d\n", fb.Seq)
		default:
			fmt.Fprintf(w, "err %s\n", fb.Answer)
		}
		if err := w.Flush(); err != nil {
			return
		}
	}
	if sc.Err() != nil {
		fmt.Fprintf(w, "err line longer than %d bytes\n", MaxFeedLine)
		w.Flush()
	}
}

// State reports the feed as healthy: it has no hardware to fail.
func (f *Feed) State() string { return "ok" }

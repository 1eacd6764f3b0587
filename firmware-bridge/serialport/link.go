package serialport

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Backoff limits for reopening a port.
const (
	// DefaultMinBackoff is the first wait before reopening.
	DefaultMinBackoff = 100 * time.Millisecond
	// DefaultMaxBackoff caps the wait between attempts, so a replugged
	// reader is back within this long.
	DefaultMaxBackoff = 5 * time.Second
)

// Log keys.
const (
	logKeyPath    = "path"
	logKeyErr     = "err"
	logKeyBackoff = "backoff"
	logKeyReopens = "reopens"
)

// LinkConfig configures a Link.
type LinkConfig struct {
	// Port is the device to keep open.
	Port Config
	// MinBackoff and MaxBackoff bound the exponential backoff between
	// open attempts; DefaultMinBackoff and DefaultMaxBackoff when zero.
	MinBackoff, MaxBackoff time.Duration
	// Logger receives open failures and reopens; none when nil.
	Logger *slog.Logger
}

// LinkStats is what a Link has seen, for reader.State.
type LinkStats struct {
	// Online: the port is open now.
	Online bool
	// Opens counts successful opens; Reopens those after the first.
	Opens, Reopens uint64
	// OpenFailures counts failed open attempts.
	OpenFailures uint64
	// LastError is the latest open or session error, "" if none yet.
	LastError string
}

// Link owns a serial port across unplug and replug: Run opens it, hands it
// to a session function, and when the session fails (the device is gone,
// or the driver gave up on it) closes it and opens it again, waiting with
// exponential backoff between attempts. Safe for concurrent use; Run is
// called once at a time.
type Link struct {
	cfg LinkConfig
	log *slog.Logger

	mu    sync.Mutex
	stats LinkStats
}

// NewLink validates cfg and returns a Link; it opens nothing until Run.
func NewLink(cfg LinkConfig) (*Link, error) {
	pc, err := cfg.Port.normalise()
	if err != nil {
		return nil, err
	}
	cfg.Port = pc
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = DefaultMinBackoff
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = DefaultMaxBackoff
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		return nil, fmt.Errorf("%w: max backoff %v below min backoff %v", ErrConfig, cfg.MaxBackoff, cfg.MinBackoff)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Link{cfg: cfg, log: log.With(logKeyPath, pc.Path)}, nil
}

// Config returns the Port configuration the Link opens, defaults filled in.
func (l *Link) Config() Config { return l.cfg.Port }

// Stats returns the link's counters now.
func (l *Link) Stats() LinkStats {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.stats
}

// Session uses an open port until it fails or ctx ends. It returns nil to
// end Link.Run, or an error (typically wrapping ErrGone) to have the port
// closed and reopened.
type Session func(ctx context.Context, p *Port) error

// Run keeps the port open and runs session on it until ctx ends or session
// returns nil; it returns nil then. When ctx ends the port is closed, so a
// session blocked in Read gets ErrClosed within the read timeout even if it
// does not watch ctx.
func (l *Link) Run(ctx context.Context, session Session) error {
	backoff := l.cfg.MinBackoff
	for {
		if ctx.Err() != nil {
			return nil
		}
		p, err := Open(l.cfg.Port)
		if err != nil {
			l.record(func(s *LinkStats) { s.OpenFailures++; s.LastError = err.Error() })
			l.log.Debug("serial_open_failed", logKeyErr, err, logKeyBackoff, backoff)
			if !sleep(ctx, backoff) {
				return nil
			}
			backoff = min(2*backoff, l.cfg.MaxBackoff)
			continue
		}
		var reopens uint64
		l.record(func(s *LinkStats) {
			s.Opens++
			if s.Opens > 1 {
				s.Reopens++
			}
			reopens = s.Reopens
			s.Online = true
		})
		if reopens > 0 {
			l.log.Info("serial_reopened", logKeyReopens, reopens)
		}
		opened := time.Now()
		err = l.session(ctx, p, session)
		l.record(func(s *LinkStats) {
			s.Online = false
			if err != nil && ctx.Err() == nil {
				s.LastError = err.Error()
			}
		})
		if ctx.Err() != nil || err == nil {
			return nil
		}
		l.log.Warn("serial_session_failed", logKeyErr, err)
		// A port that stayed up a while starts the backoff afresh; one that
		// fails at once (a flapping device) keeps backing off.
		if time.Since(opened) >= l.cfg.MaxBackoff {
			backoff = l.cfg.MinBackoff
		}
		if !sleep(ctx, backoff) {
			return nil
		}
		backoff = min(2*backoff, l.cfg.MaxBackoff)
	}
}

// session runs one session on p and closes p after it.
func (l *Link) session(ctx context.Context, p *Port, session Session) error {
	stop := context.AfterFunc(ctx, func() { _ = p.Close() })
	err := session(ctx, p)
	stop()
	if cerr := p.Close(); cerr != nil && err == nil && ctx.Err() == nil {
		err = cerr
	}
	if err != nil && !errors.Is(err, ErrGone) && !errors.Is(err, ErrClosed) {
		err = fmt.Errorf("serialport: session on %s: %w", p.Path(), err)
	}
	return err
}

func (l *Link) record(f func(*LinkStats)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f(&l.stats)
}

// sleep waits d or until ctx ends; it reports whether ctx is still live.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

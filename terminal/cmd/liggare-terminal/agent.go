package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/liggare/liggare/terminal/internal/inspect"
	"github.com/liggare/liggare/terminal/internal/kiosk"

	"github.com/liggare/liggare/internal/sdnotify"
	"github.com/liggare/liggare/terminal/internal/agent"
	"github.com/liggare/liggare/terminal/internal/cardcache"
	"github.com/liggare/liggare/terminal/internal/clock"
	"github.com/liggare/liggare/terminal/internal/enroll"
	"github.com/liggare/liggare/terminal/internal/health"
	"github.com/liggare/liggare/terminal/internal/outbox"
	"github.com/liggare/liggare/terminal/internal/tapsource"
	"github.com/liggare/liggare/terminal/internal/uplink"
	"golang.org/x/sync/errgroup"
)

// runAgent runs the kiosk agent until ctx ends.
func runAgent(ctx context.Context, args []string, getenv func(string) string) error {
	var a agentArgs
	var up uplink.Config
	if err := parseAgent(agentFlags(&a, &up), args, getenv, &a); err != nil {
		return err
	}
	logger, err := newLogger(a.logFormat, a.logLevel)
	if err != nil {
		return err
	}
	load := credentialSource(a, getenv)
	if up.Credential, err = load(); err != nil {
		return err
	}
	if a.credentialFromFile {
		up.LoadCredential = load // a rotated credential is read at the next connection
	}
	if up.TLS, err = tlsConfig(a.caFile); err != nil {
		return err
	}
	terminalID := enroll.TerminalID(up.Credential)
	up.AgentVersion = version
	up.Logger = logger

	clk, err := clock.New()
	if err != nil {
		return err
	}
	reader, err := tapsource.ParseWith(a.reader, tapsource.Options{Logger: logger})
	if err != nil {
		return err
	}
	if sim, ok := reader.(*tapsource.Sim); ok {
		sim.Logger = logger
	}
	up.ReaderState = reader.State
	ob, err := outbox.Open(a.outbox, outbox.Options{MaxPending: a.maxPending, Logger: logger})
	if err != nil {
		return err
	}
	defer ob.Close()
	if a.cards == "" {
		a.cards = defaultCardsPath(a.outbox)
	}
	cards, err := cardcache.Open(a.cards, cardcache.Options{Logger: logger})
	if err != nil {
		return err
	}
	defer cards.Close()
	up.Cards = cards
	link, err := uplink.New(up, ob, clk)
	if err != nil {
		return err
	}
	var healthLn net.Listener
	if a.healthListen != "" {
		if healthLn, err = health.Listen(a.healthListen); err != nil {
			return err
		}
	}

	logger.Info("terminal_starting", "terminal_id", terminalID, "store_epoch", ob.Epoch(), "outbox_depth", ob.Stats().Depth,
		"reader", a.reader, "card_cursor", cards.Cursor(), "cards", cards.Len())
	notifier := sdnotify.FromEnv(getenv)
	g, gctx := errgroup.WithContext(ctx)
	ag := &agent.Agent{Outbox: ob, Cards: cards, Uplink: link, Reader: reader, Clock: clk, Logger: logger}

	// The kiosk screen and offline inspection: every tap also goes into a
	// 24-hour journal, so the site's on-site list can be shown without the
	// network.
	modes, err := inspect.ParseModes(a.inspectModes)
	if err != nil {
		return err
	}
	journal, err := inspect.OpenJournal(siblingPath(a.outbox, "journal.db", "journal"),
		inspect.JournalOptions{Modes: modes, Logger: logger})
	if err != nil {
		return err
	}
	defer journal.Close()
	var pinHash string
	if a.inspectPINFile != "" {
		b, err := os.ReadFile(a.inspectPINFile)
		if err != nil {
			return fmt.Errorf("inspection PIN: %w", err)
		}
		pinHash = strings.TrimSpace(string(b))
	}
	guard, err := inspect.NewGuard(pinHash, nil)
	if err != nil {
		return err
	}
	src := &inspect.Sources{Journal: journal, Outbox: ob, Cards: cards.Lookup, Link: link.State, TerminalID: terminalID}
	screen := kiosk.New(kiosk.Config{Outbox: ob, Link: link.State, TerminalID: terminalID, Logger: logger,
		Inspect: inspect.NewHandler(src, guard, inspect.HandlerOptions{OutDir: a.inspectOut, Logger: logger})})
	ag.Observe = func(o agent.Observation) { screen.Show(o, string(journal.Add(o))) }
	if a.kioskListen != "" {
		ln, err := kiosk.Listen(a.kioskListen)
		if err != nil {
			return err
		}
		g.Go(func() error { return screen.Run(gctx, ln) })
		logger.Info("kiosk_listening", "addr", ln.Addr().String())
	}
	g.Go(func() error {
		err := ag.Run(gctx)
		if err == nil && ctx.Err() == nil {
			err = errors.New("agent stopped")
		}
		return err
	})
	if healthLn != nil {
		src := &health.Sources{TerminalID: terminalID, AgentVersion: version, Outbox: ob, Uplink: link,
			Cards: cards, ReaderState: reader.State}
		g.Go(func() error { return health.Serve(gctx, healthLn, src, logger) })
		logger.Info("health_listening", "addr", healthLn.Addr().String())
	}
	// The outbox is open: taps are recorded from now on, network or not.
	if err := notifier.Notify(sdnotify.Ready, sdnotify.Status("recording taps")); err != nil {
		logger.Warn("sd_notify_failed", "err", err)
	}
	g.Go(func() error {
		// Stats takes the outbox's lock: a wedged outbox stops the pings.
		notifier.RunWatchdog(gctx, func() error { ob.Stats(); return nil })
		return nil
	})
	g.Go(func() error {
		<-gctx.Done()
		notifier.Notify(sdnotify.Stopping)
		return nil
	})
	return g.Wait()
}

// credentialSource returns how the agent reads its credential: from the
// credential file, or from LIGGARE_CREDENTIAL when no file was named.
func credentialSource(a agentArgs, getenv func(string) string) func() (string, error) {
	if !a.credentialFromFile {
		c := strings.TrimSpace(getenv("LIGGARE_CREDENTIAL"))
		return func() (string, error) { return c, nil }
	}
	return func() (string, error) {
		c, err := enroll.ReadCredential(a.credFile)
		if errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("no credential at %s: enroll this terminal first (liggare-terminal enroll --server URL --code CODE), or set --credential-file", a.credFile)
		}
		return c, err
	}
}

// defaultCardsPath names the card cache after the outbox, so that several
// terminals sharing a directory (tests, a bench) never share a cache.
func defaultCardsPath(outboxPath string) string {
	return siblingPath(outboxPath, "cards.db", "cards")
}

// siblingPath names a file beside the outbox after it: plain (cards.db)
// next to outbox.db, <name>.<kind>.db next to any other outbox <name>.<ext>,
// so terminals sharing a folder never share (or lock) each other's files.
func siblingPath(outboxPath, plain, kind string) string {
	dir, base := filepath.Split(outboxPath)
	name := strings.TrimSuffix(base, filepath.Ext(base))
	if name == "outbox" {
		return filepath.Join(dir, plain)
	}
	return filepath.Join(dir, name+"."+kind+".db")
}

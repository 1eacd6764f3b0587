// Command liggare-terminal is the kiosk agent: it records every card tap
// durably in a local outbox, answers it from a local card cache, and syncs
// both with the server whenever the network allows.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/liggare/liggare/terminal/internal/agent"
	"github.com/liggare/liggare/terminal/internal/cardcache"
	"github.com/liggare/liggare/terminal/internal/clock"
	"github.com/liggare/liggare/terminal/internal/outbox"
	"github.com/liggare/liggare/terminal/internal/tapsource"
	"github.com/liggare/liggare/terminal/internal/uplink"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "liggare-terminal:", err)
		os.Exit(1)
	}
}

func run() error {
	if len(os.Args) > 1 && os.Args[1] == "outbox" {
		return inspectOutbox(os.Args[2:])
	}
	var up uplink.Config
	flag.StringVar(&up.URL, "server", env("LIGGARE_SERVER", "ws://127.0.0.1:8080/v1/sync"), "server sync URL (env LIGGARE_SERVER)")
	credFile := flag.String("credential-file", os.Getenv("LIGGARE_CREDENTIAL_FILE"), "file holding the terminal credential (env LIGGARE_CREDENTIAL_FILE; or LIGGARE_CREDENTIAL)")
	outboxPath := flag.String("outbox", env("LIGGARE_OUTBOX", "/var/lib/liggare/outbox.db"), "outbox file (env LIGGARE_OUTBOX)")
	cardsPath := flag.String("cards", os.Getenv("LIGGARE_CARDS"), "card cache file (env LIGGARE_CARDS; default cards.db next to the outbox, <name>.cards.db for an outbox <name>.<ext>)")
	maxPending := flag.Int("max-pending", 0, "most unacknowledged taps kept before new taps are refused (default 500000)")
	readerSpec := flag.String("reader", env("LIGGARE_READER", "sim"), "card reader: sim[:workers=N,interval=D] or feed:ADDR (env LIGGARE_READER)")
	logFormat := flag.String("log-format", env("LIGGARE_LOG_FORMAT", "text"), "log format: text or json")
	flag.IntVar(&up.MaxBatchTaps, "batch", 0, "taps per batch (default 1024)")
	flag.IntVar(&up.MaxInFlight, "in-flight", 0, "batches sent before waiting for an Ack (default 8)")
	flag.DurationVar(&up.PingInterval, "ping-interval", 0, "websocket ping interval (default 30s)")
	flag.DurationVar(&up.PongWait, "pong-wait", 0, "reconnect when the server is silent this long (default 75s)")
	flag.DurationVar(&up.AckTimeout, "ack-timeout", 0, "reconnect when a batch waits this long for its Ack (default 60s)")
	flag.DurationVar(&up.StatusInterval, "status-interval", 0, "status report interval (default 30s)")
	flag.DurationVar(&up.MaxBackoff, "max-backoff", 0, "longest wait between reconnects (default 30s)")
	flag.Parse()

	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if *logFormat == "json" {
		logger = slog.New(slog.NewJSONHandler(os.Stderr, nil))
	}
	cred, err := credential(*credFile)
	if err != nil {
		return err
	}
	up.Credential = cred
	up.AgentVersion = version
	up.Logger = logger

	clk, err := clock.New()
	if err != nil {
		return err
	}
	reader, err := tapsource.Parse(*readerSpec)
	if err != nil {
		return err
	}
	if sim, ok := reader.(*tapsource.Sim); ok {
		sim.Logger = logger
	}
	up.ReaderState = reader.State
	ob, err := outbox.Open(*outboxPath, outbox.Options{MaxPending: *maxPending, Logger: logger})
	if err != nil {
		return err
	}
	defer ob.Close()
	if *cardsPath == "" {
		*cardsPath = defaultCardsPath(*outboxPath)
	}
	cards, err := cardcache.Open(*cardsPath, cardcache.Options{Logger: logger})
	if err != nil {
		return err
	}
	defer cards.Close()
	up.Cards = cards
	link, err := uplink.New(up, ob, clk)
	if err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	logger.Info("terminal_starting", "store_epoch", ob.Epoch(), "outbox_depth", ob.Stats().Depth, "reader", *readerSpec,
		"card_cursor", cards.Cursor(), "cards", cards.Len())
	a := &agent.Agent{Outbox: ob, Cards: cards, Uplink: link, Reader: reader, Clock: clk, Logger: logger}
	return a.Run(ctx)
}

// inspectOutbox prints an outbox's state as JSON, for technicians and tests:
// liggare-terminal outbox --outbox FILE. The agent must not be running.
func inspectOutbox(args []string) error {
	fs := flag.NewFlagSet("liggare-terminal outbox", flag.ContinueOnError)
	path := fs.String("outbox", env("LIGGARE_OUTBOX", "/var/lib/liggare/outbox.db"), "outbox file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if _, err := os.Stat(*path); err != nil {
		return err
	}
	ob, err := outbox.Open(*path, outbox.Options{})
	if err != nil {
		return err
	}
	defer ob.Close()
	st := ob.Stats()
	return json.NewEncoder(os.Stdout).Encode(map[string]any{
		"store_epoch":        ob.Epoch(),
		"depth":              st.Depth,
		"last_seq":           st.LastSeq,
		"acked_through":      st.AckedThrough,
		"oldest_wall_micros": st.OldestWallMicros,
		"full":               st.Full,
	})
}

// defaultCardsPath names the card cache after the outbox, so that several
// terminals sharing a directory (tests, a bench) never share a cache.
func defaultCardsPath(outboxPath string) string {
	dir, base := filepath.Split(outboxPath)
	name := strings.TrimSuffix(base, filepath.Ext(base))
	if name == "outbox" {
		return filepath.Join(dir, "cards.db")
	}
	return filepath.Join(dir, name+".cards.db")
}

func credential(file string) (string, error) {
	if file == "" {
		if c := os.Getenv("LIGGARE_CREDENTIAL"); c != "" {
			return c, nil
		}
		return "", errors.New("no credential: set --credential-file or LIGGARE_CREDENTIAL")
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("read credential: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

func env(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

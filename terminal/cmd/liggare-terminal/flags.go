package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"

	"github.com/liggare/liggare/internal/flagenv"
	"github.com/liggare/liggare/terminal/internal/uplink"
)

// Defaults of the files under the state directory (StateDirectory=liggare).
const (
	defaultOutbox     = "/var/lib/liggare/outbox.db"
	defaultCredential = "/var/lib/liggare/credential"
)

// agentArgs are the agent's settings that are not uplink.Config's.
type agentArgs struct {
	credFile, caFile    string
	outbox, cards       string
	maxPending          int
	reader              string
	logFormat, logLevel string
	healthListen        string
	kioskListen         string
	inspectPINFile      string
	inspectModes        string
	inspectOut          string
	// credentialFromFile is false when no credential file was named and
	// LIGGARE_CREDENTIAL holds the credential itself.
	credentialFromFile bool
}

// parseAgent parses the agent's flags and decides where its credential
// comes from: a named credential file wins, then LIGGARE_CREDENTIAL, then
// the default file.
func parseAgent(f *flagenv.FlagSet, args []string, getenv func(string) string, a *agentArgs) error {
	if err := f.ParseEnv(args, getenv); err != nil {
		return err
	}
	a.credentialFromFile = f.IsSet("credential-file") || getenv("LIGGARE_CREDENTIAL") == ""
	return nil
}

// connFlags adds the flags every command that talks to the server has.
func connFlags(f *flagenv.FlagSet, server, credFile, caFile *string) {
	f.StringVar(server, "server", "ws://127.0.0.1:8080/v1/sync", "server sync URL, ws:// or wss:// (enroll and rotate use its host)")
	f.Bind("server", "LIGGARE_SERVER")
	f.StringVar(credFile, "credential-file", defaultCredential, "file holding the terminal credential (0600); the terminal's key is beside it, in FILE.key")
	f.Bind("credential-file", "LIGGARE_CREDENTIAL_FILE")
	f.StringVar(caFile, "ca-file", "", "PEM file of the CA certificates that may sign a wss:// server's certificate (default: the system's)")
	f.Bind("ca-file", "LIGGARE_CA_FILE")
}

func agentFlags(a *agentArgs, up *uplink.Config) *flagenv.FlagSet {
	f := flagenv.New("liggare-terminal run")
	connFlags(f, &up.URL, &a.credFile, &a.caFile)
	f.StringVar(&a.outbox, "outbox", defaultOutbox, "outbox file")
	f.Bind("outbox", "LIGGARE_OUTBOX")
	f.StringVar(&a.cards, "cards", "", "card cache file (default cards.db next to the outbox, <name>.cards.db for an outbox <name>.<ext>)")
	f.Bind("cards", "LIGGARE_CARDS")
	f.IntVar(&a.maxPending, "max-pending", 0, "most unacknowledged taps kept before new taps are refused (default 500000)")
	f.Bind("max-pending", "LIGGARE_MAX_PENDING")
	f.StringVar(&a.reader, "reader", "sim", "card reader: osdp:PATH?addr=1, pn532:PATH, line:PATH (see firmware-bridge), sim[:workers=N,interval=D] or feed:ADDR")
	f.Bind("reader", "LIGGARE_READER")
	f.StringVar(&a.logFormat, "log-format", "text", "log format: text or json")
	f.Bind("log-format", "LIGGARE_LOG_FORMAT")
	f.StringVar(&a.logLevel, "log-level", "info", "least severe level logged: debug, info, warn or error")
	f.Bind("log-level", "LIGGARE_LOG_LEVEL")
	f.StringVar(&a.healthListen, "health-listen", "", "loopback address serving GET /healthz, e.g. 127.0.0.1:7070 (default off)")
	f.Bind("health-listen", "LIGGARE_HEALTH_LISTEN")
	f.StringVar(&a.kioskListen, "kiosk-listen", "", "loopback address of the kiosk screen for a full-screen browser, e.g. 127.0.0.1:7080 (default off)")
	f.Bind("kiosk-listen", "LIGGARE_KIOSK_LISTEN")
	f.StringVar(&a.inspectPINFile, "inspect-pin-file", "", "file holding the hash of the site PIN that opens inspection on the kiosk (liggare-terminal pin-hash makes it; default: inspection off)")
	f.Bind("inspect-pin-file", "LIGGARE_INSPECT_PIN_FILE")
	f.StringVar(&a.inspectModes, "inspect-modes", "toggle", "reader direction(s) for the offline on-site list: in, out, toggle, or name=mode,... per reader")
	f.Bind("inspect-modes", "LIGGARE_INSPECT_MODES")
	f.StringVar(&a.inspectOut, "inspect-out", "", "folder where inspection saves its files on the terminal (e.g. a mounted USB stick)")
	f.Bind("inspect-out", "LIGGARE_INSPECT_OUT")
	f.IntVar(&up.MaxBatchTaps, "batch", 0, "taps per batch (default 1024)")
	f.Bind("batch", "LIGGARE_BATCH")
	f.IntVar(&up.MaxInFlight, "in-flight", 0, "batches sent before waiting for an Ack (default 8)")
	f.Bind("in-flight", "LIGGARE_IN_FLIGHT")
	f.DurationVar(&up.PingInterval, "ping-interval", 0, "websocket ping interval (default 30s)")
	f.Bind("ping-interval", "LIGGARE_PING_INTERVAL")
	f.DurationVar(&up.PongWait, "pong-wait", 0, "reconnect when the server is silent this long (default 75s)")
	f.Bind("pong-wait", "LIGGARE_PONG_WAIT")
	f.DurationVar(&up.AckTimeout, "ack-timeout", 0, "reconnect when a batch waits this long for its Ack (default 60s)")
	f.Bind("ack-timeout", "LIGGARE_ACK_TIMEOUT")
	f.DurationVar(&up.StatusInterval, "status-interval", 0, "status report interval (default 30s)")
	f.Bind("status-interval", "LIGGARE_STATUS_INTERVAL")
	f.DurationVar(&up.MaxBackoff, "max-backoff", 0, "longest wait between reconnects (default 30s)")
	f.Bind("max-backoff", "LIGGARE_MAX_BACKOFF")
	return f
}

// enrollArgs are the flags of enroll and rotate.
type enrollArgs struct {
	server, credFile, caFile string
	code, terminalID         string
}

func enrollFlags(a *enrollArgs) *flagenv.FlagSet {
	f := flagenv.New("liggare-terminal enroll")
	connFlags(f, &a.server, &a.credFile, &a.caFile)
	f.StringVar(&a.code, "code", "", "the enrollment code from the site manager (required)")
	f.StringVar(&a.terminalID, "terminal-id", "", "the terminal id to ask for (default: the existing credential's, the code's, or one the server names)")
	return f
}

func rotateFlags(a *enrollArgs) *flagenv.FlagSet {
	f := flagenv.New("liggare-terminal rotate")
	connFlags(f, &a.server, &a.credFile, &a.caFile)
	return f
}

func outboxFlags(path *string) *flagenv.FlagSet {
	f := flagenv.New("liggare-terminal outbox")
	f.StringVar(path, "outbox", defaultOutbox, "outbox file")
	f.Bind("outbox", "LIGGARE_OUTBOX")
	return f
}

func newLogger(format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
}

// tlsConfig trusts the CAs in caFile, or the system's when it is empty.
func tlsConfig(caFile string) (*tls.Config, error) {
	if caFile == "" {
		return nil, nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("--ca-file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("--ca-file %s: no PEM certificate in it", caFile)
	}
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}

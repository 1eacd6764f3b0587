package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/liggare/liggare/internal/flagenv"
	"github.com/liggare/liggare/server/internal/pii"

	"github.com/liggare/liggare/server/internal/daemon"
)

// logFlags configure the logger.
type logFlags struct {
	format, level string
}

func (l *logFlags) add(f *flagenv.FlagSet) {
	f.StringVar(&l.format, "log-format", "text", "log format: text or json")
	f.StringVar(&l.level, "log-level", "info", "least severe level logged: debug, info, warn or error")
	f.Bind("log-format", "LIGGARE_LOG_FORMAT")
	f.Bind("log-level", "LIGGARE_LOG_LEVEL")
}

func (l *logFlags) logger() (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(l.level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", l.level)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch l.format {
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", l.format)
}

// addDatabase adds --database-url.
func addDatabase(f *flagenv.FlagSet, url *string) {
	f.StringVar(url, "database-url", "", "PostgreSQL URL; pool_max_conns etc. may be set in it")
	f.BindSecret("database-url", "DATABASE_URL")
}

var errNoDatabase = errors.New("no database: set DATABASE_URL (or DATABASE_URL_FILE, --database-url)")

// serveFlags are the flags of serve and check.
func serveFlags(cfg *daemon.Config, log *logFlags) *flagenv.FlagSet {
	f := flagenv.New("liggare-server serve")
	f.StringVar(&cfg.Listen, "listen", "127.0.0.1:8080", "address for terminals (sync, enrollment) and web pages")
	f.Bind("listen", "LIGGARE_LISTEN")
	addDatabase(f, &cfg.DatabaseURL)
	log.add(f)
	f.StringVar(&cfg.PIIKeys, "pii-keys", "", "keys encrypting identity numbers: one base64 key, or ID:KEY,ID:KEY with the current key first (secret; needed for the web UI; liggare-server keygen makes them)")
	f.BindSecret("pii-keys", "LIGGARE_PII_KEYS")
	f.StringVar(&cfg.PIIIndexKey, "pii-index-key", "", "key of the keyed hash that finds identity numbers, base64 (secret; needed for the web UI)")
	f.BindSecret("pii-index-key", "LIGGARE_PII_INDEX_KEY")
	f.StringVar(&cfg.MetricsListen, "metrics-listen", "", "address of a separate plain-HTTP listener for /metrics, /livez and /readyz, e.g. 127.0.0.1:9090 (default off)")
	f.Bind("metrics-listen", "LIGGARE_METRICS_LISTEN")
	f.BoolVar(&cfg.Pprof, "pprof", false, "serve Go's CPU, heap and goroutine profiles under /debug/pprof/ on --metrics-listen (default off)")
	f.Bind("pprof", "LIGGARE_PPROF")
	f.StringVar(&cfg.SyncURL, "sync-url", "", "the sync URL terminals reach this server at, e.g. wss://liggare.example.se/v1/sync, shown in the web UI's enroll commands (default: the host the browser reached)")
	f.Bind("sync-url", "LIGGARE_SYNC_URL")
	f.StringVar(&cfg.TLSCert, "tls-cert", "", "PEM certificate (chain) file: the main listener then speaks TLS only (wss://, https://); renewals are picked up")
	f.Bind("tls-cert", "LIGGARE_TLS_CERT")
	f.StringVar(&cfg.TLSKey, "tls-key", "", "PEM private key file of --tls-cert")
	f.Bind("tls-key", "LIGGARE_TLS_KEY")
	f.DurationVar(&cfg.ShutdownTimeout, "shutdown-timeout", 0, "longest graceful shutdown: batches in flight are finished and acknowledged (default 20s)")
	f.Bind("shutdown-timeout", "LIGGARE_SHUTDOWN_TIMEOUT")
	f.DurationVar(&cfg.Sync.PingInterval, "ping-interval", 0, "websocket ping interval (default 30s)")
	f.Bind("ping-interval", "LIGGARE_PING_INTERVAL")
	f.DurationVar(&cfg.Sync.PongWait, "pong-wait", 0, "drop a terminal silent this long (default 75s)")
	f.Bind("pong-wait", "LIGGARE_PONG_WAIT")
	f.DurationVar(&cfg.Sync.CredentialRecheck, "credential-recheck", 0, "how often every credential is read again from the database: a revocation is announced to every replica and cuts its sessions at once; one made without the announcement (by hand in SQL) takes effect within this (default 1m)")
	f.Bind("credential-recheck", "LIGGARE_CREDENTIAL_RECHECK")
	f.IntVar(&cfg.Sync.AdmissionWorkers, "admission-workers", 0, "sessions opened in the database at once; terminals dialling together wait for theirs in a queue (default 8)")
	f.Bind("admission-workers", "LIGGARE_ADMISSION_WORKERS")
	f.IntVar(&cfg.Committer.Workers, "ingest-workers", 0, "concurrent ingest transactions (default 4)")
	f.Bind("ingest-workers", "LIGGARE_INGEST_WORKERS")
	f.BoolVar(&cfg.NoRetention, "no-retention", false, "do not run the daily retention job in this process")
	f.Bind("no-retention", "LIGGARE_NO_RETENTION")
	f.DurationVar(&cfg.Sync.TrustedSkew, "trusted-skew", 0, "a terminal clock further than this from the server's is not trusted; its taps are timed by the monotonic clock or the receive time, and say so (default 30s)")
	f.Bind("trusted-skew", "LIGGARE_TRUSTED_SKEW")
	return f
}

// dbFlags are the flags of the commands that only need the database.
func dbFlags(name string, url *string, log *logFlags) *flagenv.FlagSet {
	f := flagenv.New(name)
	addDatabase(f, url)
	log.add(f)
	return f
}

// enrollmentFlags are the flags of enrollment create.
type enrollmentArgs struct {
	url        string
	site       string
	terminalID string
	direction  string
	ttl        string
	actor      string
}

func enrollmentFlags(a *enrollmentArgs, log *logFlags) *flagenv.FlagSet {
	f := dbFlags("liggare-server enrollment create", &a.url, log)
	f.StringVar(&a.site, "site", "", "the site's identifikationsnummer (required)")
	f.StringVar(&a.terminalID, "terminal-id", "", "the only terminal id the code enrolls (default: the kiosk chooses, or the server names it)")
	f.StringVar(&a.direction, "direction", "toggle", "reader direction: in|out|toggle")
	f.StringVar(&a.ttl, "ttl", "24h", "how long the code may be used")
	f.StringVar(&a.actor, "actor", "", "who creates the code, for the audit log (default cli:$SUDO_USER, or cli:$USER)")
	return f
}

// terminalFlags are the flags of terminal add and terminal revoke.
func terminalFlags(url, actor *string, log *logFlags) *flagenv.FlagSet {
	f := dbFlags("liggare-server terminal", url, log)
	f.StringVar(actor, "actor", "", "who acts, for the audit log (default cli:$SUDO_USER, or cli:$USER)")
	return f
}

// cliActor names the operator at the command line for the audit log,
// unless --actor did.
func cliActor(given string, getenv func(string) string) string {
	if given != "" {
		return given
	}
	for _, v := range []string{"SUDO_USER", "USER", "LOGNAME"} {
		if u := strings.TrimSpace(getenv(v)); u != "" {
			return "cli:" + u
		}
	}
	return "cli"
}

// devdbArgs are the flags of devdb.
type devdbArgs struct {
	dir     string
	port    int
	durable bool
	// conf holds the --set settings, last one of a name wins.
	conf map[string]string
}

func devdbFlags(a *devdbArgs) *flagenv.FlagSet {
	f := flagenv.New("liggare-server devdb")
	f.StringVar(&a.dir, "dir", ".demo/pg", "cluster folder (created when missing, reused otherwise)")
	f.IntVar(&a.port, "port", 54329, "port (unix socket only; no TCP listener)")
	f.BoolVar(&a.durable, "durable", true, "keep fsync on; off is faster and loses data on a crash")
	f.Func("set", "a further postgresql.conf setting NAME=VALUE, such as --set shared_preload_libraries=pg_stat_statements (repeat for more)",
		func(v string) error {
			name, value, ok := strings.Cut(v, "=")
			if !ok || strings.TrimSpace(name) == "" {
				return fmt.Errorf("%q is not NAME=VALUE", v)
			}
			if a.conf == nil {
				a.conf = map[string]string{}
			}
			a.conf[strings.TrimSpace(name)] = value
			return nil
		})
	return f
}

// piiArgs are the keys that protect identity numbers at rest (see pii).
type piiArgs struct {
	enc, index string
}

func (a *piiArgs) add(f *flagenv.FlagSet) {
	f.StringVar(&a.enc, "pii-keys", "", "keys encrypting identity numbers: one base64 key, or ID:KEY,ID:KEY with the current key first (secret; liggare-server keygen makes one)")
	f.BindSecret("pii-keys", "LIGGARE_PII_KEYS")
	f.StringVar(&a.index, "pii-index-key", "", "key of the keyed hash that finds identity numbers, base64 (secret; never rotate without re-indexing)")
	f.BindSecret("pii-index-key", "LIGGARE_PII_INDEX_KEY")
}

func (a *piiArgs) keys() (*pii.Keys, error) {
	if a.enc == "" || a.index == "" {
		return nil, errors.New("no PII keys: set LIGGARE_PII_KEYS and LIGGARE_PII_INDEX_KEY (or their _FILE forms); liggare-server keygen makes them")
	}
	return pii.LoadKeys(a.enc, a.index)
}

// orgArgs are the flags of org create.
type orgArgs struct {
	url                               string
	name, orgNumber, admin, adminName string
	pii                               piiArgs
}

func orgFlags(a *orgArgs, log *logFlags) *flagenv.FlagSet {
	f := dbFlags("liggare-server org create", &a.url, log)
	f.StringVar(&a.name, "name", "", "the organisation's name (required)")
	f.StringVar(&a.orgNumber, "org-number", "", "its organisationsnummer, or a sole trader's personnummer (required)")
	f.StringVar(&a.admin, "admin", "", "the first admin's e-mail address (required)")
	f.StringVar(&a.adminName, "admin-name", "", "the first admin's name")
	a.pii.add(f)
	return f
}

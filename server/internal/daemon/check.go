package daemon

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/liggare/liggare/server/internal/db"
	"github.com/liggare/liggare/server/internal/ledger"
)

// Limits of Check.
const (
	// MaxClockSkew is the largest difference between this machine's clock
	// and the database's that Check accepts: receive times and terminal
	// clock offsets are measured by the server, and ledger times by the
	// database, so the two must agree.
	MaxClockSkew = 2 * time.Second
	// CertWarnBefore is how long before its expiry Check warns about the
	// TLS certificate.
	CertWarnBefore = 14 * 24 * time.Hour
	checkTimeout   = 15 * time.Second
)

// ErrCheckFailed is returned by Check when any check failed; the lines
// written say which.
var ErrCheckFailed = errors.New("check failed")

// checker writes one line per check.
type checker struct {
	w              io.Writer
	failed, warned int
}

func (c *checker) ok(what, format string, args ...any) {
	fmt.Fprintf(c.w, "ok    %-10s %s\n", what, fmt.Sprintf(format, args...))
}

func (c *checker) warn(what, format string, args ...any) {
	c.warned++
	fmt.Fprintf(c.w, "WARN  %-10s %s\n", what, fmt.Sprintf(format, args...))
}

func (c *checker) fail(what, format string, args ...any) {
	c.failed++
	fmt.Fprintf(c.w, "FAIL  %-10s %s\n", what, fmt.Sprintf(format, args...))
}

// Check tests a configuration without serving and without changing the
// database: the settings, the TLS files, the connection to PostgreSQL, that
// the schema is exactly this binary's (no migration pending, none unknown),
// that the database accepts writes, that its lock table has room for full
// reconcile steps (a warning), and that this machine's clock agrees with
// the database's. It writes one line per check to w and returns
// ErrCheckFailed if any failed.
func Check(ctx context.Context, cfg Config, w io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	c := &checker{w: w}
	c.settings(cfg)
	c.tls(cfg, time.Now())
	if cfg.DatabaseURL != "" {
		c.database(ctx, cfg.DatabaseURL)
	}
	if c.failed > 0 {
		fmt.Fprintf(w, "%d check(s) failed, %d warning(s)\n", c.failed, c.warned)
		return fmt.Errorf("%w: %d problem(s)", ErrCheckFailed, c.failed)
	}
	fmt.Fprintf(w, "all checks passed, %d warning(s)\n", c.warned)
	return nil
}

func (c *checker) settings(cfg Config) {
	if cfg.DatabaseURL == "" {
		c.fail("settings", "no database: set DATABASE_URL (or DATABASE_URL_FILE, --database-url)")
	}
	host, ok := c.address("listen", cfg.Listen)
	if ok && cfg.TLSCert == "" && !isLoopback(host) {
		c.warn("listen", "%s is reachable from other machines without TLS: terminal credentials cross the network in clear text (set --tls-cert and --tls-key, or put a TLS proxy in front)", cfg.Listen)
	}
	if cfg.MetricsListen != "" {
		if mhost, ok := c.address("metrics", cfg.MetricsListen); ok {
			if cfg.MetricsListen == cfg.Listen {
				c.fail("metrics", "--metrics-listen must differ from --listen")
			} else if !isLoopback(mhost) {
				c.warn("metrics", "%s is not a loopback address: keep metrics off the public network", cfg.MetricsListen)
			}
		}
	}
}

// address checks a listen address and returns its host.
func (c *checker) address(what, addr string) (string, bool) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || port == "" {
		c.fail(what, "%q is not a host:port address", addr)
		return "", false
	}
	c.ok(what, "%s", addr)
	return host, true
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (c *checker) tls(cfg Config, now time.Time) {
	switch {
	case cfg.TLSCert == "" && cfg.TLSKey == "":
		return
	case cfg.TLSCert == "" || cfg.TLSKey == "":
		c.fail("tls", "set both --tls-cert and --tls-key (LIGGARE_TLS_CERT, LIGGARE_TLS_KEY)")
		return
	}
	cert, _, err := loadCert(cfg.TLSCert, cfg.TLSKey)
	if err != nil {
		c.fail("tls", "%v", err)
		return
	}
	leaf := cert.Leaf
	hosts := append([]string(nil), leaf.DNSNames...)
	for _, ip := range leaf.IPAddresses {
		hosts = append(hosts, ip.String())
	}
	names := strings.Join(hosts, ", ")
	switch {
	case now.Before(leaf.NotBefore):
		c.fail("tls", "certificate for %s is not valid before %s", names, leaf.NotBefore.Format(time.RFC3339))
	case now.After(leaf.NotAfter):
		c.fail("tls", "certificate for %s expired on %s", names, leaf.NotAfter.Format(time.RFC3339))
	case leaf.NotAfter.Sub(now) < CertWarnBefore:
		c.warn("tls", "certificate for %s expires on %s", names, leaf.NotAfter.Format(time.RFC3339))
	default:
		c.ok("tls", "certificate for %s valid until %s", names, leaf.NotAfter.Format(time.DateOnly))
	}
	if leaf.KeyUsage != 0 && leaf.KeyUsage&x509.KeyUsageDigitalSignature == 0 {
		c.warn("tls", "certificate lacks the digital signature key usage; TLS 1.3 clients refuse it")
	}
}

func (c *checker) database(ctx context.Context, url string) {
	pool, err := db.Connect(ctx, url, nil)
	if err != nil {
		c.fail("database", "%v", err)
		return
	}
	defer pool.Close()
	var version string
	var readOnly bool
	if err := pool.QueryRow(ctx, `SELECT current_setting('server_version'), pg_is_in_recovery() OR current_setting('transaction_read_only')::bool`).
		Scan(&version, &readOnly); err != nil {
		c.fail("database", "%v", err)
		return
	}
	if readOnly {
		c.fail("database", "PostgreSQL %s is read-only (a standby?): the server needs the primary", version)
	} else {
		c.ok("database", "PostgreSQL %s, writable", version)
	}

	st, err := db.Status(ctx, pool)
	switch {
	case err != nil:
		c.fail("schema", "%v", err)
	case len(st.Unknown) > 0:
		c.fail("schema", "the database holds migrations %v this binary does not know (%d known): it was migrated by a newer liggare-server", st.Unknown, st.Known)
	case len(st.Pending) > 0:
		c.fail("schema", "%d migration(s) pending: %s (run liggare-server migrate, or start the server, which migrates)", len(st.Pending), strings.Join(st.Pending, ", "))
	default:
		c.ok("schema", "current (%d migrations)", st.Known)
	}

	// The reconciler sizes its steps to PostgreSQL's lock table; say when
	// it cannot take full ones (deploy/README.md).
	var locks int64
	if err := pool.QueryRow(ctx, ledger.LockTableQuery).Scan(&locks); err != nil {
		c.fail("locks", "%v", err)
	} else if need := ledger.FullStepLockTable(ledger.DefaultWorkers); locks < need {
		c.warn("locks", "lock table of %d entries: reconcile steps of %d taps instead of %d, more CPU per tap (raise max_locks_per_transaction so that it times max_connections reaches %d)",
			locks, ledger.StepTapsFor(locks, ledger.DefaultWorkers, ledger.DefaultStepTaps), ledger.DefaultStepTaps, need)
	} else {
		c.ok("locks", "lock table of %d entries, room for full reconcile steps", locks)
	}

	// The database's clock is read halfway through the round trip.
	sent := time.Now()
	var dbNow time.Time
	if err := pool.QueryRow(ctx, `SELECT clock_timestamp()`).Scan(&dbNow); err != nil {
		c.fail("clock", "%v", err)
		return
	}
	rtt := time.Since(sent)
	skew := sent.Add(rtt / 2).Sub(dbNow)
	if skew.Abs() > MaxClockSkew+rtt/2 {
		c.fail("clock", "this machine's clock is %v off the database's (limit %v): check NTP on both", skew.Round(time.Millisecond), MaxClockSkew)
	} else {
		c.ok("clock", "%v off the database's (round trip %v)", skew.Round(time.Millisecond), rtt.Round(time.Millisecond))
	}
}

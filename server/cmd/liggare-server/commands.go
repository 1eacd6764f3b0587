package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/liggare/liggare/server/internal/account"
	"github.com/liggare/liggare/server/internal/pii"
	"github.com/liggare/liggare/server/internal/registry"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/liggare/liggare/internal/sdnotify"
	"github.com/liggare/liggare/server/internal/auth"
	"github.com/liggare/liggare/server/internal/daemon"
	"github.com/liggare/liggare/server/internal/db"
	"github.com/liggare/liggare/server/internal/enroll"
	"github.com/liggare/liggare/server/internal/pglocal"
)

func serve(ctx context.Context, args []string, getenv func(string) string) error {
	var cfg daemon.Config
	var log logFlags
	if err := serveFlags(&cfg, &log).ParseEnv(args, getenv); err != nil {
		return err
	}
	logger, err := log.logger()
	if err != nil {
		return err
	}
	if cfg.DatabaseURL == "" {
		return errNoDatabase
	}
	cfg.Notifier = sdnotify.FromEnv(getenv)
	return daemon.Run(ctx, cfg, logger)
}

func check(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	var cfg daemon.Config
	var log logFlags
	f := serveFlags(&cfg, &log)
	f.Init("liggare-server check", f.ErrorHandling())
	if err := f.ParseEnv(args, getenv); err != nil {
		return err
	}
	if _, err := log.logger(); err != nil {
		return err
	}
	return daemon.Check(ctx, cfg, stdout)
}

// connect opens the database for an administrative command, migrated.
func connect(ctx context.Context, url string, log *logFlags) (*pgxpool.Pool, error) {
	logger, err := log.logger()
	if err != nil {
		return nil, err
	}
	if url == "" {
		return nil, errNoDatabase
	}
	pool, err := db.Connect(ctx, url, logger)
	if err != nil {
		return nil, err
	}
	if err := db.Migrate(ctx, pool, logger); err != nil {
		pool.Close()
		return nil, err
	}
	return pool, nil
}

func migrate(ctx context.Context, args []string, getenv func(string) string) error {
	var url string
	var log logFlags
	f := dbFlags("liggare-server migrate", &url, &log)
	if err := f.ParseEnv(args, getenv); err != nil {
		return err
	}
	pool, err := connect(ctx, url, &log)
	if err != nil {
		return err
	}
	pool.Close()
	return nil
}

func enrollment(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	const usage = "usage: liggare-server enrollment create --site SITE-IDENT [--terminal-id ID] [--direction in|out|toggle] [--ttl 24h]"
	if len(args) == 0 || args[0] != "create" {
		return errors.New(usage)
	}
	var a enrollmentArgs
	var log logFlags
	f := enrollmentFlags(&a, &log)
	if err := f.ParseEnv(args[1:], getenv); err != nil {
		return err
	}
	if a.site == "" || f.NArg() > 0 {
		return errors.New(usage)
	}
	ttl, err := time.ParseDuration(a.ttl)
	if err != nil {
		return fmt.Errorf("--ttl: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	pool, err := connect(ctx, a.url, &log)
	if err != nil {
		return err
	}
	defer pool.Close()
	store := enroll.NewStore(pool, auth.NewTerminals(pool))
	code, err := store.CreateCode(ctx, enroll.CodeRequest{SiteIdent: a.site, TerminalID: a.terminalID,
		Direction: a.direction, TTL: ttl, CreatedBy: cliActor(a.actor, getenv)})
	if err != nil {
		return err
	}
	// The code alone on standard output, for scripts; the rest for people.
	fmt.Fprintln(stdout, enroll.FormatCode(code.Code))
	terminal := code.TerminalID
	if terminal == "" {
		terminal = "any terminal id"
	}
	fmt.Fprintf(os.Stderr, "Single-use enrollment code for site %s (%s, reader direction %s), valid until %s.\n"+
		"On the kiosk: liggare-terminal enroll --server URL --code %s\n",
		code.SiteIdent, terminal, code.Direction, code.ExpiresAt.Local().Format("2006-01-02 15:04 MST"), enroll.FormatCode(code.Code))
	return nil
}

func terminal(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	const usage = "usage: liggare-server terminal add TERMINAL-ID... | terminal revoke TERMINAL-ID"
	var url, actor string
	var log logFlags
	f := terminalFlags(&url, &actor, &log)
	if err := f.ParseEnv(args, getenv); err != nil {
		return err
	}
	rest := f.Args()
	if len(rest) < 2 || (rest[0] != "add" && rest[0] != "revoke") || (rest[0] == "revoke" && len(rest) != 2) {
		return errors.New(usage)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	pool, err := connect(ctx, url, &log)
	if err != nil {
		return err
	}
	defer pool.Close()
	terminals := auth.NewTerminals(pool)
	if rest[0] == "add" {
		for _, id := range rest[1:] {
			cred, err := terminals.Create(ctx, id)
			if err != nil {
				return err
			}
			fmt.Fprintln(stdout, cred)
		}
		return nil
	}
	n, err := enroll.NewStore(pool, terminals).Revoke(ctx, rest[1], cliActor(actor, getenv))
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "revoked %d credential(s) of %s\n", n, rest[1])
	return nil
}

// org creates an organisation (a tenant) and its first admin:
//
//	liggare-server org create --name NAME --org-number NNNNNN-NNNN --admin EMAIL [--admin-name NAME]
//
// The admin's one-time password goes to standard output once, for the
// operator to hand over; it must be changed at the first sign-in, and only
// its argon2id hash is stored.
func org(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	const usage = "usage: liggare-server org create --name NAME --org-number NNNNNN-NNNN --admin EMAIL [--admin-name NAME]"
	if len(args) == 0 || args[0] != "create" {
		return errors.New(usage)
	}
	var a orgArgs
	var log logFlags
	f := orgFlags(&a, &log)
	if err := f.ParseEnv(args[1:], getenv); err != nil {
		return err
	}
	if a.name == "" || a.orgNumber == "" || a.admin == "" || f.NArg() > 0 {
		return errors.New(usage)
	}
	keys, err := a.pii.keys()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	pool, err := connect(ctx, a.url, &log)
	if err != nil {
		return err
	}
	defer pool.Close()
	orgID, err := registry.NewStore(pool, keys).CreateOrganisation(ctx, registry.NewOrganisation{Name: a.name, OrgNumber: a.orgNumber})
	if err != nil {
		return err
	}
	adminName := a.adminName
	if adminName == "" {
		adminName = a.admin
	}
	user, password, err := account.NewStore(pool, keys, account.Options{}).BootstrapOrgAdmin(ctx, orgID, a.admin, adminName)
	if err != nil {
		return fmt.Errorf("organisation %d created, but not its admin: %w", orgID, err)
	}
	fmt.Fprintf(os.Stderr, "Organisation %q created (id %d) with admin %s (user %d).\n"+
		"The admin's one-time password follows; it must be changed at the first sign-in.\n",
		a.name, orgID, user.Email, user.ID)
	fmt.Fprintln(stdout, password)
	return nil
}

// keygen prints a fresh encryption key and index key for the PII keys,
// as the environment lines to put in the server's secret configuration.
func keygen(stdout io.Writer) error {
	fmt.Fprintf(stdout, "LIGGARE_PII_KEYS=%s\nLIGGARE_PII_INDEX_KEY=%s\n", pii.GenerateKeyB64(), pii.GenerateKeyB64())
	fmt.Fprintln(os.Stderr, "Keep both keys secret and backed up: without them no identity number in the database can be read or found.")
	return nil
}

// devDB runs a private PostgreSQL cluster until interrupted: the first line
// on standard output is its URL. For development, demos and benchmarks.
func devDB(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	var a devdbArgs
	f := devdbFlags(&a)
	if err := f.ParseEnv(args, getenv); err != nil {
		return err
	}
	log := logFlags{format: getenv("LIGGARE_LOG_FORMAT"), level: "info"}
	if log.format == "" {
		log.format = "text"
	}
	logger, err := log.logger()
	if err != nil {
		return err
	}
	cluster, err := pglocal.Start(ctx, pglocal.Options{Dir: a.dir, Port: a.port, Durable: a.durable, Logger: logger, ExtraConf: a.conf})
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, cluster.URL("postgres"))
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return cluster.Stop(sctx)
}

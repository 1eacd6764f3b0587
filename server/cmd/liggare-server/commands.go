package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/liggare/liggare/server/internal/auth"
	"github.com/liggare/liggare/server/internal/daemon"
	"github.com/liggare/liggare/server/internal/db"
	"github.com/liggare/liggare/server/internal/enroll"
	"github.com/liggare/liggare/server/internal/pglocal"
	"github.com/liggare/liggare/server/internal/sdnotify"
)

func serve(ctx context.Context, args []string, getenv func(string) string) error {
	var cfg daemon.Config
	var log logFlags
	if err := serveFlags(&cfg, &log).parse(args, getenv); err != nil {
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
	if err := f.parse(args, getenv); err != nil {
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
	if err := f.parse(args, getenv); err != nil {
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
	if err := f.parse(args[1:], getenv); err != nil {
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
	if err := f.parse(args, getenv); err != nil {
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

// org will create an organisation and its first admin.
//
// TODO(accounts): organisations and their admins belong to
// server/internal/account, which is being built now. Wire it here:
//
//	liggare-server org create --name NAME --org-number NNNNNN-NNNN --admin EMAIL
//
// parse with dbFlags (plus those three), connect, create the organisation
// and its first admin in one transaction through the account package, write
// the audit entry there, and print the admin's one-time sign-in link (never
// a password) on standard output. Until then this refuses, clearly.
func org() error {
	return errors.New("org: not available yet: creating an organisation and its first admin comes with server/internal/account")
}

// devDB runs a private PostgreSQL cluster until interrupted: the first line
// on standard output is its URL. For development, demos and benchmarks.
func devDB(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	var a devdbArgs
	f := devdbFlags(&a)
	if err := f.parse(args, getenv); err != nil {
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
	cluster, err := pglocal.Start(ctx, pglocal.Options{Dir: a.dir, Port: a.port, Durable: a.durable, Logger: logger})
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, cluster.URL("postgres"))
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return cluster.Stop(sctx)
}

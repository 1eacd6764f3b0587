package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/liggare/liggare/terminal/internal/inspect"

	"github.com/liggare/liggare/terminal/internal/enroll"
	"github.com/liggare/liggare/terminal/internal/outbox"
)

// enrollCmd enrolls the terminal with a site manager's code.
func enrollCmd(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	var a enrollArgs
	f := enrollFlags(&a)
	if err := f.ParseEnv(args, getenv); err != nil {
		return err
	}
	if a.code == "" || f.NArg() > 0 {
		return errors.New("usage: liggare-terminal enroll --server URL --code CODE [--terminal-id ID] [--credential-file FILE] [--ca-file FILE]")
	}
	tlsConf, err := tlsConfig(a.caFile)
	if err != nil {
		return err
	}
	res, err := enroll.Enroll(ctx, enroll.Options{Server: a.server, TLS: tlsConf, CredentialPath: a.credFile, AgentVersion: version},
		a.code, a.terminalID)
	if err != nil {
		return err
	}
	how := "enrolled"
	if res.Reenrolled {
		how = "enrolled again (earlier credentials revoked; the outbox carries on)"
	}
	fmt.Fprintf(stdout, "terminal %s %s on site %s, reader direction %s\ncredential: %s\nkey: %s",
		res.TerminalID, how, res.SiteIdent, res.Direction, a.credFile, enroll.KeyPath(a.credFile))
	if res.KeyCreated {
		fmt.Fprint(stdout, " (new)")
	}
	fmt.Fprintln(stdout)
	return nil
}

// rotateCmd replaces the terminal's credential.
func rotateCmd(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	var a enrollArgs
	f := rotateFlags(&a)
	if err := f.ParseEnv(args, getenv); err != nil {
		return err
	}
	if f.NArg() > 0 {
		return errors.New("usage: liggare-terminal rotate [--server URL] [--credential-file FILE] [--ca-file FILE]")
	}
	tlsConf, err := tlsConfig(a.caFile)
	if err != nil {
		return err
	}
	id, err := enroll.Rotate(ctx, enroll.Options{Server: a.server, TLS: tlsConf, CredentialPath: a.credFile, AgentVersion: version})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "terminal %s: new credential in %s; the old one is revoked\n", id, a.credFile)
	return nil
}

// inspectOutbox prints an outbox's state as JSON, for technicians and tests:
// liggare-terminal outbox --outbox FILE. The agent must not be running.
func inspectOutbox(args []string, getenv func(string) string, stdout io.Writer) error {
	var path string
	if err := outboxFlags(&path).ParseEnv(args, getenv); err != nil {
		return err
	}
	if _, err := os.Stat(path); err != nil {
		return err
	}
	ob, err := outbox.Open(path, outbox.Options{})
	if err != nil {
		return err
	}
	defer ob.Close()
	st := ob.Stats()
	return json.NewEncoder(stdout).Encode(map[string]any{
		"store_epoch":        ob.Epoch(),
		"depth":              st.Depth,
		"last_seq":           st.LastSeq,
		"acked_through":      st.AckedThrough,
		"oldest_wall_micros": st.OldestWallMicros,
		"full":               st.Full,
	})
}

// pinHash reads a site PIN from standard input and prints its hash, for the
// file --inspect-pin-file names: the PIN itself is never stored.
func pinHash(stdin io.Reader, stdout io.Writer) error {
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("pin-hash: %w", err)
	}
	h, err := inspect.HashPIN(strings.TrimSpace(line))
	if err != nil {
		return fmt.Errorf("pin-hash: %w", err)
	}
	fmt.Fprintln(stdout, h)
	return nil
}

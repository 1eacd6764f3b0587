// Package flagenv is a flag.FlagSet whose flags may also come from the
// environment: a flag given on the command line wins, then its variable,
// then its default. A secret's variable may instead name a file holding the
// value (VAR_FILE), so that the value stays out of the process environment
// and unit files.
//
// The flags and their variables render as a Markdown table (Markdown), and
// flagenvtest.CheckREADME keeps deploy/README.md in step with the code, so
// documentation and configuration cannot drift apart. The server, the terminal and the
// load generator all parse their configuration with it.
package flagenv

import (
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// FlagSet is a flag.FlagSet with environment variables bound to its flags.
type FlagSet struct {
	*flag.FlagSet
	env    map[string]string // flag name -> variable
	secret map[string]bool   // flag name -> VAR_FILE is read too
	set    map[string]bool   // flags set on the command line or by a variable
}

// New returns an empty FlagSet that reports errors rather than exiting, and
// whose usage lists each flag with its variables.
func New(name string) *FlagSet {
	f := &FlagSet{
		FlagSet: flag.NewFlagSet(name, flag.ContinueOnError),
		env:     map[string]string{},
		secret:  map[string]bool{},
		set:     map[string]bool{},
	}
	f.Usage = func() {
		fmt.Fprintf(f.Output(), "Usage of %s:\n", f.Name())
		f.WriteDefaults(f.Output())
	}
	return f
}

// Bind lets the environment variable set the flag. It panics if the flag
// is not defined: that is a programming error.
func (f *FlagSet) Bind(name, variable string) {
	if f.Lookup(name) == nil {
		panic("flagenv: Bind: no flag " + name)
	}
	f.env[name] = variable
}

// BindSecret is Bind for a secret: VARIABLE_FILE may name a file holding it.
func (f *FlagSet) BindSecret(name, variable string) {
	f.Bind(name, variable)
	f.secret[name] = true
}

// ParseEnv parses args, then fills the flags not given from the environment
// as getenv reports it.
func (f *FlagSet) ParseEnv(args []string, getenv func(string) string) error {
	if err := f.Parse(args); err != nil {
		return err
	}
	f.Visit(func(fl *flag.Flag) { f.set[fl.Name] = true })
	for name, variable := range f.env {
		if f.set[name] {
			continue
		}
		v := getenv(variable)
		if v == "" && f.secret[name] {
			if path := getenv(variable + "_FILE"); path != "" {
				b, err := os.ReadFile(path)
				if err != nil {
					return fmt.Errorf("%s_FILE: %w", variable, err)
				}
				v = strings.TrimSpace(string(b))
			}
		}
		if v == "" {
			continue
		}
		if err := f.Set(name, v); err != nil {
			// A secret's value is not repeated in the error.
			if f.secret[name] {
				return fmt.Errorf("%s: %w", variable, err)
			}
			return fmt.Errorf("%s=%q: %w", variable, v, err)
		}
		f.set[name] = true
	}
	return nil
}

// IsSet reports whether the flag was given, on the command line or by its
// variable, rather than left at its default.
func (f *FlagSet) IsSet(name string) bool { return f.set[name] }

// Variables names the flag's environment variables, for documentation.
func (f *FlagSet) Variables(name string) []string {
	v, ok := f.env[name]
	if !ok {
		return nil
	}
	if f.secret[name] {
		return []string{v, v + "_FILE"}
	}
	return []string{v}
}

// WriteDefaults writes each flag, its variables, default and meaning, as
// the usage message shows them.
func (f *FlagSet) WriteDefaults(w io.Writer) {
	f.VisitAll(func(fl *flag.Flag) {
		fmt.Fprintf(w, "  --%s", fl.Name)
		if vars := f.Variables(fl.Name); len(vars) > 0 {
			fmt.Fprintf(w, " (env %s)", strings.Join(vars, ", "))
		}
		if def := shownDefault(fl); def != "" {
			fmt.Fprintf(w, " (default %s)", def)
		}
		fmt.Fprintf(w, "\n    \t%s\n", fl.Usage)
	})
}

// Markdown renders the flags as a Markdown table: flag, environment,
// default, meaning.
func (f *FlagSet) Markdown() string {
	var b strings.Builder
	b.WriteString("| flag | environment | default | meaning |\n|---|---|---|---|\n")
	var names []string
	f.VisitAll(func(fl *flag.Flag) { names = append(names, fl.Name) })
	sort.Strings(names)
	for _, name := range names {
		fl := f.Lookup(name)
		var vars []string
		for _, v := range f.Variables(name) {
			vars = append(vars, "`"+v+"`")
		}
		def := shownDefault(fl)
		if def != "" {
			def = "`" + def + "`"
		}
		fmt.Fprintf(&b, "| `--%s` | %s | %s | %s |\n", name, strings.Join(vars, ", "), def,
			strings.ReplaceAll(fl.Usage, "|", `\|`))
	}
	return b.String()
}

// shownDefault is the flag's default, or "" for a zero value not worth
// showing.
func shownDefault(fl *flag.Flag) string {
	switch fl.DefValue {
	case "", "false", "0", "0s":
		return ""
	}
	return fl.DefValue
}

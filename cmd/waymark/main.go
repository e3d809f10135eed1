// Command waymark is the operator CLI: it runs Waymark locally (`waymark
// dev`) and manages workspaces.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
)

// command is one CLI command. Each file registers its commands in init, so
// that adding a command never edits a shared list.
type command struct {
	summary string
	run     func(ctx context.Context, g globals, args []string, stdout, stderr io.Writer) error
}

var commands = map[string]command{}

func register(name, summary string, run func(ctx context.Context, g globals, args []string, stdout, stderr io.Writer) error) {
	commands[name] = command{summary: summary, run: run}
}

func usage() string {
	names := make([]string, 0, len(commands))
	for name := range commands {
		names = append(names, name)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString("usage: waymark [--local | --region eu|us] <command> [flags]\n\ncommands:\n")
	for _, name := range names {
		fmt.Fprintf(&b, "  %-28s %s\n", name, commands[name].summary)
	}
	b.WriteString("\nglobal flags:\n  --local                      act on the stack that `waymark dev` runs in this checkout\n" +
		"  --region eu|us               otherwise, the deployed stack of that region (AWS default credentials; default eu)\n\n" +
		"Run `waymark <command> --help` for a command's flags.\n")
	return b.String()
}

// exitError carries the process exit code of a failed command.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }

// Exit codes scripts can rely on.
const (
	exitOK    = 0
	exitFail  = 1
	exitUsage = 2
)

func usageError(format string, args ...any) error {
	return &exitError{code: exitUsage, err: fmt.Errorf(format, args...)}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err == nil {
		os.Exit(exitOK)
	}
	fmt.Fprintln(os.Stderr, "waymark:", err)
	var ee *exitError
	if errors.As(err, &ee) {
		os.Exit(ee.code)
	}
	os.Exit(exitFail)
}

type globals struct {
	local  bool
	region string
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("waymark", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var g globals
	fs.BoolVar(&g.local, "local", false, "")
	fs.StringVar(&g.region, "region", "eu", "")
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, usage())
		return nil
	}
	if err != nil {
		return usageError("%v\n%s", err, usage())
	}
	rest := fs.Args()
	if len(rest) == 0 || rest[0] == "help" || rest[0] == "-h" || rest[0] == "--help" {
		if len(rest) == 0 {
			return usageError("%s", usage())
		}
		fmt.Fprint(stdout, usage())
		return nil
	}
	// Commands are one word ("dev") or two ("workspace create").
	if len(rest) >= 2 {
		if c, ok := commands[rest[0]+" "+rest[1]]; ok {
			return c.run(ctx, g, rest[2:], stdout, stderr)
		}
	}
	if c, ok := commands[rest[0]]; ok {
		return c.run(ctx, g, rest[1:], stdout, stderr)
	}
	return usageError("unknown command %q\n%s", strings.Join(rest[:min(2, len(rest))], " "), usage())
}

// parseFlags parses a command's flags; --help prints them.
func parseFlags(fs *flag.FlagSet, args []string, stdout io.Writer) (bool, error) {
	positional, help, err := parseArgs(fs, "", args, stdout)
	if help || err != nil {
		return help, err
	}
	if len(positional) > 0 {
		return false, usageError("%s: unexpected argument %q", fs.Name(), positional[0])
	}
	return false, nil
}

// parseArgs parses flags and positional arguments in any order; --help
// prints the command's usage, naming its arguments.
func parseArgs(fs *flag.FlagSet, arguments string, args []string, stdout io.Writer) ([]string, bool, error) {
	fs.SetOutput(io.Discard)
	var positional []string
	for {
		err := fs.Parse(args)
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(stdout)
			fmt.Fprintf(stdout, "usage: waymark %s [flags] %s\n", fs.Name(), arguments)
			fs.PrintDefaults()
			return nil, true, nil
		}
		if err != nil {
			return nil, false, usageError("%s: %v", fs.Name(), err)
		}
		if fs.NArg() == 0 {
			return positional, false, nil
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

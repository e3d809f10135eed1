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
	"syscall"
)

const usage = `usage: waymark [--local] <command> [flags]

commands:
  dev                 run Waymark locally: DynamoDB Local, local-kms and the API on 127.0.0.1
  workspace create    create a workspace and print its code, HMAC secret and server key

global flags:
  --local             act on the stack that "waymark dev" runs in this checkout
`

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
	local bool
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("waymark", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var g globals
	fs.BoolVar(&g.local, "local", false, "")
	if err := fs.Parse(args); err != nil {
		return usageError("%v\n%s", err, usage)
	}
	rest := fs.Args()
	if len(rest) == 0 {
		return usageError("%s", usage)
	}
	switch rest[0] {
	case "dev":
		return runDev(ctx, rest[1:], stdout, stderr)
	case "workspace":
		if len(rest) < 2 {
			return usageError("workspace needs a subcommand\n%s", usage)
		}
		switch rest[1] {
		case "create":
			return runWorkspaceCreate(ctx, g, rest[2:], stdout)
		}
		return usageError("unknown workspace subcommand %q\n%s", rest[1], usage)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	return usageError("unknown command %q\n%s", rest[0], usage)
}

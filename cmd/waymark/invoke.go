package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/waymarkhq/waymark/internal/config"
	"github.com/waymarkhq/waymark/internal/devstack"
	"github.com/waymarkhq/waymark/internal/invoke"
	"github.com/waymarkhq/waymark/internal/localstack"
	"github.com/waymarkhq/waymark/internal/routes"
)

func init() {
	register("invoke", "run a function's real bootstrap under the Lambda Runtime Interface Emulator with a saved event", runInvoke)
}

const invokeUsage = `usage: waymark invoke [flags] FUNCTION EVENT_FILE

Builds FUNCTION for this machine with the Lambda build flags, runs it under the
AWS Lambda Runtime Interface Emulator with the environment the CDK stack gives
it, pointed at the DynamoDB Local and local-kms of the running ` + "`make dev`" + `
(or of a local stack started for this invocation), posts the event in
EVENT_FILE and prints the function's answer. FUNCTION is a function name or
its logical id: %s.

flags:
`

func runInvoke(ctx context.Context, _ globals, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("invoke", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	quiet := fs.Bool("quiet", false, "do not print the emulator's and the function's log (on stderr)")
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprintf(stdout, invokeUsage, functionNames())
		fs.SetOutput(stdout)
		fs.PrintDefaults()
		return nil
	}
	if err != nil {
		return usageError("invoke: %v", err)
	}
	if fs.NArg() != 2 {
		return usageError("invoke: want FUNCTION EVENT_FILE, for example: waymark invoke identify events-samples/identify.json")
	}
	fn, ok := findFunction(fs.Arg(0))
	if !ok {
		return usageError("invoke: no function %q: choose one of %s", fs.Arg(0), functionNames())
	}
	event, err := os.ReadFile(fs.Arg(1))
	if err != nil {
		return err
	}
	if !json.Valid(event) {
		return fmt.Errorf("%s is not JSON: the emulator takes the event as Lambda does, a JSON document", fs.Arg(1))
	}
	var log io.Writer = stderr
	if *quiet {
		log = nil
	}

	buildDir, err := os.MkdirTemp("", "waymark-invoke-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(buildDir)
	// Building takes a few seconds, and so does starting engines when no
	// `make dev` runs: both go on at once.
	var bins map[string]string
	var rie string
	var buildErr error
	var wg sync.WaitGroup
	wg.Go(func() {
		if bins, buildErr = invoke.Build(ctx, buildDir, invoke.FunctionPackage(fn.Name)); buildErr == nil {
			rie, buildErr = localstack.ToolPath(ctx, localstack.EmulatorTool)
		}
	})
	cfg, region, stop, stackErr := localTarget(ctx, stderr)
	wg.Wait()
	if stackErr != nil {
		return stackErr
	}
	defer stop()
	if buildErr != nil {
		return buildErr
	}

	emu, err := invoke.Start(ctx, invoke.Options{
		Emulator:  rie,
		Bootstrap: bins[fn.Name],
		Env:       invoke.FunctionEnv(fn, cfg, region),
		Log:       log,
	})
	if err != nil {
		return err
	}
	res, err := emu.Invoke(ctx, event)
	stopErr := emu.Stop()
	if err != nil {
		return err
	}
	if stopErr != nil {
		return stopErr
	}
	var out bytes.Buffer
	if json.Indent(&out, res.Payload, "", "  ") != nil {
		out.Reset()
		out.Write(res.Payload)
	}
	out.WriteByte('\n')
	if _, err := stdout.Write(out.Bytes()); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "%s (%s): answered %.1f ms after the emulator started (a cold start)\n",
		fn.Name, fn.LogicalID, float64(res.At.Sub(emu.Started).Microseconds())/1000)
	if _, err := invoke.DecodeResponse(res.Payload); err != nil {
		return err
	}
	return nil
}

// localTarget is the configuration of the local engines to invoke against:
// those of the running `make dev`, found through its state file, or else a
// stack started now, seeded with the demo workspaces and stopped by stop.
func localTarget(ctx context.Context, stderr io.Writer) (cfg config.Config, region string, stop func(), err error) {
	dir, err := stateDir()
	if err != nil {
		return config.Config{}, "", nil, err
	}
	if s, err := devstack.Load(dir); err == nil && answers(s.DynamoDB) && answers(s.KMS) {
		fmt.Fprintf(stderr, "Using the local stack of `make dev` (DynamoDB %s, KMS %s).\n", s.DynamoDB, s.KMS)
		return s.Config(), s.Region, func() {}, nil
	}
	fmt.Fprintln(stderr, "No `make dev` is running here: starting DynamoDB Local and local-kms for this invocation...")
	stack, err := invoke.StartStack(ctx, localstack.Options{})
	if err != nil {
		return config.Config{}, "", nil, err
	}
	return stack.Config(), stack.Region, func() {
		if err := stack.Stop(); err != nil {
			fmt.Fprintln(stderr, "waymark:", err)
		}
	}, nil
}

// answers tells whether something listens at an engine's endpoint: a state
// file left by a `make dev` that was killed names engines that are gone.
func answers(endpoint string) bool {
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" {
		return false
	}
	conn, err := net.DialTimeout("tcp", u.Host, time.Second)
	if err != nil {
		return false
	}
	conn.Close()
	return true
}

// findFunction finds a function by name or by logical id, so that the names
// of `sam local invoke` commands work too.
func findFunction(name string) (routes.Function, bool) {
	for _, f := range routes.Functions() {
		if name == f.Name || name == f.LogicalID {
			return f, true
		}
	}
	return routes.Function{}, false
}

func functionNames() string {
	var names []string
	for _, f := range routes.Functions() {
		names = append(names, f.Name+" ("+f.LogicalID+")")
	}
	return strings.Join(names, ", ")
}

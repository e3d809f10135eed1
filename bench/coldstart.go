package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/waymarkhq/waymark/internal/config"
	"github.com/waymarkhq/waymark/internal/invoke"
	"github.com/waymarkhq/waymark/internal/localstack"
	"github.com/waymarkhq/waymark/internal/routes"
)

// helloPackage is the smallest aws-lambda-go function behind an HTTP API,
// the baseline of the cold starts.
const helloPackage = localstack.ModulePath + "/internal/invoke/testdata/hello"

// builds are the binaries the run needs, made before anything is measured
// (compiling would disturb the measurements).
type builds struct {
	host  map[string]string // for the emulator, by function name and "hello"
	rie   string
	arm64 map[string]int64 // stripped linux/arm64 binary sizes, in bytes
}

func packages() []string {
	pkgs := []string{helloPackage}
	for _, f := range routes.Functions() {
		pkgs = append(pkgs, invoke.FunctionPackage(f.Name))
	}
	return pkgs
}

// buildAll builds every function and the hello-world for the host (to run
// under the emulator) and for AWS (linux/arm64, to weigh them), and finds
// the emulator.
func buildAll(ctx context.Context, dir string) (builds, error) {
	var b builds
	var err error
	if b.host, err = invoke.Build(ctx, filepath.Join(dir, "host"), packages()...); err != nil {
		return b, err
	}
	if b.rie, err = localstack.ToolPath(ctx, localstack.EmulatorTool); err != nil {
		return b, err
	}
	b.arm64, err = buildARM64(ctx, filepath.Join(dir, "arm64"), packages())
	return b, err
}

// buildARM64 builds the way `make build` builds what is deployed:
// static, without aws-lambda-go's RPC mode, stripped.
func buildARM64(ctx context.Context, dir string, pkgs []string) (map[string]int64, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	args := append([]string{"build", "-tags", "lambda.norpc", "-trimpath", "-ldflags=-s -w", "-o", dir + string(filepath.Separator)}, pkgs...)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=arm64")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("go build for linux/arm64: %w\n%s", err, out.Bytes())
	}
	sizes := map[string]int64{}
	for _, p := range pkgs {
		name := p[strings.LastIndex(p, "/")+1:]
		info, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			return nil, err
		}
		sizes[name] = info.Size()
	}
	return sizes, nil
}

// coldStarts starts each function (and the hello-world) rounds times under
// the Runtime Interface Emulator, in a shuffled order each round so that
// drift of the machine touches them alike, and returns, by name, the times
// (and the handler's share of them) from starting the emulator's process to
// the first answer: the emulator's
// start, the function's init (clients, configuration) and its first
// invocation with the first calls to the engines and to KMS.
//
// The emulator sometimes starts the function before its runtime API
// listens, and a function that starts fast (the hello-world most of all)
// then exits with "connection refused" before its first request: such a
// start is the emulator's failure, not the function's, and is made again,
// at most twice, and counted.
func coldStarts(ctx context.Context, b builds, cfg config.Config, firstEvent map[string][]byte, rounds int) (c coldResult, err error) {
	names := []string{"hello"}
	fns := map[string]routes.Function{"hello": {Name: "hello", LogicalID: "HelloFunction"}}
	for _, f := range routes.Functions() {
		names = append(names, f.Name)
		fns[f.Name] = f
	}
	rnd := rand.New(rand.NewPCG(11, 13))
	c = coldResult{total: map[string][]time.Duration{}, handler: map[string][]time.Duration{}}
	for range rounds {
		order := slices.Clone(names)
		rnd.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		for _, name := range order {
			opts := invoke.Options{
				Emulator: b.rie, Bootstrap: b.host[name],
				Env: invoke.FunctionEnv(fns[name], cfg, config.LocalRegion),
			}
			total, handler, err := coldStart(ctx, opts, firstEvent[name])
			for attempt := 0; err != nil && attempt < 2 && strings.Contains(err.Error(), "connect: connection refused"); attempt++ {
				c.retried++
				total, handler, err = coldStart(ctx, opts, firstEvent[name])
			}
			if err != nil {
				return c, fmt.Errorf("cold start of %s: %w", name, err)
			}
			c.total[name] = append(c.total[name], total)
			c.handler[name] = append(c.handler[name], handler)
		}
	}
	return c, nil
}

// coldResult is every cold start, by function name.
type coldResult struct {
	total   map[string][]time.Duration
	handler map[string][]time.Duration
	// retried counts starts made again after the emulator's start-up race.
	retried int
}

// coldStart starts the emulator with a function, invokes it once and returns
// the time from the process start to the answer, and how long the
// function's handler itself took (from its request log line; 0 for the
// hello-world, which logs nothing).
func coldStart(ctx context.Context, opts invoke.Options, event []byte) (total, handler time.Duration, err error) {
	var log bytes.Buffer
	opts.Log = &log
	emu, err := invoke.Start(ctx, opts)
	if err != nil {
		return 0, 0, err
	}
	res, err := emu.Invoke(ctx, event)
	stopErr := emu.Stop()
	if err != nil {
		return 0, 0, err
	}
	if stopErr != nil {
		return 0, 0, stopErr
	}
	resp, err := invoke.DecodeResponse(res.Payload)
	if err != nil {
		return 0, 0, err
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return 0, 0, fmt.Errorf("answered %d: %.300s", resp.StatusCode, resp.Body)
	}
	return res.At.Sub(emu.Started), handlerTime(log.Bytes()), nil
}

// handlerTime reads the duration the API adapter logs for a request.
func handlerTime(log []byte) time.Duration {
	for line := range bytes.Lines(log) {
		var entry struct {
			Msg string  `json:"msg"`
			MS  float64 `json:"ms"`
		}
		if json.Unmarshal(line, &entry) == nil && entry.Msg == "request" {
			return time.Duration(entry.MS * float64(time.Millisecond))
		}
	}
	return 0
}

// eventJSON is the Invoke API payload of a request.
func eventJSON(r request) ([]byte, error) { return json.Marshal(r.event) }

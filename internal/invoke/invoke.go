// Package invoke runs a function's real bootstrap the way Lambda does, under
// AWS's Lambda Runtime Interface Emulator (the program `sam local invoke`
// runs inside its container), on the host and without Docker: it builds the
// function with the flags of the deployed build, starts the emulator on
// loopback ports with the environment the CDK stack gives the function,
// pointed at local engines, and posts events to it. `waymark invoke` (behind
// `make invoke`) and the tests of the saved events in events-samples/ use it.
package invoke

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/waymarkhq/waymark/internal/config"
	"github.com/waymarkhq/waymark/internal/localstack"
	"github.com/waymarkhq/waymark/internal/routes"
)

// FunctionPackage is the import path of a function's main package.
func FunctionPackage(name string) string { return localstack.ModulePath + "/functions/" + name }

// Build compiles main packages for the host with the flags of the deployed
// build (static, no RPC mode of aws-lambda-go, reproducible paths, stripped),
// so the emulator runs the same program Lambda runs, built for this machine
// instead of arm64. One `go build` builds every package, in parallel and
// through the build cache. It returns the binary of each package by the last
// element of its import path. It must run inside the module's checkout.
func Build(ctx context.Context, outDir string, pkgs ...string) (map[string]string, error) {
	if len(pkgs) == 0 {
		return map[string]string{}, nil
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return nil, fmt.Errorf("invoke: %w", err)
	}
	args := []string{"build", "-tags", "lambda.norpc", "-trimpath", "-ldflags=-s -w", "-o", outDir + string(filepath.Separator)}
	cmd := exec.CommandContext(ctx, "go", append(args, pkgs...)...)
	// A GOOS or GOARCH left in the environment (a cross build for AWS) would
	// give a binary this machine cannot run.
	cmd.Env = append(withoutVars(os.Environ(), "GOOS", "GOARCH"), "CGO_ENABLED=0")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("invoke: go build %s: %w\n%s", strings.Join(pkgs, " "), err, bytes.TrimSpace(out.Bytes()))
	}
	bins := make(map[string]string, len(pkgs))
	for _, p := range pkgs {
		name := p[strings.LastIndex(p, "/")+1:]
		bins[name] = filepath.Join(outDir, name)
	}
	return bins, nil
}

func withoutVars(env []string, names ...string) []string {
	return slices.DeleteFunc(slices.Clone(env), func(kv string) bool {
		name, _, _ := strings.Cut(kv, "=")
		return slices.Contains(names, name)
	})
}

// FunctionEnv is the whole environment of fn under the emulator: the
// variables the CDK stack sets (config.Config.Env; the stack logs at info),
// pointed at the local engines of cfg, and those the Lambda service adds
// that the SDK reads: the region and credentials, and the function timeout
// the emulator enforces. The credentials are dummies
// (the local engines check none), so nothing of the caller's AWS setup
// reaches the function, as nothing of a laptop reaches a Lambda.
func FunctionEnv(fn routes.Function, cfg config.Config, region string) map[string]string {
	if cfg.LogLevel == "" {
		cfg.LogLevel = "info"
	}
	env := cfg.Env()
	env["AWS_REGION"] = region
	env["AWS_DEFAULT_REGION"] = region
	env["AWS_ACCESS_KEY_ID"] = "local"
	env["AWS_SECRET_ACCESS_KEY"] = "local"
	// `sam local invoke` names the function by its logical id too.
	env["AWS_LAMBDA_FUNCTION_NAME"] = fn.LogicalID
	// The emulator gives the function this timeout (its default is 300
	// seconds), so the handler's deadline is the deployed one.
	env[EnvFunctionTimeout] = strconv.Itoa(int(config.FunctionTimeout / time.Second))
	return env
}

// EnvFunctionTimeout is the emulator's variable for the function timeout,
// in seconds.
const EnvFunctionTimeout = "AWS_LAMBDA_FUNCTION_TIMEOUT"

// Options for Start.
type Options struct {
	// Emulator is the aws-lambda-rie binary (localstack.ToolPath with localstack.EmulatorTool).
	Emulator string
	// Bootstrap is the function's binary (Build). It runs in its own
	// directory, as a bootstrap runs in /var/task.
	Bootstrap string
	// Env is the function's whole environment (FunctionEnv): the emulator
	// passes its own environment on to the function.
	Env map[string]string
	// Log receives the emulator's and the function's output; nil discards
	// it.
	Log io.Writer
}

// Emulator is a running aws-lambda-rie with one function.
type Emulator struct {
	// Started is when the emulator's process was started: the first
	// invocation's answer minus Started is the cold start, since the
	// emulator starts the function only on its first invocation, as Lambda
	// does.
	Started time.Time

	url      string
	cmd      *exec.Cmd
	done     chan struct{}
	waitErr  error
	tail     *localstack.TailBuffer
	stopOnce sync.Once
	stopErr  error
}

const (
	// readyTimeout bounds how long the emulator may take to listen.
	readyTimeout = 30 * time.Second
	// startAttempts: the emulator must be told its ports, which are chosen
	// free just before it binds them; another process taking one in between
	// makes it exit, and a new pair is tried.
	startAttempts = 3
	// stopGrace is how long the emulator gets to exit on SIGTERM.
	stopGrace = 2 * time.Second
	// invokePath is the emulator's endpoint of the Lambda Invoke API.
	invokePath = "/2015-03-31/functions/function/invocations"
)

// Start starts the emulator with the function and returns once it accepts
// connections. The function itself starts on the first Invoke.
func Start(ctx context.Context, opts Options) (*Emulator, error) {
	var errs []error
	for range startAttempts {
		e, err := start(ctx, opts)
		if err == nil {
			return e, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, errors.Join(errs...)
}

func start(ctx context.Context, opts Options) (*Emulator, error) {
	bootstrap, err := filepath.Abs(opts.Bootstrap)
	if err != nil {
		return nil, fmt.Errorf("invoke: %w", err)
	}
	ports, err := freePorts(2)
	if err != nil {
		return nil, err
	}
	apiAddr := "127.0.0.1:" + strconv.Itoa(ports[0])
	runtimeAddr := "127.0.0.1:" + strconv.Itoa(ports[1])
	cmd := exec.Command(opts.Emulator,
		"--runtime-interface-emulator-address", apiAddr,
		"--runtime-api-address", runtimeAddr,
		bootstrap)
	cmd.Dir = filepath.Dir(bootstrap)
	cmd.Env = envList(opts.Env)
	e := &Emulator{url: "http://" + apiAddr + invokePath, cmd: cmd, done: make(chan struct{}), tail: localstack.NewTailBuffer(8 << 10)}
	// One writer for both streams: exec then gives them one pipe, so the
	// lines keep their order and the writer is never written concurrently.
	out := io.Writer(e.tail)
	if opts.Log != nil {
		out = io.MultiWriter(e.tail, opts.Log)
	}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = localstack.GroupAttr()
	e.Started = time.Now()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("invoke: start %s: %w", opts.Emulator, err)
	}
	go func() {
		e.waitErr = cmd.Wait()
		close(e.done)
	}()
	if err := e.awaitListening(ctx, apiAddr); err != nil {
		e.Stop()
		return nil, err
	}
	return e, nil
}

// handedOut holds every port freePorts has chosen in this process. The
// kernel may give a port that was just closed to the next caller, and
// emulators started in parallel (tests, make bench) would then be told the
// same port: the second one fails to bind and exits, while its readiness
// check connects to the first one's listener and passes.
var handedOut = struct {
	sync.Mutex
	ports map[int]bool
}{ports: map[int]bool{}}

// freePorts returns n ports free on 127.0.0.1 at the time of the call and
// never returned before by this process. All are held open until all are
// chosen, so they differ.
func freePorts(n int) ([]int, error) {
	handedOut.Lock()
	defer handedOut.Unlock()
	ports := make([]int, 0, n)
	for len(ports) < n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("invoke: find a free port: %w", err)
		}
		defer ln.Close()
		port := ln.Addr().(*net.TCPAddr).Port
		if handedOut.ports[port] {
			continue
		}
		handedOut.ports[port] = true
		ports = append(ports, port)
	}
	return ports, nil
}

func envList(env map[string]string) []string {
	list := make([]string, 0, len(env))
	for _, k := range slices.Sorted(maps.Keys(env)) {
		list = append(list, k+"="+env[k])
	}
	return list
}

// awaitListening polls the emulator's port: it has no readiness endpoint,
// and posting an invocation to find out would start the function.
func (e *Emulator) awaitListening(ctx context.Context, addr string) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	var d net.Dialer
	for {
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err == nil {
			conn.Close()
			return nil
		}
		select {
		case <-e.done:
			return fmt.Errorf("invoke: the emulator exited before it listened (%v); its output:\n%s", e.waitErr, e.tail)
		case <-ctx.Done():
			return fmt.Errorf("invoke: the emulator did not listen on %s: %w; its output:\n%s", addr, ctx.Err(), e.tail)
		case <-time.After(2 * time.Millisecond):
		}
	}
}

// Result is one invocation's outcome.
type Result struct {
	// Payload is the function's answer as the Invoke API returns it: the
	// handler's response, or Lambda's error object when the function failed.
	Payload []byte
	// At is when the answer had been read; Elapsed is the time from sending
	// the event to that.
	At      time.Time
	Elapsed time.Duration
}

// Invoke posts an event, as the Lambda Invoke API does, and returns the
// function's answer. A function that fails may give a *FunctionError here
// (the emulator's 502) or in the answer's payload (DecodeResponse).
func (e *Emulator) Invoke(ctx context.Context, event []byte) (Result, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.url, bytes.NewReader(event))
	if err != nil {
		return Result{}, fmt.Errorf("invoke: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	sent := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return Result{}, e.failed(err)
	}
	payload, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	at := time.Now()
	if err != nil {
		return Result{}, e.failed(err)
	}
	res := Result{Payload: payload, At: at, Elapsed: at.Sub(sent)}
	switch resp.StatusCode {
	case http.StatusOK:
		return res, nil
	case http.StatusBadGateway:
		// The emulator answers 502 when the function reported an error or
		// crashed, with Lambda's error object as the body, except when it
		// races with itself and sends the status alone.
		fe := &FunctionError{}
		if json.Unmarshal(payload, fe) != nil || (fe.Message == "" && fe.Type == "") {
			fe = &FunctionError{Type: "Unknown", Message: "the emulator answered 502 Bad Gateway without the error: see the function's log"}
		}
		return res, e.failed(fe)
	default:
		return Result{}, e.failed(fmt.Errorf("the emulator answered %s: %s", resp.Status, bytes.TrimSpace(payload)))
	}
}

func (e *Emulator) failed(err error) error {
	return fmt.Errorf("invoke: %w; the emulator's output:\n%s", err, e.tail)
}

// Stop ends the emulator and the function it started (its process group):
// SIGTERM, then SIGKILL after a grace period. It may be called more than
// once.
func (e *Emulator) Stop() error {
	e.stopOnce.Do(func() {
		select {
		case <-e.done:
			e.stopErr = fmt.Errorf("invoke: the emulator had exited on its own (%v); its output:\n%s", e.waitErr, e.tail)
			return
		default:
		}
		if err := localstack.StopGroup(e.cmd.Process.Pid, e.done, stopGrace); err != nil {
			e.stopErr = fmt.Errorf("invoke: stop the emulator: %w", err)
		}
	})
	return e.stopErr
}

// FunctionError is Lambda's answer when a function fails (its handler
// returned an error or panicked): the Invoke API's error object.
type FunctionError struct {
	Message string `json:"errorMessage"`
	Type    string `json:"errorType"`
}

func (f *FunctionError) Error() string {
	return fmt.Sprintf("the function failed: %s: %s", f.Type, f.Message)
}

// DecodeResponse reads a payload as the response of an API Gateway HTTP API
// function; a failed function gives a *FunctionError.
func DecodeResponse(payload []byte) (events.APIGatewayV2HTTPResponse, error) {
	var probe struct {
		StatusCode *int `json:"statusCode"`
		FunctionError
	}
	if err := json.Unmarshal(payload, &probe); err != nil {
		return events.APIGatewayV2HTTPResponse{}, fmt.Errorf("invoke: the answer is not JSON: %w: %.300s", err, payload)
	}
	if probe.StatusCode == nil {
		if probe.Message != "" || probe.Type != "" {
			return events.APIGatewayV2HTTPResponse{}, &probe.FunctionError
		}
		return events.APIGatewayV2HTTPResponse{}, fmt.Errorf("invoke: the answer has no statusCode: %.300s", payload)
	}
	var resp events.APIGatewayV2HTTPResponse
	if err := json.Unmarshal(payload, &resp); err != nil {
		return resp, fmt.Errorf("invoke: the answer is not an API Gateway response: %w", err)
	}
	return resp, nil
}

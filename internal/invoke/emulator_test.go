package invoke_test

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/waymarkhq/waymark/internal/apispec"
	"github.com/waymarkhq/waymark/internal/config"
	"github.com/waymarkhq/waymark/internal/invoke"
	"github.com/waymarkhq/waymark/internal/localstack"
	"github.com/waymarkhq/waymark/internal/routes"
)

// helloPackage is the hello-world function the benchmarks measure Waymark's
// functions against.
const helloPackage = localstack.ModulePath + "/internal/invoke/testdata/hello"

// fixture is what the emulator tests and benchmarks share: every function
// built once, the emulator's binary and a local stack with the demo
// workspaces. It is set up on first use, so the tests that need none of it
// stay fast, and torn down by TestMain.
var fixture struct {
	once  sync.Once
	err   error
	dir   string
	bins  map[string]string
	rie   string
	stack *localstack.Stack
}

func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	if fixture.stack != nil {
		if err := fixture.stack.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = max(code, 1)
		}
	}
	if fixture.dir != "" {
		os.RemoveAll(fixture.dir)
	}
	os.Exit(code)
}

func setup(tb testing.TB) {
	tb.Helper()
	if testing.Short() {
		tb.Skip("builds every function and starts the local engines")
	}
	fixture.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		start := time.Now()
		if fixture.dir, fixture.err = os.MkdirTemp("", "waymark-invoke-test-"); fixture.err != nil {
			return
		}
		pkgs := []string{helloPackage}
		for _, f := range routes.Functions() {
			pkgs = append(pkgs, invoke.FunctionPackage(f.Name))
		}
		// The build, the emulator's build and the engines' start are
		// independent and each takes seconds on a cold machine.
		var buildErr, rieErr, stackErr error
		var wg sync.WaitGroup
		wg.Go(func() { fixture.bins, buildErr = invoke.Build(ctx, fixture.dir, pkgs...) })
		wg.Go(func() { fixture.rie, rieErr = localstack.ToolPath(ctx, localstack.EmulatorTool) })
		wg.Go(func() { fixture.stack, stackErr = invoke.StartStack(ctx, localstack.Options{TablePrefix: "invoke-"}) })
		wg.Wait()
		fixture.err = errors.Join(buildErr, rieErr, stackErr)
		fmt.Fprintf(os.Stderr, "invoke: %d binaries built, emulator and local stack ready in %v\n", len(pkgs), time.Since(start).Round(time.Millisecond))
	})
	if fixture.err != nil {
		tb.Fatal(fixture.err)
	}
}

// emulatorOptions runs a function, or the hello-world with the same
// environment, against the fixture's stack.
func emulatorOptions(name string) invoke.Options {
	fn := routes.Function{Name: name, LogicalID: "HelloFunction"}
	for _, f := range routes.Functions() {
		if f.Name == name {
			fn = f
		}
	}
	return invoke.Options{
		Emulator:  fixture.rie,
		Bootstrap: fixture.bins[name],
		Env:       invoke.FunctionEnv(fn, fixture.stack.Config(), config.LocalRegion),
	}
}

// startEmulator runs a function under the emulator until the test ends.
func startEmulator(tb testing.TB, name string) *invoke.Emulator {
	tb.Helper()
	emu, err := invoke.Start(context.Background(), emulatorOptions(name))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := emu.Stop(); err != nil {
			tb.Error(err)
		}
	})
	return emu
}

// TestSamplesUnderTheEmulator runs every saved event of the manifest through
// the real bootstrap of its function under the Lambda Runtime Interface
// Emulator, against DynamoDB Local and local-kms, and checks each answer:
// status, error code and field, request id, the fields the manifest names,
// and the OpenAPI document. A function stays warm across its samples, as a
// Lambda does.
func TestSamplesUnderTheEmulator(t *testing.T) {
	setup(t)
	m := loadManifest(t)
	spec, err := apispec.New()
	if err != nil {
		t.Fatal(err)
	}
	byFunction := map[string][]sample{}
	for _, s := range m.Samples {
		byFunction[s.Function] = append(byFunction[s.Function], s)
	}
	for _, f := range routes.Functions() {
		t.Run(f.Name, func(t *testing.T) {
			t.Parallel()
			emu := startEmulator(t, f.Name)
			for _, s := range byFunction[f.Name] {
				t.Run(s.Event, func(t *testing.T) { checkSample(t, emu, spec, s) })
			}
		})
	}
}

// TestFunctionErrorIsReported sends an event the function cannot decode: the
// failure must come back as a FunctionError, not as an answer.
func TestFunctionErrorIsReported(t *testing.T) {
	setup(t)
	emu := startEmulator(t, "hello")
	res, err := emu.Invoke(context.Background(), []byte(`"not an event"`))
	if err == nil {
		_, err = invoke.DecodeResponse(res.Payload)
	}
	if fe, ok := errors.AsType[*invoke.FunctionError](err); !ok || fe.Message == "" {
		t.Fatalf("got %v for %s, want a FunctionError", err, res.Payload)
	}
}

func checkSample(t *testing.T, emu *invoke.Emulator, spec *apispec.Validator, s sample) {
	raw, ev := loadEvent(t, s.Event)
	var payload []byte
	for range max(s.Sends, 1) {
		res, err := emu.Invoke(context.Background(), raw)
		if err != nil {
			t.Fatal(err)
		}
		payload = res.Payload
	}
	resp, err := invoke.DecodeResponse(payload)
	if err != nil {
		t.Fatal(err)
	}
	var body struct {
		Error struct {
			Code  string `json:"code"`
			Field string `json:"field"`
		} `json:"error"`
	}
	var fields map[string]any
	// The snippet's function serves a script; every other answer is JSON.
	if !strings.HasPrefix(resp.Headers["content-type"], "text/javascript") {
		if err := json.Unmarshal([]byte(resp.Body), &body); err != nil {
			t.Fatalf("body is not JSON: %v: %.300s", err, resp.Body)
		}
		if err := json.Unmarshal([]byte(resp.Body), &fields); err != nil {
			t.Fatalf("body is not a JSON object: %v: %.300s", err, resp.Body)
		}
	}
	if resp.StatusCode != s.Status || body.Error.Code != s.Error || body.Error.Field != s.Field {
		t.Errorf("answer %d %q (field %q), want %d %q (field %q): %.300s",
			resp.StatusCode, body.Error.Code, body.Error.Field, s.Status, s.Error, s.Field, resp.Body)
	}
	if got := resp.Headers["x-request-id"]; got != ev.RequestContext.RequestID {
		t.Errorf("x-request-id %q, want the event's request id %q", got, ev.RequestContext.RequestID)
	}
	for k, want := range s.LastBody {
		if got := fields[k]; !reflect.DeepEqual(got, want) {
			t.Errorf("body.%s = %v, want %v: %.300s", k, got, want, resp.Body)
		}
	}
	reqHeaders, respHeaders := http.Header{}, http.Header{}
	for k, v := range ev.Headers {
		reqHeaders.Set(k, v)
	}
	for k, v := range resp.Headers {
		respHeaders.Set(k, v)
	}
	path := ev.RawPath
	if ev.RawQueryString != "" {
		path += "?" + ev.RawQueryString
	}
	if err := spec.Check(ev.RequestContext.HTTP.Method, path, reqHeaders, []byte(ev.Body), resp.StatusCode, respHeaders, []byte(resp.Body)); err != nil {
		t.Errorf("OpenAPI: %v", err)
	}
}

// benchEvents is what the benchmarks send: each function's happy-path event,
// and to the hello-world (which ignores it) the state event.
func benchEvents(b *testing.B) (names []string, events map[string][]byte) {
	events = map[string][]byte{}
	names = []string{"hello"}
	events["hello"], _ = loadEvent(b, "state.json")
	for _, f := range routes.Functions() {
		names = append(names, f.Name)
		events[f.Name], _ = loadEvent(b, f.Name+".json")
	}
	return names, events
}

func invokeOK(b *testing.B, emu *invoke.Emulator, event []byte) invoke.Result {
	res, err := emu.Invoke(context.Background(), event)
	if err != nil {
		b.Fatal(err)
	}
	resp, err := invoke.DecodeResponse(res.Payload)
	if err != nil {
		b.Fatal(err)
	}
	if resp.StatusCode >= 300 {
		b.Fatalf("answer %d: %.300s", resp.StatusCode, resp.Body)
	}
	return res
}

// report gives, per function, the median of its times in milliseconds and
// its ratio to the hello-world's median, measured in the same run.
func report(b *testing.B, names []string, times map[string][]time.Duration, what string) {
	median := func(ds []time.Duration) float64 {
		slices.Sort(ds)
		return float64(ds[len(ds)/2].Microseconds()) / 1000
	}
	hello := median(times["hello"])
	for _, name := range names {
		m := median(times[name])
		b.ReportMetric(m, name+"-"+what+"-ms")
		if name != "hello" {
			b.ReportMetric(m/hello, name+"/hello")
		}
	}
}

// BenchmarkColdStart measures, for every function and the hello-world
// aws-lambda-go function, the time from starting the emulator's process to
// the first answer: the emulator's start, the function's start (the
// emulator starts it on the first invocation, as Lambda does) and the first
// invocation, with the first calls to the local engines. Each iteration
// starts each function once, in turn, so drift of the machine touches them
// alike. It also reports the binaries' sizes.
func BenchmarkColdStart(b *testing.B) {
	setup(b)
	names, events := benchEvents(b)
	times := map[string][]time.Duration{}
	for b.Loop() {
		for _, name := range names {
			emu, err := invoke.Start(context.Background(), emulatorOptions(name))
			if err != nil {
				b.Fatal(err)
			}
			res := invokeOK(b, emu, events[name])
			times[name] = append(times[name], res.At.Sub(emu.Started))
			if err := emu.Stop(); err != nil {
				b.Fatal(err)
			}
		}
	}
	report(b, names, times, "cold")
	for _, name := range names {
		if info, err := os.Stat(fixture.bins[name]); err == nil {
			b.ReportMetric(float64(info.Size())/(1<<20), name+"-MiB")
		}
	}
}

// BenchmarkWarmInvoke measures an invocation of a warm function, from
// posting the event to reading the answer, for every function and the
// hello-world, each in its own emulator started (and invoked once) before.
func BenchmarkWarmInvoke(b *testing.B) {
	setup(b)
	names, events := benchEvents(b)
	emus := map[string]*invoke.Emulator{}
	for _, name := range names {
		emus[name] = startEmulator(b, name)
		invokeOK(b, emus[name], events[name])
	}
	times := map[string][]time.Duration{}
	for b.Loop() {
		for _, name := range names {
			times[name] = append(times[name], invokeOK(b, emus[name], events[name]).Elapsed)
		}
	}
	report(b, names, times, "warm")
}

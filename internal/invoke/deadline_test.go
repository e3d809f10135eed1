package invoke_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/waymarkhq/waymark/internal/config"
	"github.com/waymarkhq/waymark/internal/invoke"
	"github.com/waymarkhq/waymark/internal/routes"
)

// The emulator runs a function with the deployed timeout.
func TestFunctionEnvHasTheDeployedTimeout(t *testing.T) {
	env := invoke.FunctionEnv(routes.State, config.Config{}, config.LocalRegion)
	if got, want := env[invoke.EnvFunctionTimeout], strconv.Itoa(int(config.FunctionTimeout/time.Second)); got != want {
		t.Fatalf("%s=%q, want %q", invoke.EnvFunctionTimeout, got, want)
	}
}

// With every DynamoDB call taking 4 seconds, a new user's identify (three
// calls one after the other) cannot be done within the function's timeout: the real
// bootstrap, under the emulator's enforcement of that timeout, answers 503
// unavailable with Retry-After before it, not the emulator's "Task timed
// out".
func TestSlowDatabaseAnswers503BeforeTheTimeout(t *testing.T) {
	setup(t)
	t.Parallel()
	target, err := url.Parse(fixture.stack.Config().DynamoDBEndpoint)
	if err != nil {
		t.Fatal(err)
	}
	var slow atomic.Bool
	forward := httputil.NewSingleHostReverseProxy(target)
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if slow.Load() {
			time.Sleep(4 * time.Second)
		}
		forward.ServeHTTP(w, r)
	}))
	t.Cleanup(proxy.Close)

	cfg := fixture.stack.Config()
	cfg.DynamoDBEndpoint = proxy.URL
	emu, err := invoke.Start(context.Background(), invoke.Options{
		Emulator:  fixture.rie,
		Bootstrap: fixture.bins[routes.Identify.Name],
		Env:       invoke.FunctionEnv(routes.Identify, cfg, config.LocalRegion),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { emu.Stop() })
	_, event := loadEvent(t, "identify.json")
	// Started first, with a workspace that does not exist (none is
	// cached): the timeout counts from the invocation, after the
	// function's start.
	if resp := invokeIdentify(t, emu, event, "no-such-workspace", "first-user"); resp.StatusCode != 404 {
		t.Fatalf("%d %s", resp.StatusCode, resp.Body)
	}
	slow.Store(true)
	// A new user of the demo workspace: the workspace read, then the
	// user's, then its write.
	start := time.Now()
	resp := invokeIdentify(t, emu, event, "demo", "slow-database-"+strconv.FormatInt(time.Now().UnixNano(), 36))
	took := time.Since(start)
	if resp.StatusCode != 503 || resp.Headers["retry-after"] == "" {
		t.Fatalf("%d %v %s after %v", resp.StatusCode, resp.Headers, resp.Body, took)
	}
	if took >= config.FunctionTimeout {
		t.Fatalf("answered after %v, past the function timeout %v", took, config.FunctionTimeout)
	}
}

// invokeIdentify sends the identify event with another workspace and user.
func invokeIdentify(t *testing.T, emu *invoke.Emulator, event events.APIGatewayV2HTTPRequest, workspace, username string) events.APIGatewayV2HTTPResponse {
	t.Helper()
	body, err := json.Marshal(map[string]any{"workspace": workspace, "user": map[string]any{"username": username}})
	if err != nil {
		t.Fatal(err)
	}
	event.Body = string(body)
	raw, err := json.Marshal(event)
	if err != nil {
		t.Fatal(err)
	}
	res, err := emu.Invoke(context.Background(), raw)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := invoke.DecodeResponse(res.Payload)
	if err != nil {
		t.Fatalf("%v (after %v)", err, res.Elapsed)
	}
	return resp
}

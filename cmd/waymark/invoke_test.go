package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
)

func TestInvokeUsage(t *testing.T) {
	for _, args := range [][]string{
		{"invoke"},
		{"invoke", "identify"},
		{"invoke", "nosuchfunction", "../../events-samples/identify.json"},
	} {
		_, err := cli(t, args...)
		var ee *exitError
		if !errors.As(err, &ee) || ee.code != exitUsage {
			t.Errorf("%v: %v, want a usage error", args, err)
		}
	}
	out, err := cli(t, "invoke", "--help")
	if err != nil || !strings.Contains(out, "IdentifyFunction") {
		t.Errorf("invoke --help: %v\n%s", err, out)
	}
}

// invokeCLI runs `waymark invoke` and decodes the function's answer.
func invokeCLI(t *testing.T, args ...string) (events.APIGatewayV2HTTPResponse, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), append([]string{"invoke"}, args...), &stdout, &stderr); err != nil {
		t.Fatalf("waymark invoke %v: %v\n%s", args, err, stderr.String())
	}
	var resp events.APIGatewayV2HTTPResponse
	if err := json.Unmarshal(stdout.Bytes(), &resp); err != nil {
		t.Fatalf("waymark invoke %v printed %q: %v", args, stdout.String(), err)
	}
	return resp, stderr.String()
}

// `waymark invoke` (behind `make invoke`) runs the real bootstrap against the
// engines of the running `make dev`, and without one against engines it
// starts for the invocation.
func TestInvokeAgainstTheDevStackOrItsOwn(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a function and starts the local engines")
	}
	dev := startDev(t)

	// By logical id, as `sam local invoke` names it.
	resp, log := invokeCLI(t, "--quiet", "EventsFunction", "../../events-samples/events.json")
	if resp.StatusCode != 200 || !strings.Contains(log, "make dev") {
		t.Fatalf("events: %d %s\n%s", resp.StatusCode, resp.Body, log)
	}
	// What the function wrote is in the dev stack's tables.
	state := post(t, dev.State.API+"/v1/state", `{"workspace":"demo","username":"sample.ada@example.com"}`)
	if tours, _ := state["state"].(map[string]any)["tours"].(map[string]any); tours["welcome"] == nil {
		t.Errorf("the dev stack has no state from the invocation: %v", state)
	}

	if err := dev.Stop(); err != nil {
		t.Fatal(err)
	}
	resp, log = invokeCLI(t, "--quiet", "state", "../../events-samples/state.json")
	if resp.StatusCode != 200 || !strings.Contains(log, "No `make dev`") {
		t.Fatalf("state without make dev: %d %s\n%s", resp.StatusCode, resp.Body, log)
	}
}

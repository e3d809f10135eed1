package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/waymarkhq/waymark/internal/devstack"
)

// cli runs the CLI in-process with the given arguments.
func cli(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), args, &stdout, &stderr)
	return stdout.String(), err
}

func post(t *testing.T, url, body string) map[string]any {
	t.Helper()
	resp, err := http.Post(url, "text/plain", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode/100 != 2 {
		t.Fatalf("%s: %d %v %v", url, resp.StatusCode, out, err)
	}
	return out
}

// startDev starts a local stack for one test, its state file where
// `waymark --local` looks for it, and stops it when the test ends.
func startDev(t *testing.T) *devstack.Dev {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir := t.TempDir()
	t.Setenv("WAYMARK_STATE_DIR", dir)
	dev, err := devstack.Start(ctx, devstack.Options{StateDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dev.Stop() })
	return dev
}

// The operator's path end to end against the local stack: create a
// workspace, identify a user through the API, export, erase, verify gone.
func TestLocalEndToEnd(t *testing.T) {
	dev := startDev(t)

	out, err := cli(t, "--local", "workspace", "create", "--name", "CLI test", "--retention", "90", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var created struct{ Code, HMACSecret, SecretKey string }
	if err := json.Unmarshal([]byte(out), &created); err != nil || created.Code == "" || created.HMACSecret == "" || !strings.HasPrefix(created.SecretKey, "wmk_") {
		t.Fatalf("workspace create printed %q (%v)", out, err)
	}

	// Data minimization, set before the API reads (and caches) the workspace.
	if _, err := cli(t, "--local", "workspace", "update", created.Code, "--allowed-props", "seats,plan"); err != nil {
		t.Fatal(err)
	}
	user := "ada@example.com"
	answer := post(t, dev.State.API+"/v1/identify", `{"workspace":"`+created.Code+`","user":{"username":"`+user+`","firstname":"Ada","props":{"plan":"pro","seats":{"$add":2},"company":"Acme"}}}`)
	if ignored, _ := json.Marshal(answer["ignored"]); string(ignored) != `["company"]` {
		t.Errorf("identify answered ignored %s, want [\"company\"]", ignored)
	}
	post(t, dev.State.API+"/v1/events", `{"workspace":"`+created.Code+`","username":"`+user+`","events":[{"id":"e1","content":"tour","contentId":"welcome","action":"finished","at":"2026-01-01T00:00:00Z"}]}`)
	post(t, dev.State.API+"/v1/feedback", `{"workspace":"`+created.Code+`","username":"`+user+`","text":"Lovely tour"}`)

	out, err = cli(t, "--local", "user", "export", "--workspace", created.Code, user)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"username": "ada@example.com"`, `"firstname": "Ada"`, `"plan": "pro"`, `"seats": 2`, `"welcome"`, `"text": "Lovely tour"`} {
		if !strings.Contains(out, want) {
			t.Errorf("export lacks %s:\n%s", want, out)
		}
	}
	if strings.Contains(out, "Acme") {
		t.Errorf("export holds a prop outside the allow-list:\n%s", out)
	}
	out, err = cli(t, "--local", "feedback", "list", "--workspace", created.Code, "--json")
	if err != nil || !strings.Contains(out, "Lovely tour") {
		t.Fatalf("feedback list: %q %v", out, err)
	}
	out, err = cli(t, "--local", "workspace", "show", created.Code)
	if err != nil || !strings.Contains(out, "90 days of inactivity") || !strings.Contains(out, "plan, seats") {
		t.Fatalf("workspace show: %q %v", out, err)
	}

	out, err = cli(t, "--local", "user", "delete", "--workspace", created.Code, user, "--json")
	if err != nil || out != "{\"users\":1,\"items\":3,\"attachments\":0}\n" {
		t.Fatalf("user delete: %q %v", out, err)
	}
	out, err = cli(t, "--local", "user", "export", "--workspace", created.Code, user)
	if err != nil || !strings.Contains(out, `"found": false`) || strings.Contains(out, "Ada") {
		t.Fatalf("export after delete: %q %v", out, err)
	}

	// Workspace settings, keys and exit codes.
	if _, err := cli(t, "--local", "workspace", "update", created.Code, "--identity-verification", "on", "--hmac-expiration", "none", "--origins", "https://app.example.com"); err != nil {
		t.Fatal(err)
	}
	out, err = cli(t, "--local", "workspace", "add-key", created.Code, "--json")
	var added struct{ KeyID string }
	if err != nil || json.Unmarshal([]byte(out), &added) != nil || added.KeyID == "" {
		t.Fatalf("add-key: %q %v", out, err)
	}
	if _, err := cli(t, "--local", "workspace", "revoke-key", created.Code, added.KeyID); err != nil {
		t.Fatal(err)
	}
	out, err = cli(t, "--local", "workspace", "show", created.Code, "--json")
	if err != nil || !strings.Contains(out, `"identityVerification":true`) || !strings.Contains(out, `"hmacExpiration":"none"`) || !strings.Contains(out, `"revokedAt"`) || strings.Contains(out, created.HMACSecret) {
		t.Fatalf("workspace show --json: %q %v", out, err)
	}
	if _, err := cli(t, "--local", "workspace", "disable", created.Code); err != nil {
		t.Fatal(err)
	}
	if out, err := cli(t, "--local", "workspace", "list"); err != nil || !strings.Contains(out, created.Code) {
		t.Fatalf("workspace list: %q %v", out, err)
	}
	for _, bad := range [][]string{{"nope"}, {"--local", "user", "export"}, {"--local", "workspace", "update", created.Code, "--identity-verification", "maybe"},
		{"--local", "workspace", "update", created.Code, "--hmac-expiration", "sometimes"}, {"--local", "workspace", "create", "--name", "x", "--hmac-expiration", "optional"}} {
		_, err := cli(t, bad...)
		if ee, ok := err.(*exitError); !ok || ee.code != exitUsage {
			t.Errorf("%v: %v, want a usage error (exit 2)", bad, err)
		}
	}
	if _, err := cli(t, "--local", "workspace", "show", "no-such-workspace"); err == nil {
		t.Error("showing an unknown workspace succeeded")
	}
}

package devstack_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/waymarkhq/waymark/internal/config"
	"github.com/waymarkhq/waymark/internal/devstack"
	"github.com/waymarkhq/waymark/internal/routes"
	"github.com/waymarkhq/waymark/internal/waymark"
)

// TestSAMEnvVars checks the file `sam local invoke --env-vars` reads: one
// entry per function, by logical id, with the function's whole configuration
// and the engines reached from a container.
func TestSAMEnvVars(t *testing.T) {
	s := devstack.State{
		DynamoDB: "http://127.0.0.1:40001",
		KMS:      "http://127.0.0.1:40002",
		Region:   config.LocalRegion,
		KMSKeyID: "arn:aws:kms:eu-central-1:111122223333:key/k",
		Tables:   config.LocalTables(""),
	}
	dir := t.TempDir()
	if err := devstack.WriteSAMEnvVars(dir, s); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, devstack.SAMEnvVarsFile))
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]map[string]string
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(routes.Functions()) {
		t.Errorf("%d entries, want one per function (%d)", len(got), len(routes.Functions()))
	}
	want := s.Config()
	want.DynamoDBEndpoint = "http://host.docker.internal:40001"
	want.KMSEndpoint = "http://host.docker.internal:40002"
	for _, f := range routes.Functions() {
		env, ok := got[f.LogicalID]
		if !ok {
			t.Errorf("no entry for %s", f.LogicalID)
			continue
		}
		for k, v := range want.Env() {
			if env[k] != v {
				t.Errorf("%s: %s = %q, want %q", f.LogicalID, k, env[k], v)
			}
		}
		if cfg, err := configOf(t, env); err != nil || cfg.DynamoDBEndpoint != want.DynamoDBEndpoint {
			t.Errorf("%s: the function would not start on this environment: %v", f.LogicalID, err)
		}
	}
}

// configOf reads a function's configuration from env as the function does.
func configOf(t *testing.T, env map[string]string) (config.Config, error) {
	for k, v := range env {
		t.Setenv(k, v)
	}
	return config.FromEnv()
}

// TestDemoServerKey checks that the demo key is a key the workspace accepts,
// and is added once.
func TestDemoServerKey(t *testing.T) {
	ws, _, err := waymark.NewWorkspace(waymark.NewWorkspaceOptions{Code: devstack.DemoWorkspace, Name: "Demo"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ws.CheckAPIKey(devstack.DemoServerKey); err == nil {
		t.Fatal("a new workspace accepts the demo key")
	}
	if !devstack.AddDemoServerKey(ws, time.Now()) || devstack.AddDemoServerKey(ws, time.Now()) {
		t.Error("AddDemoServerKey should add the key once")
	}
	if code, _, ok := waymark.ParseAPIKey(devstack.DemoServerKey); !ok || code != devstack.DemoWorkspace {
		t.Errorf("the demo key names workspace %q, want %q", code, devstack.DemoWorkspace)
	}
	if _, err := ws.CheckAPIKey(devstack.DemoServerKey); err != nil {
		t.Errorf("the workspace refuses its demo key: %v", err)
	}
}

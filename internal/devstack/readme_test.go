package devstack_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/waymarkhq/waymark/internal/devstack"
)

// The README's "Try it" commands, run as written against a fresh local stack
// (on a free port instead of 3000).
func TestREADMEExamples(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(readme), "## Try it")
	if !ok {
		t.Fatal("README has no \"Try it\" section")
	}
	_, block, ok := strings.Cut(after, "```sh\n")
	block, _, ok2 := strings.Cut(block, "```")
	if !ok || !ok2 || !strings.Contains(block, "curl") {
		t.Fatal("no shell block with curl commands under \"Try it\"")
	}

	// Generous: the last command compiles the CLI (`go run`), which takes
	// minutes on a cold cache while make test compiles the other packages.
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	stateDir := t.TempDir()
	dev, err := devstack.Start(ctx, devstack.Options{StateDir: stateDir})
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Stop()

	script := strings.ReplaceAll(block, "http://127.0.0.1:3000", dev.State.API)
	cmd := exec.CommandContext(ctx, "bash", "-euo", "pipefail", "-c", script)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "WAYMARK_STATE_DIR="+stateDir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("README commands failed: %v\n%s", err, out)
	}
	text := string(out)
	for _, want := range []string{`"firstSeenAt"`, `"accepted":2`, `"welcome":{"status":"not_finished","step":"card-2"`, `"createdAt"`, `"found":true`, `"members":1`, `"hmacSecret"`, `"ignored":["company"]`, `"failed":[]`, "1 users: ", "upload: 2", `"contentType":"image/png"`} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %s:\n%s", want, text)
		}
	}
	if strings.Contains(text, `"error"`) {
		t.Errorf("a README command got an error:\n%s", text)
	}
}

package stack

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/waymarkhq/waymark/internal/buildinfo"
)

// A function built the way make build builds it carries the commit of the
// checkout, and that is the commit the stack stamps it with; a function
// whose bootstrap is no Go binary has none.
func TestFunctionCommitsComeFromTheBinaries(t *testing.T) {
	head, err := exec.Command("git", "rev-parse", "HEAD").Output()
	if err != nil {
		t.Skipf("not a git checkout (%v): binaries carry no commit", err)
	}
	want := strings.TrimSpace(string(head))
	if status, err := exec.Command("git", "status", "--porcelain").Output(); err != nil {
		t.Fatal(err)
	} else if len(status) > 0 {
		want += "-dirty"
	}
	dir := t.TempDir()
	// The flags of make/infra.mk, so that make test finds it in the cache.
	build := exec.Command("go", "build", "-buildvcs=auto", "-tags", "lambda.norpc", "-trimpath", "-ldflags=-s -w",
		"-o", filepath.Join(dir, "identify", "bootstrap"), "../../functions/identify")
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=arm64")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	if err := os.MkdirAll(filepath.Join(dir, "state"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "state", "bootstrap"), []byte("placeholder"), 0o755); err != nil {
		t.Fatal(err)
	}
	commits := functionCommits(dir)
	if commits["identify"] != want {
		t.Errorf("identify was built from %q, want %q", commits["identify"], want)
	}
	if commits["state"] != buildinfo.Unknown || commits["events"] != buildinfo.Unknown {
		t.Errorf("a placeholder and a missing binary: %q and %q, want %q", commits["state"], commits["events"], buildinfo.Unknown)
	}
	// The functions no route serves are stamped too.
	if commits[webhookFunctionName] != buildinfo.Unknown || commits["analytics"] != buildinfo.Unknown {
		t.Errorf("missing webhook and analytics binaries: %q and %q, want %q", commits[webhookFunctionName], commits["analytics"], buildinfo.Unknown)
	}
}

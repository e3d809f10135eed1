package stack

import (
	"debug/buildinfo"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"

	"github.com/aws/aws-cdk-go/awscdk/v2"

	waymarkbuild "github.com/waymarkhq/waymark/internal/buildinfo"
	"github.com/waymarkhq/waymark/internal/routes"
)

// BuildFunctions builds every function's bootstrap before the app
// synthesizes, so that `cdk deploy` after a code change deploys that code and
// not whatever an earlier `make build` left in build/. It runs `make build`,
// the one definition of how a function is built (go build knows what is
// stale, so an unchanged tree costs a few seconds). An app given its own
// assetRoot (-c assetRoot=DIR) brings its own binaries and builds nothing.
// The go command's output goes to w: the CLI reads nothing from it.
func BuildFunctions(app awscdk.App, w io.Writer) error {
	if ctxString(app.Node(), CtxAssetRoot, DefaultAssetRoot) != DefaultAssetRoot {
		return nil
	}
	cmd := exec.Command("make", "--no-print-directory", "build")
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("infra: building the functions (make build): %v", err)
	}
	return nil
}

// functionCommits reads, for every function (those no route serves
// included), the commit its bootstrap was built from; a file that is no Go
// binary (the tests' placeholders) has none.
func functionCommits(root string) map[string]string {
	names := []string{webhookFunctionName, routes.Analytics.Name}
	for _, f := range routes.Functions() {
		names = append(names, f.Name)
	}
	out := map[string]string{}
	for _, name := range names {
		out[name] = waymarkbuild.Unknown
		if info, err := buildinfo.ReadFile(filepath.Join(root, name, "bootstrap")); err == nil {
			out[name] = waymarkbuild.FromSettings(info.Settings)
		}
	}
	return out
}

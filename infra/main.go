// Command infra is Waymark's CDK app: `cdk synth` and `cdk deploy` run it
// (see cdk.json), and `go run ./infra` synthesizes into cdk.out directly.
//
// It builds the functions first (make build), so that a deploy ships the
// code of the checkout. Without context it synthesizes the EU stack (Waymark-eu, eu-central-1);
// -c regions=eu,us adds the US stack (Waymark-us, us-east-1). The other
// context values are described in docs/deploy.md.
package main

import (
	"fmt"
	"os"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/jsii-runtime-go"

	"github.com/waymarkhq/waymark/infra/stack"
)

func main() {
	defer jsii.Close()
	props := &awscdk.AppProps{
		Context: &map[string]interface{}{
			// The CLI turns asset and path metadata on by default; set them here
			// too so that a plain `go run ./infra` also writes the aws:asset:path
			// and aws:cdk:path metadata `sam local invoke` reads. Context given
			// by the CLI still wins.
			"aws:cdk:enable-asset-metadata": true,
			"aws:cdk:enable-path-metadata":  true,
		},
	}
	// Under the CLI, CDK_OUTDIR names the output directory (and must not be
	// contradicted); run alone, the app would write to a temporary directory.
	if os.Getenv("CDK_OUTDIR") == "" {
		props.Outdir = jsii.String("cdk.out")
	}
	app := awscdk.NewApp(props)
	err := stack.BuildFunctions(app, os.Stderr)
	if err == nil {
		_, err = stack.Build(app)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		jsii.Close()
		os.Exit(1)
	}
	app.Synth(nil)
}

// Command analytics is the content analytics' aggregator, fed by an event
// source mapping on the ContentState table's stream (a tumbling window, so
// each invocation names its shard).
package main

import (
	"context"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/waymarkhq/waymark/internal/analytics"
	"github.com/waymarkhq/waymark/internal/buildinfo"
	"github.com/waymarkhq/waymark/internal/routes"
	"github.com/waymarkhq/waymark/internal/wiring"
)

func main() {
	buildinfo.LogStart(routes.Analytics.Name)
	graph := wiring.FromEnv(context.Background())
	lambda.Start(analytics.New(graph.Store, wiring.Logger(os.Stdout, "info")).HandleLambda)
}

// Command state is the Lambda function behind the route table's state route.
package main

import (
	"context"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/waymarkhq/waymark/internal/buildinfo"
	"github.com/waymarkhq/waymark/internal/routes"
	"github.com/waymarkhq/waymark/internal/wiring"
)

func main() {
	buildinfo.LogStart(routes.State.Name)
	graph := wiring.FromEnv(context.Background())
	lambda.Start(graph.API.Handler(routes.State.Name))
}

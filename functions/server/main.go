// Command server is the Lambda function behind the route table's server API routes.
package main

import (
	"context"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/waymarkhq/waymark/internal/config"
	"github.com/waymarkhq/waymark/internal/routes"
	"github.com/waymarkhq/waymark/internal/wiring"
)

func main() {
	cfg, err := config.FromEnv()
	log := wiring.Logger(os.Stdout, cfg.LogLevel)
	if err != nil {
		log.Error("configuration", slog.String("error", err.Error()))
		os.Exit(1)
	}
	graph, err := wiring.New(context.Background(), cfg, log)
	if err != nil {
		log.Error("start", slog.String("error", err.Error()))
		os.Exit(1)
	}
	lambda.Start(graph.API.Handler(routes.Server.Name))
}

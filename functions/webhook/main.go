// Command webhook is the Lambda function that delivers new feedback to the
// workspaces' webhooks, fed by the Feedback table's stream and its queue.
package main

import (
	"context"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/waymarkhq/waymark/internal/buildinfo"
	"github.com/waymarkhq/waymark/internal/wiring"
)

func main() {
	buildinfo.LogStart("webhook")
	lambda.Start(wiring.WebhookFromEnv(context.Background()).Handle)
}

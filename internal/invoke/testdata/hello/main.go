// Command hello is the smallest aws-lambda-go function behind an HTTP API:
// the baseline Waymark's cold and warm invocations are measured against, in
// the same run and under the same emulator.
package main

import (
	"context"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
)

func main() {
	lambda.Start(func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		return events.APIGatewayV2HTTPResponse{
			StatusCode: 200,
			Headers:    map[string]string{"content-type": "application/json"},
			Body:       `{"hello":"world"}`,
		}, nil
	})
}

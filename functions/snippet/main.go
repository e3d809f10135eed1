// Command snippet is the Lambda function behind the route table's
// GET /waymark.js: it serves the browser snippet embedded at build time and
// touches no table, key or secret.
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/waymarkhq/waymark/internal/snippetjs"
)

func main() {
	lambda.Start(snippetjs.Handle)
}

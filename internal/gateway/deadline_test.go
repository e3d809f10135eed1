package gateway

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/waymarkhq/waymark/internal/config"
	"github.com/waymarkhq/waymark/internal/routes"
)

// A handler gets the deadline a deployed function gets: the function
// timeout from the invocation's start.
func TestHandlerDeadlineIsTheFunctionTimeout(t *testing.T) {
	rec := okRecorder()
	srv := serve(t, map[string]Handler{routes.State.Name: rec.handle}, Options{})
	sent := time.Now()
	do(t, newRequest(t, "POST", srv.URL+"/v1/state", nil))
	deadline, ok := rec.ctx.Deadline()
	if !ok || deadline.Before(sent.Add(config.FunctionTimeout-time.Second)) || deadline.After(time.Now().Add(config.FunctionTimeout)) {
		t.Fatalf("deadline %v after the request, want the function timeout %v", deadline.Sub(sent), config.FunctionTimeout)
	}
}

// A handler still running at the timeout is a failed function, as Lambda
// ends it: the client gets API Gateway's 500 at the timeout, not the
// handler's late answer.
func TestHandlerPastTheTimeoutIs500(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	stuck := func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		<-release // heeds no deadline
		return events.APIGatewayV2HTTPResponse{StatusCode: 200, Body: "{}"}, nil
	}
	var logs bytes.Buffer
	srv := serve(t, map[string]Handler{routes.State.Name: stuck}, Options{Timeout: 100 * time.Millisecond, Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	resp, body := do(t, newRequest(t, "POST", srv.URL+"/v1/state", nil))
	if resp.StatusCode != 500 || body != `{"message":"Internal Server Error"}` {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	if !strings.Contains(logs.String(), "timed out") {
		t.Errorf("timeout not logged: %s", logs.String())
	}
}

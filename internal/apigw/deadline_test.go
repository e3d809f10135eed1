package apigw_test

import (
	"testing"
	"time"

	"github.com/waymarkhq/waymark/internal/waymark"
)

// With every DynamoDB call slow and deaf to cancellation (a connection stuck
// in a read), the request cannot be served in time, and its answer is
// Waymark's 503 with Retry-After, given before the function's timeout,
// rather than the platform's timeout. Deployed: 4 s a call and a 10-second
// timeout; here scaled down to 2 s and 3 s.
func TestAnswerBeforeTheDeadlineWhenCallsAreStuck(t *testing.T) {
	const functionTimeout = 3 * time.Second
	faults := newOpFaults(t, "DynamoDB_20120810.*", "", failStuck)
	faults.stall = 2 * time.Second
	var logs syncBuffer
	hs := graphWithFaults(t, faults, functionTimeout, &logs)
	ws := newWorkspace(t, waymark.NewWorkspaceOptions{})
	start := time.Now()
	r := invokeWith(t, hs, "state", requestBody(t, "state", ws.Code, uniqueUser(t)), nil)
	took := time.Since(start)
	if r.Status != 503 || r.errorCode() != waymark.EUnavailable || r.Headers["retry-after"] != "2" {
		t.Fatalf("%d %v %v", r.Status, r.Body, r.Headers)
	}
	if took >= functionTimeout {
		t.Fatalf("answered after %v, past the function timeout %v", took, functionTimeout)
	}
	if logLineOf(logs.String(), r.Headers["x-request-id"], "request failed") == "" {
		t.Errorf("the failure is not logged: %s", logs.String())
	}
}

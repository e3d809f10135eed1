package apigw_test

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/waymarkhq/waymark/internal/config"
	"github.com/waymarkhq/waymark/internal/waymark"
)

// With 30 % of DynamoDB calls failing (500), a warm instance keeps serving:
// each call is retried, and no request fails for want of the SDK's retry
// quota ("retry quota exceeded"), which with the SDK's default bucket
// empties after a few hundred such calls and then fails every call that
// fails once. The clients are built as deployed (config.Clients).
func TestNoRetryQuotaUnderFaults(t *testing.T) {
	faults := newOpFaults(t, "DynamoDB_20120810.*", "", failServerError)
	faults.rate = 0.3
	faults.rnd = rand.New(rand.NewPCG(3, 7))
	var logs syncBuffer
	hs := graphWithFaults(t, faults, config.FunctionTimeout, &logs)
	ws := newWorkspace(t, waymark.NewWorkspaceOptions{})
	const requests, clients = 250, 8
	var next, failed atomic.Int64
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			for i := next.Add(1); i <= requests; i = next.Add(1) {
				body := mustJSON(map[string]any{"workspace": ws.Code, "username": fmt.Sprintf("quota-user-%d-%s", i, ws.Code), "events": []any{
					map[string]any{"id": fmt.Sprintf("q-%d", i), "content": "hint", "contentId": "h1", "action": "displayed", "at": "2026-01-01T00:00:00Z"},
				}})
				if r := invokeWith(t, hs, "events", body, nil); r.Status != 200 {
					failed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if faults.matched.Load() < requests/2 {
		t.Fatalf("only %d calls failed", faults.matched.Load())
	}
	quota := strings.Count(logs.String(), "retry quota exceeded")
	t.Logf("%d calls failed, %d of %d requests failed after the SDK's retries", faults.matched.Load(), failed.Load(), requests)
	if quota > 0 {
		t.Fatalf("%d requests failed for want of retry quota", quota)
	}
}

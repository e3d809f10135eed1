package apigw_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Parallel writers on one content item: every distinct event counts once,
// however the batches race and however often they are retried.
func TestParallelEventsCountExactly(t *testing.T) {
	user := uniqueUser(t)
	const writers, batches, perBatch = 6, 4, 5
	var accepted atomic.Int64
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for b := range batches {
				evs := make([]any, perBatch)
				for i := range evs {
					evs[i] = map[string]any{"id": fmt.Sprintf("w%d-b%d-e%d", w, b, i), "content": "hint", "contentId": "contended", "action": "displayed", "at": time.Now().UTC().Format(time.RFC3339Nano)}
				}
				body := mustJSON(map[string]any{"workspace": "demo", "username": user, "events": evs})
				// Each batch is sent twice at once: a client retry racing
				// the original.
				var inner sync.WaitGroup
				for range 2 {
					inner.Go(func() {
						r := invoke(t, "events", body)
						if r.Status != 200 {
							t.Errorf("%d %v", r.Status, r.Body)
							return
						}
						accepted.Add(int64(r.Body["accepted"].(float64)))
					})
				}
				inner.Wait()
			}
		})
	}
	wg.Wait()
	want := writers * batches * perBatch
	if got := accepted.Load(); got != int64(want) {
		t.Fatalf("accepted %d events, want %d", got, want)
	}
	r := invoke(t, "state", mustJSON(map[string]any{"workspace": "demo", "username": user}))
	hint := r.Body["state"].(map[string]any)["hints"].(map[string]any)["contended"].(map[string]any)
	if hint["displayed"] != float64(want) {
		t.Fatalf("displayed %v, want %d", hint["displayed"], want)
	}
}

// Parallel identifies of one user, each adding its own prop: no update is
// lost.
func TestParallelIdentifiesLoseNoUpdate(t *testing.T) {
	user := uniqueUser(t)
	const writers = 8
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			r := invoke(t, "identify", mustJSON(map[string]any{"workspace": "demo", "user": map[string]any{"username": user, "props": map[string]any{fmt.Sprintf("k%d", w): w}}}))
			if r.Status != 200 {
				t.Errorf("%d %v", r.Status, r.Body)
			}
		})
	}
	wg.Wait()
	ws := workspace(t, "demo")
	u, err := graph.Store.GetUser(context.Background(), ws, ws.UserKey(user))
	if err != nil {
		t.Fatal(err)
	}
	if len(u.Profile.Props) != writers {
		t.Fatalf("props after %d racing identifies: %v", writers, u.Profile.Props)
	}
}

// Through a connection that loses 20 % of DynamoDB's answers after the write
// was applied and throttles 10 % of requests, the SDK retries writes that
// already happened. A client that resends each event until it is
// acknowledged still gets every event counted exactly once.
func TestRetriedWritesCountOnce(t *testing.T) {
	faults := &faultyTransport{dropRate: 0.2, throttle: 0.1, rnd: rand.New(rand.NewPCG(1, 2))}
	hs, _ := faultyGraph(t, faults, nil)
	user := uniqueUser(t)
	const events = 60
	// The answers count too: an event is accepted by the answer to the
	// request that applied it. Only a request that failed after applying
	// its event (its answer lost past the SDK's retries) leaves its
	// client's retry a duplicate.
	accepted, afterFailure := 0, 0
	for i := range events {
		body := mustJSON(map[string]any{"workspace": "demo", "username": user, "events": []any{
			map[string]any{"id": fmt.Sprintf("flaky-%d", i), "content": "announcement", "contentId": "a", "action": "displayed", "at": time.Now().UTC().Format(time.RFC3339Nano)},
		}})
		for attempt := 1; ; attempt++ {
			r := invokeWith(t, hs, "events", body, nil)
			if r.Status == 200 {
				a, d := r.Body["accepted"].(float64), r.Body["duplicates"].(float64)
				switch {
				case a+d != 1:
					t.Fatalf("event %d: accepted %v + duplicates %v, want 1", i, a, d)
				case d == 1 && attempt == 1:
					t.Fatalf("event %d: a duplicate on its first sending", i)
				case d == 1:
					afterFailure++
				}
				accepted += int(a)
				break
			}
			if r.Status != 503 && r.Status != 429 || attempt > 20 {
				t.Fatalf("event %d attempt %d: %d %v", i, attempt, r.Status, r.Body)
			}
		}
	}
	for i := range 10 {
		body := mustJSON(map[string]any{"workspace": "demo", "user": map[string]any{"username": user, "props": map[string]any{fmt.Sprintf("p%d", i): i}}})
		for attempt := 1; ; attempt++ {
			r := invokeWith(t, hs, "identify", body, nil)
			if r.Status == 200 {
				break
			}
			if r.Status != 503 && r.Status != 429 || attempt > 20 {
				t.Fatalf("identify %d: %d %v", i, r.Status, r.Body)
			}
		}
	}
	if faults.dropped.Load() == 0 || faults.refused.Load() == 0 {
		t.Fatalf("no fault injected (dropped %d, throttled %d)", faults.dropped.Load(), faults.refused.Load())
	}
	r := invoke(t, "state", mustJSON(map[string]any{"workspace": "demo", "username": user}))
	a := r.Body["state"].(map[string]any)["announcements"].(map[string]any)["a"].(map[string]any)
	if a["displayed"] != float64(events) {
		t.Fatalf("displayed %v after %d events (%d answers dropped, %d throttled)", a["displayed"], events, faults.dropped.Load(), faults.refused.Load())
	}
	if accepted+afterFailure != events {
		t.Fatalf("answers accepted %d events, and %d were duplicates after a failed attempt, of %d", accepted, afterFailure, events)
	}
	ws := workspace(t, "demo")
	u, err := graph.Store.GetUser(context.Background(), ws, ws.UserKey(user))
	if err != nil || len(u.Profile.Props) != 10 {
		t.Fatalf("props %v, %v", u.Profile.Props, err)
	}
	t.Logf("%d answers dropped after the write, %d requests throttled", faults.dropped.Load(), faults.refused.Load())
}

package apigw_test

import (
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"
)

// Parallel writers on one content item of one user, each sending its own
// events one request at a time and never retrying: the server absorbs its
// own write conflicts, so every answer is 2xx and every event counts once.
// (`make bench` measures 10, 25 and 50 writers; the suite runs the most.)
func TestContendedContentItemAnswersEveryWriter(t *testing.T) {
	const writers = 50
	user := uniqueUser(t)
	const requests = 10
	var (
		mu        sync.Mutex
		failed    []string
		accepted  int
		latencies []time.Duration
		wg        sync.WaitGroup
	)
	for w := range writers {
		wg.Go(func() {
			for i := range requests {
				body := mustJSON(map[string]any{"workspace": "demo", "username": user, "events": []any{
					map[string]any{"id": fmt.Sprintf("w%d-r%d", w, i), "content": "hint", "contentId": "contended", "action": "displayed", "at": time.Now().UTC().Format(time.RFC3339Nano)},
				}})
				began := time.Now()
				r := invoke(t, "events", body)
				took := time.Since(began)
				mu.Lock()
				latencies = append(latencies, took)
				if r.Status/100 == 2 {
					accepted += int(r.Body["accepted"].(float64))
				} else {
					failed = append(failed, fmt.Sprintf("%d %s", r.Status, r.errorCode()))
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	sort.Slice(latencies, func(i, j int) bool { return latencies[i] < latencies[j] })
	t.Logf("%d writers × %d requests: %d non-2xx, p50 %v, p99 %v", writers, requests, len(failed),
		latencies[len(latencies)/2].Round(time.Millisecond), latencies[len(latencies)*99/100].Round(time.Millisecond))
	if len(failed) > 0 {
		t.Errorf("%d of %d answers were not 2xx, e.g. %s", len(failed), writers*requests, failed[0])
	}
	want := writers * requests
	if accepted != want && len(failed) == 0 {
		t.Errorf("accepted %d events in all, want %d", accepted, want)
	}
	r := invoke(t, "state", mustJSON(map[string]any{"workspace": "demo", "username": user}))
	hint := r.Body["state"].(map[string]any)["hints"].(map[string]any)["contended"].(map[string]any)
	if hint["displayed"] != float64(accepted) {
		t.Errorf("displayed %v, but the answers accepted %d", hint["displayed"], accepted)
	}
}

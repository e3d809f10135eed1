package main

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"
)

// Parallel attribute operations on one user: addWriters writers each send
// addRequests identifies of {"seats":{"$add":1}}, one after the other, with
// no retry.
const (
	addWriters  = 25
	addRequests = 4
)

// addResult is the run of the operations' contention.
type addResult struct {
	writeRun
	seats string // the value stored afterwards
}

func (w workload) addSeat(username string) request {
	return request{"identify", username, apiEvent("/v1/identify", map[string]any{
		"workspace": w.workspace, "user": map[string]any{"username": username, "props": map[string]any{"seats": map[string]any{"$add": 1}}},
	})}
}

// addContention runs the writers on one instance that asks DynamoDB for
// the capacity consumed; every answer should be 2xx and the sum exact.
func addContention(ctx context.Context, g *graph, w workload) (addResult, error) {
	var res addResult
	user := "contention-add@example.com"
	var (
		mu sync.Mutex
		wg sync.WaitGroup
	)
	for range addWriters {
		wg.Go(func() {
			for range addRequests {
				rec := &recorder{}
				began := time.Now()
				_, err := g.serve(ctx, w.addSeat(user), rec)
				took := time.Since(began)
				mu.Lock()
				res.record(took, err, rec)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	ws, err := g.store.GetWorkspace(ctx, w.workspace)
	if err != nil {
		return res, err
	}
	u, err := g.store.GetUser(ctx, ws, ws.UserKey(user))
	if err != nil {
		return res, err
	}
	res.seats = fmt.Sprint(u.Profile.Props["seats"])
	res.chargeFailedConditions()
	return res, nil
}

func (r addResult) row(t *table) {
	ops := addWriters * addRequests
	measured := fmt.Sprintf("p50 %s, p99 %s; **%d non-2xx** of %d; seats %s; %.2f WRU per operation (%d failed conditions‡)",
		ms(percentile(r.lat, 50)), ms(percentile(r.lat, 99)), r.non2xx, ops, r.seats, r.writes/float64(ops), r.failed)
	if r.firstErr != "" {
		measured += "; first: " + r.firstErr
	}
	t.add(fmt.Sprintf("9. Contention: %d writers × %d `$add` on one user", addWriters, addRequests), measured,
		fmt.Sprintf("%d non-2xx, sum exact", contentionNon2xx),
		verdict(r.non2xx == contentionNon2xx && r.seats == strconv.Itoa(ops)))
}

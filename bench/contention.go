package main

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"
)

// contentionWriters are the numbers of parallel writers measured on one
// content item, each sending contentionRequests requests of one event, one
// after the other, with no retry.
var contentionWriters = []int{10, 25, 50}

const contentionRequests = 10

// writeRun is what parallel writers of one item measured: latencies,
// refusals and the DynamoDB writes their requests made.
type writeRun struct {
	lat       []time.Duration
	non2xx    int
	firstErr  string
	writes    float64
	failed    int     // conditional writes whose condition failed
	itemUnits float64 // the largest write of the item: the price of a failed one
}

// record adds one request: its time, its error and the writes its recorder
// saw.
func (r *writeRun) record(took time.Duration, err error, rec *recorder) {
	r.lat = append(r.lat, took)
	if err != nil {
		r.non2xx++
		if r.firstErr == "" {
			r.firstErr = err.Error()
		}
	}
	for _, c := range rec.snapshot() {
		if read, _ := readKind(c.input); c.service != "dynamodb" || read {
			continue
		}
		if c.conditionFailed {
			r.failed++
		}
		r.writes += c.units
		r.itemUnits = max(r.itemUnits, c.units)
	}
}

// chargeFailedConditions prices the failed conditions: the local engine
// reports no units for them, AWS charges the existing item's size, which is
// at most the largest write of it in the run (it only grows).
func (r *writeRun) chargeFailedConditions() {
	r.writes += float64(r.failed) * max(r.itemUnits, failedWriteUnits)
}

// contentionResult is one contention run.
type contentionResult struct {
	writeRun
	writers   int
	displayed int // the count the state shows afterwards
	accepted  int // the sum of the answers' accepted
}

// contention has writers of one user each send their own `displayed`
// events on one hint, in parallel, on one instance that asks DynamoDB for
// the capacity consumed. Every answer should be 2xx and the count exact.
func contention(ctx context.Context, g *graph, w workload, writers int) (contentionResult, error) {
	res := contentionResult{writers: writers}
	user := fmt.Sprintf("contention-%d@example.com", writers)
	var (
		mu sync.Mutex
		wg sync.WaitGroup
	)
	for wr := range writers {
		wg.Go(func() {
			for i := range contentionRequests {
				r := w.event1(user, fmt.Sprintf("c%d-w%d-r%d", writers, wr, i), 1) // content 1: a hint
				rec := &recorder{}
				began := time.Now()
				resp, err := g.serve(ctx, r, rec)
				took := time.Since(began)
				mu.Lock()
				res.record(took, err, rec)
				if err == nil {
					res.accepted += answerInt(decodeAnswer(resp.Body), "accepted")
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	resp, err := g.serve(ctx, w.state(user), nil)
	if err != nil {
		return res, err
	}
	state, _ := decodeAnswer(resp.Body)["state"].(map[string]any)
	hints, _ := state["hints"].(map[string]any)
	hint, _ := hints["hint-1"].(map[string]any)
	res.displayed = answerInt(hint, "displayed")
	res.chargeFailedConditions()
	return res, nil
}

// decodeAnswer decodes a JSON answer; a body that is not JSON decodes to
// nothing, which the figures then show.
func decodeAnswer(body string) map[string]any {
	var m map[string]any
	_ = json.Unmarshal([]byte(body), &m)
	return m
}

package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// kmsCount is the KMS calls a new instance made over a number of writes.
type kmsCount struct {
	writes   int
	byOp     map[string]int
	total    int
	elapsed  time.Duration
	requests map[string]int
	// within is how many writes had started when the last KMS call did.
	within int
}

// forEach runs fn(i) for i in [0, n) on the given number of goroutines and
// returns the first error.
func forEach(n, workers int, fn func(i int) error) error {
	var next atomic.Int64
	var first error
	var once sync.Once
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := fn(i); err != nil {
					once.Do(func() { first = err })
					return
				}
			}
		})
	}
	wg.Wait()
	return first
}

// kmsPerWrites counts, by SDK middleware, the KMS calls of a new instance
// (a fresh graph: empty data-key and workspace caches) over n writes:
// identify, events and feedback in turn, 16 at a time, on users that
// another instance wrote before, as users are when a fleet of Lambda
// instances serves them.
func kmsPerWrites(ctx context.Context, g *graph, w workload, users []string, n int) (kmsCount, error) {
	rec := &recorder{}
	ctx = withRecorder(ctx, rec)
	out := kmsCount{writes: n, byOp: map[string]int{}, requests: map[string]int{}}
	var mu sync.Mutex
	started := make([]time.Time, n)
	start := time.Now()
	err := forEach(n, 16, func(i int) error {
		started[i] = time.Now()
		u := users[i%len(users)]
		var r request
		switch i % 3 {
		case 0:
			r = w.identify(u, []string{"pro", "team"}[i/len(users)%2])
		case 1:
			r = w.event1(u, fmt.Sprintf("kms-%d", i), i/len(users))
		default:
			r = w.feedback(u)
		}
		mu.Lock()
		out.requests[r.function]++
		mu.Unlock()
		_, err := g.serve(ctx, r, nil)
		return err
	})
	out.elapsed = time.Since(start)
	if err != nil {
		return out, err
	}
	var last time.Time
	for _, c := range rec.snapshot() {
		if c.service == "kms" {
			out.byOp[c.op]++
			out.total++
			last = c.start
		}
	}
	for _, t := range started {
		if !t.After(last) {
			out.within++
		}
	}
	return out, nil
}

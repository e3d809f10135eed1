package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/waymarkhq/waymark/internal/gateway"
)

// throughputResult is the outcome of the load run on the local gateway.
type throughputResult struct {
	requests int
	errors   int
	perRoute map[string]int
	elapsed  time.Duration
	lat      []time.Duration
	firstErr string
}

// throughput serves the route table through the local gateway on a
// loopback port and has clients call it back to back for d, each as its own
// users' browser would: a page load's identify, events as the user moves
// through a tour, a state read, now and then feedback. Any transport error
// or answer other than 2xx is an error.
func throughput(ctx context.Context, g *graph, w workload, clients int, d time.Duration) (throughputResult, error) {
	handlers := map[string]gateway.Handler{}
	for name, h := range g.handlers {
		handlers[name] = gateway.Handler(h)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return throughputResult{}, err
	}
	srv := &http.Server{Handler: gateway.New(handlers, gateway.Options{}), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	defer srv.Close()
	base := "http://" + ln.Addr().String()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients}, Timeout: 30 * time.Second}

	// The mix of one page load and what follows it.
	mix := []string{"identify", "events", "state", "events", "identify", "events", "feedback", "events"}
	out := throughputResult{perRoute: map[string]int{}}
	var mu sync.Mutex
	var errCount atomic.Int64
	deadline := time.Now().Add(d)
	start := time.Now()
	var wg sync.WaitGroup
	for c := range clients {
		wg.Go(func() {
			var lat []time.Duration
			routes := map[string]int{}
			for k := 0; time.Now().Before(deadline); k++ {
				user := fmt.Sprintf("load-%02d-%02d@example.com", c, k/len(mix)%25)
				var r request
				switch mix[k%len(mix)] {
				case "identify":
					r = w.identify(user, "pro")
				case "events":
					r = w.event1(user, fmt.Sprintf("load-%d-%d", c, k), k%5)
				case "state":
					r = w.state(user)
				default:
					r = w.feedback(user)
				}
				t0 := time.Now()
				status, err := post(ctx, client, base+r.event.RawPath, r.event.Body)
				lat = append(lat, time.Since(t0))
				routes[r.function]++
				if err == nil && (status < 200 || status > 299) {
					err = fmt.Errorf("%s answered %d", r.function, status)
				}
				if err != nil {
					errCount.Add(1)
					mu.Lock()
					if out.firstErr == "" {
						out.firstErr = err.Error()
					}
					mu.Unlock()
				}
			}
			mu.Lock()
			out.lat = append(out.lat, lat...)
			for k, v := range routes {
				out.perRoute[k] += v
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	out.elapsed = time.Since(start)
	out.requests = len(out.lat)
	out.errors = int(errCount.Load())
	return out, nil
}

func post(ctx context.Context, client *http.Client, url, body string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewBufferString(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "text/plain;charset=UTF-8")
	req.Header.Set("Origin", "https://app.example.com")
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, err = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, err
}

// Package faultinject is test tooling, not shipped in a Lambda: an HTTP
// transport that sits between the AWS SDK and a local engine and makes it
// fail as DynamoDB does under load, so that tests can prove nothing is lost
// or applied twice through the SDK's retries.
package faultinject

import (
	"bytes"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
)

// Transport answers a share of the requests with DynamoDB's throttling
// error (Throttle, the request never sent) and drops the answer of a share
// of those it sends (Drop: applied, then a connection reset), at random
// from Rand.
type Transport struct {
	Drop, Throttle float64
	Rand           *rand.Rand
	// Dropped and Throttled count the faults injected.
	Dropped, Throttled atomic.Int64

	mu sync.Mutex
}

// Faults is how many faults were injected.
func (f *Transport) Faults() int64 { return f.Dropped.Load() + f.Throttled.Load() }

func (f *Transport) roll() float64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.Rand.Float64()
}

// Do sends req to the engine unless it throttles it, and may drop the answer.
func (f *Transport) Do(req *http.Request) (*http.Response, error) {
	if f.roll() < f.Throttle {
		f.Throttled.Add(1)
		return Throttling(req), nil
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	if f.roll() < f.Drop {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		f.Dropped.Add(1)
		return nil, &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}
	}
	return resp, nil
}

// Throttling is DynamoDB's answer to a request over the table's throughput.
func Throttling(req *http.Request) *http.Response {
	body := `{"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException","message":"Rate of requests exceeds the allowed throughput."}`
	return &http.Response{StatusCode: 400, Status: "400 Bad Request", Request: req, ContentLength: int64(len(body)),
		Header: http.Header{"Content-Type": {"application/x-amz-json-1.0"}, "X-Amzn-Errortype": {"ThrottlingException"}},
		Body:   io.NopCloser(bytes.NewBufferString(body))}
}

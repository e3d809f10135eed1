package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"

	"github.com/waymarkhq/waymark/internal/config"
)

// The in-process benchmarks answer DynamoDB and KMS from responses recorded
// from the local engines in the same run, over an in-memory
// http.RoundTripper: what is left is the CPU and the allocations of the
// handler and of the SDK's serialisation, signing and parsing.

// exchange is a recorded HTTP response.
type exchange struct {
	status int
	header http.Header
	body   []byte
}

// tapes maps a request's identity (exchangeKey) to its recorded answer.
type tapes struct {
	mu  sync.Mutex
	byK map[string]exchange
}

// exchangeKey identifies what a request asks for: the operation (the
// X-Amz-Target header of the JSON protocols) and the table, or for KMS
// Decrypt the wrapped key, so that each data key unwraps to its own
// plaintext.
func exchangeKey(req *http.Request, body []byte) string {
	key := req.Header.Get("X-Amz-Target")
	if i := bytes.Index(body, []byte(`"TableName":"`)); i >= 0 {
		rest := body[i+len(`"TableName":"`):]
		if j := bytes.IndexByte(rest, '"'); j >= 0 {
			key += " " + string(rest[:j])
		}
	}
	if bytes.HasSuffix([]byte(key), []byte(".Decrypt")) {
		var in struct{ CiphertextBlob []byte }
		if json.Unmarshal(body, &in) == nil {
			key += " " + string(in.CiphertextBlob)
		}
	}
	return key
}

// recordingTransport passes requests on to the engines and keeps the
// latest answer to each kind of request.
type recordingTransport struct {
	next http.RoundTripper
	tapes
}

func (t *recordingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	body, err := readBody(req)
	if err != nil {
		return nil, err
	}
	req.Body = io.NopCloser(bytes.NewReader(body))
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	respBody, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(respBody))
	t.mu.Lock()
	if t.byK == nil {
		t.byK = map[string]exchange{}
	}
	t.byK[exchangeKey(req, body)] = exchange{status: resp.StatusCode, header: resp.Header.Clone(), body: respBody}
	t.mu.Unlock()
	return resp, nil
}

func readBody(req *http.Request) ([]byte, error) {
	if req.Body == nil || req.Body == http.NoBody {
		return nil, nil
	}
	defer req.Body.Close()
	return io.ReadAll(req.Body)
}

// replayTransport answers every request from the tapes, in memory.
type replayTransport struct {
	tapes *tapes
}

var bodyPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func (t replayTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	buf := bodyPool.Get().(*bytes.Buffer)
	defer bodyPool.Put(buf)
	buf.Reset()
	if req.Body != nil && req.Body != http.NoBody {
		// The request is read, as a real transport sends it.
		if _, err := buf.ReadFrom(req.Body); err != nil {
			return nil, err
		}
		req.Body.Close()
	}
	key := exchangeKey(req, buf.Bytes())
	t.tapes.mu.Lock()
	x, ok := t.tapes.byK[key]
	t.tapes.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("replay: nothing recorded for %s", key)
	}
	return &http.Response{
		StatusCode: x.status, Status: http.StatusText(x.status), Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: x.header.Clone(), Body: io.NopCloser(bytes.NewReader(x.body)), ContentLength: int64(len(x.body)), Request: req,
	}, nil
}

// cpuResult is one in-process benchmark.
type cpuResult struct {
	name   string
	result testing.BenchmarkResult
}

// cpuScenario is a request benchmarked in process; before is done first by
// another instance, so that the recorded reads show what a real instance
// finds (items sealed under a data key it has to unwrap once).
type cpuScenario struct {
	name   string
	before []request
	r      request
}

func cpuScenarios(w workload) []cpuScenario {
	const a, b, c, d = "cpu-a@example.com", "cpu-b@example.com", "cpu-c@example.com", "cpu-d@example.com"
	return []cpuScenario{
		{"identify (returning user, unchanged)", []request{w.identify(a, "pro")}, w.identify(a, "pro")},
		{"events (1 event)", []request{w.identify(b, "pro"), w.events(b, "cpu-b", 5, 5)}, w.event1(b, "cpu-b-one", 1)},
		{"events (25 events over 5 content items)", nil, w.events(b, "cpu-b-batch", 25, 5)},
		{"state (20 content items)", []request{w.identify(c, "pro"), w.events(c, "cpu-c", 20, 20)}, w.state(c)},
		{"feedback", []request{w.identify(d, "pro")}, w.feedback(d)},
	}
}

// cpuBenchmarks records each scenario's exchanges with the engines on a new
// instance, then benchmarks it on another new instance answered from the
// recording.
func cpuBenchmarks(ctx context.Context, cfg config.Config, other *graph, w workload) ([]cpuResult, error) {
	var out []cpuResult
	for _, sc := range cpuScenarios(w) {
		for _, r := range sc.before {
			if _, err := other.serve(ctx, r, nil); err != nil {
				return nil, err
			}
		}
		rec := &recordingTransport{next: http.DefaultTransport}
		rg, err := newGraph(ctx, cfg, graphOptions{transport: rec})
		if err != nil {
			return nil, err
		}
		if _, err := rg.serve(ctx, sc.r, nil); err != nil {
			return nil, err
		}
		pg, err := newGraph(ctx, cfg, graphOptions{transport: replayTransport{&rec.tapes}})
		if err != nil {
			return nil, err
		}
		res, err := benchmarkCPU(ctx, pg, sc.r)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", sc.name, err)
		}
		out = append(out, cpuResult{sc.name, res})
	}
	return out, nil
}

// benchmarkCPU serves r over and over on a graph whose clients are answered
// from tapes, after checking that it answers 2xx. The same event is sent
// each time: the recorded reads never show the writes, so every iteration
// does the same work as the first.
func benchmarkCPU(ctx context.Context, g *graph, r request) (testing.BenchmarkResult, error) {
	if _, err := g.serve(ctx, r, nil); err != nil {
		return testing.BenchmarkResult{}, err
	}
	var failed error
	res := testing.Benchmark(func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := g.serve(ctx, r, nil); err != nil {
				failed = err
				b.FailNow()
			}
		}
	})
	return res, failed
}

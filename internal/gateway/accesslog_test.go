package gateway

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/waymarkhq/waymark/internal/routes"
)

// syncBuffer is a log destination for concurrent requests.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// Every request, whatever its answer (a function's, a preflight, a 404), is
// numbered once, in the order it arrived: the numbers of n requests are 1 to
// n, each on the line of the request it names.
func TestAccessLogNumbersRequestsByArrival(t *testing.T) {
	var logs syncBuffer
	srv := serve(t, map[string]Handler{routes.Identify.Name: okRecorder().handle}, Options{Logger: slog.New(slog.NewJSONHandler(&logs, nil))})

	// In sequence first: each number follows the one before.
	var ids []string
	for _, req := range []struct{ method, path string }{{"POST", "/v1/identify"}, {"GET", "/no/such/route"}, {"OPTIONS", "/v1/identify"}} {
		r := newRequest(t, req.method, srv.URL+req.path, nil)
		r.Header.Set("Origin", "https://app.example")
		r.Header.Set("Access-Control-Request-Method", "POST")
		resp, _ := do(t, r)
		ids = append(ids, resp.Header.Get("Apigw-Requestid"))
	}
	// Then at once: each number is given once.
	const concurrent = 20
	var wg sync.WaitGroup
	for range concurrent {
		wg.Go(func() { do(t, newRequest(t, "POST", srv.URL+"/v1/identify", nil)) })
	}
	wg.Wait()

	seqByID := map[string]uint64{}
	seen := map[uint64]bool{}
	for line := range strings.SplitSeq(strings.TrimSpace(logs.buf.String()), "\n") {
		var entry struct {
			Seq       uint64
			RequestID string
		}
		if err := json.Unmarshal([]byte(line), &entry); err != nil {
			t.Fatal(err)
		}
		if seen[entry.Seq] {
			t.Errorf("seq %d given twice", entry.Seq)
		}
		seen[entry.Seq] = true
		seqByID[entry.RequestID] = entry.Seq
	}
	for i, id := range ids {
		if seqByID[id] != uint64(i+1) {
			t.Errorf("request %d logged with seq %d", i+1, seqByID[id])
		}
	}
	for n := uint64(1); n <= uint64(len(ids)+concurrent); n++ {
		if !seen[n] {
			t.Errorf("no line with seq %d", n)
		}
	}
}

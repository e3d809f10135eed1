package apigw_test

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/waymarkhq/waymark/internal/apigw"
	"github.com/waymarkhq/waymark/internal/dynamo"
	"github.com/waymarkhq/waymark/internal/envelope"
	"github.com/waymarkhq/waymark/internal/faultinject"
	"github.com/waymarkhq/waymark/internal/service"
	"github.com/waymarkhq/waymark/internal/waymark"
	"github.com/waymarkhq/waymark/internal/wiring"
)

// faultyTransport sits between the SDK and a real local engine. It can be
// switched off (every request fails to connect), drop answers after the
// engine applied the request (the SDK then retries a write that was done),
// and answer with throttling before the request reaches the engine.
type faultyTransport struct {
	down     atomic.Bool
	dropRate float64
	throttle float64
	dropped  atomic.Int64
	refused  atomic.Int64
	mu       sync.Mutex
	rnd      *rand.Rand
	// hook, when set, sees every request first, with its DynamoDB
	// operation ("UpdateItem") and body, and may answer it itself: a nil
	// response and error let the request through.
	hook func(req *http.Request, op, body string) (*http.Response, error)
}

func (f *faultyTransport) roll() float64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.rnd.Float64()
}

// The injected failures are the errors a real connection gives.
var (
	errConnectionReset   = &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}
	errConnectionRefused = &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
)

func (f *faultyTransport) Do(req *http.Request) (*http.Response, error) {
	if f.down.Load() {
		return nil, errConnectionRefused
	}
	if f.hook != nil {
		var body []byte
		if req.Body != nil {
			var err error
			if body, err = io.ReadAll(req.Body); err != nil {
				return nil, err
			}
			req.Body = io.NopCloser(bytes.NewReader(body))
		}
		_, op, _ := strings.Cut(req.Header.Get("X-Amz-Target"), ".")
		if resp, err := f.hook(req, op, string(body)); resp != nil || err != nil {
			return resp, err
		}
	}
	if f.throttle > 0 && f.roll() < f.throttle {
		f.refused.Add(1)
		return faultinject.Throttling(req), nil
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	if f.dropRate > 0 && f.roll() < f.dropRate {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		f.dropped.Add(1)
		return nil, errConnectionReset
	}
	return resp, nil
}

// faultyGraph wires a Waymark whose DynamoDB or KMS traffic goes through
// faulty transports; it shares nothing (caches included) with the suite's.
func faultyGraph(t testing.TB, dbFaults, kmsFaults *faultyTransport) (map[string]apigw.Handler, *envelope.Envelope) {
	t.Helper()
	cfg := recordedConfig()
	dbClient, kmsClient, err := cfg.Clients(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if dbFaults != nil {
		dbClient = dynamodb.New(dbClient.Options(), func(o *dynamodb.Options) {
			o.HTTPClient = dbFaults
			// The SDK's own backoff (up to 20 s) only slows the test; its
			// retries are what is under test.
			o.Retryer = retry.AddWithMaxBackoffDelay(o.Retryer, 20*time.Millisecond)
		})
	}
	if kmsFaults != nil {
		kmsClient = kms.New(kmsClient.Options(), func(o *kms.Options) { o.HTTPClient = kmsFaults })
	}
	store, env := wiring.SealedStore(dbClient, kmsClient, cfg)
	svc := service.New(store, service.Options{})
	return apigw.New(svc, wiring.Logger(&logBuffer, "debug")).Handlers(), env
}

func kmsDownHandlers(t testing.TB) map[string]apigw.Handler {
	down := &faultyTransport{}
	down.down.Store(true)
	hs, _ := faultyGraph(t, nil, down)
	return hs
}

// With KMS unreachable and no data key cached, every write answers 503 and
// stores nothing: plaintext is never a fallback.
func TestKMSUnavailableFailsClosed(t *testing.T) {
	kmsFaults := &faultyTransport{}
	hs, _ := faultyGraph(t, nil, kmsFaults)
	// A workspace nothing was written to yet has no sealing key published
	// (one published and young would be unwrapped with the workspace).
	ws := newWorkspace(t, waymark.NewWorkspaceOptions{})
	user := uniqueUser(t)
	// A state read caches the workspace (its secrets need one KMS call)...
	if r := invokeWith(t, hs, "state", mustJSON(map[string]any{"workspace": ws.Code, "username": user}), nil); r.Status != 200 {
		t.Fatalf("state: %d %v", r.Status, r.Body)
	}
	// ...then KMS goes away before any data key for sealing was generated.
	kmsFaults.down.Store(true)
	writes := map[string]string{
		"identify": mustJSON(map[string]any{"workspace": ws.Code, "user": map[string]any{"username": user, "email": "kms-down@example.com"}}),
		"events":   mustJSON(map[string]any{"workspace": ws.Code, "username": user, "events": []any{map[string]any{"id": "k1", "content": "hint", "contentId": "h", "action": "displayed", "at": "2026-01-01T00:00:00Z"}}}),
		"feedback": mustJSON(map[string]any{"workspace": ws.Code, "username": user, "text": "written while KMS is down"}),
	}
	remember("kms-down@example.com", "written while KMS is down")
	for fn, body := range writes {
		r := invokeWith(t, hs, fn, body, nil)
		if r.Status != 503 || r.errorCode() != "unavailable" || r.Headers["retry-after"] == "" {
			t.Errorf("%s: %d %v %v", fn, r.Status, r.Body, r.Headers)
		}
	}
	if n := itemsOfUser(t, ws.UserKey(user)); n != 0 {
		t.Fatalf("%d items stored while KMS was down", n)
	}
	// State reads need no KMS call once the workspace is cached.
	if r := invokeWith(t, hs, "state", mustJSON(map[string]any{"workspace": ws.Code, "username": user}), nil); r.Status != 200 {
		t.Fatalf("state with KMS down: %d %v", r.Status, r.Body)
	}
}

// The data-key cache: a function instance makes a bounded number of KMS
// calls, whatever the number of writes, and a new instance writing over
// what another one wrote shares its sealing key instead of adding its own.
func TestKMSCallsPerWrites(t *testing.T) {
	ws := newWorkspace(t, waymark.NewWorkspaceOptions{})
	users := make([]string, 200)
	for i := range users {
		users[i] = uniqueUser(t)
	}
	for instance := range 2 {
		hs, env := faultyGraph(t, nil, nil)
		for i, user := range users {
			r := invokeWith(t, hs, "identify", mustJSON(map[string]any{"workspace": ws.Code, "user": map[string]any{"username": user, "props": map[string]any{"n": i, "instance": instance}}}), nil)
			if r.Status != 200 {
				t.Fatalf("%d %v", r.Status, r.Body)
			}
		}
		// The first: one Decrypt of the workspace's secrets, one
		// GenerateDataKey. The second, over the users the first sealed:
		// the same Decrypt, and one of the sealing key the first published.
		if calls := env.KMSCalls(); calls != 2 {
			t.Fatalf("instance %d: %d KMS calls for 200 writes, want 2", instance+1, calls)
		}
	}
}

// The board's conditional write: a key is published over the one it
// replaces only, and never for a workspace that does not exist.
func TestKeyBoardPublishesOverTheKeyItReplaces(t *testing.T) {
	ctx := context.Background()
	ws := newWorkspace(t, waymark.NewWorkspaceOptions{})
	board := dynamo.NewKeyBoard(db, stack.Tables)
	at := time.Now().UTC().Truncate(time.Millisecond)
	if wrapped, _, err := board.CurrentSealingKey(ctx, ws.Code); err != nil || wrapped != nil {
		t.Fatalf("a new workspace has a published key: %x %v", wrapped, err)
	}
	publish := func(next, prev string) bool {
		t.Helper()
		var prevKey []byte
		if prev != "" {
			prevKey = []byte(prev)
		}
		ok, err := board.PublishSealingKey(ctx, ws.Code, []byte(next), at, prevKey)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if !publish("key-1", "") {
		t.Fatal("the first key was not published")
	}
	if publish("key-2", "") {
		t.Fatal("a key meant for a workspace with none replaced key-1")
	}
	if publish("key-2", "key-0") {
		t.Fatal("a key replaced one that was not the current")
	}
	if !publish("key-3", "key-1") {
		t.Fatal("a key did not replace the current one")
	}
	if wrapped, got, err := board.CurrentSealingKey(ctx, ws.Code); err != nil || string(wrapped) != "key-3" || !got.Equal(at) {
		t.Fatalf("current key %q at %v (%v), want key-3 at %v", wrapped, got, err, at)
	}
	if ok, err := board.PublishSealingKey(ctx, "no-such-workspace", []byte("key"), at, nil); err != nil || ok {
		t.Fatalf("published for a workspace that does not exist: %v %v", ok, err)
	}
	if wrapped, _, err := board.CurrentSealingKey(ctx, "no-such-workspace"); err != nil || wrapped != nil {
		t.Fatalf("a key appeared for a workspace that does not exist: %x %v", wrapped, err)
	}
}

package webhook_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/smithy-go/middleware"

	"github.com/waymarkhq/waymark/internal/awscalls"
	"github.com/waymarkhq/waymark/internal/dynamo"
	"github.com/waymarkhq/waymark/internal/faultinject"
	"github.com/waymarkhq/waymark/internal/localstack"
	"github.com/waymarkhq/waymark/internal/objects"
	"github.com/waymarkhq/waymark/internal/schema"
	"github.com/waymarkhq/waymark/internal/service"
	"github.com/waymarkhq/waymark/internal/waymark"
	"github.com/waymarkhq/waymark/internal/webhook"
	"github.com/waymarkhq/waymark/internal/wiring"
)

var (
	stack *localstack.Stack
	// recorder records the deliverer's AWS calls for make iam-check
	// (infra/stack/calls_test.go), as the function "webhook".
	recorder *awscalls.Recorder
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var err error
	if stack, err = localstack.Start(ctx, localstack.Options{TablePrefix: "wh-"}); err != nil {
		fmt.Fprintln(os.Stderr, "start local stack:", err)
		return 1
	}
	defer stack.Stop()
	recorder = awscalls.New(stack.Tables)
	code := m.Run()
	if path := os.Getenv(awscalls.RecordEnv); path != "" && code == 0 {
		path = awscalls.SuitePath(path, "webhook")
		if err := recorder.WriteFile(path); err != nil {
			fmt.Fprintln(os.Stderr, "recorded calls:", err)
			return 1
		}
		fmt.Printf("recorded %d distinct AWS authorization requests into %s\n", len(recorder.Calls()), path)
	}
	return code
}

// webhookCaller is the deliverer function's name (infra/stack).
const webhookCaller = "webhook"

// env is a Waymark (service and store) and a local deliverer over the
// suite's stack, their DynamoDB traffic through faults when given.
type env struct {
	svc    *service.Service
	store  *dynamo.Store
	local  *webhook.Local
	now    func() time.Time
	cancel context.CancelFunc
	done   chan struct{}
}

func newEnv(t *testing.T, faults *faultinject.Transport, now func() time.Time, schedule webhook.Schedule) *env {
	t.Helper()
	cfg := stack.Config()
	// The service writes feedback through clients of its own; the
	// deliverer's calls are recorded as the webhook function's.
	svcDB, svcKMS, err := cfg.Clients(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	svcStore, _ := wiring.SealedStore(svcDB, svcKMS, cfg)
	recorded := cfg
	recorded.AWS = &aws.Config{
		Region:      stack.Region,
		Credentials: credentials.NewStaticCredentialsProvider("local", "local", ""),
		APIOptions:  []func(*middleware.Stack) error{recorder.RegisterFor(webhookCaller)},
	}
	db, kmsClient, err := recorded.Clients(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if faults != nil {
		svcDB = dynamodb.New(svcDB.Options(), func(o *dynamodb.Options) {
			o.HTTPClient = faults
			o.Retryer = retry.AddWithMaxBackoffDelay(o.Retryer, 20*time.Millisecond)
		})
		svcStore, _ = wiring.SealedStore(svcDB, svcKMS, cfg)
		db = dynamodb.New(db.Options(), func(o *dynamodb.Options) {
			o.HTTPClient = faults
			o.Retryer = retry.AddWithMaxBackoffDelay(o.Retryer, 20*time.Millisecond)
		})
	}
	store, _ := wiring.SealedStore(db, kmsClient, cfg)
	streams, err := cfg.StreamsClient(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	d := webhook.NewDeliverer(store, webhook.Policy{AllowLoopback: true}, wiring.Logger(io.Discard, "error"))
	d.Now, d.Schedule = now, schedule
	s3Client, err := recorded.S3(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	e := &env{
		svc: service.New(svcStore, service.Options{Now: now}), store: svcStore, now: now,
		local: webhook.NewLocal(d, streams, cfg.Tables[schema.FeedbackTable]), done: make(chan struct{}),
	}
	e.local.Objects = objects.New(s3Client, cfg.AttachmentsBucket)
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel = cancel
	ready := make(chan error, 1)
	go func() {
		defer close(e.done)
		ready <- nil
		if err := e.local.Run(ctx); err != nil {
			t.Error(err)
		}
	}()
	<-ready
	t.Cleanup(func() { cancel(); <-e.done })
	// The runner reads the stream from its end: let it open the shards
	// before anything is written.
	time.Sleep(300 * time.Millisecond)
	return e
}

// newWorkspace creates a workspace whose webhook points at url.
func (e *env) newWorkspace(t *testing.T, url string, format waymark.WebhookFormat) (*waymark.Workspace, string) {
	t.Helper()
	ws, _, err := waymark.NewWorkspace(waymark.NewWorkspaceOptions{Name: "webhook test"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	secret, err := ws.SetWebhook(url, format)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.store.PutWorkspace(context.Background(), ws); err != nil {
		t.Fatal(err)
	}
	return ws, secret
}

// sendFeedback submits feedback through the service, retrying what the
// injected faults make fail (as the snippet retries a 503).
func (e *env) sendFeedback(t *testing.T, ws *waymark.Workspace, username, text string) string {
	t.Helper()
	rating := 4
	for try := 0; ; try++ {
		res, err := e.svc.SubmitFeedback(context.Background(), service.Call{RequestID: fmt.Sprintf("req-%d", try)},
			&waymark.FeedbackRequest{Workspace: ws.Code, Username: username, Text: text, Rating: &rating})
		if err == nil {
			return res.ID
		}
		if try > 20 {
			t.Fatalf("feedback: %v", err)
		}
	}
}

// storedFeedback lists the ids of every feedback stored in the workspace.
func (e *env) storedFeedback(t *testing.T, ws *waymark.Workspace) []string {
	t.Helper()
	var ids []string
	q := service.FeedbackQuery{Limit: "100"}
	for {
		page, err := e.svc.FeedbackOf(context.Background(), ws, q)
		// The faults reach the listing too: read again.
		for try := 0; err != nil && try < 5; try++ {
			page, err = e.svc.FeedbackOf(context.Background(), ws, q)
		}
		if err != nil {
			t.Fatalf("list feedback: %v", err)
		}
		for _, item := range page.Items {
			ids = append(ids, item.ID)
		}
		if page.NextCursor == "" {
			return ids
		}
		q.Cursor = page.NextCursor
	}
}

// waitFor polls cond for up to limit.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	waitForState(t, limit, what, cond, func() string { return "" })
}

// waitForState is waitFor whose failure says where things stood.
func waitForState(t *testing.T, limit time.Duration, what string, cond func() bool, state func() string) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s %s", what, state())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// receiver is a webhook receiver that verifies every signature and counts
// the deliveries it accepted, by delivery id.
type receiver struct {
	t      *testing.T
	secret string
	now    func() time.Time
	// fail decides whether to refuse the n-th (1-based) request of a
	// delivery id with a 503.
	fail func(id string, n int) bool

	mu       sync.Mutex
	requests map[string]int
	accepted map[string]int
	bodies   map[string]webhook.Payload
	badSigs  int
	srv      *httptest.Server
}

func newReceiver(t *testing.T, now func() time.Time, fail func(string, int) bool) *receiver {
	r := &receiver{t: t, now: now, fail: fail, requests: map[string]int{}, accepted: map[string]int{}, bodies: map[string]webhook.Payload{}}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	id := req.Header.Get(webhook.HeaderDelivery)
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := webhook.Verify(r.secret, req.Header.Get(webhook.HeaderSignature), body, r.now(), 5*time.Minute); err != nil {
		r.badSigs++
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	r.requests[id]++
	if r.fail != nil && r.fail(id, r.requests[id]) {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	var p webhook.Payload
	if err := jsonUnmarshal(body, &p); err != nil || p.ID != id {
		r.t.Errorf("body of %s: %v, id %q", id, err, p.ID)
	}
	r.accepted[id]++
	r.bodies[id] = p
	w.WriteHeader(http.StatusNoContent)
}

func (r *receiver) requestCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, c := range r.requests {
		n += c
	}
	return n
}

func (r *receiver) acceptedCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.accepted)
}

// checkExactlyOnce asserts that the receiver accepted each of the feedback
// ids exactly once, under its delivery id, and nothing else.
func (r *receiver) checkExactlyOnce(t *testing.T, feedbackIDs []string) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.badSigs > 0 {
		t.Errorf("%d requests with a signature that does not verify", r.badSigs)
	}
	if len(r.accepted) != len(feedbackIDs) {
		t.Errorf("accepted %d deliveries, want %d", len(r.accepted), len(feedbackIDs))
	}
	for _, id := range feedbackIDs {
		dl := webhook.DeliveryID(id)
		if r.accepted[dl] != 1 {
			t.Errorf("delivery %s accepted %d times", dl, r.accepted[dl])
		}
		if r.bodies[dl].Data.ID != id {
			t.Errorf("delivery %s carries feedback %q, want %q", dl, r.bodies[dl].Data.ID, id)
		}
	}
}

func readAll(r *http.Request) ([]byte, error) { return io.ReadAll(r.Body) }

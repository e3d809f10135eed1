package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"time"

	"github.com/waymarkhq/waymark/internal/config"
	"github.com/waymarkhq/waymark/internal/localstack"
	"github.com/waymarkhq/waymark/internal/schema"
	"github.com/waymarkhq/waymark/internal/service"
	"github.com/waymarkhq/waymark/internal/waymark"
	"github.com/waymarkhq/waymark/internal/webhook"
	"github.com/waymarkhq/waymark/internal/wiring"
)

// webhookDeliveries is how many feedback items the webhook latency is
// measured over.
const webhookDeliveries = 300

// webhookResult is the time from a feedback's write (its request answered)
// to its delivery's arrival at a receiver on loopback, through DynamoDB
// Local's stream and the deliverer `waymark dev` runs.
type webhookResult struct {
	lat     []time.Duration
	missing int
	// failedAttempts says what became of attempts that did not deliver.
	failedAttempts []string
}

func webhookLatency(ctx context.Context, cfg config.Config, n int) (webhookResult, error) {
	db, kmsClient, err := cfg.Clients(ctx)
	if err != nil {
		return webhookResult{}, err
	}
	streams, err := cfg.StreamsClient(ctx)
	if err != nil {
		return webhookResult{}, err
	}
	store, _ := wiring.SealedStore(db, kmsClient, cfg)
	svc := service.New(store, service.Options{})

	var mu sync.Mutex
	received := map[string]time.Time{}
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		mu.Lock()
		received[r.Header.Get(webhook.HeaderDelivery)] = time.Now()
		mu.Unlock()
	}))
	defer rcv.Close()
	ws, _, err := waymark.NewWorkspace(waymark.NewWorkspaceOptions{Name: "Bench webhook"}, time.Now())
	if err != nil {
		return webhookResult{}, err
	}
	if _, err := ws.SetWebhook(rcv.URL, waymark.WebhookJSON); err != nil {
		return webhookResult{}, err
	}
	if err := store.PutWorkspace(ctx, ws); err != nil {
		return webhookResult{}, err
	}
	local := webhook.NewLocal(webhook.NewDeliverer(store, webhook.Policy{AllowLoopback: true}, wiring.Logger(io.Discard, "error")),
		streams, cfg.Tables[schema.FeedbackTable])
	var failed []string
	local.OnOutcome = func(dl webhook.Delivery, attempt int, out webhook.Outcome) {
		if out.Result != webhook.Delivered {
			mu.Lock()
			failed = append(failed, out.Result.String()+" ("+out.Reason+")")
			mu.Unlock()
		}
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- local.Run(runCtx) }()
	defer func() { stop(); <-done }()
	time.Sleep(500 * time.Millisecond) // the runner opens the stream's shards

	// One feedback at a time, a little apart, as users send them.
	written := map[string]time.Time{}
	for i := range n {
		res, err := svc.SubmitFeedback(ctx, service.Call{RequestID: fmt.Sprintf("bench-webhook-%d", i)},
			&waymark.FeedbackRequest{Workspace: ws.Code, Username: fmt.Sprintf("webhook-%03d@example.com", i), Text: "bench feedback"})
		if err != nil {
			return webhookResult{}, err
		}
		written[webhook.DeliveryID(res.ID)] = time.Now()
		time.Sleep(20 * time.Millisecond)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		got := len(received)
		mu.Unlock()
		if got >= n || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	r := webhookResult{failedAttempts: failed}
	for id, at := range written {
		if got, ok := received[id]; ok {
			r.lat = append(r.lat, got.Sub(at))
		} else {
			r.missing++
		}
	}
	return r, nil
}

func (w webhookResult) addTo(t *table) {
	if len(w.lat) == 0 {
		return
	}
	t.add("11. Webhook: feedback written → delivery received (local stack)",
		fmt.Sprintf("p50 %s, p99 %s over %d deliveries; %d missing; %d failed attempts %v (stream polled every %s)",
			ms(percentile(w.lat, 50)), ms(percentile(w.lat, 99)), len(w.lat), w.missing, len(w.failedAttempts), w.failedAttempts, webhook.LocalPoll),
		"every feedback delivered", verdict(w.missing == 0))
}

// runWebhookOnly is `go run ./bench -webhook-only`: the webhook figure
// alone, printed, without the rest of the bench.
func runWebhookOnly() error {
	ctx := context.Background()
	stack, err := localstack.Start(ctx, localstack.Options{TablePrefix: "bench-"})
	if err != nil {
		return err
	}
	defer stack.Stop()
	r, err := webhookLatency(ctx, stack.Config(), webhookDeliveries)
	if err != nil {
		return err
	}
	var t table
	r.addTo(&t)
	for _, row := range t.rows {
		fmt.Printf("| %s | %s | %s | %s |\n", row[0], row[1], row[2], row[3])
	}
	return nil
}

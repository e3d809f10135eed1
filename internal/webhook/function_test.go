package webhook_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/waymarkhq/waymark/internal/schema"
	"github.com/waymarkhq/waymark/internal/service"
	"github.com/waymarkhq/waymark/internal/waymark"
	"github.com/waymarkhq/waymark/internal/webhook"
	"github.com/waymarkhq/waymark/internal/wiring"
)

// recordingQueue stands in for SQS in the deployed handler's test: it
// records what the handler asks of the queue (the local engines include no
// SQS; docs/webhooks.md says why).
type recordingQueue struct {
	mu         sync.Mutex
	sent       []string
	visibility map[string]int32
}

func (q *recordingQueue) SendMessageBatch(_ context.Context, in *sqs.SendMessageBatchInput, _ ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, e := range in.Entries {
		q.sent = append(q.sent, aws.ToString(e.MessageBody))
	}
	return &sqs.SendMessageBatchOutput{}, nil
}

func (q *recordingQueue) ChangeMessageVisibility(_ context.Context, in *sqs.ChangeMessageVisibilityInput, _ ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityOutput, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.visibility[aws.ToString(in.ReceiptHandle)] = in.VisibilityTimeout
	return &sqs.ChangeMessageVisibilityOutput{}, nil
}

// The deployed function: a stream batch becomes one queue message per new
// feedback (nothing for other items or changes); a queue message is
// attempted, a failed one hidden until its retry and reported as failed, a
// delivered one done, and one failing past the window parked and counted.
func TestDeployedFunction(t *testing.T) {
	ctx := context.Background()
	cfg := stack.Config()
	db, kmsClient, err := cfg.Clients(ctx)
	if err != nil {
		t.Fatal(err)
	}
	store, _ := wiring.SealedStore(db, kmsClient, cfg)
	now := time.Now()
	up := false
	rcv := newReceiver(t, time.Now, func(string, int) bool { return !up })
	ws, _, _ := waymark.NewWorkspace(waymark.NewWorkspaceOptions{Name: "deployed"}, now)
	rcv.secret, _ = ws.SetWebhook(rcv.srv.URL, waymark.WebhookJSON)
	if err := store.PutWorkspace(ctx, ws); err != nil {
		t.Fatal(err)
	}
	res, err := service.New(store, service.Options{}).SubmitFeedback(ctx, service.Call{RequestID: "r1"},
		&waymark.FeedbackRequest{Workspace: ws.Code, Username: "deployed-user-01", Text: "through the queue"})
	if err != nil {
		t.Fatal(err)
	}
	items, err := db.Query(ctx, &dynamodb.QueryInput{
		TableName: aws.String(cfg.Tables[schema.FeedbackTable]), KeyConditionExpression: aws.String("pk = :pk"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": &types.AttributeValueMemberS{Value: ws.UserKey("deployed-user-01")}},
	})
	if err != nil || len(items.Items) != 1 {
		t.Fatalf("feedback item: %v %d", err, len(items.Items))
	}
	item := items.Items[0]
	s := func(attr string) string { return item[attr].(*types.AttributeValueMemberS).Value }
	image := fmt.Sprintf(`{"pk":{"S":%q},"sk":{"S":%q},"wsMonth":{"S":%q},"id":{"S":%q},"text":{"B":"AAAA"}}`, s("pk"), s("sk"), s("wsMonth"), s("id"))
	parkedImage := fmt.Sprintf(`{"pk":{"S":"~parked#%s"},"sk":{"S":"dlv_x"},"fpk":{"S":"a"},"fsk":{"S":"b"}}`, ws.Code)
	streamEvent := fmt.Sprintf(`{"Records":[
		{"eventSource":"aws:dynamodb","eventName":"INSERT","dynamodb":{"ApproximateCreationDateTime":%d,"NewImage":%s}},
		{"eventSource":"aws:dynamodb","eventName":"MODIFY","dynamodb":{"ApproximateCreationDateTime":%d,"NewImage":%s}},
		{"eventSource":"aws:dynamodb","eventName":"INSERT","dynamodb":{"ApproximateCreationDateTime":%d,"NewImage":%s}}]}`,
		now.Unix(), image, now.Unix(), image, now.Unix(), parkedImage)

	queue := &recordingQueue{visibility: map[string]int32{}}
	var metrics bytes.Buffer
	d := webhook.NewDeliverer(store, webhook.Policy{AllowLoopback: true}, wiring.Logger(io.Discard, "error"))
	fn := &webhook.Function{Deliverer: d, Queue: queue, QueueURL: "https://sqs.example/q", Metrics: &metrics}
	if _, err := fn.Handle(ctx, json.RawMessage(streamEvent)); err != nil {
		t.Fatal(err)
	}
	if len(queue.sent) != 1 {
		t.Fatalf("queued %d messages, want 1: %v", len(queue.sent), queue.sent)
	}
	var dl webhook.Delivery
	if err := json.Unmarshal([]byte(queue.sent[0]), &dl); err != nil || dl.ID != webhook.DeliveryID(res.ID) || dl.Workspace != ws.Code {
		t.Fatalf("message %s: %v", queue.sent[0], err)
	}
	if strings.Contains(queue.sent[0], "through the queue") || strings.Contains(queue.sent[0], "deployed-user-01") {
		t.Fatal("the queue message carries feedback content")
	}

	sqsEvent := func(body string, receives int) json.RawMessage {
		b, _ := json.Marshal(map[string]any{"Records": []any{map[string]any{
			"eventSource": "aws:sqs", "messageId": "m1", "receiptHandle": "h1", "body": body,
			"attributes": map[string]string{"ApproximateReceiveCount": fmt.Sprint(receives)},
		}}})
		return b
	}
	out, err := fn.Handle(ctx, sqsEvent(queue.sent[0], 1))
	if err != nil {
		t.Fatal(err)
	}
	if len(out.BatchItemFailures) != 1 || out.BatchItemFailures[0].ItemIdentifier != "m1" {
		t.Fatalf("failed attempt: %+v", out)
	}
	if v := queue.visibility["h1"]; v < 5 || v > 10 {
		t.Fatalf("hidden for %d s after the first failed attempt, want 5–10", v)
	}

	// Queued more than the window ago: the failed attempt parks it.
	late := dl
	late.Queued = now.Add(-25 * time.Hour)
	lateBody, _ := json.Marshal(late)
	if out, err = fn.Handle(ctx, sqsEvent(string(lateBody), 30)); err != nil || len(out.BatchItemFailures) != 0 {
		t.Fatalf("parking attempt: %+v %v", out, err)
	}
	if !strings.Contains(metrics.String(), `"ParkedDeliveries":1`) || !strings.Contains(metrics.String(), webhook.MetricNamespace) {
		t.Fatalf("no parked metric: %s", metrics.String())
	}
	parked, err := store.ParkedDeliveries(ctx, ws.Code)
	if err != nil || len(parked) != 1 || parked[0].Attempts != 30 {
		t.Fatalf("parked %+v %v", parked, err)
	}

	up = true
	if out, err = fn.Handle(ctx, sqsEvent(queue.sent[0], 2)); err != nil || len(out.BatchItemFailures) != 0 {
		t.Fatalf("delivered attempt: %+v %v", out, err)
	}
	rcv.checkExactlyOnce(t, []string{res.ID})
}

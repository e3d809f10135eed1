package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// Queue is the part of the SQS client the deployed deliverer uses.
type Queue interface {
	SendMessageBatch(ctx context.Context, in *sqs.SendMessageBatchInput, optFns ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error)
	ChangeMessageVisibility(ctx context.Context, in *sqs.ChangeMessageVisibilityInput, optFns ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityOutput, error)
}

// Function is the deployed deliverer, one Lambda function with two event
// sources (infra/stack): the Feedback table's stream, whose new items it
// turns into queue messages (and whose items removed by time to live have
// their attachment files deleted), and the queue, whose messages it attempts.
// A failed attempt stays on the queue, hidden until its retry is due
// (ChangeMessageVisibility), so one receiver's failures hold back no other
// message: the stream alone would block its shard behind a failing record.
type Function struct {
	Deliverer *Deliverer
	Queue     Queue
	QueueURL  string
	// Objects is the attachments bucket, where the files of expired
	// feedback are deleted.
	Objects Objects
	// Metrics receives the embedded-metric-format lines (the function's
	// log, which CloudWatch reads them from).
	Metrics io.Writer
}

// maxVisibility is SQS's longest visibility timeout.
const maxVisibility = 12 * time.Hour

// Handle takes a batch of either source.
func (f *Function) Handle(ctx context.Context, raw json.RawMessage) (*events.SQSEventResponse, error) {
	var probe struct {
		Records []struct {
			EventSource string `json:"eventSource"`
		} `json:"Records"`
	}
	if err := json.Unmarshal(raw, &probe); err != nil {
		return nil, fmt.Errorf("webhook: event: %w", err)
	}
	if len(probe.Records) == 0 {
		return &events.SQSEventResponse{}, nil
	}
	switch probe.Records[0].EventSource {
	case "aws:dynamodb":
		var ev events.DynamoDBEvent
		if err := json.Unmarshal(raw, &ev); err != nil {
			return nil, fmt.Errorf("webhook: stream event: %w", err)
		}
		if err := f.enqueue(ctx, ev); err != nil {
			return nil, err
		}
		return nil, f.deleteExpired(ctx, ev)
	case "aws:sqs":
		var ev events.SQSEvent
		if err := json.Unmarshal(raw, &ev); err != nil {
			return nil, fmt.Errorf("webhook: queue event: %w", err)
		}
		return f.deliver(ctx, ev), nil
	}
	return nil, fmt.Errorf("webhook: unknown event source %q", probe.Records[0].EventSource)
}

// enqueue sends one message per new feedback (or requeued delivery). A
// failure fails the batch, which Lambda reads again from the stream: a
// message sent twice is the same delivery id twice.
func (f *Function) enqueue(ctx context.Context, ev events.DynamoDBEvent) error {
	var entries []sqstypes.SendMessageBatchRequestEntry
	for _, rec := range ev.Records {
		if rec.EventName != string(events.DynamoDBOperationTypeInsert) {
			continue
		}
		img := rec.Change.NewImage
		dl, ok := deliveryOf(func(attr string) string {
			if v, ok := img[attr]; ok && v.DataType() == events.DataTypeString {
				return v.String()
			}
			return ""
		}, rec.Change.ApproximateCreationDateTime.Time.UTC())
		if !ok {
			continue
		}
		body, err := json.Marshal(dl)
		if err != nil {
			return err
		}
		entries = append(entries, sqstypes.SendMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(len(entries))), MessageBody: aws.String(string(body))})
	}
	for start := 0; start < len(entries); start += 10 {
		out, err := f.Queue.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String(f.QueueURL), Entries: entries[start:min(start+10, len(entries))]})
		if err != nil {
			return fmt.Errorf("webhook: enqueue: %w", err)
		}
		if len(out.Failed) > 0 {
			return fmt.Errorf("webhook: enqueue: %d messages refused (%s)", len(out.Failed), aws.ToString(out.Failed[0].Code))
		}
	}
	return nil
}

// deleteExpired deletes the attachment files of the feedback items time to
// live removed (the stream's filter lets no other removal through; erasure
// deletes a user's files itself). A failure fails the batch, which Lambda
// reads again: deleting a file twice is no error.
func (f *Function) deleteExpired(ctx context.Context, ev events.DynamoDBEvent) error {
	for _, rec := range ev.Records {
		if rec.EventName != string(events.DynamoDBOperationTypeRemove) || rec.UserIdentity == nil ||
			!expiredByTTL(rec.UserIdentity.Type, rec.UserIdentity.PrincipalID) {
			continue
		}
		for _, key := range lambdaAttachmentKeys(rec.Change.OldImage) {
			if f.Objects == nil {
				return errors.New("webhook: expired attachments but no attachments bucket configured")
			}
			if err := f.Objects.Delete(ctx, key); err != nil {
				return fmt.Errorf("webhook: delete expired attachment: %w", err)
			}
		}
	}
	return nil
}

// deliver attempts every message of the batch at once, so a receiver that
// times out does not delay the others; the messages to retry are reported
// as failures, each hidden until its retry is due.
func (f *Function) deliver(ctx context.Context, ev events.SQSEvent) *events.SQSEventResponse {
	resp := &events.SQSEventResponse{BatchItemFailures: []events.SQSBatchItemFailure{}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, msg := range ev.Records {
		wg.Go(func() {
			if !f.attempt(ctx, msg) {
				mu.Lock()
				resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: msg.MessageId})
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return resp
}

// attempt says whether the message is done with (delivered, parked or
// dropped): false leaves it on the queue.
func (f *Function) attempt(ctx context.Context, msg events.SQSMessage) bool {
	var dl Delivery
	if err := json.Unmarshal([]byte(msg.Body), &dl); err != nil || dl.ID == "" {
		// Not a delivery: nothing will ever make it one.
		f.Deliverer.Log.Error("webhook: malformed queue message", "messageId", msg.MessageId)
		return true
	}
	attempt, _ := strconv.Atoi(msg.Attributes["ApproximateReceiveCount"])
	out, err := f.Deliverer.Attempt(ctx, dl, max(attempt, 1))
	if err != nil {
		f.Deliverer.Log.Error("webhook: attempt", "delivery", dl.ID, "error", err.Error())
		return false
	}
	if out.Result == Parked {
		f.countParked()
	}
	if out.Result != Retry {
		return true
	}
	_, err = f.Queue.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{
		QueueUrl: aws.String(f.QueueURL), ReceiptHandle: aws.String(msg.ReceiptHandle),
		VisibilityTimeout: int32(min(out.RetryAfter, maxVisibility).Seconds()),
	})
	if err != nil {
		// The queue's own visibility timeout applies: retried sooner.
		f.Deliverer.Log.Warn("webhook: change visibility", "delivery", dl.ID, "error", err.Error())
	}
	return false
}

// countParked publishes one parked delivery (CloudWatch's embedded metric
// format: a log line that CloudWatch turns into the metric).
func (f *Function) countParked() {
	line, _ := json.Marshal(map[string]any{
		"_aws": map[string]any{
			"Timestamp":         time.Now().UnixMilli(),
			"CloudWatchMetrics": []any{map[string]any{"Namespace": MetricNamespace, "Dimensions": [][]string{{}}, "Metrics": []any{map[string]string{"Name": MetricParked, "Unit": "Count"}}}},
		},
		MetricParked: 1,
	})
	fmt.Fprintln(f.Metrics, string(line))
}

// The CloudWatch metric of parked deliveries, published through the
// function's log in the embedded metric format; the stack alarms on it.
const (
	MetricNamespace = "Waymark/Webhooks"
	MetricParked    = "ParkedDeliveries"
)

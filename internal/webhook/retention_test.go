package webhook_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/waymarkhq/waymark/internal/objects"
	"github.com/waymarkhq/waymark/internal/schema"
	"github.com/waymarkhq/waymark/internal/waymark"
	"github.com/waymarkhq/waymark/internal/webhook"
	"github.com/waymarkhq/waymark/internal/wiring"
)

// attachedFeedback stores a feedback item of username with one attachment
// whose file it puts in the bucket (as the service's copy on submit would),
// and returns the item's key and the file's key.
func (e *env) attachedFeedback(t *testing.T, ws *waymark.Workspace, username string) (map[string]types.AttributeValue, string) {
	t.Helper()
	ctx := context.Background()
	fb := &waymark.Feedback{
		ID: waymark.NewID(), UserKey: ws.UserKey(username), Username: username, Text: "see the screenshot",
		Attachments: []waymark.Attachment{{ID: waymark.NewID(), ContentType: "image/png", Size: 4}},
		CreatedAt:   time.Now(),
	}
	key := objects.AttachmentKey(fb.UserKey, fb.Attachments[0].ID)
	cfg := stack.Config()
	if _, err := testS3(t).PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(cfg.AttachmentsBucket), Key: aws.String(key),
		ContentType: aws.String("image/png"), Body: bytes.NewReader([]byte("\x89PNG"))}); err != nil {
		t.Fatal(err)
	}
	w, err := e.store.PrepareFeedback(ctx, ws, fb)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.store.PutFeedback(ctx, w); err != nil {
		t.Fatal(err)
	}
	items, err := feedbackItems(ctx, fb.UserKey)
	if err != nil || len(items) != 1 {
		t.Fatalf("feedback item: %v %d", err, len(items))
	}
	return map[string]types.AttributeValue{"pk": items[0]["pk"], "sk": items[0]["sk"]}, key
}

// testS3 is a client of the local S3 engine whose calls are not recorded as
// the deliverer's.
func testS3(t *testing.T) *s3.Client {
	t.Helper()
	client, err := stack.Config().S3(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return client
}

func feedbackItems(ctx context.Context, userKey string) ([]map[string]types.AttributeValue, error) {
	cfg := stack.Config()
	db, _, err := cfg.Clients(ctx)
	if err != nil {
		return nil, err
	}
	out, err := db.Query(ctx, &dynamodb.QueryInput{
		TableName: aws.String(cfg.Tables[schema.FeedbackTable]), KeyConditionExpression: aws.String("pk = :pk"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": &types.AttributeValueMemberS{Value: userKey}},
	})
	if err != nil {
		return nil, err
	}
	return out.Items, nil
}

// Retention, locally: a feedback item removed from the table (DynamoDB
// Local runs no time to live, so the test removes it as time to live would)
// has its attachment file deleted from the S3 engine by the deliverer that
// reads the stream; another user's file stays.
func TestRemovedFeedbackLosesItsFiles(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, nil, time.Now, fastSchedule)
	rcv := newReceiver(t, time.Now, func(string, int) bool { return false })
	ws, secret := e.newWorkspace(t, rcv.srv.URL, waymark.WebhookJSON)
	rcv.secret = secret
	expiring, expiringFile := e.attachedFeedback(t, ws, "retention-user-01")
	_, keptFile := e.attachedFeedback(t, ws, "retention-user-02")

	cfg := stack.Config()
	db, _, err := cfg.Clients(ctx)
	if err != nil {
		t.Fatal(err)
	}
	bucket := objects.New(testS3(t), cfg.AttachmentsBucket)
	files := func() []string {
		keys, err := bucket.List(ctx, objects.AttachmentsPrefix+ws.Code+"/")
		if err != nil {
			t.Fatal(err)
		}
		return keys
	}
	if got := files(); !slices.Contains(got, expiringFile) || !slices.Contains(got, keptFile) {
		t.Fatalf("files before the removal: %v", got)
	}
	if _, err := db.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(cfg.Tables[schema.FeedbackTable]), Key: expiring}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the expired feedback's file deleted", func() bool { return !slices.Contains(files(), expiringFile) })
	if !slices.Contains(files(), keptFile) {
		t.Fatalf("the other user's file was deleted too: %v", files())
	}
}

// recordingObjects records the deletes the deployed handler asks for.
type recordingObjects struct{ deleted []string }

func (o *recordingObjects) Delete(_ context.Context, key string) error {
	o.deleted = append(o.deleted, key)
	return nil
}

// The deployed function deletes the files of an item time to live removed
// (its stream record's identity is DynamoDB's service), and only those:
// not for a removal by a caller (erasure deletes the files itself), nor for
// a removed parked delivery.
func TestDeployedFunctionDeletesExpiredFiles(t *testing.T) {
	image := func(pk string, ids ...string) map[string]any {
		var list []any
		for _, id := range ids {
			list = append(list, map[string]any{"M": map[string]any{"id": map[string]string{"S": id}, "contentType": map[string]string{"S": "image/png"}, "size": map[string]string{"N": "4"}}})
		}
		return map[string]any{"pk": map[string]string{"S": pk}, "sk": map[string]string{"S": "t#f"}, "attachments": map[string]any{"L": list}}
	}
	ttl := map[string]string{"type": "Service", "principalId": "dynamodb.amazonaws.com"}
	record := func(img map[string]any, identity map[string]string) map[string]any {
		r := map[string]any{"eventSource": "aws:dynamodb", "eventName": "REMOVE", "dynamodb": map[string]any{"OldImage": img}}
		if identity != nil {
			r["userIdentity"] = identity
		}
		return r
	}
	ev, err := json.Marshal(map[string]any{"Records": []any{
		record(image("ws1#hashA", "a1", "a2"), ttl),
		record(image("ws1#hashB", "b1"), nil),
		record(image(schema.ParkedDeliveryPrefix+"ws1", "p1"), ttl),
		record(image("ws1#hashC", "../c1"), ttl),
	}})
	if err != nil {
		t.Fatal(err)
	}
	objs := &recordingObjects{}
	d := webhook.NewDeliverer(nil, webhook.Policy{}, wiring.Logger(io.Discard, "error"))
	fn := &webhook.Function{Deliverer: d, Queue: &recordingQueue{}, QueueURL: "https://sqs.example/q", Metrics: io.Discard, Objects: objs}
	if _, err := fn.Handle(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	want := []string{objects.AttachmentKey("ws1#hashA", "a1"), objects.AttachmentKey("ws1#hashA", "a2")}
	if fmt.Sprint(objs.deleted) != fmt.Sprint(want) {
		t.Fatalf("deleted %v, want %v", objs.deleted, want)
	}
}

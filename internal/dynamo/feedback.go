package dynamo

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/waymarkhq/waymark/internal/schema"
	"github.com/waymarkhq/waymark/internal/waymark"
)

// feedbackTimeLayout is fixed-width so that sort keys order by time.
const feedbackTimeLayout = "2006-01-02T15:04:05.000000000Z"

// attrAttachments lists a feedback's attachments ({id, contentType, size}).
const attrAttachments = "attachments"

// FeedbackWrite is a feedback item sealed and ready to be written.
type FeedbackWrite struct {
	item map[string]types.AttributeValue
}

// PrepareFeedback seals a feedback item, before any write of the request.
func (s *Store) PrepareFeedback(ctx context.Context, ws *waymark.Workspace, fb *waymark.Feedback) (*FeedbackWrite, error) {
	created := fb.CreatedAt.UTC()
	sk := created.Format(feedbackTimeLayout) + "#" + fb.ID
	sealer, err := s.sealerFor(ctx, ws.Code, schema.FeedbackTable, fb.UserKey, sk)
	if err != nil {
		return nil, err
	}
	item := map[string]types.AttributeValue{
		attrPK:      str(fb.UserKey),
		attrSK:      str(sk),
		"wsMonth":   str(ws.Code + "#" + created.Format("2006-01")),
		"id":        str(fb.ID),
		"createdAt": str(waymark.FormatTime(created)),
		"username":  sealer.seal("username", []byte(fb.Username)),
		"text":      sealer.seal("text", []byte(fb.Text)),
		attrDataKey: &types.AttributeValueMemberB{Value: sealer.key.Wrapped},
	}
	if fb.Rating != nil {
		item["rating"] = &types.AttributeValueMemberN{Value: strconv.Itoa(*fb.Rating)}
	}
	if fb.Category != "" {
		item["category"] = str(fb.Category)
	}
	if fb.Environment != nil {
		env, err := json.Marshal(fb.Environment)
		if err != nil {
			return nil, fmt.Errorf("dynamo: feedback environment: %w", err)
		}
		item["environment"] = sealer.seal("environment", env)
	}
	if len(fb.Attachments) > 0 {
		// In clear: random ids, content types and sizes are no personal data,
		// and the webhook's deliverer reads them without a key.
		list, err := attributevalue.MarshalWithOptions(fb.Attachments, func(o *attributevalue.EncoderOptions) { o.TagKey = "json" })
		if err != nil {
			return nil, fmt.Errorf("dynamo: feedback attachments: %w", err)
		}
		item[attrAttachments] = list
	}
	putExpiry(item, ws.ExpiresAt(created))
	return &FeedbackWrite{item: item}, nil
}

// PutFeedback stores a prepared feedback item in the user's partition,
// indexed by workspace and month. The id was made before the write, so an SDK
// retry of the put writes the same item again and cannot make a second one.
func (s *Store) PutFeedback(ctx context.Context, w *FeedbackWrite) error {
	_, err := s.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: s.table(schema.FeedbackTable), Item: w.item})
	return mapError("put feedback", err)
}

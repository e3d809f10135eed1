package webhook

import (
	"context"
	"strings"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"

	"github.com/waymarkhq/waymark/internal/objects"
	"github.com/waymarkhq/waymark/internal/schema"
)

// Retention of attachment files: DynamoDB's time to live removes a feedback
// item when its workspace's retention ends, and the item's REMOVE record on
// the Feedback table's stream (whose old image lists the attachments) is
// what tells the deliverer to delete the item's files from the bucket.

// Objects is the part of the attachments bucket retention uses.
type Objects interface {
	Delete(ctx context.Context, key string) error
}

var _ Objects = (*objects.Bucket)(nil)

// The identity DynamoDB gives a stream record of a removal by time to live;
// removals by a caller (erasure, which deletes the files itself) carry none.
const (
	ttlIdentityType      = "Service"
	ttlIdentityPrincipal = "dynamodb.amazonaws.com"
)

// expiredByTTL says whether a stream record's identity is time to live's.
func expiredByTTL(identityType, principal string) bool {
	return identityType == ttlIdentityType && principal == ttlIdentityPrincipal
}

// attachmentKeys lists the object keys of a removed feedback item's
// attachments, given its partition key (the user key) and the attachment
// ids of its old image. Parked and requeued deliveries have none.
func attachmentKeys(pk string, ids []string) []string {
	if pk == "" || strings.HasPrefix(pk, schema.ParkedDeliveryPrefix) || strings.HasPrefix(pk, schema.RequeuedDeliveryPrefix) {
		return nil
	}
	var keys []string
	for _, id := range ids {
		// Ids are random tokens the service made; one that could name
		// another object is not one of them.
		if id == "" || strings.ContainsAny(id, "/#") {
			continue
		}
		keys = append(keys, objects.AttachmentKey(pk, id))
	}
	return keys
}

// lambdaAttachmentKeys reads attachmentKeys from a Lambda stream record's
// old image.
func lambdaAttachmentKeys(img map[string]events.DynamoDBAttributeValue) []string {
	pk, ok := img["pk"]
	list, hasList := img[attachmentsAttr]
	if !ok || pk.DataType() != events.DataTypeString || !hasList || list.DataType() != events.DataTypeList {
		return nil
	}
	var ids []string
	for _, a := range list.List() {
		if a.DataType() != events.DataTypeMap {
			continue
		}
		if id, ok := a.Map()["id"]; ok && id.DataType() == events.DataTypeString {
			ids = append(ids, id.String())
		}
	}
	return attachmentKeys(pk.String(), ids)
}

// streamAttachmentKeys reads attachmentKeys from a DynamoDB Streams
// record's old image (the local runner's).
func streamAttachmentKeys(img map[string]types.AttributeValue) []string {
	pk, ok := img["pk"].(*types.AttributeValueMemberS)
	list, hasList := img[attachmentsAttr].(*types.AttributeValueMemberL)
	if !ok || !hasList {
		return nil
	}
	var ids []string
	for _, a := range list.Value {
		if m, ok := a.(*types.AttributeValueMemberM); ok {
			if id, ok := m.Value["id"].(*types.AttributeValueMemberS); ok {
				ids = append(ids, id.Value)
			}
		}
	}
	return attachmentKeys(pk.Value, ids)
}

// attachmentsAttr is the Feedback table's attribute listing attachments.
const attachmentsAttr = "attachments"

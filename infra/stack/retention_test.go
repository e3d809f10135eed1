package stack

import (
	"strings"
	"testing"

	"github.com/waymarkhq/waymark/internal/objects"
	"github.com/waymarkhq/waymark/internal/schema"
)

// Retention of attachment files: the Feedback table's stream carries old
// images (the removed item lists its attachments), the deliverer's stream
// source passes new items and removals by time to live only, and its role
// may delete objects under attachments/ and do nothing else with the bucket.
func TestRetentionDeletesAttachments(t *testing.T) {
	eachStack(t, func(t *testing.T, r Region, tpl template) {
		table := props(tpl.resource(t, tableLogicalID(schema.Feedback), "AWS::DynamoDB::Table"))
		if got := toJSON(table["StreamSpecification"]); got != `{"StreamViewType":"NEW_AND_OLD_IMAGES"}` {
			t.Errorf("Feedback stream %s, want new and old images", got)
		}
		var filters []string
		for _, m := range tpl.ofType("AWS::Lambda::EventSourceMapping") {
			if fc, ok := props(m)["FilterCriteria"].(map[string]interface{}); ok {
				for _, f := range list(fc["Filters"]) {
					filters = append(filters, f.(map[string]interface{})["Pattern"].(string))
				}
			}
		}
		want := []string{
			`{"eventName":["INSERT"]}`,
			`{"eventName":["REMOVE"],"userIdentity":{"principalId":["dynamodb.amazonaws.com"],"type":["Service"]}}`,
		}
		if !sameSet(filters, want) {
			t.Errorf("stream filters %v, want %v", filters, want)
		}
		attachments := toJSON(map[string]interface{}{"Fn::Join": []interface{}{"", []interface{}{getAtt(attachmentsBucketID, "Arn"), "/" + objects.AttachmentsPrefix + "*"}}})
		var s3 []string
		for _, st := range statements(t, tpl, webhookLogicalID) {
			for _, a := range strs(st["Action"]) {
				if strings.HasPrefix(a, "s3:") {
					for _, res := range list(st["Resource"]) {
						s3 = append(s3, a+" "+toJSON(res))
					}
				}
			}
		}
		if !sameSet(s3, []string{"s3:DeleteObject " + attachments}) {
			t.Errorf("webhook role's bucket access %v, want s3:DeleteObject on attachments/ only", s3)
		}
	})
}

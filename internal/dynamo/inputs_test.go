package dynamo

import (
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/waymarkhq/waymark/internal/waymark"
)

// A whole write keeps the request ids of the latest folded inputs, so that
// pinReq stays bounded however many inputs an item took over time.
func TestFoldedRequestsKeepTheLatest(t *testing.T) {
	u := &waymark.User{}
	for i := range keptFoldedRequests + 10 {
		u.Folded = append(u.Folded, fmt.Sprintf("r%d", i))
	}
	list := foldedRequests(u).(*types.AttributeValueMemberL).Value
	if len(list) != keptFoldedRequests {
		t.Fatalf("%d ids kept, want %d", len(list), keptFoldedRequests)
	}
	first := list[0].(*types.AttributeValueMemberS).Value
	last := list[len(list)-1].(*types.AttributeValueMemberS).Value
	if first != "r10" || last != fmt.Sprintf("r%d", keptFoldedRequests+9) {
		t.Fatalf("kept %s … %s, want the latest", first, last)
	}
	if got := pendingRequests(map[string]types.AttributeValue{attrPendingRequests: foldedRequests(u)}); len(got) != keptFoldedRequests || got[0] != "r10" {
		t.Fatalf("read back %v", got)
	}
}

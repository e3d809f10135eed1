package apigw_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/waymarkhq/waymark/internal/fakeclock"
	"github.com/waymarkhq/waymark/internal/schema"
	"github.com/waymarkhq/waymark/internal/waymark"
)

// expiries reads expiresAt of every item of a user key, by table and sort key.
func expiries(t *testing.T, userKey string) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	for _, tb := range []string{schema.UsersTable, schema.ContentStateTable, schema.FeedbackTable} {
		res, err := db.Query(context.Background(), &dynamodb.QueryInput{
			TableName:                 &[]string{stack.Tables[tb]}[0],
			KeyConditionExpression:    &[]string{"pk = :pk"}[0],
			ExpressionAttributeValues: map[string]types.AttributeValue{":pk": &types.AttributeValueMemberS{Value: userKey}},
			ConsistentRead:            &[]bool{true}[0],
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, item := range res.Items {
			name := tb
			if sk, ok := item["sk"].(*types.AttributeValueMemberS); ok {
				name += "/" + sk.Value
			}
			if tb == schema.FeedbackTable {
				name = tb
			}
			var exp int64
			if v, ok := item[schema.TTLAttribute].(*types.AttributeValueMemberN); ok {
				exp, _ = strconv.ParseInt(v.Value, 10, 64)
			}
			out[name] = exp
		}
	}
	return out
}

func TestRetentionSetsAndRefreshesExpiry(t *testing.T) {
	ws := newWorkspace(t, waymark.NewWorkspaceOptions{RetentionDays: 30})
	clk := fakeclock.New(time.Now().UTC().Truncate(time.Second))
	hs := clockedHandlers(t, recordedConfig(), clk)
	user := uniqueUser(t)
	key := ws.UserKey(user)
	day := int64(24 * 60 * 60)
	start := clk.Now().Unix()

	call := func(fn string, body map[string]any) {
		t.Helper()
		r := invokeWith(t, hs, fn, mustJSON(body), nil)
		if r.Status/100 != 2 {
			t.Fatalf("%s: %d %v", fn, r.Status, r.Body)
		}
	}
	call("identify", map[string]any{"workspace": ws.Code, "user": map[string]any{"username": user}})
	call("events", map[string]any{"workspace": ws.Code, "username": user, "events": []any{
		map[string]any{"id": "r1", "content": "tour", "contentId": "t", "action": "finished", "at": "2026-01-01T00:00:00Z"},
		map[string]any{"id": "r2", "content": "hint", "contentId": "h", "action": "displayed", "at": "2026-01-01T00:00:00Z"},
	}})
	call("feedback", map[string]any{"workspace": ws.Code, "username": user, "text": "retained for 30 days"})
	remember("retained for 30 days")
	for name, exp := range expiries(t, key) {
		if exp != start+30*day {
			t.Errorf("%s expires at %d, want %d (30 days on)", name, exp, start+30*day)
		}
	}

	// Ten days later the user comes back and sees the hint again: the user
	// item and the hint are written, the tour's expiry is refreshed, the
	// feedback keeps its own.
	clk.Advance(10 * 24 * time.Hour)
	later := clk.Now().Unix()
	call("events", map[string]any{"workspace": ws.Code, "username": user, "events": []any{
		map[string]any{"id": "r3", "content": "hint", "contentId": "h", "action": "displayed", "at": "2026-01-02T00:00:00Z"},
	}})
	got := expiries(t, key)
	want := map[string]int64{
		schema.UsersTable:                    later + 30*day,
		schema.ContentStateTable + "/hint#h": later + 30*day,
		schema.ContentStateTable + "/tour#t": later + 30*day,
		schema.FeedbackTable:                 start + 30*day,
	}
	for name, exp := range want {
		if got[name] != exp {
			t.Errorf("after activity, %s expires at %d, want %d", name, got[name], exp)
		}
	}

	// Past the retention without activity, the data is gone for every
	// reader even before DynamoDB's time to live removes it.
	clk.Advance(31 * 24 * time.Hour)
	r := invokeWith(t, hs, "state", mustJSON(map[string]any{"workspace": ws.Code, "username": user}), nil)
	if r.Status != 200 || mustJSON(r.Body["state"]) != `{"announcements":{},"checklists":{},"hints":{},"surveys":{},"tours":{}}` {
		t.Fatalf("state of an expired user: %v", r.Body)
	}
	r = invokeWith(t, hs, "identify", mustJSON(map[string]any{"workspace": ws.Code, "user": map[string]any{"username": user}}), nil)
	if u := r.Body["user"].(map[string]any); r.Status != 200 || u["firstSeenAt"] != u["lastSeenAt"] {
		t.Fatalf("an expired user did not start over: %v", r.Body)
	}
}

// An item's expiry is moved by activity at most once a day: a visit less
// than a day after the last move, or exactly a day after it, writes
// nothing; one second more moves it.
func TestRetentionRefreshAtItsEdges(t *testing.T) {
	ws := newWorkspace(t, waymark.NewWorkspaceOptions{RetentionDays: 30})
	clk := fakeclock.New(time.Now().UTC().Truncate(time.Second))
	hs := clockedHandlers(t, recordedConfig(), clk)
	user := uniqueUser(t)
	key := ws.UserKey(user)
	tour := schema.ContentStateTable + "/tour#t"
	day := int64(24 * 60 * 60)
	start := clk.Now().Unix()
	visit := func() {
		t.Helper()
		if r := invokeWith(t, hs, "identify", mustJSON(map[string]any{"workspace": ws.Code, "user": map[string]any{"username": user}}), nil); r.Status != 200 {
			t.Fatalf("identify: %d %v", r.Status, r.Body)
		}
	}
	if r := invokeWith(t, hs, "events", mustJSON(map[string]any{"workspace": ws.Code, "username": user, "events": []any{
		map[string]any{"id": "edge-1", "content": "tour", "contentId": "t", "action": "finished", "at": "2026-01-01T00:00:00Z"},
	}}), nil); r.Status != 200 {
		t.Fatalf("events: %d %v", r.Status, r.Body)
	}
	for _, step := range []struct {
		advance time.Duration
		want    int64
		what    string
	}{
		{23 * time.Hour, start + 30*day, "23 hours later"},
		{time.Hour, start + 30*day, "exactly a day later"},
		{time.Second, start + day + 1 + 30*day, "a day and a second later"},
	} {
		clk.Advance(step.advance)
		visit()
		if got := expiries(t, key)[tour]; got != step.want {
			t.Fatalf("%s the tour expires at %d, want %d", step.what, got, step.want)
		}
	}
}

// A workspace whose retention is removed keeps its users' data: the next
// visit of a user removes the expiry of its items.
func TestRetentionRemovedFromAWorkspace(t *testing.T) {
	ws := newWorkspace(t, waymark.NewWorkspaceOptions{RetentionDays: 30})
	user := uniqueUser(t)
	key := ws.UserKey(user)
	call := func(fn string, body map[string]any) {
		t.Helper()
		if r := invoke(t, fn, mustJSON(body)); r.Status != 200 {
			t.Fatalf("%s: %d %v", fn, r.Status, r.Body)
		}
	}
	call("events", map[string]any{"workspace": ws.Code, "username": user, "events": []any{
		map[string]any{"id": "kept-1", "content": "tour", "contentId": "t", "action": "finished", "at": "2026-01-01T00:00:00Z"},
	}})
	if exp := expiries(t, key)[schema.ContentStateTable+"/tour#t"]; exp == 0 {
		t.Fatal("the tour has no expiry under a retention")
	}
	ws.RetentionDays = 0
	if err := graph.Store.PutWorkspace(context.Background(), ws); err != nil {
		t.Fatal(err)
	}
	// Handlers of their own: the suite's cache holds the workspace as it was.
	hs := clockedHandlers(t, recordedConfig(), testClock())
	if r := invokeWith(t, hs, "identify", mustJSON(map[string]any{"workspace": ws.Code, "user": map[string]any{"username": user}}), nil); r.Status != 200 {
		t.Fatalf("identify: %d %v", r.Status, r.Body)
	}
	for name, exp := range expiries(t, key) {
		if exp != 0 {
			t.Errorf("%s still expires at %d after the retention was removed", name, exp)
		}
	}
}

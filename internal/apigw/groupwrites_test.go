package apigw_test

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/waymarkhq/waymark/internal/schema"
	"github.com/waymarkhq/waymark/internal/waymark"
)

// When an identify writes the group item it names, and what it does after
// losing the race for it.

// groupVersion is the version of a group's stored item (0: none).
func groupVersion(t *testing.T, groupKey string) int {
	t.Helper()
	res, err := db.GetItem(context.Background(), &dynamodb.GetItemInput{
		TableName: aws.String(stack.Tables[schema.GroupsTable]),
		Key: map[string]types.AttributeValue{
			"pk": &types.AttributeValueMemberS{Value: groupKey},
			"sk": &types.AttributeValueMemberS{Value: schema.GroupItemSK},
		},
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		t.Fatal(err)
	}
	v, _ := res.Item["v"].(*types.AttributeValueMemberN)
	if v == nil {
		return 0
	}
	n, _ := strconv.Atoi(v.Value)
	return n
}

// bumpVersion moves an item's version behind the service's back, so that
// the write the service is about to make loses the race for it.
func bumpVersion(t *testing.T, logicalTable string, key map[string]types.AttributeValue) {
	_, err := db.UpdateItem(context.Background(), &dynamodb.UpdateItemInput{
		TableName:                 aws.String(stack.Tables[logicalTable]),
		Key:                       key,
		UpdateExpression:          aws.String("ADD v :one"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":one": &types.AttributeValueMemberN{Value: "1"}},
	})
	if err != nil {
		t.Error(err)
	}
}

// joinBody is an identify of user as a member of group with props.
func joinBody(ws *waymark.Workspace, user, group string, props map[string]any) string {
	g := map[string]any{"id": group}
	if props != nil {
		g["props"] = props
	}
	return mustJSON(map[string]any{"workspace": ws.Code, "user": map[string]any{"username": user, "group": g}})
}

// Members of one account identify with the account's props: the group item
// is written when they change (a value, a deleted key) and by nobody else,
// with or without a retention (with one, also when its expiry is more than
// a day stale).
func TestGroupItemIsWrittenOnlyWhenItChanges(t *testing.T) {
	for _, retention := range []int{0, 30} {
		ws, key := workspaceWithKey(t, waymark.NewWorkspaceOptions{RetentionDays: retention})
		clk := testClock()
		hs := clockedHandlers(t, recordedConfig(), clk)
		acme := uniqueGroup(t, "acme")
		gk := ws.GroupKey(acme)
		join := func(props map[string]any, wantVersion int, what string) {
			t.Helper()
			if r := invokeWith(t, hs, "identify", joinBody(ws, uniqueUser(t), acme, props), nil); r.Status != 200 {
				t.Fatalf("retention %d, %s: identify %d %v", retention, what, r.Status, r.Body)
			}
			if v := groupVersion(t, gk); v != wantVersion {
				t.Fatalf("retention %d, %s: group at version %d, want %d", retention, what, v, wantVersion)
			}
		}
		join(map[string]any{"plan": "pro"}, 1, "the first member")
		join(map[string]any{"plan": "pro"}, 1, "a second member, same props")
		join(nil, 1, "a member without props")
		clk.Advance(20 * time.Hour)
		join(map[string]any{"plan": "pro"}, 1, "a member 20 hours later")
		join(map[string]any{"plan": "enterprise"}, 2, "a changed value")
		join(map[string]any{"plan": nil}, 3, "the last prop deleted")
		if props := exportGroup(t, key, acme).Body["group"].(map[string]any)["props"]; props != nil && len(props.(map[string]any)) != 0 {
			t.Fatalf("retention %d: props %v after the last one was deleted", retention, props)
		}
		join(nil, 3, "a member of the group without props")
		clk.Advance(24 * time.Hour)
		join(nil, 3, "a member exactly a day after the last write")
		clk.Advance(time.Second)
		want := 3
		if retention > 0 {
			want = 4 // the expiry would be more than a day stale
		}
		join(nil, want, "a member a day and a second after the last write")
	}
}

// An identify that loses the race for the group item (another member wrote
// it between its read and its write) reads it again and merges its props
// into what the other wrote: both writers' props are kept.
func TestGroupWriteAfterALostRaceMergesAgain(t *testing.T) {
	ws, key := workspaceWithKey(t, waymark.NewWorkspaceOptions{})
	acme := uniqueGroup(t, "acme")
	gk := ws.GroupKey(acme)
	var raced atomic.Bool
	faults := &faultyTransport{hook: func(_ *http.Request, op, body string) (*http.Response, error) {
		if op == "PutItem" && strings.Contains(body, gk) && raced.CompareAndSwap(false, true) {
			identifyOK(t, joinBody(ws, uniqueUser(t), acme, map[string]any{"seats": 5}))
		}
		return nil, nil
	}}
	hs, _ := faultyGraph(t, faults, nil)
	if r := invokeWith(t, hs, "identify", joinBody(ws, uniqueUser(t), acme, map[string]any{"plan": "pro"}), nil); r.Status != 200 {
		t.Fatalf("identify: %d %v", r.Status, r.Body)
	}
	if !raced.Load() {
		t.Fatal("the group item was never written")
	}
	props := exportGroup(t, key, acme).Body["group"].(map[string]any)["props"]
	if got := mustJSON(props); got != `{"plan":"pro","seats":5}` {
		t.Fatalf("group props %s, want both writers' (plan and seats)", got)
	}
	if v := groupVersion(t, gk); v != 2 {
		t.Fatalf("group at version %d, want 2 (one write each)", v)
	}
}

// An identify that loses the race for the group item every time gives up
// after MaxAttempts writes with 503 and Retry-After.
func TestGroupWritesBeyondTheAttemptsAnswerUnavailable(t *testing.T) {
	ws := newWorkspace(t, waymark.NewWorkspaceOptions{})
	acme := uniqueGroup(t, "acme")
	gk := ws.GroupKey(acme)
	identifyOK(t, joinBody(ws, uniqueUser(t), acme, map[string]any{"plan": "pro"}))
	var writes atomic.Int64
	faults := &faultyTransport{hook: func(_ *http.Request, op, body string) (*http.Response, error) {
		// Past twice the attempts the loop is broken: let the write through
		// so that the answer tells.
		if op == "PutItem" && strings.Contains(body, gk) && writes.Add(1) <= 32 {
			bumpVersion(t, schema.GroupsTable, map[string]types.AttributeValue{
				"pk": &types.AttributeValueMemberS{Value: gk},
				"sk": &types.AttributeValueMemberS{Value: schema.GroupItemSK},
			})
		}
		return nil, nil
	}}
	hs, _ := faultyGraph(t, faults, nil)
	r := invokeWith(t, hs, "identify", joinBody(ws, uniqueUser(t), acme, map[string]any{"plan": "enterprise"}), nil)
	if r.Status != 503 || r.errorCode() != "unavailable" || r.Headers["retry-after"] == "" {
		t.Fatalf("answer %d %v, want 503 unavailable with Retry-After", r.Status, r.Body)
	}
	if n := writes.Load(); n != 16 {
		t.Fatalf("%d writes of the group, want 16 (the default MaxAttempts)", n)
	}
}

// A member's first visit of a day moves the expiry of its groups and
// memberships only where there is a retention: without one it writes
// nothing to the groups.
func TestMemberVisitWritesGroupsOnlyWithARetention(t *testing.T) {
	for _, retention := range []int{0, 30} {
		ws := newWorkspace(t, waymark.NewWorkspaceOptions{RetentionDays: retention})
		acme := uniqueGroup(t, "acme")
		gk := ws.GroupKey(acme)
		var groupWrites atomic.Int64
		clk := testClock()
		hs := clockedHandlersVia(t, recordedConfig(), clk, &faultyTransport{hook: func(_ *http.Request, op, body string) (*http.Response, error) {
			if op == "UpdateItem" && strings.Contains(body, gk) {
				groupWrites.Add(1)
			}
			return nil, nil
		}})
		body := joinBody(ws, uniqueUser(t), acme, map[string]any{"plan": "pro"})
		for day := range 2 {
			if r := invokeWith(t, hs, "identify", body, nil); r.Status != 200 {
				t.Fatalf("retention %d, day %d: identify %d %v", retention, day, r.Status, r.Body)
			}
			clk.Advance(25 * time.Hour)
		}
		want := int64(0)
		if retention > 0 {
			want = 2 // the group item and the membership
		}
		if n := groupWrites.Load(); n != want {
			t.Errorf("retention %d: the next day's visit made %d expiry updates in the group, want %d", retention, n, want)
		}
	}
}

// An identify naming groups writes its memberships with the user item in
// one transaction, so it never records a pending input: when every write
// loses the race for the user item it gives up after MaxAttempts writes
// with 503 and Retry-After.
func TestIdentifyNamingGroupsBeyondTheAttemptsAnswersUnavailable(t *testing.T) {
	ws := newWorkspace(t, waymark.NewWorkspaceOptions{})
	user := uniqueUser(t)
	identifyOK(t, mustJSON(map[string]any{"workspace": ws.Code, "user": map[string]any{"username": user}}))
	userKey := ws.UserKey(user)
	var writes atomic.Int64
	faults := &faultyTransport{hook: func(_ *http.Request, op, body string) (*http.Response, error) {
		if op == "TransactWriteItems" && strings.Contains(body, userKey) && writes.Add(1) <= 32 {
			bumpVersion(t, schema.UsersTable, map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: userKey}})
		}
		return nil, nil
	}}
	hs, _ := faultyGraph(t, faults, nil)
	r := invokeWith(t, hs, "identify", joinBody(ws, user, uniqueGroup(t, "acme"), nil), nil)
	if r.Status != 503 || r.errorCode() != "unavailable" || r.Headers["retry-after"] == "" {
		t.Fatalf("answer %d %v, want 503 unavailable with Retry-After", r.Status, r.Body)
	}
	if n := writes.Load(); n != 16 {
		t.Fatalf("%d writes of the user, want 16 (the default MaxAttempts)", n)
	}
}

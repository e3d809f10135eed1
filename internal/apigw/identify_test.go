package apigw_test

import (
	"bytes"
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/waymarkhq/waymark/internal/fakeclock"
	"github.com/waymarkhq/waymark/internal/schema"
	"github.com/waymarkhq/waymark/internal/waymark"
)

// rawUser reads a user item as stored.
func rawUser(t *testing.T, userKey string) map[string]types.AttributeValue {
	t.Helper()
	out, err := db.GetItem(context.Background(), &dynamodb.GetItemInput{
		TableName:      &[]string{stack.Tables[schema.UsersTable]}[0],
		Key:            map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: userKey}},
		ConsistentRead: &[]bool{true}[0],
	})
	if err != nil || out.Item == nil {
		t.Fatalf("user item: %v %v", out, err)
	}
	return out.Item
}

// resealed reports whether a write between two reads of a user item sealed
// its values again: each sealing draws a fresh nonce, so a profile written
// again never has the same bytes, and one only visited keeps them.
func resealed(before, after map[string]types.AttributeValue) bool {
	return !bytes.Equal(before["username"].(*types.AttributeValueMemberB).Value, after["username"].(*types.AttributeValueMemberB).Value)
}

func attr(item map[string]types.AttributeValue, name string) string {
	switch v := item[name].(type) {
	case *types.AttributeValueMemberS:
		return v.Value
	case *types.AttributeValueMemberN:
		return v.Value
	}
	return ""
}

// The identify of every page load repeats the input the profile already
// took: it records the visit without rewriting (or reading) the profile,
// once a day (dynamo.VisitResolution): later visits of the same day write
// nothing. Any other input is merged as before.
func TestRepeatedIdentifyOnlyRecordsTheVisit(t *testing.T) {
	ws := workspace(t, "demo")
	// 10:00 UTC: an hour later is the same day, a day later the next.
	clk := fakeclock.New(time.Now().UTC().Truncate(24 * time.Hour).Add(10 * time.Hour))
	hs := clockedHandlers(t, stack.Config(), clk)
	user := uniqueUser(t)
	key := ws.UserKey(user)
	remember("repeat-a@example.com", "repeat-b@example.com", "Repeat Industries")
	identify := func(body string) map[string]any {
		t.Helper()
		r := invokeWith(t, hs, "identify", body, nil)
		if r.Status != 200 {
			t.Fatalf("identify: %d %v", r.Status, r.Body)
		}
		return r.Body["user"].(map[string]any)
	}
	email := func() string {
		t.Helper()
		u, err := graph.Store.GetUser(context.Background(), ws, key)
		if err != nil {
			t.Fatal(err)
		}
		return *u.Profile.Email
	}
	inputA := `{"workspace":"demo","user":{"username":"` + user + `","email":"repeat-a@example.com","props":{"company":"Repeat Industries","seats":3}}}`
	// The same input with its props in another order.
	inputAReordered := `{"workspace":"demo","user":{"props":{"seats":3,"company":"Repeat Industries"},"email":"repeat-a@example.com","username":"` + user + `"}}`
	inputB := `{"workspace":"demo","user":{"username":"` + user + `","email":"repeat-b@example.com"}}`

	first := identify(inputA)
	created := rawUser(t, key)
	clk.Advance(time.Hour)
	sameDay := identify(inputAReordered)
	if !reflect.DeepEqual(rawUser(t, key), created) || !reflect.DeepEqual(sameDay, first) {
		t.Fatalf("a visit on the day already recorded wrote the user item or answered other times: first %v, then %v", first, sameDay)
	}

	clk.Advance(24 * time.Hour)
	again := identify(inputAReordered)
	visited := rawUser(t, key)
	if resealed(created, visited) {
		t.Fatal("a repeated input rewrote the profile")
	}
	if again["firstSeenAt"] != first["firstSeenAt"] || again["lastSeenAt"] != waymark.FormatTime(clk.Now()) || attr(visited, "lastSeenAt") != again["lastSeenAt"] {
		t.Fatalf("the next day's repeat did not record the visit: first %v, again %v, stored lastSeenAt %s", first, again, attr(visited, "lastSeenAt"))
	}
	if attr(visited, "v") == attr(created, "v") {
		t.Fatal("a repeat did not move the item's version: a writer that read before it would not conflict")
	}

	identify(inputB)
	changed := rawUser(t, key)
	if !resealed(visited, changed) || email() != "repeat-b@example.com" {
		t.Fatalf("a new input was not merged: e-mail %q", email())
	}
	// A is no longer the profile's last input: it applies again.
	identify(inputA)
	if email() != "repeat-a@example.com" {
		t.Fatalf("an earlier input sent again was not applied: e-mail %q", email())
	}
}

// A user past its retention whose item an event replaced (profile removed)
// takes its old input again in full: the shortcut must not skip it.
func TestIdentifyAfterExpiryRestoresTheProfile(t *testing.T) {
	ws := newWorkspace(t, waymark.NewWorkspaceOptions{RetentionDays: 30})
	clk := fakeclock.New(time.Now().UTC().Truncate(time.Second))
	hs := clockedHandlers(t, recordedConfig(), clk)
	user := uniqueUser(t)
	remember("expired-then-back@example.com")
	input := mustJSON(map[string]any{"workspace": ws.Code, "user": map[string]any{"username": user, "email": "expired-then-back@example.com"}})
	call := func(fn, body string) {
		t.Helper()
		if r := invokeWith(t, hs, fn, body, nil); r.Status/100 != 2 {
			t.Fatalf("%s: %d %v", fn, r.Status, r.Body)
		}
	}
	call("identify", input)
	clk.Advance(31 * 24 * time.Hour)
	call("events", mustJSON(map[string]any{"workspace": ws.Code, "username": user, "events": []any{
		map[string]any{"id": "x1", "content": "hint", "contentId": "h", "action": "displayed", "at": "2026-01-01T00:00:00Z"},
	}}))
	if item := rawUser(t, ws.UserKey(user)); item["email"] != nil || item["lastInput"] != nil {
		t.Fatalf("the expired user's profile outlived its replacement: %v", item)
	}
	call("identify", input)
	u, err := graph.Store.GetUser(context.Background(), ws, ws.UserKey(user))
	if err != nil {
		t.Fatal(err)
	}
	if u.Profile.Email == nil || *u.Profile.Email != "expired-then-back@example.com" {
		t.Fatalf("the input was skipped after the expiry: %+v", u.Profile)
	}
}

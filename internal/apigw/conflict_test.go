package apigw_test

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/waymarkhq/waymark/internal/faultinject"
	"github.com/waymarkhq/waymark/internal/schema"
	"github.com/waymarkhq/waymark/internal/waymark"
)

// What a write of events does after losing the race for its content item,
// branch by branch. Each test makes the race happen for sure: the
// transport runs the other writer (or the eraser, or the clock) just before
// the request's own write of the item reaches DynamoDB.

// contended is one user's content item that a test races on.
type contended struct {
	t        *testing.T
	user, id string
	key      map[string]types.AttributeValue
}

func newContended(t *testing.T, kind string) *contended {
	user := uniqueUser(t)
	id := "race-" + waymark.NewID()[:8]
	return &contended{t: t, user: user, id: id, key: map[string]types.AttributeValue{
		"pk": &types.AttributeValueMemberS{Value: workspace(t, "demo").UserKey(user)},
		"sk": &types.AttributeValueMemberS{Value: kind + "#" + id},
	}}
}

// names reports whether a DynamoDB request body is about this item.
func (c *contended) names(body string) bool {
	return strings.Contains(body, fmt.Sprintf(`{"S":"%s"}`, c.key["sk"].(*types.AttributeValueMemberS).Value))
}

func (c *contended) events(evs ...map[string]any) string {
	list := make([]any, len(evs))
	for i, ev := range evs {
		ev["contentId"] = c.id
		if ev["content"] == nil {
			ev["content"] = "hint"
		}
		if ev["action"] == nil {
			ev["action"] = "displayed"
		}
		ev["at"] = time.Now().UTC().Format(time.RFC3339Nano)
		list[i] = ev
	}
	return mustJSON(map[string]any{"workspace": "demo", "username": c.user, "events": list})
}

// update changes the item behind the service's back.
func (c *contended) update(expr string, values map[string]types.AttributeValue) {
	_, err := db.UpdateItem(context.Background(), &dynamodb.UpdateItemInput{
		TableName: aws.String(stack.Tables[schema.ContentStateTable]), Key: c.key,
		UpdateExpression: aws.String(expr), ExpressionAttributeValues: values,
	})
	if err != nil {
		c.t.Error(err)
	}
}

func (c *contended) displayed() any {
	r := invoke(c.t, "state", mustJSON(map[string]any{"workspace": "demo", "username": c.user}))
	hint, _ := r.Body["state"].(map[string]any)["hints"].(map[string]any)[c.id].(map[string]any)
	return hint["displayed"]
}

// onFirstWrite runs race once, just before the first write of the item.
func (c *contended) onFirstWrite(race func()) func(*http.Request, string, string) (*http.Response, error) {
	var done atomic.Bool
	return func(_ *http.Request, op, body string) (*http.Response, error) {
		if op == "UpdateItem" && c.names(body) && done.CompareAndSwap(false, true) {
			race()
		}
		return nil, nil
	}
}

func answered(t *testing.T, r response, accepted, duplicates int) {
	t.Helper()
	if r.Status != 200 || r.Body["accepted"] != float64(accepted) || r.Body["duplicates"] != float64(duplicates) {
		t.Fatalf("answer %d %v, want 200 with %d accepted and %d duplicates", r.Status, r.Body, accepted, duplicates)
	}
}

// The re-read after a lost race fails (here: throttled through all of the
// SDK's retries). That failure is the answer; it used to be a nil item
// dereferenced in a goroutine, which ended the process.
func TestConflictThenFailedReadAnswersTheError(t *testing.T) {
	c := newContended(t, "hint")
	answered(t, invoke(t, "events", c.events(map[string]any{"id": "seed"})), 1, 0)
	var raced atomic.Bool
	race := c.onFirstWrite(func() {
		answered(t, invoke(t, "events", c.events(map[string]any{"id": "other"})), 1, 0)
		raced.Store(true)
	})
	faults := &faultyTransport{hook: func(req *http.Request, op, body string) (*http.Response, error) {
		if op == "GetItem" && raced.Load() && c.names(body) {
			return faultinject.Throttling(req), nil
		}
		return race(req, op, body)
	}}
	hs, _ := faultyGraph(t, faults, nil)
	r := invokeWith(t, hs, "events", c.events(map[string]any{"id": "mine"}), nil)
	if r.Status != 429 || r.errorCode() != "throttled" || r.Headers["retry-after"] == "" {
		t.Fatalf("answer %d %v %v, want 429 throttled with Retry-After", r.Status, r.Body, r.Headers)
	}
	// The client's retry completes the batch.
	answered(t, invoke(t, "events", c.events(map[string]any{"id": "mine"})), 1, 0)
	if got := c.displayed(); got != float64(3) {
		t.Fatalf("displayed %v, want 3", got)
	}
}

// The item was erased between the read and the write: the events are
// recorded on a new one.
func TestConflictWithErasedItemRecordsAnew(t *testing.T) {
	c := newContended(t, "hint")
	answered(t, invoke(t, "events", c.events(map[string]any{"id": "seed"})), 1, 0)
	faults := &faultyTransport{hook: c.onFirstWrite(func() {
		if _, err := db.DeleteItem(context.Background(), &dynamodb.DeleteItemInput{
			TableName: aws.String(stack.Tables[schema.ContentStateTable]), Key: c.key,
		}); err != nil {
			t.Error(err)
		}
	})}
	hs, _ := faultyGraph(t, faults, nil)
	answered(t, invokeWith(t, hs, "events", c.events(map[string]any{"id": "mine"}), nil), 1, 0)
	if got := c.displayed(); got != float64(1) {
		t.Fatalf("displayed %v, want 1 (the erased event gone, the new one counted)", got)
	}
	answered(t, invoke(t, "events", c.events(map[string]any{"id": "mine"})), 0, 1)
}

// The item expired between the read and the write: its old state is
// forgotten and the events start it over.
func TestConflictWithExpiredItemStartsOver(t *testing.T) {
	c := newContended(t, "hint")
	answered(t, invoke(t, "events", c.events(map[string]any{"id": "seed"})), 1, 0)
	faults := &faultyTransport{hook: c.onFirstWrite(func() {
		c.update("SET expiresAt = :past ADD v :one", map[string]types.AttributeValue{
			":past": &types.AttributeValueMemberN{Value: strconv.FormatInt(time.Now().Add(-time.Hour).Unix(), 10)},
			":one":  &types.AttributeValueMemberN{Value: "1"},
		})
	})}
	hs, _ := faultyGraph(t, faults, nil)
	answered(t, invokeWith(t, hs, "events", c.events(map[string]any{"id": "mine"}), nil), 1, 0)
	if got := c.displayed(); got != float64(1) {
		t.Fatalf("displayed %v, want 1 (the expired count forgotten)", got)
	}
}

// A survey answer is never a pending event: its group rewrites the item,
// and gives up with 503 after MaxAttempts lost races.
func TestConflictsBeyondTheAttemptsAnswerUnavailable(t *testing.T) {
	c := newContended(t, "survey")
	var writes atomic.Int64
	faults := &faultyTransport{hook: func(_ *http.Request, op, body string) (*http.Response, error) {
		if op == "UpdateItem" && c.names(body) {
			writes.Add(1)
			c.update("ADD v :one", map[string]types.AttributeValue{":one": &types.AttributeValueMemberN{Value: "1"}})
		}
		return nil, nil
	}}
	hs, _ := faultyGraph(t, faults, nil)
	r := invokeWith(t, hs, "events", c.events(map[string]any{"id": "answer-1", "content": "survey", "action": "answered", "answer": 4}), nil)
	if r.Status != 503 || r.errorCode() != "unavailable" || r.Headers["retry-after"] == "" {
		t.Fatalf("answer %d %v, want 503 unavailable with Retry-After", r.Status, r.Body)
	}
	if n := writes.Load(); n != 16 {
		t.Fatalf("%d writes of the item, want 16 (the default MaxAttempts)", n)
	}
}

// The loser of the race records its event as pending; that update's answer
// is lost after it was applied, and the SDK's retry finds the event
// recorded, by this very request: it counts once, as accepted, and a repeat
// of it is a duplicate.
func TestConflictThenPendingEventRetriedBySDK(t *testing.T) {
	c := newContended(t, "hint")
	answered(t, invoke(t, "events", c.events(map[string]any{"id": "seed"})), 1, 0)
	race := c.onFirstWrite(func() {
		answered(t, invoke(t, "events", c.events(map[string]any{"id": "other"})), 1, 0)
	})
	var dropped atomic.Bool
	faults := &faultyTransport{hook: func(req *http.Request, op, body string) (*http.Response, error) {
		if op == "UpdateItem" && c.names(body) && strings.Contains(body, "list_append") && dropped.CompareAndSwap(false, true) {
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return nil, err
			}
			resp.Body.Close()
			return nil, errConnectionReset
		}
		return race(req, op, body)
	}}
	hs, _ := faultyGraph(t, faults, nil)
	answered(t, invokeWith(t, hs, "events", c.events(map[string]any{"id": "mine"}), nil), 1, 0)
	if !dropped.Load() {
		t.Fatal("the event was not recorded as pending")
	}
	if got := c.displayed(); got != float64(3) {
		t.Fatalf("displayed %v, want 3", got)
	}
	answered(t, invoke(t, "events", c.events(map[string]any{"id": "mine"}, map[string]any{"id": "other"})), 0, 2)
	// The next write folds the pending event in; the counts stay.
	answered(t, invoke(t, "events", c.events(map[string]any{"id": "last"})), 1, 0)
	if got := c.displayed(); got != float64(4) {
		t.Fatalf("displayed %v, want 4", got)
	}
	out, err := db.GetItem(context.Background(), &dynamodb.GetItemInput{
		TableName: aws.String(stack.Tables[schema.ContentStateTable]), Key: c.key, ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		t.Fatal(err)
	}
	if pend, _ := out.Item["pend"].(*types.AttributeValueMemberL); pend != nil && len(pend.Value) > 0 {
		t.Fatalf("%d pending events left after a write of the item", len(pend.Value))
	}
	// The claims hold exactly the fingerprints the item remembers (12
	// bytes each in `seen`): a write that forgets some relies on it.
	claims, _ := out.Item["claims"].(*types.AttributeValueMemberBS)
	seen, _ := out.Item["seen"].(*types.AttributeValueMemberB)
	if claims == nil || seen == nil || len(claims.Value) != 4 || len(seen.Value) != 4*12 {
		t.Fatalf("claims %v and seen %v, want 4 fingerprints in each", claims, seen)
	}
}

// A panic while serving a request, in a goroutine the service started or in
// the endpoint itself, is a 500 with the error shape; the stack goes to
// the log, never to the client, and the process goes on.
func TestPanicIsAnInternalError(t *testing.T) {
	for _, tc := range []struct{ name, function string }{
		{"in a goroutine of the service", "events"}, // the state read runs beside the user's touch
		{"in the endpoint", "state"},                // the state read runs on the request's goroutine
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newContended(t, "hint")
			faults := &faultyTransport{hook: func(_ *http.Request, op, _ string) (*http.Response, error) {
				if op == "Query" {
					panic("injected panic in " + tc.function)
				}
				return nil, nil
			}}
			hs, _ := faultyGraph(t, faults, nil)
			body := c.events(map[string]any{"id": "panics"})
			if tc.function == "state" {
				body = mustJSON(map[string]any{"workspace": "demo", "username": c.user})
			}
			r := invokeWith(t, hs, tc.function, body, nil)
			if r.Status != 500 || r.errorCode() != "internal" || r.Body["error"].(map[string]any)["message"] != "internal error" {
				t.Fatalf("answer %d %v, want 500 internal", r.Status, r.Body)
			}
			var logged string
			for line := range strings.Lines(logBuffer.String()) {
				if strings.Contains(line, `"msg":"panic"`) && strings.Contains(line, r.Headers["x-request-id"]) {
					logged = line
				}
			}
			if !strings.Contains(logged, "injected panic in "+tc.function) || !strings.Contains(logged, "goroutine") {
				t.Fatalf("no panic with its stack logged for the request: %.300q", logged)
			}
		})
	}
}

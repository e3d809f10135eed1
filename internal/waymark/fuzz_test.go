package waymark

import (
	"bytes"
	"encoding/json"
	"reflect"
	"slices"
	"testing"
	"time"
)

// FuzzEventsBatch: any events body, decoded as the API decodes it, either
// is refused with invalid_json / invalid_argument or yields 1–25 events
// that apply without panicking, none of them dated beyond the clamp; a
// second delivery of the batch changes nothing, and (ids being distinct)
// the order the events are applied in does not change the state.
func FuzzEventsBatch(f *testing.F) {
	for _, seed := range []string{
		`{"workspace":"demo","username":"ada","events":[{"id":"e1","content":"tour","contentId":"t1","action":"advanced","step":"s2","at":"2026-01-02T03:04:05Z"},{"id":"e2","content":"tour","contentId":"t1","action":"finished","at":"2026-01-02T03:04:05Z"}]}`,
		`{"workspace":"demo","username":"ada","events":[{"id":"e1","content":"hint","contentId":"h","action":"displayed","at":"2026-01-02T03:04:05.999999999+23:59"},{"id":"e2","content":"hint","contentId":"h","action":"dismissed","at":"2999-01-01T00:00:00Z"}]}`,
		`{"workspace":"demo","username":"ada","events":[{"id":"e1","content":"checklist","contentId":"c","action":"item_completed","item":"i1","at":"2026-01-02T03:04:05Z"},{"id":"e2","content":"survey","contentId":"s","action":"answered","answer":[1,"a",true],"at":"2026-01-02T03:04:05Z"},{"id":"e3","content":"announcement","contentId":"a","action":"read","at":"2026-01-02T03:04:05Z"}]}`,
		`{"workspace":"demo","username":"ada","events":[{"id":"e1","content":"hint","contentId":"h","action":"displayed","at":"2026-01-02T03:04:05+24:00"}]}`,
		`{"workspace":"demo","username":"ada","events":[]}`,
		`{"events":[{"answer":{"a":1}}]}`,
	} {
		f.Add([]byte(seed))
	}
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	f.Fuzz(func(t *testing.T, body []byte) {
		var req EventsRequest
		if err := decodeStrict(body, &req); err != nil {
			return
		}
		events, err := req.Validate(now)
		if err != nil {
			if code := ErrorCode(err); code != EInvalidArgument {
				t.Fatalf("refused with %q: %v", code, err)
			}
			return
		}
		if len(events) < 1 || len(events) > MaxEventsPerBatch {
			t.Fatalf("%d events accepted", len(events))
		}
		for _, e := range events {
			if e.At.After(now.Add(MaxFutureSkew)) {
				t.Fatalf("event %q dated %v, beyond the clamp", e.ID, e.At)
			}
		}
		first := applyAll(t, slices.All(events), now)
		if reflect.DeepEqual(first, NewState()) {
			t.Fatal("an accepted batch left the state empty")
		}
		if distinctIDs(events) {
			if reversed := applyAll(t, slices.Backward(events), now); !reflect.DeepEqual(reversed, first) {
				t.Fatalf("the order of application changed the state:\n%+v\n%+v", first, reversed)
			}
		}
	})
}

// applyAll applies events to fresh content items, then again (a repeated
// delivery, which must change nothing), and returns the state.
func applyAll(t *testing.T, events func(yield func(int, Event) bool), now time.Time) State {
	t.Helper()
	items := map[ContentKey]*ContentItem{}
	var order []Event
	for _, e := range events {
		order = append(order, e)
		c := items[e.Key()]
		if c == nil {
			c = &ContentItem{Key: e.Key()}
			items[e.Key()] = c
		}
		c.Apply(e, now)
	}
	var all []*ContentItem
	for _, c := range items {
		all = append(all, c)
	}
	st := StateOf(all)
	for _, e := range order {
		if items[e.Key()].Apply(e, now) {
			t.Fatalf("a repeat of event %q applied again", e.ID)
		}
	}
	if again := StateOf(all); !reflect.DeepEqual(again, st) {
		t.Fatalf("a repeated delivery changed the state")
	}
	return st
}

func distinctIDs(events []Event) bool {
	seen := map[string]bool{}
	for _, e := range events {
		if seen[e.ID] {
			return false
		}
		seen[e.ID] = true
	}
	return true
}

// decodeStrict decodes as the API does (internal/apigw decodeJSON).
func decodeStrict(body []byte, v any) error {
	if err := CheckJSONText(body); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	return dec.Decode(v)
}

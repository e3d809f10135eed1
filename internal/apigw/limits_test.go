package apigw_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/waymarkhq/waymark/internal/waymark"
)

// Every documented limit and error code: the bad input gets its status, code
// and field, and nothing of it is written.
func TestLimitsAndErrors(t *testing.T) {
	disabled := newWorkspace(t, waymark.NewWorkspaceOptions{})
	disabled.Disabled = true
	if err := graph.Store.PutWorkspace(context.Background(), disabled); err != nil {
		t.Fatal(err)
	}
	repeat := strings.Repeat
	props := func(n int) map[string]any {
		p := map[string]any{}
		for i := range n {
			p[fmt.Sprintf("p%d", i)] = i
		}
		return p
	}
	numbers := func(n int) []any {
		a := make([]any, n)
		for i := range a {
			a[i] = i
		}
		return a
	}
	event := func(fields map[string]any) map[string]any {
		e := map[string]any{"id": "e1", "content": "hint", "contentId": "h1", "action": "displayed", "at": "2026-01-01T00:00:00Z"}
		for k, v := range fields {
			e[k] = v
		}
		return e
	}
	identify := func(user map[string]any) func(string) string {
		return func(u string) string {
			user["username"] = u
			return mustJSON(map[string]any{"workspace": "demo", "user": user})
		}
	}
	events := func(evs ...map[string]any) func(string) string {
		return func(u string) string {
			return mustJSON(map[string]any{"workspace": "demo", "username": u, "events": evs})
		}
	}
	feedback := func(fields map[string]any) func(string) string {
		return func(u string) string {
			b := map[string]any{"workspace": "demo", "username": u, "text": "hello"}
			for k, v := range fields {
				b[k] = v
			}
			return mustJSON(b)
		}
	}
	raw := func(s string) func(string) string { return func(string) string { return s } }

	cases := []struct {
		name     string
		function string
		body     func(username string) string
		headers  map[string]string
		status   int
		code     string
		field    string
	}{
		{"not JSON", "identify", raw(`{"workspace":`), nil, 400, "invalid_json", ""},
		{"empty body", "state", raw(``), nil, 400, "invalid_json", ""},
		{"trailing data", "state", raw(`{"workspace":"demo","username":"x"} {}`), nil, 400, "invalid_json", ""},
		{"not an object", "state", raw(`[1,2]`), nil, 400, "invalid_argument", ""},
		{"unknown field", "identify", identify(map[string]any{"nickname": "x"}), nil, 400, "invalid_argument", "nickname"},
		{"wrong type", "state", raw(`{"workspace":"demo","username":42}`), nil, 400, "invalid_argument", "username"},
		{"body over 64 KiB", "feedback", feedback(map[string]any{"text": repeat("x", 64<<10)}), nil, 413, "payload_too_large", ""},
		{"media type", "state", feedback(nil), map[string]string{"content-type": "application/xml"}, 415, "unsupported_media_type", ""},
		{"missing workspace", "state", raw(`{"username":"x"}`), nil, 400, "invalid_argument", "workspace"},
		{"unknown workspace", "events", func(u string) string {
			return mustJSON(map[string]any{"workspace": "no-such-workspace", "username": u, "events": []any{event(nil)}})
		}, nil, 404, "unknown_workspace", ""},
		{"disabled workspace", "identify", func(u string) string {
			return mustJSON(map[string]any{"workspace": disabled.Code, "user": map[string]any{"username": u}})
		}, nil, 403, "workspace_disabled", ""},
		{"username missing", "identify", raw(`{"workspace":"demo","user":{"email":"x@example.com"}}`), nil, 400, "invalid_argument", "user.username"},
		{"username 257 bytes", "identify", raw(mustJSON(map[string]any{"workspace": "demo", "user": map[string]any{"username": repeat("ü", 128) + "x"}})), nil, 400, "invalid_argument", "user.username"},
		{"username control character", "state", raw(`{"workspace":"demo","username":"ada\u0000"}`), nil, 400, "invalid_argument", "username"},
		{"101 props", "identify", identify(map[string]any{"props": props(101)}), nil, 400, "invalid_argument", "user.props"},
		{"prop key", "identify", identify(map[string]any{"props": map[string]any{"bad key!": 1}}), nil, 400, "invalid_argument", "user.props.bad key!"},
		{"prop key 65", "identify", identify(map[string]any{"props": map[string]any{repeat("k", 65): 1}}), nil, 400, "invalid_argument", "user.props." + repeat("k", 65)},
		{"prop value 1025 bytes", "identify", identify(map[string]any{"props": map[string]any{"plan": repeat("p", 1025)}}), nil, 400, "invalid_argument", "user.props.plan"},
		{"array of 101", "identify", identify(map[string]any{"props": map[string]any{"tags": numbers(101)}}), nil, 400, "invalid_argument", "user.props.tags"},
		{"nesting 4", "identify", identify(map[string]any{"props": map[string]any{"a": map[string]any{"b": map[string]any{"c": map[string]any{"d": 1}}}}}), nil, 400, "invalid_argument", "user.props.a.b.c"},
		{"email type", "identify", identify(map[string]any{"email": 5}), nil, 400, "invalid_argument", "user.email"},
		{"no events", "events", events(), nil, 400, "invalid_argument", "events"},
		{"26 events", "events", func(u string) string {
			evs := make([]any, 26)
			for i := range evs {
				evs[i] = event(map[string]any{"id": fmt.Sprint(i)})
			}
			return mustJSON(map[string]any{"workspace": "demo", "username": u, "events": evs})
		}, nil, 400, "invalid_argument", "events"},
		{"event id empty", "events", events(event(map[string]any{"id": ""})), nil, 400, "invalid_argument", "events[0].id"},
		{"event id 129", "events", events(event(map[string]any{"id": repeat("i", 129)})), nil, 400, "invalid_argument", "events[0].id"},
		{"content id 129", "events", events(event(nil), event(map[string]any{"id": "e2", "contentId": repeat("c", 129)})), nil, 400, "invalid_argument", "events[1].contentId"},
		{"unknown content", "events", events(event(map[string]any{"content": "modal"})), nil, 400, "invalid_argument", "events[0].content"},
		{"action of another kind", "events", events(event(map[string]any{"action": "read"})), nil, 400, "invalid_argument", "events[0].action"},
		{"bad time", "events", events(event(map[string]any{"at": "yesterday"})), nil, 400, "invalid_argument", "events[0].at"},
		{"feedback text empty", "feedback", feedback(map[string]any{"text": ""}), nil, 400, "invalid_argument", "text"},
		{"feedback text 10001", "feedback", feedback(map[string]any{"text": repeat("é", 10001)}), nil, 400, "invalid_argument", "text"},
		{"feedback rating", "feedback", feedback(map[string]any{"rating": 11}), nil, 400, "invalid_argument", "rating"},
		{"feedback rating fraction", "feedback", feedback(map[string]any{"rating": 2.5}), nil, 400, "invalid_argument", "rating"},
		{"feedback environment", "feedback", feedback(map[string]any{"environment": map[string]any{"url": repeat("u", 2049)}}), nil, 400, "invalid_argument", "environment.url"},
		{"hmac shape", "state", func(u string) string {
			return mustJSON(map[string]any{"workspace": "demo", "username": u, "hmac": map[string]any{"hash": "abc"}})
		}, nil, 400, "invalid_argument", "hmac.hash"},
	}
	ws := workspace(t, "demo")
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			user := uniqueUser(t)
			r := invokeWith(t, handlers, tc.function, tc.body(user), tc.headers)
			if r.Status != tc.status || r.errorCode() != tc.code || r.errorField() != tc.field {
				t.Fatalf("got %d %s field %q (%v), want %d %s field %q", r.Status, r.errorCode(), r.errorField(), r.Body, tc.status, tc.code, tc.field)
			}
			if tc.field != "" && !strings.HasPrefix(r.Body["error"].(map[string]any)["message"].(string), tc.field+":") {
				t.Errorf("message does not name the field: %v", r.Body)
			}
			for _, key := range []string{ws.UserKey(user), disabled.UserKey(user)} {
				if n := itemsOfUser(t, key); n != 0 {
					t.Fatalf("refused input wrote %d items", n)
				}
			}
		})
	}
}

// Throttled and unavailable answers tell the caller when to retry.
func TestRetryAfterOnUnavailable(t *testing.T) {
	r := invokeWith(t, kmsDownHandlers(t), "state", mustJSON(map[string]any{"workspace": "demo", "username": uniqueUser(t)}), nil)
	if r.Status != 503 || r.errorCode() != "unavailable" || r.Headers["retry-after"] == "" {
		t.Fatalf("%d %v %v", r.Status, r.Body, r.Headers)
	}
}

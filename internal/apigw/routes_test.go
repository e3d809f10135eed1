package apigw_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/waymarkhq/waymark/internal/apigw"
	"github.com/waymarkhq/waymark/internal/devstack"
	"github.com/waymarkhq/waymark/internal/routes"
	"github.com/waymarkhq/waymark/internal/waymark"
)

func TestIdentifyUpsertsAndMergesProps(t *testing.T) {
	user := uniqueUser(t)
	remember("Ada Augusta", "Lovelace-Byron", "Analytical Engines Ltd", "ada-old@example.com", "ada-new@example.com")
	first := invoke(t, "identify", mustJSON(map[string]any{"workspace": "demo", "user": map[string]any{
		"username": user, "email": "ada-old@example.com", "firstname": "Ada Augusta", "lastname": "Lovelace-Byron", "role": "admin",
		"signUpAt": "2025-12-01T10:00:00Z", "props": map[string]any{"company": "Analytical Engines Ltd", "seats": 3, "beta": true, "tags": []any{"a", "b"}},
	}}))
	if first.Status != 200 {
		t.Fatalf("identify: %d %v", first.Status, first.Body)
	}
	u := first.Body["user"].(map[string]any)
	if u["firstSeenAt"] != u["lastSeenAt"] {
		t.Fatalf("a new user: %v", u)
	}
	raw := mustJSON(first.Body)
	if strings.Contains(raw, "Ada Augusta") || strings.Contains(raw, user) {
		t.Fatalf("identify echoed personal data: %s", raw)
	}

	time.Sleep(5 * time.Millisecond)
	second := invoke(t, "identify", mustJSON(map[string]any{"workspace": "demo", "user": map[string]any{
		"username": user, "email": "ada-new@example.com", "lastname": nil, "props": map[string]any{"seats": 5, "beta": nil, "plan": "pro"},
	}}))
	if second.Status != 200 {
		t.Fatalf("identify again: %d %v", second.Status, second.Body)
	}
	u2 := second.Body["user"].(map[string]any)
	if u2["firstSeenAt"] != u["firstSeenAt"] || u2["lastSeenAt"] == u["lastSeenAt"] {
		t.Fatalf("seen times: first %v, then %v", u, u2)
	}

	ws := workspace(t, "demo")
	stored, err := graph.Store.GetUser(context.Background(), ws, ws.UserKey(user))
	if err != nil {
		t.Fatal(err)
	}
	p := stored.Profile
	if stored.Username != user || *p.Email != "ada-new@example.com" || *p.Firstname != "Ada Augusta" || p.Lastname != nil || *p.Role != "admin" || *p.SignUpAt != "2025-12-01T10:00:00Z" {
		t.Fatalf("stored profile: %+v", stored)
	}
	props := mustJSON(p.Props)
	if props != `{"company":"Analytical Engines Ltd","plan":"pro","seats":5,"tags":["a","b"]}` {
		t.Fatalf("merged props: %s", props)
	}
}

func TestEventsBuildStateOfEveryKind(t *testing.T) {
	user := uniqueUser(t)
	remember("a long survey answer that is personal")
	at := func(sec int) string {
		return time.Date(2026, 1, 2, 3, 4, sec, 0, time.UTC).Format(time.RFC3339)
	}
	evs := []map[string]any{
		{"id": "e1", "content": "tour", "contentId": "t1", "action": "started", "at": at(1)},
		{"id": "e2", "content": "tour", "contentId": "t1", "action": "advanced", "step": "card-2", "at": at(2)},
		{"id": "e3", "content": "tour", "contentId": "t1", "action": "finished", "step": "card-3", "at": at(3)},
		{"id": "e4", "content": "hint", "contentId": "h1", "action": "displayed", "at": at(4)},
		{"id": "e5", "content": "hint", "contentId": "h1", "action": "displayed", "at": at(5)},
		{"id": "e6", "content": "announcement", "contentId": "a1", "action": "displayed", "at": at(6)},
		{"id": "e7", "content": "announcement", "contentId": "a1", "action": "read", "at": at(7)},
		{"id": "e8", "content": "checklist", "contentId": "c1", "action": "item_completed", "item": "i1", "at": at(8)},
		{"id": "e9", "content": "checklist", "contentId": "c1", "action": "item_completed", "item": "i2", "at": at(9)},
		{"id": "e10", "content": "checklist", "contentId": "c1", "action": "completed", "at": at(10)},
		{"id": "e11", "content": "survey", "contentId": "s1", "action": "displayed", "at": at(11)},
		{"id": "e12", "content": "survey", "contentId": "s1", "action": "answered", "answer": "a long survey answer that is personal", "at": at(12)},
		{"id": "e4", "content": "hint", "contentId": "h1", "action": "displayed", "at": at(4)},
	}
	body := mustJSON(map[string]any{"workspace": "demo", "username": user, "events": evs})
	r := invoke(t, "events", body)
	if r.Status != 200 || r.Body["accepted"] != 12.0 || r.Body["duplicates"] != 1.0 {
		t.Fatalf("events: %d %v", r.Status, r.Body)
	}
	want := `{"announcements":{"a1":{"displayed":1,"lastDisplayedAt":"2026-01-02T03:04:06Z","read":true,"readAt":"2026-01-02T03:04:07Z","updatedAt":"2026-01-02T03:04:07Z"}},` +
		`"checklists":{"c1":{"items":{"i1":"done","i2":"done"},"status":"finished","updatedAt":"2026-01-02T03:04:10Z"}},` +
		`"hints":{"h1":{"dismissed":false,"displayed":2,"lastDisplayedAt":"2026-01-02T03:04:05Z","updatedAt":"2026-01-02T03:04:05Z"}},` +
		`"surveys":{"s1":{"answeredAt":"2026-01-02T03:04:12Z","status":"answered","updatedAt":"2026-01-02T03:04:12Z"}},` +
		`"tours":{"t1":{"status":"finished","step":"card-3","updatedAt":"2026-01-02T03:04:03Z"}}}`
	if got := mustJSON(r.Body["state"]); got != want {
		t.Fatalf("state:\n got %s\nwant %s", got, want)
	}

	// The whole batch again, as a client retry: nothing counts twice.
	again := invoke(t, "events", body)
	if again.Status != 200 || again.Body["accepted"] != 0.0 || again.Body["duplicates"] != 13.0 {
		t.Fatalf("retry: %d %v", again.Status, again.Body)
	}
	if got := mustJSON(again.Body["state"]); got != want {
		t.Fatalf("state after retry:\n got %s\nwant %s", got, want)
	}
	st := invoke(t, "state", mustJSON(map[string]any{"workspace": "demo", "username": user}))
	if got := mustJSON(st.Body["state"]); st.Status != 200 || got != want {
		t.Fatalf("state route: %d %s", st.Status, got)
	}
}

func TestEventsCreateTheUser(t *testing.T) {
	user := uniqueUser(t)
	ws := workspace(t, "demo")
	r := invoke(t, "events", mustJSON(map[string]any{"workspace": "demo", "username": user, "events": []any{
		map[string]any{"id": "x", "content": "hint", "contentId": "h", "action": "displayed", "at": time.Now().UTC().Format(time.RFC3339)},
	}}))
	if r.Status != 200 {
		t.Fatalf("%d %v", r.Status, r.Body)
	}
	u, err := graph.Store.GetUser(context.Background(), ws, ws.UserKey(user))
	if err != nil || u.Username != user || u.FirstSeenAt.IsZero() {
		t.Fatalf("user record: %+v, %v", u, err)
	}
}

func TestStateOfUnknownUserIsEmptyAndWritesNothing(t *testing.T) {
	user := uniqueUser(t)
	r := invoke(t, "state", mustJSON(map[string]any{"workspace": "demo", "username": user}))
	if r.Status != 200 || mustJSON(r.Body["state"]) != `{"announcements":{},"checklists":{},"hints":{},"surveys":{},"tours":{}}` {
		t.Fatalf("%d %v", r.Status, r.Body)
	}
	if n := itemsOfUser(t, workspace(t, "demo").UserKey(user)); n != 0 {
		t.Fatalf("a state read wrote %d items", n)
	}
}

func TestFeedbackIsStoredSealed(t *testing.T) {
	user := uniqueUser(t)
	text := "The export button is hard to find " + waymark.NewID()
	remember(text, "https://app.example.com/settings/billing?secret=1", "Mozilla/5.0 (waymark tests)")
	r := invoke(t, "feedback", mustJSON(map[string]any{"workspace": "demo", "username": user, "text": text, "rating": 4, "category": "bug",
		"environment": map[string]any{"url": "https://app.example.com/settings/billing?secret=1", "userAgent": "Mozilla/5.0 (waymark tests)", "language": "en-GB", "platform": "Linux x86_64", "viewportWidth": 1280, "viewportHeight": 720}}))
	if r.Status != 201 || r.Body["id"] == "" || r.Body["createdAt"] == "" {
		t.Fatalf("%d %v", r.Status, r.Body)
	}
	// One feedback item and the user item.
	if n := itemsOfUser(t, workspace(t, "demo").UserKey(user)); n != 2 {
		t.Fatalf("%d items for the user, want feedback + user", n)
	}
}

func TestIdentityVerification(t *testing.T) {
	user := uniqueUser(t)
	exp := time.Now().Add(time.Hour).Unix()
	past := time.Now().Add(-time.Minute).Unix()
	sign := func(e *int64) string { return waymark.SignUsername(devstack.DemoHMACSecret, user, e) }
	cases := []struct {
		name   string
		hmac   any
		status int
		code   string
	}{
		{"missing", nil, 401, "hmac_invalid"},
		{"wrong", map[string]any{"hash": waymark.SignUsername("wrong", user, nil)}, 401, "hmac_invalid"},
		{"expired", map[string]any{"hash": sign(&past), "expiration": past}, 401, "hmac_expired"},
		// demo-verified signs username|expiration only, so the hash of
		// user|E without expiration (what a server signing usernames alone
		// makes for a user named so) never signs in user with expiration E.
		{"without expiration", map[string]any{"hash": sign(nil)}, 401, "hmac_invalid"},
		{"forgery", map[string]any{"hash": waymark.SignUsername(devstack.DemoHMACSecret, user+"|9999999999", nil), "expiration": 9999999999}, 401, "hmac_invalid"},
		{"valid with expiration", map[string]any{"hash": sign(&exp), "expiration": exp}, 200, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			body := map[string]any{"workspace": devstack.DemoVerifiedWorkspace, "username": user}
			if tc.hmac != nil {
				body["hmac"] = tc.hmac
			}
			for _, fn := range []string{"state", "events", "feedback"} {
				b := map[string]any{}
				for k, v := range body {
					b[k] = v
				}
				switch fn {
				case "events":
					b["events"] = []any{map[string]any{"id": "id-" + tc.name, "content": "hint", "contentId": "h", "action": "displayed", "at": "2026-01-01T00:00:00Z"}}
				case "feedback":
					b["text"] = "hello"
				}
				r := invoke(t, fn, mustJSON(b))
				wantStatus := tc.status
				if wantStatus == 200 && fn == "feedback" {
					wantStatus = 201
				}
				if r.Status != wantStatus || r.errorCode() != tc.code {
					t.Fatalf("%s: %d %v", fn, r.Status, r.Body)
				}
			}
			r := invoke(t, "identify", mustJSON(map[string]any{"workspace": devstack.DemoVerifiedWorkspace, "user": map[string]any{"username": user}, "hmac": tc.hmac}))
			if r.Status != tc.status || r.errorCode() != tc.code {
				t.Fatalf("identify: %d %v", r.Status, r.Body)
			}
		})
	}
	// The valid case stored: the user, the hint, and one feedback item.
	if n := itemsOfUser(t, workspace(t, devstack.DemoVerifiedWorkspace).UserKey(user)); n != 3 {
		t.Fatalf("%d items after the valid calls, want 3", n)
	}
}

func TestOriginAllowList(t *testing.T) {
	user := uniqueUser(t)
	body := mustJSON(map[string]any{"workspace": devstack.DemoOriginsWorkspace, "username": user})
	for origin, status := range map[string]int{devstack.DemoAllowedOrigin: 200, "https://evil.example.com": 403, "": 403} {
		r := invokeWith(t, handlers, "state", body, map[string]string{"origin": origin})
		if r.Status != status || (status == 403 && r.errorCode() != "origin_not_allowed") {
			t.Errorf("origin %q: %d %v", origin, r.Status, r.Body)
		}
	}
	// An empty list allows any origin.
	r := invokeWith(t, handlers, "state", mustJSON(map[string]any{"workspace": "demo", "username": user}), map[string]string{"origin": "https://anywhere.example"})
	if r.Status != 200 {
		t.Fatalf("open workspace: %d %v", r.Status, r.Body)
	}
}

func TestTenantIsolation(t *testing.T) {
	a := newWorkspace(t, waymark.NewWorkspaceOptions{})
	b := newWorkspace(t, waymark.NewWorkspaceOptions{IdentityVerification: true})
	user := uniqueUser(t)
	r := invoke(t, "events", mustJSON(map[string]any{"workspace": a.Code, "username": user, "events": []any{
		map[string]any{"id": "e1", "content": "tour", "contentId": "t1", "action": "finished", "at": "2026-01-01T00:00:00Z"},
	}}))
	if r.Status != 200 {
		t.Fatalf("%d %v", r.Status, r.Body)
	}
	if a.UserKey(user) == b.UserKey(user) {
		t.Fatal("the same username has the same key in two workspaces")
	}
	// B with A's secret: refused. A's state is not B's.
	stolen := waymark.SignUsername(a.HMACSecret, user, nil)
	r = invoke(t, "state", mustJSON(map[string]any{"workspace": b.Code, "username": user, "hmac": map[string]any{"hash": stolen}}))
	if r.Status != 401 {
		t.Fatalf("another workspace's secret: %d %v", r.Status, r.Body)
	}
	exp := time.Now().Add(time.Hour).Unix()
	r = invoke(t, "state", mustJSON(map[string]any{"workspace": b.Code, "username": user, "hmac": map[string]any{"hash": waymark.SignUsername(b.HMACSecret, user, &exp), "expiration": exp}}))
	if r.Status != 200 || len(r.Body["state"].(map[string]any)["tours"].(map[string]any)) != 0 {
		t.Fatalf("B sees A's state: %v", r.Body)
	}
}

func TestEventOrderingAcrossBatches(t *testing.T) {
	user := uniqueUser(t)
	send := func(id, action, at string) {
		r := invoke(t, "events", mustJSON(map[string]any{"workspace": "demo", "username": user, "events": []any{
			map[string]any{"id": id, "content": "tour", "contentId": "t", "action": action, "at": at},
		}}))
		if r.Status != 200 {
			t.Fatalf("%d %v", r.Status, r.Body)
		}
	}
	send("late", "finished", "2026-01-01T00:00:10Z")
	send("early", "skipped", "2026-01-01T00:00:05Z")
	future := time.Now().Add(24 * time.Hour).UTC().Format(time.RFC3339)
	r := invoke(t, "events", mustJSON(map[string]any{"workspace": "demo", "username": user, "events": []any{
		map[string]any{"id": "future", "content": "hint", "contentId": "h", "action": "displayed", "at": future},
	}}))
	tour := r.Body["state"].(map[string]any)["tours"].(map[string]any)["t"].(map[string]any)
	if tour["status"] != "finished" {
		t.Fatalf("an older event arriving later changed the status: %v", tour)
	}
	hint := r.Body["state"].(map[string]any)["hints"].(map[string]any)["h"].(map[string]any)
	shown, _ := time.Parse(time.RFC3339Nano, hint["lastDisplayedAt"].(string))
	if shown.After(time.Now().Add(waymark.MaxFutureSkew + time.Second)) {
		t.Fatalf("future time not clamped: %v", hint)
	}
}

func TestLogsCarryRequestIDAndNoPersonalData(t *testing.T) {
	user := uniqueUser(t)
	start := time.Now()
	r := invoke(t, "state", mustJSON(map[string]any{"workspace": "demo", "username": user}))
	took := float64(time.Since(start).Microseconds()) / 1000
	found := false
	for _, line := range strings.Split(logBuffer.String(), "\n") {
		if line == "" {
			continue
		}
		var entry map[string]any
		if err := json.Unmarshal([]byte(line), &entry); err != nil {
			t.Fatalf("log line is not JSON: %s", line)
		}
		if entry["msg"] == "request" && entry["requestId"] == r.Headers["x-request-id"] && entry["route"] == "POST /v1/state" {
			found = true
			// The request's own time in milliseconds: within the time the
			// test saw the call take.
			if ms, ok := entry["ms"].(float64); !ok || ms < 0 || ms > took {
				t.Errorf("logged ms %v for a call that took %.3f ms", entry["ms"], took)
			}
		}
	}
	if !found {
		t.Fatal("no request log line with a request id")
	}
	if strings.Contains(logBuffer.String(), user) {
		t.Fatal("username in the logs")
	}
}

// A route sent to a function that does not serve it (a misconfigured
// gateway) is an internal error that reveals nothing.
func TestRouteOfAnotherFunction(t *testing.T) {
	r := invokeRoute(t, map[string]apigw.Handler{"state": handlers["state"]}, routes.Route{Method: "POST", Path: "/v1/identify", Function: "state"},
		mustJSON(map[string]any{"workspace": "demo", "user": map[string]any{"username": "someone-unknown"}}), nil, nil)
	if r.Status != 500 || r.errorCode() != "internal" || strings.Contains(mustJSON(r.Body), "state") {
		t.Fatalf("%d %v", r.Status, r.Body)
	}
}

package apigw_test

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/waymarkhq/waymark/internal/apigw"
	"github.com/waymarkhq/waymark/internal/routes"
	"github.com/waymarkhq/waymark/internal/schema"
	"github.com/waymarkhq/waymark/internal/service"
	"github.com/waymarkhq/waymark/internal/waymark"
)

func serverRoute(t testing.TB, key string) routes.Route {
	for _, r := range routes.Table() {
		if r.RouteKey() == key {
			return r
		}
	}
	t.Fatalf("no route %s", key)
	return routes.Route{}
}

// server calls a server API route with a secret key.
func server(t testing.TB, routeKey, key, body string, query url.Values) response {
	t.Helper()
	return serverWith(t, handlers, routeKey, key, body, query)
}

// serverWith is server through the given handlers.
func serverWith(t testing.TB, hs map[string]apigw.Handler, routeKey, key, body string, query url.Values) response {
	t.Helper()
	headers := map[string]string{}
	if key != "" {
		headers["authorization"] = "Bearer " + key
	}
	if body == "" {
		headers["content-type"] = ""
	}
	return invokeRoute(t, hs, serverRoute(t, routeKey), body, headers, query)
}

// scanForKey counts the items of every table that mention a user key in any
// attribute.
func scanForKey(t testing.TB, userKey string) int {
	t.Helper()
	n := 0
	for _, tb := range schema.All() {
		items, err := scanTable(context.Background(), tb.Name)
		if err != nil {
			t.Fatal(err)
		}
		for _, item := range items {
			for _, av := range item {
				if s, ok := av.(*types.AttributeValueMemberS); ok && strings.Contains(s.Value, userKey) {
					n++
					break
				}
			}
		}
	}
	return n
}

// fillUser gives a user a profile, props, state in every content kind and
// feedback, through the public API.
func fillUser(t testing.TB, ws *waymark.Workspace, user string) {
	t.Helper()
	remember("Grace Brewster", "Hopper-Murray", "grace@example.com", "navy-"+user, "cobol was right", "export me please")
	r := invoke(t, "identify", mustJSON(map[string]any{"workspace": ws.Code, "user": map[string]any{
		"username": user, "email": "grace@example.com", "firstname": "Grace Brewster", "lastname": "Hopper-Murray", "role": "admiral",
		"signUpAt": "2025-01-01T00:00:00Z", "props": map[string]any{"team": "navy-" + user, "level": 7}}}))
	if r.Status != 200 {
		t.Fatalf("identify: %d %v", r.Status, r.Body)
	}
	evs := []any{
		map[string]any{"id": "x1", "content": "tour", "contentId": "t", "action": "skipped", "at": "2026-01-01T00:00:01Z"},
		map[string]any{"id": "x2", "content": "hint", "contentId": "h", "action": "displayed", "at": "2026-01-01T00:00:02Z"},
		map[string]any{"id": "x3", "content": "announcement", "contentId": "a", "action": "read", "at": "2026-01-01T00:00:03Z"},
		map[string]any{"id": "x4", "content": "checklist", "contentId": "c", "action": "item_completed", "item": "i", "at": "2026-01-01T00:00:04Z"},
		map[string]any{"id": "x5", "content": "survey", "contentId": "s", "action": "answered", "answer": "cobol was right", "at": "2026-01-01T00:00:05Z"},
	}
	if r := invoke(t, "events", mustJSON(map[string]any{"workspace": ws.Code, "username": user, "events": evs})); r.Status != 200 {
		t.Fatalf("events: %d %v", r.Status, r.Body)
	}
	for i, text := range []string{"export me please", "and me too"} {
		r := invoke(t, "feedback", mustJSON(map[string]any{"workspace": ws.Code, "username": user, "text": text, "rating": i + 3, "category": "idea",
			"environment": map[string]any{"url": "https://app.example.com/x", "language": "en"}}))
		if r.Status != 201 {
			t.Fatalf("feedback: %d %v", r.Status, r.Body)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestServerExportAndErase(t *testing.T) {
	ws, key := workspaceWithKey(t, waymark.NewWorkspaceOptions{})
	grace, other := uniqueUser(t), uniqueUser(t)
	fillUser(t, ws, grace)
	fillUser(t, ws, other)
	otherItems := itemsOfUser(t, ws.UserKey(other))

	r := server(t, "POST /v1/server/users/export", key, mustJSON(map[string]any{"username": grace}), nil)
	if r.Status != 200 || r.Body["found"] != true {
		t.Fatalf("export: %d %v", r.Status, r.Body)
	}
	u := r.Body["user"].(map[string]any)
	if u["username"] != grace || u["email"] != "grace@example.com" || u["firstname"] != "Grace Brewster" || u["lastname"] != "Hopper-Murray" ||
		u["role"] != "admiral" || u["signUpAt"] != "2025-01-01T00:00:00Z" || mustJSON(u["props"]) != mustJSON(map[string]any{"level": 7, "team": "navy-" + grace}) ||
		u["firstSeenAt"] == nil || u["lastSeenAt"] == nil {
		t.Fatalf("exported user: %v", u)
	}
	st := mustJSON(r.Body["state"])
	for _, want := range []string{`"t":{"status":"skipped"`, `"h":{"dismissed":false,"displayed":1`, `"a":{"displayed":0,"read":true`, `"c":{"items":{"i":"done"}`, `"s":{"answeredAt"`} {
		if !strings.Contains(st, want) {
			t.Errorf("exported state lacks %s: %s", want, st)
		}
	}
	if mustJSON(r.Body["surveyAnswers"]) != `{"s":"cobol was right"}` {
		t.Errorf("survey answers: %v", r.Body["surveyAnswers"])
	}
	fb := r.Body["feedback"].([]any)
	if len(fb) != 2 || fb[0].(map[string]any)["text"] != "export me please" || fb[1].(map[string]any)["text"] != "and me too" ||
		fb[0].(map[string]any)["username"] != grace || fb[0].(map[string]any)["environment"].(map[string]any)["url"] != "https://app.example.com/x" {
		t.Fatalf("exported feedback: %v", fb)
	}

	userKey := ws.UserKey(grace)
	before := scanForKey(t, userKey)
	r = server(t, "POST /v1/server/users/delete", key, mustJSON(map[string]any{"usernames": []string{grace, "never-seen@example.com"}}), nil)
	if r.Status != 200 || r.Body["users"] != 1.0 || r.Body["items"] != float64(before) {
		t.Fatalf("delete: %d %v (had %d items)", r.Status, r.Body, before)
	}
	// 1 user item + 5 content items + 2 feedback items.
	if before != 8 {
		t.Fatalf("the user had %d items, want 8", before)
	}
	if n := scanForKey(t, userKey); n != 0 {
		t.Fatalf("a scan of every table still finds %d items of the erased user", n)
	}
	if n := itemsOfUser(t, ws.UserKey(other)); n != otherItems {
		t.Fatalf("the other user has %d items, had %d", n, otherItems)
	}
	r = server(t, "POST /v1/server/users/delete", key, mustJSON(map[string]any{"usernames": []string{grace}}), nil)
	if r.Status != 200 || r.Body["users"] != 0.0 || r.Body["items"] != 0.0 {
		t.Fatalf("second delete: %d %v", r.Status, r.Body)
	}
	r = server(t, "POST /v1/server/users/export", key, mustJSON(map[string]any{"username": grace}), nil)
	if r.Status != 200 || r.Body["found"] != false || r.Body["user"] != nil || len(r.Body["feedback"].([]any)) != 0 {
		t.Fatalf("export after delete: %v", r.Body)
	}
}

func TestServerKeys(t *testing.T) {
	a, keyA := workspaceWithKey(t, waymark.NewWorkspaceOptions{})
	b, keyB := workspaceWithKey(t, waymark.NewWorkspaceOptions{})
	user := uniqueUser(t)
	fillUser(t, b, user)
	export := mustJSON(map[string]any{"username": user})

	// A's key acts in A only: B's user is not there, and erasing it there
	// leaves B's data alone.
	r := server(t, "POST /v1/server/users/export", keyA, export, nil)
	if r.Status != 200 || r.Body["found"] != false {
		t.Fatalf("A's key exported B's user: %v", r.Body)
	}
	bItems := itemsOfUser(t, b.UserKey(user))
	r = server(t, "POST /v1/server/users/delete", keyA, mustJSON(map[string]any{"usernames": []string{user}}), nil)
	if r.Status != 200 || r.Body["users"] != 0.0 || itemsOfUser(t, b.UserKey(user)) != bItems {
		t.Fatalf("A's key erased in B: %v", r.Body)
	}
	// A key naming B's code with A's secret part, wrong keys, no key.
	forged := strings.Replace(keyA, a.Code, b.Code, 1)
	for name, key := range map[string]string{"forged": forged, "garbage": "wmk_nope", "none": "", "truncated": keyB[:len(keyB)-2]} {
		r := server(t, "POST /v1/server/users/export", key, export, nil)
		if r.Status != 401 || r.errorCode() != "unauthorized" {
			t.Errorf("%s key: %d %v", name, r.Status, r.Body)
		}
	}
	// A revoked key stops working at once.
	b.Keys[0].RevokedAt = time.Now()
	if err := graph.Store.PutWorkspace(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	if r := server(t, "POST /v1/server/users/export", keyB, export, nil); r.Status != 401 {
		t.Fatalf("revoked key: %d %v", r.Status, r.Body)
	}
	if !strings.Contains(logBuffer.String(), "request") || strings.Contains(logBuffer.String(), keyB) {
		t.Fatal("a secret key reached the logs")
	}
}

func TestServerIdentifyAndFeedbackList(t *testing.T) {
	ws, key := workspaceWithKey(t, waymark.NewWorkspaceOptions{IdentityVerification: true})
	user := uniqueUser(t)
	// No HMAC needed: the key proves the caller.
	r := server(t, "POST /v1/server/identify", key, mustJSON(map[string]any{"user": map[string]any{"username": user, "role": "owner"}}), nil)
	if r.Status != 200 || r.Body["user"] == nil {
		t.Fatalf("server identify: %d %v", r.Status, r.Body)
	}
	exp := time.Now().Add(time.Hour).Unix()
	sign := waymark.SignUsername(ws.HMACSecret, user, &exp)
	var texts []string
	for i := range 5 {
		text := fmt.Sprintf("feedback number %d %s", i, waymark.NewID())
		texts = append(texts, text)
		remember(text)
		r := invoke(t, "feedback", mustJSON(map[string]any{"workspace": ws.Code, "username": user, "hmac": map[string]any{"hash": sign, "expiration": exp}, "text": text}))
		if r.Status != 201 {
			t.Fatalf("feedback: %d %v", r.Status, r.Body)
		}
		time.Sleep(2 * time.Millisecond)
	}
	var got []string
	cursor := ""
	for pages := 0; ; pages++ {
		q := url.Values{"limit": {"2"}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		r := server(t, "GET /v1/server/feedback", key, "", q)
		if r.Status != 200 || pages > 5 {
			t.Fatalf("list: %d %v", r.Status, r.Body)
		}
		for _, it := range r.Body["items"].([]any) {
			item := it.(map[string]any)
			if item["username"] != user {
				t.Fatalf("item of another user: %v", item)
			}
			got = append(got, item["text"].(string))
		}
		next, _ := r.Body["nextCursor"].(string)
		if next == "" {
			break
		}
		cursor = next
	}
	if len(got) != 5 {
		t.Fatalf("listed %d items: %v", len(got), got)
	}
	for i := range got {
		if got[i] != texts[len(texts)-1-i] {
			t.Fatalf("not newest first: %v", got)
		}
	}
	future := url.Values{"since": {time.Now().Add(time.Hour).UTC().Format(time.RFC3339)}}
	if r := server(t, "GET /v1/server/feedback", key, "", future); r.Status != 200 || len(r.Body["items"].([]any)) != 0 {
		t.Fatalf("since in the future: %v", r.Body)
	}
	for _, limit := range []string{"1", strconv.Itoa(service.MaxFeedbackPage)} {
		if r := server(t, "GET /v1/server/feedback", key, "", url.Values{"limit": {limit}}); r.Status != 200 {
			t.Errorf("limit %s: %d %v", limit, r.Status, r.Body)
		}
	}
	for name, q := range map[string]url.Values{"limit 0": {"limit": {"0"}}, "limit 101": {"limit": {"101"}}, "limit x": {"limit": {"x"}}, "bad cursor": {"cursor": {"%%%"}}, "unknown": {"page": {"2"}}} {
		if r := server(t, "GET /v1/server/feedback", key, "", q); r.Status != 400 {
			t.Errorf("%s: %d %v", name, r.Status, r.Body)
		}
	}
}

// A disabled workspace refuses every route, public and server, and stores
// nothing.
func TestDisabledWorkspaceRefusesEverything(t *testing.T) {
	ws, key := workspaceWithKey(t, waymark.NewWorkspaceOptions{})
	ws.Disabled = true
	if err := graph.Store.PutWorkspace(context.Background(), ws); err != nil {
		t.Fatal(err)
	}
	user := uniqueUser(t)
	public := map[string]string{
		"identify": mustJSON(map[string]any{"workspace": ws.Code, "user": map[string]any{"username": user}}),
		"events":   mustJSON(map[string]any{"workspace": ws.Code, "username": user, "events": []any{map[string]any{"id": "d", "content": "hint", "contentId": "h", "action": "displayed", "at": "2026-01-01T00:00:00Z"}}}),
		"state":    mustJSON(map[string]any{"workspace": ws.Code, "username": user}),
		"feedback": mustJSON(map[string]any{"workspace": ws.Code, "username": user, "text": "x"}),
	}
	for fn, body := range public {
		if r := invoke(t, fn, body); r.Status != 403 || r.errorCode() != "workspace_disabled" {
			t.Errorf("%s: %d %v", fn, r.Status, r.Body)
		}
	}
	serverCalls := map[string]string{
		"POST /v1/server/identify":     mustJSON(map[string]any{"user": map[string]any{"username": user}}),
		"POST /v1/server/users/export": mustJSON(map[string]any{"username": user}),
		"POST /v1/server/users/delete": mustJSON(map[string]any{"usernames": []string{user}}),
		"GET /v1/server/feedback":      "",
	}
	for route, body := range serverCalls {
		if r := server(t, route, key, body, nil); r.Status != 403 || r.errorCode() != "workspace_disabled" {
			t.Errorf("%s: %d %v", route, r.Status, r.Body)
		}
	}
	if n := itemsOfUser(t, ws.UserKey(user)); n != 0 {
		t.Fatalf("a disabled workspace stored %d items", n)
	}
}

package apigw_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/waymarkhq/waymark/internal/apigw"
	"github.com/waymarkhq/waymark/internal/devstack"
	"github.com/waymarkhq/waymark/internal/fakeclock"
	"github.com/waymarkhq/waymark/internal/service"
	"github.com/waymarkhq/waymark/internal/waymark"
)

// edge is one limit of the README's "Limits" table, driven at its edge: the
// request built with the exact maximum is accepted, the one built with one
// more is refused naming the field.
type edge struct {
	name string
	max  int
	// send makes the request with the limited quantity at n and answers.
	send   func(t *testing.T, n int) response
	status int    // of the refusal
	code   string // of the refusal
	field  string // of the refusal, "" when the code names none
}

// TestLimitsAtTheirEdges sends every documented limit's maximum and one
// past it through the real handlers, on the public and the server routes.
func TestLimitsAtTheirEdges(t *testing.T) {
	ws, key := workspaceWithKey(t, waymark.NewWorkspaceOptions{})
	longCode := newWorkspace(t, waymark.NewWorkspaceOptions{Code: strings.Repeat("w", waymark.MaxWorkspaceChars-6) + randomSuffix()})
	repeat := strings.Repeat
	// chars makes n characters of two bytes each, for limits counted in
	// characters: a count of bytes would refuse the maximum.
	chars := func(n int) string { return repeat("é", n) }
	bytesOf := func(n int) string { return repeat("b", n) }
	// padded is a unique username of exactly n bytes (n ≥ 40).
	padded := func(t *testing.T, n int) string {
		u := uniqueUser(t)
		return u + repeat("u", n-len(u))
	}

	// Public routes, with the workspace's code and a unique user.
	call := func(t *testing.T, function string, body map[string]any) response {
		t.Helper()
		body["workspace"] = ws.Code
		if _, ok := body["user"]; !ok && body["username"] == nil {
			body["username"] = uniqueUser(t)
		}
		return invoke(t, function, mustJSON(body))
	}
	identifyUser := func(user map[string]any) func(t *testing.T) response {
		return func(t *testing.T) response {
			if user["username"] == nil {
				user["username"] = uniqueUser(t)
			}
			return call(t, "identify", map[string]any{"user": user})
		}
	}
	serverIdentify := func(t *testing.T, user map[string]any) response {
		if user["username"] == nil {
			user["username"] = uniqueUser(t)
		}
		return server(t, "POST /v1/server/identify", key, mustJSON(map[string]any{"user": user}), nil)
	}
	event := func(fields map[string]any) map[string]any {
		e := map[string]any{"id": waymark.NewID(), "content": "hint", "contentId": "h1", "action": "displayed", "at": "2026-01-01T00:00:00Z"}
		for k, v := range fields {
			e[k] = v
		}
		return e
	}
	events := func(evs ...map[string]any) func(t *testing.T) response {
		return func(t *testing.T) response { return call(t, "events", map[string]any{"events": evs}) }
	}
	feedback := func(fields map[string]any) func(t *testing.T) response {
		return func(t *testing.T) response {
			body := map[string]any{"text": "hello"}
			for k, v := range fields {
				body[k] = v
			}
			return call(t, "feedback", body)
		}
	}
	props := func(n int) map[string]any {
		p := map[string]any{}
		for i := range n {
			p[fmt.Sprintf("p%d", i)] = i
		}
		return p
	}
	scalars := func(n int) []any {
		a := make([]any, n)
		for i := range a {
			a[i] = i
		}
		return a
	}
	// nested is an object n levels deep counting props itself as level 1.
	nested := func(n int) map[string]any {
		v := map[string]any{"leaf": 1}
		for i := n; i > 1; i-- {
			v = map[string]any{fmt.Sprintf("l%d", i): v}
		}
		return v
	}
	nestedField := func(n int) string {
		field := "user.props"
		for i := 2; i <= n; i++ {
			field += fmt.Sprintf(".l%d", i)
		}
		return field
	}
	// profile is a user object for both identify routes.
	profileEdges := []struct {
		name  string
		max   int
		user  func(t *testing.T, n int) map[string]any
		field string
	}{
		{"username bytes", waymark.MaxUsernameBytes, func(t *testing.T, n int) map[string]any { return map[string]any{"username": padded(t, n)} }, "user.username"},
		{"email bytes", waymark.MaxProfileFieldBytes, func(_ *testing.T, n int) map[string]any { return map[string]any{"email": bytesOf(n)} }, "user.email"},
		{"firstname bytes", waymark.MaxProfileFieldBytes, func(_ *testing.T, n int) map[string]any { return map[string]any{"firstname": bytesOf(n)} }, "user.firstname"},
		{"lastname bytes", waymark.MaxProfileFieldBytes, func(_ *testing.T, n int) map[string]any { return map[string]any{"lastname": bytesOf(n)} }, "user.lastname"},
		{"role bytes", waymark.MaxProfileFieldBytes, func(_ *testing.T, n int) map[string]any { return map[string]any{"role": bytesOf(n)} }, "user.role"},
		{"props", waymark.MaxProps, func(_ *testing.T, n int) map[string]any { return map[string]any{"props": props(n)} }, "user.props"},
		{"prop key bytes", waymark.MaxPropKeyBytes, func(_ *testing.T, n int) map[string]any {
			return map[string]any{"props": map[string]any{repeat("k", n): 1}}
		}, "user.props." + repeat("k", waymark.MaxPropKeyBytes+1)},
		{"prop value bytes", waymark.MaxStringValueBytes, func(_ *testing.T, n int) map[string]any {
			return map[string]any{"props": map[string]any{"plan": bytesOf(n)}}
		}, "user.props.plan"},
		{"prop array items", waymark.MaxArrayItems, func(_ *testing.T, n int) map[string]any {
			return map[string]any{"props": map[string]any{"tags": scalars(n)}}
		}, "user.props.tags"},
		{"prop nesting", waymark.MaxNesting, func(_ *testing.T, n int) map[string]any { return map[string]any{"props": nested(n)} }, nestedField(waymark.MaxNesting + 1)},
	}

	var edges []edge
	for _, p := range profileEdges {
		edges = append(edges,
			edge{name: "identify " + p.name, max: p.max, send: func(t *testing.T, n int) response { return identifyUser(p.user(t, n))(t) }, status: 400, code: "invalid_argument", field: p.field},
			edge{name: "server identify " + p.name, max: p.max, send: func(t *testing.T, n int) response { return serverIdentify(t, p.user(t, n)) }, status: 400, code: "invalid_argument", field: p.field},
		)
	}
	edges = append(edges, []edge{
		{"state username bytes", waymark.MaxUsernameBytes, func(t *testing.T, n int) response {
			return call(t, "state", map[string]any{"username": padded(t, n)})
		}, 400, "invalid_argument", "username"},
		{"workspace code characters", waymark.MaxWorkspaceChars, func(t *testing.T, n int) response {
			code := longCode.Code
			if n > len(code) {
				code += "x"
			}
			return invoke(t, "state", mustJSON(map[string]any{"workspace": code, "username": uniqueUser(t)}))
		}, 400, "invalid_argument", "workspace"},
		{"events per batch", waymark.MaxEventsPerBatch, func(t *testing.T, n int) response {
			evs := make([]map[string]any, n)
			for i := range evs {
				evs[i] = event(nil)
			}
			return events(evs...)(t)
		}, 400, "invalid_argument", "events"},
		{"event id characters", waymark.MaxIDChars, func(t *testing.T, n int) response { return events(event(map[string]any{"id": chars(n)}))(t) }, 400, "invalid_argument", "events[0].id"},
		{"content id characters", waymark.MaxIDChars, func(t *testing.T, n int) response {
			return events(event(map[string]any{"contentId": chars(n)}))(t)
		}, 400, "invalid_argument", "events[0].contentId"},
		{"step characters", waymark.MaxIDChars, func(t *testing.T, n int) response {
			return events(event(map[string]any{"content": "tour", "action": "advanced", "step": chars(n)}))(t)
		}, 400, "invalid_argument", "events[0].step"},
		{"item characters", waymark.MaxIDChars, func(t *testing.T, n int) response {
			return events(event(map[string]any{"content": "checklist", "action": "item_completed", "item": chars(n)}))(t)
		}, 400, "invalid_argument", "events[0].item"},
		{"answer bytes", waymark.MaxStringValueBytes, func(t *testing.T, n int) response {
			return events(event(map[string]any{"content": "survey", "action": "answered", "answer": bytesOf(n)}))(t)
		}, 400, "invalid_argument", "events[0].answer"},
		{"answer items", waymark.MaxArrayItems, func(t *testing.T, n int) response {
			return events(event(map[string]any{"content": "survey", "action": "answered", "answer": scalars(n)}))(t)
		}, 400, "invalid_argument", "events[0].answer"},
		{"feedback text characters", waymark.MaxFeedbackChars, func(t *testing.T, n int) response { return feedback(map[string]any{"text": chars(n)})(t) }, 400, "invalid_argument", "text"},
		{"feedback rating", waymark.MaxRating, func(t *testing.T, n int) response { return feedback(map[string]any{"rating": n})(t) }, 400, "invalid_argument", "rating"},
		{"feedback category characters", waymark.MaxCategoryChars, func(t *testing.T, n int) response { return feedback(map[string]any{"category": chars(n)})(t) }, 400, "invalid_argument", "category"},
	}...)
	for _, env := range []struct {
		name string
		max  int
	}{{"url", waymark.MaxURLChars}, {"userAgent", waymark.MaxUserAgentChars}, {"language", waymark.MaxLanguageChars}, {"platform", waymark.MaxPlatformChars}} {
		edges = append(edges, edge{"feedback environment." + env.name + " characters", env.max, func(t *testing.T, n int) response {
			return feedback(map[string]any{"environment": map[string]any{env.name: chars(n)}})(t)
		}, 400, "invalid_argument", "environment." + env.name})
	}
	for _, side := range []string{"viewportWidth", "viewportHeight"} {
		edges = append(edges, edge{"feedback environment." + side, waymark.MaxViewport, func(t *testing.T, n int) response {
			return feedback(map[string]any{"environment": map[string]any{side: n}})(t)
		}, 400, "invalid_argument", "environment." + side})
	}
	edges = append(edges, []edge{
		{"server export username bytes", waymark.MaxUsernameBytes, func(t *testing.T, n int) response {
			return server(t, "POST /v1/server/users/export", key, mustJSON(map[string]any{"username": padded(t, n)}), nil)
		}, 400, "invalid_argument", "username"},
		{"server erase usernames", service.MaxErasePerCall, func(t *testing.T, n int) response {
			names := make([]string, n)
			for i := range names {
				names[i] = fmt.Sprintf("never-seen-%d-%s", i, waymark.NewID())
			}
			return server(t, "POST /v1/server/users/delete", key, mustJSON(map[string]any{"usernames": names}), nil)
		}, 400, "invalid_argument", "usernames"},
		{"server feedback limit", service.MaxFeedbackPage, func(t *testing.T, n int) response {
			return server(t, "GET /v1/server/feedback", key, "", url.Values{"limit": {strconv.Itoa(n)}})
		}, 400, "invalid_argument", "limit"},
		{"body bytes", waymark.MaxBodyBytes, func(t *testing.T, n int) response {
			return invokeEncoded(t, handlers, "identify", bodyOfSize(t, ws.Code, n), false)
		}, 413, "payload_too_large", ""},
		{"base64 body decoded bytes", waymark.MaxBodyBytes, func(t *testing.T, n int) response {
			return invokeEncoded(t, handlers, "identify", bodyOfSize(t, ws.Code, n), true)
		}, 413, "payload_too_large", ""},
	}...)

	for _, e := range edges {
		t.Run(e.name, func(t *testing.T) {
			if r := e.send(t, e.max); r.Status/100 != 2 {
				t.Fatalf("the maximum, %d: %d %v", e.max, r.Status, r.Body)
			}
			r := e.send(t, e.max+1)
			if r.Status != e.status || r.errorCode() != e.code || r.errorField() != e.field {
				t.Fatalf("one past the maximum, %d: %d %v, want %d %s on %q", e.max+1, r.Status, r.Body, e.status, e.code, e.field)
			}
		})
	}
}

// randomSuffix makes a long workspace code unique to a run.
func randomSuffix() string { return waymark.NewID()[:6] }

// bodyOfSize is an identify body of exactly n bytes (n ≥ 2000), made up
// to size by props and a first name within their own limits.
func bodyOfSize(t *testing.T, code string, n int) string {
	t.Helper()
	props := map[string]any{}
	user := map[string]any{"username": uniqueUser(t), "firstname": "", "props": props}
	body := func() string { return mustJSON(map[string]any{"workspace": code, "user": user}) }
	const tail = 200 // bytes left for the first name, at most 256
	for i := 0; n-len(body()) > waymark.MaxStringValueBytes+tail; i++ {
		props[fmt.Sprintf("pad%03d", i)] = strings.Repeat("x", waymark.MaxStringValueBytes)
	}
	props["last"] = ""
	props["last"] = strings.Repeat("x", max(0, n-len(body())-tail))
	user["firstname"] = strings.Repeat("f", n-len(body()))
	b := body()
	if len(b) != n {
		t.Fatalf("body of %d bytes, want %d", len(b), n)
	}
	return b
}

// invokeEncoded sends a body as API Gateway does, base64-encoded when
// encoded (a binary media type, or a body it cannot pass as text), and
// checks the call against the OpenAPI document with the body decoded.
func invokeEncoded(t *testing.T, hs map[string]apigw.Handler, function, body string, encoded bool) response {
	t.Helper()
	if !encoded {
		return invokeWith(t, hs, function, body, nil)
	}
	route := routeOf(t, function)
	req := events.APIGatewayV2HTTPRequest{
		Version: "2.0", RouteKey: route.RouteKey(), RawPath: route.Path,
		Headers: map[string]string{"content-type": "application/json"},
		Body:    base64.StdEncoding.EncodeToString([]byte(body)), IsBase64Encoded: true,
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			RequestID: waymark.NewID(), Stage: "$default", RouteKey: route.RouteKey(),
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: route.Method, Path: route.Path},
		},
	}
	resp, err := hs[function](context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	reqHeaders, respHeaders := http.Header{}, http.Header{}
	for k, v := range req.Headers {
		reqHeaders.Set(k, v)
	}
	for k, v := range resp.Headers {
		respHeaders.Set(k, v)
	}
	if err := spec.Check(route.Method, route.Path, reqHeaders, []byte(body), resp.StatusCode, respHeaders, []byte(resp.Body)); err != nil {
		t.Errorf("%s: OpenAPI: %v", function, err)
	}
	out := response{Status: resp.StatusCode, Headers: resp.Headers}
	if err := json.Unmarshal([]byte(resp.Body), &out.Body); err != nil {
		t.Fatalf("%s: answer is not JSON: %v: %s", function, err, resp.Body)
	}
	return out
}

// TestHMACExpirationAtItsEdges drives identity verification's expiration
// through the handlers on a clock that stands still: a hash expiring this
// very second and one expiring exactly MaxHMACLifetime ahead are accepted,
// a second beyond either edge is refused.
func TestHMACExpirationAtItsEdges(t *testing.T) {
	clk := fakeclock.New(time.Now().UTC().Truncate(time.Second))
	hs := clockedHandlers(t, stack.Config(), clk)
	now := clk.Now().Unix()
	lifetime := int64(waymark.MaxHMACLifetime / time.Second)
	for _, c := range []struct {
		name       string
		expiration int64
		status     int
		code       string
		field      string
	}{
		{"expiring this second", now, 200, "", ""},
		{"expired a second ago", now - 1, 401, "hmac_expired", ""},
		{"the longest lifetime", now + lifetime, 200, "", ""},
		{"a second longer", now + lifetime + 1, 401, "hmac_invalid", "hmac.expiration"},
	} {
		t.Run(c.name, func(t *testing.T) {
			user := uniqueUser(t)
			hash := waymark.SignUsername(devstack.DemoHMACSecret, user, &c.expiration)
			r := invokeWith(t, hs, "state", mustJSON(map[string]any{"workspace": devstack.DemoVerifiedWorkspace, "username": user,
				"hmac": map[string]any{"hash": hash, "expiration": c.expiration}}), nil)
			if r.Status != c.status || r.errorCode() != c.code || r.errorField() != c.field {
				t.Fatalf("%d %v, want %d %s on %q", r.Status, r.Body, c.status, c.code, c.field)
			}
		})
	}
}

// TestInvalidUTF8Refused: encoding/json would turn an invalid byte and a
// lone surrogate escape into U+FFFD, making "bob\xff" and "bob\udbff" one
// user; every route refuses both, and nothing is written.
func TestInvalidUTF8Refused(t *testing.T) {
	ws, key := workspaceWithKey(t, waymark.NewWorkspaceOptions{})
	for _, bad := range []struct{ name, username string }{
		{"invalid byte", "bob\xff"},
		{"lone surrogate escape", `bob\udbff`},
		{"lone low surrogate escape", `bob\udc00`},
	} {
		user := uniqueUser(t) + bad.username
		hint := `{"id":"e1","content":"hint","contentId":"h","action":"displayed","at":"2026-01-01T00:00:00Z"}`
		for _, c := range []struct {
			route string
			body  string
		}{
			{"POST /v1/identify", `{"workspace":"` + ws.Code + `","user":{"username":"` + user + `"}}`},
			{"POST /v1/events", `{"workspace":"` + ws.Code + `","username":"` + user + `","events":[` + hint + `]}`},
			{"POST /v1/state", `{"workspace":"` + ws.Code + `","username":"` + user + `"}`},
			{"POST /v1/feedback", `{"workspace":"` + ws.Code + `","username":"ada.lovelace@example.com","text":"` + user + `"}`},
			{"POST /v1/server/identify", `{"user":{"username":"ada.lovelace@example.com","props":{"note":"` + user + `"}}}`},
			{"POST /v1/server/users/export", `{"username":"` + user + `"}`},
			{"POST /v1/server/users/delete", `{"usernames":["` + user + `"]}`},
		} {
			t.Run(bad.name+" "+c.route, func(t *testing.T) {
				var r response
				if strings.Contains(c.route, "/server/") {
					r = server(t, c.route, key, c.body, nil)
				} else {
					r = invokeRoute(t, handlers, serverRoute(t, c.route), c.body, nil, nil)
				}
				if r.Status != 400 || r.errorCode() != "invalid_json" {
					t.Fatalf("%d %v, want 400 invalid_json", r.Status, r.Body)
				}
			})
		}
	}
	for _, u := range []string{"bob\ufffd", "ada.lovelace@example.com"} {
		if n := itemsOfUser(t, ws.UserKey(u)); n != 0 {
			t.Fatalf("refused bodies wrote %d items for %q", n, u)
		}
	}
}

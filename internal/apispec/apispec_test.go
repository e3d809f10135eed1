package apispec

import (
	"net/http"
	"slices"
	"strings"
	"testing"
)

// jsonHeaders are the headers of a JSON request or response; withRequestID
// adds the x-request-id every response carries.
func jsonHeaders() http.Header { return http.Header{"Content-Type": {"application/json"}} }

func withRequestID(h http.Header) http.Header {
	h.Set("x-request-id", "req-1")
	return h
}

const fullState = `{
 "tours":{"t1":{"status":"finished","step":"card-3","updatedAt":"2026-01-02T03:04:05Z"},
          "t2":{"status":"not_finished","updatedAt":"2026-01-02T03:04:05Z"}},
 "hints":{"h1":{"displayed":3,"dismissed":false,"lastDisplayedAt":"2026-01-02T03:04:05Z","updatedAt":"2026-01-02T03:04:05Z"}},
 "announcements":{"a1":{"displayed":1,"read":true,"readAt":"2026-01-02T03:04:05Z","lastDisplayedAt":"2026-01-02T03:04:05Z","updatedAt":"2026-01-02T03:04:05Z"}},
 "checklists":{"c1":{"status":"in_progress","items":{"i1":"done","item two":"done"},"updatedAt":"2026-01-02T03:04:05Z"}},
 "surveys":{"s1":{"status":"answered","answeredAt":"2026-01-02T03:04:05Z","updatedAt":"2026-01-02T03:04:05Z"}}}`

const emptyState = `{"tours":{},"hints":{},"announcements":{},"checklists":{},"surveys":{}}`

// call is one request and its response, as a test of the server would see it.
type call struct {
	method     string
	path       string
	reqHeaders http.Header
	reqBody    string
	status     int
	respHdrs   http.Header
	respBody   string
}

func (c call) check(t *testing.T) error {
	t.Helper()
	v, err := New()
	if err != nil {
		t.Fatal(err)
	}
	return v.Check(c.method, c.path, c.reqHeaders, []byte(c.reqBody), c.status, c.respHdrs, []byte(c.respBody))
}

// post is a POST of body to path answered with status and respBody.
func post(path, body string, status int, respBody string) call {
	return call{method: http.MethodPost, path: path, reqHeaders: jsonHeaders(), reqBody: body,
		status: status, respHdrs: withRequestID(jsonHeaders()), respBody: respBody}
}

func identify(user string) string {
	return `{"workspace":"acme-prod","user":` + user + `}`
}

func errorBody(code string) string {
	return `{"error":{"code":"` + code + `","message":"something"}}`
}

// serverKey has the shape of a workspace secret key: wmk_<code>_<id>_<64 hex>.
var serverKey = "wmk_acme-prod_k3y1d000_" + strings.Repeat("0123456789abcdef", 4)

// serverPost is a POST to the server API, authenticated by serverKey.
func serverPost(path, body string, status int, respBody string) call {
	c := post(path, body, status, respBody)
	c.reqHeaders.Set("Authorization", "Bearer "+serverKey)
	return c
}

// serverGet is a GET of the server API (path with its query), authenticated
// by serverKey.
func serverGet(path string, status int, respBody string) call {
	return call{method: http.MethodGet, path: path, reqHeaders: http.Header{"Authorization": {"Bearer " + serverKey}},
		status: status, respHdrs: withRequestID(jsonHeaders()), respBody: respBody}
}

// feedbackItem is one item of the server API's feedback listing, extra
// holding its optional fields.
func feedbackItem(id, extra string) string {
	return `{"id":"` + id + `","username":"user-42","text":"Nice.","createdAt":"2026-01-02T03:04:05Z"` + extra + `}`
}

// export is an export answer; user is a JSON value (null or an object).
func export(found bool, user, state, answers, feedback string) string {
	f := "false"
	if found {
		f = "true"
	}
	return `{"found":` + f + `,"user":` + user + `,"state":` + state + `,"surveyAnswers":` + answers + `,"feedback":[` + feedback + `],"groups":[]}`
}

func TestDocumentIsValidAndLoadedOnce(t *testing.T) {
	v1, err := New()
	if err != nil {
		t.Fatalf("docs/openapi.yaml: %v", err)
	}
	v2, err := New()
	if err != nil || v1 != v2 {
		t.Fatalf("New() loaded the document again: %p %p %v", v1, v2, err)
	}
}

func TestIdentifyPairPasses(t *testing.T) {
	// props nests objects 3 levels deep counting itself, the most allowed;
	// lastname is null (a JSON Schema 2020-12 type array) and the hash mixes
	// cases.
	req := `{"workspace":"acme-prod","user":{"username":"user-42","email":"ada@example.com","firstname":"Ada",` +
		`"lastname":null,"role":"admin","signUpAt":"2026-01-02T03:04:05Z","props":{"plan":"pro","seats":12,` +
		`"beta":null,"tags":["a",1,true],"company":{"name":"Acme","size":{"bucket":1}}}},` +
		`"hmac":{"hash":"` + strings.Repeat("aB", 32) + `","expiration":1767322800}}`
	resp := `{"user":{"firstSeenAt":"2026-01-02T03:04:05Z","lastSeenAt":"2026-01-02T03:04:05.123+01:00"},"state":` + fullState + `}`
	if err := post("/v1/identify", req, http.StatusOK, resp).check(t); err != nil {
		t.Fatal(err)
	}
}

func TestServerIdentifyPairPasses(t *testing.T) {
	// The same user object as /v1/identify, with no workspace and no hmac:
	// the key in the Authorization header stands for both.
	req := `{"user":{"username":"user-42","email":"ada@example.com","lastname":null,"signUpAt":"2026-01-02T03:04:05Z",` +
		`"props":{"plan":"pro","beta":null,"company":{"name":"Acme","size":{"bucket":1}}}}}`
	resp := `{"user":{"firstSeenAt":"2026-01-02T03:04:05Z","lastSeenAt":"2026-01-02T03:04:05Z"},"state":` + fullState + `}`
	if err := serverPost("/v1/server/identify", req, http.StatusOK, resp).check(t); err != nil {
		t.Fatal(err)
	}
	// The public identify's body is refused: workspace and hmac are unknown
	// properties here.
	public := serverPost("/v1/server/identify", identify(`{"username":"u"}`), http.StatusOK, resp)
	if err := public.check(t); err == nil {
		t.Fatal("a server identify carrying workspace was answered 200 and passed")
	}
}

func TestServerUnauthorizedPairPasses(t *testing.T) {
	req := `{"username":"user-42"}`
	missing := post("/v1/server/users/export", req, http.StatusUnauthorized,
		`{"error":{"code":"unauthorized","message":"missing, unknown or revoked secret key"}}`)
	if err := missing.check(t); err != nil {
		t.Fatal(err)
	}
	// 401 has one code per kind of route: the public routes' HMAC codes are
	// not the server API's, and unauthorized is not the public routes'.
	if err := post("/v1/server/users/export", req, http.StatusUnauthorized, errorBody("hmac_invalid")).check(t); err == nil {
		t.Fatal("hmac_invalid passed as a server API 401")
	}
	if err := post("/v1/state", `{"workspace":"acme-prod","username":"user-42"}`, http.StatusUnauthorized, errorBody("unauthorized")).check(t); err == nil {
		t.Fatal("unauthorized passed as a public route's 401")
	}
}

func TestExportNotFoundPasses(t *testing.T) {
	c := serverPost("/v1/server/users/export", `{"username":"nobody"}`, http.StatusOK, export(false, "null", emptyState, "{}", ""))
	if err := c.check(t); err != nil {
		t.Fatal(err)
	}
	// found false means nothing at all is stored.
	withUser := export(false, `{"username":"nobody","firstSeenAt":"2026-01-02T03:04:05Z","lastSeenAt":"2026-01-02T03:04:05Z"}`, emptyState, "{}", "")
	withFeedback := export(false, "null", emptyState, "{}", feedbackItem("fb1", ""))
	for name, body := range map[string]string{"a user": withUser, "feedback": withFeedback, "state": export(false, "null", fullState, "{}", "")} {
		if err := serverPost("/v1/server/users/export", `{"username":"nobody"}`, http.StatusOK, body).check(t); err == nil {
			t.Errorf("found false with %s passed", name)
		}
	}
}

func TestFeedbackPagePasses(t *testing.T) {
	page := `{"items":[` +
		feedbackItem("fb2", `,"rating":0,"category":"bug report","environment":{"url":"https://a.example/x","userAgent":"UA","language":"en-GB","platform":"Linux","viewportWidth":1280,"viewportHeight":720}`) + `,` +
		feedbackItem("fb1", "") + `],"nextCursor":"eyJtIjoiMjAyNi0wMSJ9"}`
	first := serverGet("/v1/server/feedback?since=2026-01-01T00:00:00Z&limit=2", http.StatusOK, page)
	if err := first.check(t); err != nil {
		t.Fatal(err)
	}
	last := serverGet("/v1/server/feedback?cursor=eyJtIjoiMjAyNi0wMSJ9&limit=2", http.StatusOK, `{"items":[]}`)
	if err := last.check(t); err != nil {
		t.Fatal(err)
	}
}

func TestStateWithAllFiveKindsPasses(t *testing.T) {
	c := post("/v1/state", `{"workspace":"acme-prod","username":"user-42"}`, http.StatusOK, `{"state":`+fullState+`}`)
	if err := c.check(t); err != nil {
		t.Fatal(err)
	}
}

func TestUndocumentedStatusFails(t *testing.T) {
	c := post("/v1/state", `{"workspace":"acme-prod","username":"user-42"}`, http.StatusConflict, errorBody("invalid_argument"))
	err := c.check(t)
	if err == nil || !strings.Contains(err.Error(), "status 409 is not documented") {
		t.Fatalf("got %v, want status 409 is not documented", err)
	}
}

func TestUnknownErrorCodeFails(t *testing.T) {
	c := post("/v1/state", `{"workspace":"acme-prod","username":"user-42"}`, http.StatusBadRequest, errorBody("bad_input"))
	if err := c.check(t); err == nil {
		t.Fatal("an error body with an unknown code passed")
	}
}

func TestUnknownRequestPropertyFails(t *testing.T) {
	body := `{"workspace":"acme-prod","username":"user-42","extra":1}`
	if err := post("/v1/state", body, http.StatusOK, `{"state":`+emptyState+`}`).check(t); err == nil {
		t.Fatal("a request with an unknown property was answered 200 and passed")
	}
	// Refusing it is what the server must do, and that answer is checked.
	refused := post("/v1/state", body, http.StatusBadRequest,
		`{"error":{"code":"invalid_argument","message":"extra: unknown field","field":"extra"}}`)
	if err := refused.check(t); err != nil {
		t.Fatalf("a 400 refusing an unknown property: %v", err)
	}
}

// TestCalls covers the rest of the document: each case says whether Check
// must pass it.
func TestCalls(t *testing.T) {
	okState := `{"state":` + emptyState + `}`
	identified := `{"user":{"firstSeenAt":"2026-01-02T03:04:05Z","lastSeenAt":"2026-01-02T03:04:05Z"},"state":` + emptyState + `}`
	stateReq := `{"workspace":"acme-prod","username":"user-42"}`
	events := func(evs ...string) string {
		return `{"workspace":"acme-prod","username":"user-42","events":[` + strings.Join(evs, ",") + `]}`
	}
	ev := func(content, action, extra string) string {
		return `{"id":"e1","content":"` + content + `","contentId":"x1","action":"` + action + `","at":"2026-01-02T03:04:05Z"` + extra + `}`
	}
	eventsOK := `{"accepted":1,"duplicates":0,"state":` + emptyState + `}`
	feedback := func(extra string) string {
		return `{"workspace":"acme-prod","username":"user-42","text":"Nice."` + extra + `}`
	}
	feedbackOK := `{"id":"fb1","createdAt":"2026-01-02T03:04:05Z"}`
	preflight := func(reqHeaders http.Header, respHeaders http.Header, body string) call {
		return call{method: http.MethodOptions, path: "/v1/events", reqHeaders: reqHeaders,
			status: http.StatusNoContent, respHdrs: respHeaders, respBody: body}
	}
	preflightReq := http.Header{"Origin": {"https://app.example.com"}, "Access-Control-Request-Method": {"POST"},
		"Access-Control-Request-Headers": {"content-type"}}
	preflightResp := http.Header{"Access-Control-Allow-Origin": {"*"}, "Access-Control-Allow-Methods": {"GET,OPTIONS,POST"},
		"Access-Control-Allow-Headers": {"content-type"}, "Access-Control-Max-Age": {"86400"}}
	throttled := post("/v1/state", stateReq, http.StatusTooManyRequests, errorBody("throttled"))
	throttled.respHdrs.Set("Retry-After", "1")
	noRetryAfter := post("/v1/state", stateReq, http.StatusServiceUnavailable, errorBody("unavailable"))
	noRequestID := post("/v1/state", stateReq, http.StatusOK, okState)
	noRequestID.respHdrs.Del("x-request-id")
	xml := post("/v1/state", stateReq, http.StatusUnsupportedMediaType, errorBody("unsupported_media_type"))
	xml.reqHeaders.Set("Content-Type", "application/xml")
	xmlAnswered := post("/v1/state", stateReq, http.StatusOK, okState)
	xmlAnswered.reqHeaders.Set("Content-Type", "application/xml")
	textPlain := post("/v1/state", stateReq, http.StatusOK, okState)
	textPlain.reqHeaders.Set("Content-Type", "text/plain;charset=UTF-8")
	textPlainInvalid := post("/v1/state", `{"workspace":"acme-prod"}`, http.StatusOK, okState)
	textPlainInvalid.reqHeaders.Set("Content-Type", "text/plain")
	noType := post("/v1/state", stateReq, http.StatusOK, okState)
	noType.reqHeaders = nil
	notFound := export(false, "null", emptyState, "{}", "")
	exportReq := `{"username":"user-42"}`
	exportUser := func(fields string) string {
		return export(true, `{"username":"user-42"`+fields+`,"firstSeenAt":"2026-01-02T03:04:05Z","lastSeenAt":"2026-01-02T03:04:05Z"}`, emptyState, "{}", "")
	}
	page := func(items ...string) string { return `{"items":[` + strings.Join(items, ",") + `]}` }
	usernames := func(n int) string {
		return `{"usernames":[` + strings.Join(slices.Repeat([]string{`"u"`}, n), ",") + `]}`
	}
	eraseThrottled := serverPost("/v1/server/users/delete", usernames(1), http.StatusTooManyRequests, errorBody("throttled"))
	eraseThrottled.respHdrs.Set("Retry-After", "1")
	feedbackBody := serverGet("/v1/server/feedback", http.StatusUnsupportedMediaType, errorBody("unsupported_media_type"))
	feedbackBody.reqHeaders.Set("Content-Type", "application/xml")
	feedbackBody.reqBody = "<x/>"

	for name, tc := range map[string]struct {
		c    call
		pass bool
	}{
		"identify minimal":               {post("/v1/identify", identify(`{"username":"u"}`), 200, identified), true},
		"identify echoes personal data":  {post("/v1/identify", identify(`{"username":"u"}`), 200, `{"user":{"username":"u","firstSeenAt":"2026-01-02T03:04:05Z","lastSeenAt":"2026-01-02T03:04:05Z"},"state":`+emptyState+`}`), false},
		"profile field not string":       {post("/v1/identify", identify(`{"username":"u","lastname":5}`), 200, identified), false},
		"signUpAt not a date-time":       {post("/v1/identify", identify(`{"username":"u","signUpAt":"yesterday"}`), 200, identified), false},
		"props nested 4 deep":            {post("/v1/identify", identify(`{"username":"u","props":{"a":{"b":{"c":{}}}}}`), 200, identified), false},
		"props nested null":              {post("/v1/identify", identify(`{"username":"u","props":{"a":{"b":null}}}`), 200, identified), false},
		"props array with null":          {post("/v1/identify", identify(`{"username":"u","props":{"a":[1,null]}}`), 200, identified), false},
		"profile field with a newline":   {post("/v1/identify", identify(`{"username":"u","firstname":"A\nB"}`), 200, identified), false},
		"hmac expiration zero":           {post("/v1/state", `{"workspace":"w","username":"u","hmac":{"hash":"`+strings.Repeat("0", 64)+`","expiration":0}}`, 200, okState), false},
		"events step on a hint":          {post("/v1/events", events(ev("hint", "displayed", `,"step":"s2"`)), 200, eventsOK), false},
		"events step on tour finished":   {post("/v1/events", events(ev("tour", "finished", `,"step":"s2"`)), 200, eventsOK), true},
		"events item on completed":       {post("/v1/events", events(ev("checklist", "completed", `,"item":"i1"`)), 200, eventsOK), false},
		"events answer on displayed":     {post("/v1/events", events(ev("survey", "displayed", `,"answer":1`)), 200, eventsOK), false},
		"prop key with a space":          {post("/v1/identify", identify(`{"username":"u","props":{"a b":1}}`), 200, identified), false},
		"prop array of objects":          {post("/v1/identify", identify(`{"username":"u","props":{"a":[{}]}}`), 200, identified), false},
		"prop string over 1024":          {post("/v1/identify", identify(`{"username":"u","props":{"a":"`+strings.Repeat("x", 1025)+`"}}`), 200, identified), false},
		"username with a control char":   {post("/v1/state", `{"workspace":"acme-prod","username":"a\u0007b"}`, 200, okState), false},
		"username empty":                 {post("/v1/state", `{"workspace":"acme-prod","username":""}`, 200, okState), false},
		"workspace with a dot":           {post("/v1/state", `{"workspace":"acme.prod","username":"u"}`, 200, okState), false},
		"hmac hash too short":            {post("/v1/state", `{"workspace":"w","username":"u","hmac":{"hash":"abc"}}`, 200, okState), false},
		"state missing a kind":           {post("/v1/state", stateReq, 200, `{"state":{"tours":{},"hints":{},"announcements":{},"checklists":{}}}`), false},
		"state bad tour status":          {post("/v1/state", stateReq, 200, `{"state":{"tours":{"t":{"status":"done","updatedAt":"2026-01-02T03:04:05Z"}},"hints":{},"announcements":{},"checklists":{},"surveys":{}}}`), false},
		"checklist item not done":        {post("/v1/state", stateReq, 200, `{"state":{"tours":{},"hints":{},"announcements":{},"checklists":{"c":{"status":"in_progress","items":{"i":"todo"},"updatedAt":"2026-01-02T03:04:05Z"}},"surveys":{}}}`), false},
		"events tour advanced":           {post("/v1/events", events(ev("tour", "advanced", `,"step":"s2"`)), 200, eventsOK), true},
		"events advanced without step":   {post("/v1/events", events(ev("tour", "advanced", "")), 200, eventsOK), false},
		"events hint cannot finish":      {post("/v1/events", events(ev("hint", "finished", "")), 200, eventsOK), false},
		"events item without item":       {post("/v1/events", events(ev("checklist", "item_completed", "")), 200, eventsOK), false},
		"events survey answered":         {post("/v1/events", events(ev("survey", "answered", `,"answer":["a",2]`)), 200, eventsOK), true},
		"events answered without answer": {post("/v1/events", events(ev("survey", "answered", "")), 200, eventsOK), false},
		"events every combination": {post("/v1/events", events(ev("tour", "started", ""), ev("tour", "finished", ""), ev("tour", "skipped", ""),
			ev("hint", "displayed", ""), ev("hint", "dismissed", ""), ev("announcement", "displayed", ""), ev("announcement", "read", ""),
			ev("checklist", "item_completed", `,"item":"i1"`), ev("checklist", "completed", ""), ev("checklist", "dismissed", ""),
			ev("survey", "displayed", ""), ev("survey", "answered", `,"answer":"yes"`), ev("survey", "dismissed", "")), 200, eventsOK), true},
		"events none":                {post("/v1/events", events(), 200, eventsOK), false},
		"events 26":                  {post("/v1/events", events(slices.Repeat([]string{ev("hint", "displayed", "")}, 26)...), 200, eventsOK), false},
		"events id not printable":    {post("/v1/events", events(strings.Replace(ev("hint", "displayed", ""), `"e1"`, `"e\t1"`, 1)), 200, eventsOK), false},
		"events answer an object":    {post("/v1/events", events(ev("survey", "answered", `,"answer":{}`)), 200, eventsOK), false},
		"feedback full":              {post("/v1/feedback", feedback(`,"rating":10,"category":"bug report","environment":{"url":"https://a.example/x","userAgent":"UA","language":"en-GB","platform":"Linux","viewportWidth":1280,"viewportHeight":0}`), 201, feedbackOK), true},
		"feedback answered 200":      {post("/v1/feedback", feedback(""), 200, feedbackOK), false},
		"feedback rating 11":         {post("/v1/feedback", feedback(`,"rating":11`), 201, feedbackOK), false},
		"feedback empty text":        {post("/v1/feedback", `{"workspace":"w","username":"u","text":""}`, 201, feedbackOK), false},
		"feedback unknown env field": {post("/v1/feedback", feedback(`,"environment":{"screen":1}`), 201, feedbackOK), false},
		"invalid body refused":       {post("/v1/feedback", `{"workspace":`, 400, errorBody("invalid_json")), true},
		"invalid body answered 500":  {post("/v1/feedback", `{"workspace":`, 500, errorBody("internal")), false},
		"wrong code for status":      {post("/v1/state", stateReq, 404, errorBody("invalid_argument")), false},
		"error without message":      {post("/v1/state", stateReq, 404, `{"error":{"code":"unknown_workspace"}}`), false},
		"hmac expired":               {post("/v1/state", stateReq, 401, errorBody("hmac_expired")), true},
		"throttled with Retry-After": {throttled, true},
		"missing Retry-After":        {noRetryAfter, false},
		"missing x-request-id":       {noRequestID, false},
		"XML refused":                {xml, true},
		"XML answered":               {xmlAnswered, false},
		"plain text read as JSON":    {textPlain, true},
		"plain text checked as JSON": {textPlainInvalid, false},
		"no content type":            {noType, true},
		"preflight":                  {preflight(preflightReq, preflightResp, ""), true},
		"preflight with a body":      {preflight(preflightReq, preflightResp, "{}"), false},
		"preflight without origin":   {preflight(http.Header{"Access-Control-Request-Method": {"POST"}}, preflightResp, ""), false},
		"no response headers":        {call{method: http.MethodPost, path: "/v1/state", reqHeaders: jsonHeaders(), reqBody: stateReq, status: 200, respBody: okState}, false},
		"undocumented path":          {post("/v1/users", stateReq, 200, okState), false},

		"server identify with hmac":        {serverPost("/v1/server/identify", `{"user":{"username":"u"},"hmac":{"hash":"`+strings.Repeat("0", 64)+`"}}`, 200, identified), false},
		"server identify props nested 4":   {serverPost("/v1/server/identify", `{"user":{"username":"u","props":{"a":{"b":{"c":{}}}}}}`, 200, identified), false},
		"server identify echoes user":      {serverPost("/v1/server/identify", `{"user":{"username":"u"}}`, 200, `{"user":{"username":"u","firstSeenAt":"2026-01-02T03:04:05Z","lastSeenAt":"2026-01-02T03:04:05Z"},"state":`+emptyState+`}`), false},
		"server workspace disabled":        {serverPost("/v1/server/identify", `{"user":{"username":"u"}}`, 403, errorBody("workspace_disabled")), true},
		"server origin not allowed":        {serverPost("/v1/server/identify", `{"user":{"username":"u"}}`, 403, errorBody("origin_not_allowed")), false},
		"server unknown workspace":         {serverPost("/v1/server/identify", `{"user":{"username":"u"}}`, 404, errorBody("unknown_workspace")), false},
		"export found":                     {serverPost("/v1/server/users/export", exportReq, 200, export(true, `{"username":"user-42","email":"","role":"admin","signUpAt":"2026-01-02T03:04:05Z","props":{"plan":"pro","a":{"b":{"c":[1,"x"]}}},"firstSeenAt":"2026-01-02T03:04:05Z","lastSeenAt":"2026-01-02T03:04:05Z"}`, fullState, `{"s1":["a",2,true]}`, feedbackItem("fb1", `,"rating":3`))), true},
		"export state without a user":      {serverPost("/v1/server/users/export", exportReq, 200, export(true, "null", fullState, `{"s1":"yes"}`, "")), true},
		"export user null email":           {serverPost("/v1/server/users/export", exportReq, 200, exportUser(`,"email":null`)), false},
		"export user null prop":            {serverPost("/v1/server/users/export", exportReq, 200, exportUser(`,"props":{"a":null}`)), false},
		"export user without firstSeenAt":  {serverPost("/v1/server/users/export", exportReq, 200, export(true, `{"username":"user-42","lastSeenAt":"2026-01-02T03:04:05Z"}`, emptyState, "{}", "")), false},
		"export user unknown field":        {serverPost("/v1/server/users/export", exportReq, 200, exportUser(`,"version":3`)), false},
		"export answer an object":          {serverPost("/v1/server/users/export", exportReq, 200, export(true, "null", fullState, `{"s1":{}}`, "")), false},
		"export without surveyAnswers":     {serverPost("/v1/server/users/export", exportReq, 200, `{"found":false,"user":null,"state":`+emptyState+`,"feedback":[]}`), false},
		"export with a workspace":          {serverPost("/v1/server/users/export", `{"workspace":"acme-prod","username":"u"}`, 200, notFound), false},
		"export without a username":        {serverPost("/v1/server/users/export", `{}`, 200, notFound), false},
		"export missing username refused":  {serverPost("/v1/server/users/export", `{}`, 400, `{"error":{"code":"invalid_argument","message":"username: required","field":"username"}}`), true},
		"feedback page empty limit":        {serverGet("/v1/server/feedback?limit=", 200, page()), true},
		"feedback page limit 0":            {serverGet("/v1/server/feedback?limit=0", 200, page()), false},
		"feedback page limit 101":          {serverGet("/v1/server/feedback?limit=101", 200, page()), false},
		"feedback page since not a time":   {serverGet("/v1/server/feedback?since=yesterday", 200, page()), false},
		"feedback page unknown parameter":  {serverGet("/v1/server/feedback?page=2", 400, `{"error":{"code":"invalid_argument","message":"page: unknown query parameter","field":"page"}}`), true},
		"feedback page body refused":       {feedbackBody, true},
		"feedback item without username":   {serverGet("/v1/server/feedback", 200, page(`{"id":"fb1","text":"Nice.","createdAt":"2026-01-02T03:04:05Z"}`)), false},
		"feedback item rating 11":          {serverGet("/v1/server/feedback", 200, page(feedbackItem("fb1", `,"rating":11`))), false},
		"feedback item unknown field":      {serverGet("/v1/server/feedback", 200, page(feedbackItem("fb1", `,"userKey":"k"`))), false},
		"feedback page empty nextCursor":   {serverGet("/v1/server/feedback", 200, `{"items":[],"nextCursor":""}`), false},
		"feedback page posted":             {serverPost("/v1/server/feedback", `{}`, 200, page()), false},
		"erase":                            {serverPost("/v1/server/users/delete", `{"usernames":["u1","u2","u1"]}`, 200, `{"users":1,"items":7,"attachments":0}`), true},
		"erase nothing stored":             {serverPost("/v1/server/users/delete", usernames(100), 200, `{"users":0,"items":0,"attachments":0}`), true},
		"erase no usernames":               {serverPost("/v1/server/users/delete", usernames(0), 200, `{"users":0,"items":0,"attachments":0}`), false},
		"erase 101 usernames":              {serverPost("/v1/server/users/delete", usernames(101), 200, `{"users":0,"items":0,"attachments":0}`), false},
		"erase empty username":             {serverPost("/v1/server/users/delete", `{"usernames":[""]}`, 200, `{"users":0,"items":0,"attachments":0}`), false},
		"erase items without users":        {serverPost("/v1/server/users/delete", usernames(1), 200, `{"users":0,"items":3,"attachments":0}`), false},
		"erase users without items":        {serverPost("/v1/server/users/delete", usernames(1), 200, `{"users":1,"items":0,"attachments":0}`), false},
		"erase files only":                 {serverPost("/v1/server/users/delete", usernames(1), 200, `{"users":1,"items":0,"attachments":2}`), true},
		"erase files without users":        {serverPost("/v1/server/users/delete", usernames(1), 200, `{"users":0,"items":0,"attachments":2}`), false},
		"erase throttled":                  {eraseThrottled, true},
		"erase unavailable no Retry-After": {serverPost("/v1/server/users/delete", usernames(1), 503, errorBody("unavailable")), false},
		"undocumented method":              {call{method: http.MethodGet, path: "/v1/state", status: 200, respHdrs: withRequestID(jsonHeaders()), respBody: okState}, false},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			err := tc.c.check(t)
			if tc.pass && err != nil {
				t.Fatalf("want pass, got %v", err)
			}
			if !tc.pass && err == nil {
				t.Fatal("want failure, passed")
			}
			if err != nil {
				t.Log(err) // shows, under -v, that each case fails for its reason
			}
		})
	}
}

func BenchmarkCheck(b *testing.B) {
	v, err := New()
	if err != nil {
		b.Fatal(err)
	}
	req := []byte(`{"workspace":"acme-prod","username":"user-42"}`)
	resp := []byte(`{"state":` + fullState + `}`)
	reqHeaders, respHeaders := jsonHeaders(), withRequestID(jsonHeaders())
	for b.Loop() {
		if err := v.Check(http.MethodPost, "/v1/state", reqHeaders, req, http.StatusOK, respHeaders, resp); err != nil {
			b.Fatal(err)
		}
	}
}

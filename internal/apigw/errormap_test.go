package apigw_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/waymarkhq/waymark/internal/apigw"
	"github.com/waymarkhq/waymark/internal/config"
	"github.com/waymarkhq/waymark/internal/schema"
	"github.com/waymarkhq/waymark/internal/service"
	"github.com/waymarkhq/waymark/internal/waymark"
	"github.com/waymarkhq/waymark/internal/wiring"
)

// failure is a class of failure of a DynamoDB or KMS call.
type failure string

const (
	// failThrottled answers with the service's throttling error.
	failThrottled failure = "throttled"
	// failServerError answers 500 (DynamoDB's InternalServerError, KMS's
	// KMSInternalException).
	failServerError failure = "server error"
	// failLostAnswer lets the engine apply the request and loses its
	// answer: the connection is reset.
	failLostAnswer failure = "lost answer"
	// failTimeout never answers: the call ends when its context does.
	failTimeout failure = "timeout"
	// failAccessDenied answers as IAM does for a call the role may not
	// make, naming the resource in its message.
	failAccessDenied failure = "access denied"
	// failStuck holds the call for opFaults.stall whatever its context
	// says (a connection stuck in a read), then passes it on.
	failStuck failure = "stuck"
)

// opFaults sits between the SDK and the real local engines and fails the
// calls of one operation: its X-Amz-Target (DynamoDB_20120810.GetItem,
// TrentService.Decrypt; DynamoDB_20120810.* for all of a service's) and, when
// table is set, its table. Other calls pass.
type opFaults struct {
	target string
	table  string // the physical table name; "" for any (and KMS)
	fail   failure
	// only, when set, fails only the first only matching calls.
	only int64
	// rate, when set, fails each matching call with this probability.
	rate  float64
	rnd   *rand.Rand
	mu    sync.Mutex
	stall time.Duration
	// gone is closed when the test ends: a call left hanging gives up.
	gone chan struct{}
	// matched counts the calls of the operation (those rate chose).
	matched atomic.Int64
}

func newOpFaults(t testing.TB, target, logicalTable string, fail failure) *opFaults {
	f := &opFaults{target: target, fail: fail, gone: make(chan struct{})}
	if logicalTable != "" {
		f.table = stack.Tables[logicalTable]
	}
	t.Cleanup(func() { close(f.gone) })
	return f
}

func (f *opFaults) Do(req *http.Request) (*http.Response, error) {
	body, err := io.ReadAll(req.Body)
	req.Body.Close()
	if err != nil {
		return nil, err
	}
	req.Body = io.NopCloser(bytes.NewReader(body))
	if !f.matches(req, body) {
		return http.DefaultClient.Do(req)
	}
	kmsCall := strings.HasPrefix(f.target, "TrentService.")
	switch f.fail {
	case failThrottled:
		if kmsCall {
			return errorAnswer(req, 400, "ThrottlingException", "Rate exceeded"), nil
		}
		return errorAnswer(req, 400, "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
			"The level of configured provisioned throughput for the table was exceeded."), nil
	case failServerError:
		if kmsCall {
			return errorAnswer(req, 500, "KMSInternalException", "injected internal failure"), nil
		}
		return errorAnswer(req, 500, "com.amazon.coral.service#InternalServerError", "injected internal failure"), nil
	case failAccessDenied:
		return errorAnswer(req, 400, "AccessDeniedException", "User: arn:aws:sts::123456789012:assumed-role/waymark-fn/injected "+
			"is not authorized to perform: "+f.target+" on resource: arn:aws:dynamodb:eu-central-1:123456789012:table/"+f.table), nil
	case failLostAnswer:
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return nil, errAnswerLost
	case failTimeout:
		select {
		case <-req.Context().Done():
			return nil, req.Context().Err()
		case <-f.gone:
			return nil, errAnswerLost
		}
	case failStuck:
		select {
		case <-time.After(f.stall):
		case <-f.gone:
		}
		return http.DefaultClient.Do(req)
	}
	panic("opFaults: no failure " + string(f.fail))
}

// errAnswerLost is what a connection reset while the answer was read gives.
var errAnswerLost = &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}

// matches counts a call of the operation and says whether it fails.
func (f *opFaults) matches(req *http.Request, body []byte) bool {
	if target := req.Header.Get("X-Amz-Target"); target != f.target && !(strings.HasSuffix(f.target, ".*") && strings.HasPrefix(target, strings.TrimSuffix(f.target, "*"))) {
		return false
	}
	if f.table != "" {
		var in struct{ TableName string }
		if json.Unmarshal(body, &in) != nil || in.TableName != f.table {
			return false
		}
	}
	if f.rate > 0 {
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.rnd.Float64() >= f.rate {
			return false
		}
	}
	n := f.matched.Add(1)
	return f.only == 0 || n <= f.only
}

// errorAnswer is an AWS JSON protocol error answer.
func errorAnswer(req *http.Request, status int, errType, message string) *http.Response {
	body := `{"__type":"` + errType + `","message":"` + message + `"}`
	return &http.Response{
		StatusCode: status, Status: http.StatusText(status), Request: req, ContentLength: int64(len(body)),
		Header: http.Header{"Content-Type": {"application/x-amz-json-1.0"}, "X-Amzn-Requestid": {"injected-request-id"}},
		Body:   io.NopCloser(strings.NewReader(body)),
	}
}

// graphWithFaults wires a Waymark whose DynamoDB and KMS calls go through
// faults, with the retry configuration deployed functions have
// (config.Clients), and whose handlers run with a function deadline of
// timeout, as Lambda's do. It shares nothing (caches included) with the
// suite's Waymark. Its log goes to logs as well as to the suite's.
func graphWithFaults(t testing.TB, faults *opFaults, timeout time.Duration, logs io.Writer) map[string]apigw.Handler {
	t.Helper()
	cfg := stack.Config()
	dbClient, kmsClient, err := cfg.Clients(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	dbClient = dynamodb.New(dbClient.Options(), func(o *dynamodb.Options) { o.HTTPClient = faults })
	kmsClient = kms.New(kmsClient.Options(), func(o *kms.Options) { o.HTTPClient = faults })
	store, _ := wiring.SealedStore(dbClient, kmsClient, cfg)
	api := apigw.New(service.New(store, service.Options{}), wiring.Logger(io.MultiWriter(&logBuffer, logs), "info"))
	hs := map[string]apigw.Handler{}
	for name, h := range api.Handlers() {
		hs[name] = func(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
			ctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			return h(ctx, req)
		}
	}
	return hs
}

// A call site of the request path: the operation whose calls fail and the
// route whose request makes it.
type callSite struct {
	name     string
	target   string
	table    string
	function string
	// writes says the request writes user data: when a KMS call fails,
	// nothing may be written.
	writes bool
}

var requestPath = []callSite{
	{"workspace read", "DynamoDB_20120810.GetItem", schema.WorkspacesTable, "state", false},
	{"workspace secrets (KMS Decrypt)", "TrentService.Decrypt", "", "state", false},
	{"state query", "DynamoDB_20120810.Query", schema.ContentStateTable, "state", false},
	{"user read", "DynamoDB_20120810.GetItem", schema.UsersTable, "identify", true},
	{"user write", "DynamoDB_20120810.PutItem", schema.UsersTable, "identify", true},
	{"user seen (update)", "DynamoDB_20120810.UpdateItem", schema.UsersTable, "events", true},
	{"content write", "DynamoDB_20120810.UpdateItem", schema.ContentStateTable, "events", true},
	{"feedback write", "DynamoDB_20120810.PutItem", schema.FeedbackTable, "feedback", true},
	{"data key (KMS GenerateDataKey) for identify", "TrentService.GenerateDataKey", "", "identify", true},
	{"data key (KMS GenerateDataKey) for feedback", "TrentService.GenerateDataKey", "", "feedback", true},
}

// successStatus is each function's answer when all goes well.
var successStatus = map[string]int{"state": 200, "identify": 200, "events": 200, "feedback": 201}

// requestBody is a valid request of the function for a new user.
func requestBody(t testing.TB, function, code, user string) string {
	t.Helper()
	remember("fault-map@example.com", "feedback written under injected faults")
	switch function {
	case "state":
		return mustJSON(map[string]any{"workspace": code, "username": user})
	case "identify":
		return mustJSON(map[string]any{"workspace": code, "user": map[string]any{"username": user, "email": "fault-map@example.com"}})
	case "events":
		return mustJSON(map[string]any{"workspace": code, "username": user, "events": []any{
			map[string]any{"id": "e-" + waymark.NewID(), "content": "hint", "contentId": "h1", "action": "displayed", "at": "2026-01-01T00:00:00Z"},
		}})
	case "feedback":
		return mustJSON(map[string]any{"workspace": code, "username": user, "text": "feedback written under injected faults"})
	}
	t.Fatalf("no request for %s", function)
	return ""
}

// The answer each class of failure gets, after the SDK's retries (as
// deployed): docs in README.md, "Errors".
var wantFor = map[failure]struct {
	status     int
	code       string
	retryAfter string
}{
	failThrottled:    {429, waymark.EThrottled, "1"},
	failServerError:  {503, waymark.EUnavailable, "2"},
	failLostAnswer:   {503, waymark.EUnavailable, "2"},
	failTimeout:      {503, waymark.EUnavailable, "2"},
	failAccessDenied: {500, waymark.EInternal, ""},
}

// leakMarkers are what the cause of a failure names: none may reach the
// caller.
var leakMarkers = []string{"arn:", "Exception", "InternalServerError", "injected", "dynamo", "DynamoDB", "kms", "KMS", "Trent", "GetItem", "PutItem", "UpdateItem", "Query", "Decrypt", "GenerateDataKey", "it-", "context deadline", "connection"}

// slowMachineTimeout is the function timeout of requests whose answer, not
// its time, is under test.
const slowMachineTimeout = 3 * config.FunctionTimeout

// faultCase is one request made while one operation fails.
type faultCase struct {
	name    string
	site    callSite
	fail    failure
	timeout time.Duration
	faults  *opFaults
	logs    *syncBuffer
	hs      map[string]apigw.Handler
	ws      *waymark.Workspace
	user    string
	event   events.APIGatewayV2HTTPRequest
	// Set by send.
	answer events.APIGatewayV2HTTPResponse
	err    error
	took   time.Duration
}

func newFaultCase(t *testing.T, site callSite, fail failure, timeout time.Duration) *faultCase {
	t.Helper()
	c := &faultCase{name: site.name + "/" + string(fail), site: site, fail: fail, timeout: timeout, logs: &syncBuffer{}, user: uniqueUser(t)}
	c.faults = newOpFaults(t, site.target, site.table, fail)
	c.hs = graphWithFaults(t, c.faults, timeout, c.logs)
	c.ws = newWorkspace(t, waymark.NewWorkspaceOptions{})
	c.event = apiEvent(t, site.function, requestBody(t, site.function, c.ws.Code, c.user))
	return c
}

// sendAll makes the cases' requests at once: most of their time is the
// SDK's backoff and the wait for a deadline, which overlap.
func sendAll(cases []*faultCase) {
	var wg sync.WaitGroup
	for _, c := range cases {
		wg.Go(func() {
			start := time.Now()
			c.answer, c.err = c.hs[c.site.function](context.Background(), c.event)
			c.took = time.Since(start)
		})
	}
	wg.Wait()
}

// response checks the answer against the OpenAPI document and decodes it.
func (c *faultCase) response(t *testing.T) response {
	t.Helper()
	if c.err != nil {
		t.Fatalf("handler error %v", c.err)
	}
	if c.faults.matched.Load() == 0 {
		t.Fatalf("the request made no %s call (%d %s)", c.site.target, c.answer.StatusCode, c.answer.Body)
	}
	route := routeOf(t, c.site.function)
	reqHeaders, respHeaders := http.Header{}, http.Header{}
	for k, v := range c.event.Headers {
		reqHeaders.Set(k, v)
	}
	for k, v := range c.answer.Headers {
		respHeaders.Set(k, v)
	}
	if err := spec.Check(route.Method, route.Path, reqHeaders, []byte(c.event.Body), c.answer.StatusCode, respHeaders, []byte(c.answer.Body)); err != nil {
		t.Errorf("OpenAPI: %v\nresponse %d: %.300s", err, c.answer.StatusCode, c.answer.Body)
	}
	out := response{Status: c.answer.StatusCode, Headers: c.answer.Headers}
	if err := json.Unmarshal([]byte(c.answer.Body), &out.Body); err != nil {
		t.Fatalf("answer is not JSON: %v: %s", err, c.answer.Body)
	}
	return out
}

// apiEvent is the event API Gateway sends the function for a JSON body.
func apiEvent(t testing.TB, function, body string) events.APIGatewayV2HTTPRequest {
	route := routeOf(t, function)
	return events.APIGatewayV2HTTPRequest{
		Version: "2.0", RouteKey: route.RouteKey(), RawPath: route.Path, Body: body,
		Headers: map[string]string{"content-type": "application/json", "user-agent": "waymark-tests"},
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			RequestID: waymark.NewID(), Stage: "$default", RouteKey: route.RouteKey(),
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: route.Method, Path: route.Path, Protocol: "HTTP/1.1", SourceIP: "127.0.0.1", UserAgent: "waymark-tests"},
		},
	}
}

// Each class of failure of each DynamoDB and KMS call of the request path
// gets its one documented answer: status, code and Retry-After, a message
// that names no cause, the cause in the log under the request id, and,
// when a key could not be had, nothing written.
func TestFailureOfEachCallGetsItsAnswer(t *testing.T) {
	var answered, timedOut []*faultCase
	for _, site := range requestPath {
		for _, fail := range []failure{failThrottled, failServerError, failLostAnswer, failAccessDenied} {
			// The class of the answer is under test here, not its time
			// (TestAnswerBeforeTheDeadlineWhenCallsAreStuck): a loaded
			// machine must not turn a 429 into the deadline's 503.
			answered = append(answered, newFaultCase(t, site, fail, slowMachineTimeout))
		}
		// A call that never answers ends with the request's time, as
		// deployed.
		timedOut = append(timedOut, newFaultCase(t, site, failTimeout, config.FunctionTimeout))
	}
	sendAll(answered)
	sendAll(timedOut)
	for _, c := range append(answered, timedOut...) {
		t.Run(c.name, func(t *testing.T) {
			r := c.response(t)
			want := wantFor[c.fail]
			if r.Status != want.status || r.errorCode() != want.code || r.Headers["retry-after"] != want.retryAfter {
				t.Fatalf("%d %s retry-after %q, want %d %s retry-after %q (%v)",
					r.Status, r.errorCode(), r.Headers["retry-after"], want.status, want.code, want.retryAfter, r.Body)
			}
			if c.took > c.timeout {
				t.Errorf("answered after %v, past the function timeout %v", c.took, c.timeout)
			}
			message, _ := r.Body["error"].(map[string]any)["message"].(string)
			for _, marker := range leakMarkers {
				if strings.Contains(message, marker) {
					t.Errorf("the answer names its cause (%q): %q", marker, message)
				}
			}
			requestLog := logLineOf(c.logs.String(), r.Headers["x-request-id"], "request failed")
			if requestLog == "" {
				t.Errorf("no log of the failure under the request id:\n%s", c.logs.String())
			}
			if c.fail == failAccessDenied && !strings.Contains(requestLog, "AccessDenied") {
				t.Errorf("the log does not name the cause: %s", requestLog)
			}
			if c.site.writes && strings.HasPrefix(c.site.target, "TrentService.") {
				if n := itemsOfUser(t, c.ws.UserKey(c.user)); n != 0 {
					t.Errorf("%d items written without a data key", n)
				}
			}
		})
	}
}

// A failure the SDK's retries absorb (a throttled call, an answer lost
// after the write was applied) is not the caller's: the write is done once.
func TestFailureOfOneAttemptIsAbsorbed(t *testing.T) {
	var cases []*faultCase
	for _, site := range requestPath {
		if !site.writes || strings.HasPrefix(site.target, "TrentService.") || site.target == "DynamoDB_20120810.GetItem" {
			continue
		}
		for _, fail := range []failure{failThrottled, failLostAnswer} {
			c := newFaultCase(t, site, fail, slowMachineTimeout)
			c.faults.only = 1
			cases = append(cases, c)
		}
	}
	sendAll(cases)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := c.response(t)
			if r.Status != successStatus[c.site.function] {
				t.Fatalf("%d %v", r.Status, r.Body)
			}
			if c.faults.matched.Load() < 2 {
				t.Fatalf("%d %s calls, want a failed one and its retry", c.faults.matched.Load(), c.site.target)
			}
			if c.site.function == "events" {
				hints, _ := r.Body["state"].(map[string]any)["hints"].(map[string]any)
				if shown := hints["h1"].(map[string]any)["displayed"]; shown != 1.0 {
					t.Errorf("displayed %v times, want 1", shown)
				}
			}
		})
	}
}

// logLineOf returns the log line with the message for the request id.
func logLineOf(logs, requestID, msg string) string {
	for line := range strings.SplitSeq(logs, "\n") {
		if strings.Contains(line, `"requestId":"`+requestID+`"`) && strings.Contains(line, `"msg":"`+msg+`"`) {
			return line
		}
	}
	return ""
}

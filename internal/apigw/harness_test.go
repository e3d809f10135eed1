package apigw_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/waymarkhq/waymark/internal/apigw"
	"github.com/waymarkhq/waymark/internal/apispec"
	"github.com/waymarkhq/waymark/internal/awscalls"
	"github.com/waymarkhq/waymark/internal/config"
	"github.com/waymarkhq/waymark/internal/devstack"
	"github.com/waymarkhq/waymark/internal/fakeclock"
	"github.com/waymarkhq/waymark/internal/localstack"
	"github.com/waymarkhq/waymark/internal/routes"
	"github.com/waymarkhq/waymark/internal/schema"
	"github.com/waymarkhq/waymark/internal/service"
	"github.com/waymarkhq/waymark/internal/waymark"
	"github.com/waymarkhq/waymark/internal/wiring"
)

// The suite shares one local stack (DynamoDB Local and local-kms started by
// TestMain) and one wired Waymark, as a warm Lambda would be.
var (
	stack     *localstack.Stack
	graph     *wiring.Graph
	handlers  map[string]apigw.Handler
	spec      *apispec.Validator
	db        *dynamodb.Client
	logBuffer syncBuffer
	// personal collects every piece of personal data the tests send, for
	// the plaintext scan at the end of the suite.
	personal sync.Map
)

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestMain(m *testing.M) {
	flag.Parse()
	if f := flag.Lookup("test.fuzz"); f != nil && f.Value.String() != "" {
		// Fuzzing (make fuzz-smoke) runs only the fuzz targets, which
		// need no local stack.
		os.Exit(m.Run())
	}
	os.Exit(runSuite(m))
}

func runSuite(m *testing.M) int {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var err error
	stack, err = localstack.Start(ctx, localstack.Options{TablePrefix: "it-"})
	if err != nil {
		fmt.Fprintln(os.Stderr, "start local stack:", err)
		return 1
	}
	defer stack.Stop()
	recorder = awscalls.New(stack.Tables)
	graph, err = wiring.New(ctx, recordedConfig(), wiring.Logger(&logBuffer, "debug"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "wire:", err)
		return 1
	}
	handlers = graph.API.Handlers()
	if db, _, err = stack.Config().Clients(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "clients:", err)
		return 1
	}
	if spec, err = apispec.New(); err != nil {
		fmt.Fprintln(os.Stderr, "openapi:", err)
		return 1
	}
	if err := devstack.SeedDemoWorkspaces(ctx, graph.Store); err != nil {
		fmt.Fprintln(os.Stderr, "seed:", err)
		return 1
	}
	code := m.Run()
	if code == 0 {
		// The start's deadline does not cover the scan: on a loaded
		// machine the tests alone may outlast it.
		scanCtx, cancelScan := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancelScan()
		code = scanForPlaintext(scanCtx)
	}
	if err := writeRecordedCalls(); code == 0 {
		code = err
	}
	fmt.Printf("KMS calls made by the suite's shared Waymark: %d\n", graph.Envelope.KMSCalls())
	return code
}

// minRemembered is the shortest value the scan looks for: shorter strings
// turn up by chance in the base64 text of keyed hashes and in ciphertext
// (a 3-letter name matched a hash in about one run in ten), so tests send
// personal values of at least this length.
const minRemembered = 8

// remember records personal data sent by a test.
func remember(values ...string) {
	for _, v := range values {
		if len(v) < minRemembered {
			panic("remember: personal test value " + v + " is too short to scan for")
		}
		personal.Store(v, true)
	}
}

// scanForPlaintext dumps every table and the logs and fails the suite if any
// personal value the tests sent appears in them.
func scanForPlaintext(ctx context.Context) int {
	var dump bytes.Buffer
	items, undeclared := 0, 0
	for _, t := range schema.All() {
		declared := map[string]bool{}
		for _, a := range t.Attributes {
			declared[a.Name] = true
		}
		all, err := scanTable(ctx, t.Name)
		if err != nil {
			fmt.Fprintln(os.Stderr, "scan:", err)
			return 1
		}
		for _, it := range all {
			items++
			for name, av := range it {
				dumpValue(&dump, av)
				if !declared[name] {
					fmt.Fprintf(os.Stderr, "%s item has attribute %q that the schema (and so the data inventory) does not declare\n", t.Name, name)
					undeclared++
				}
			}
		}
	}
	logs := logBuffer.String()
	failed, checked := 0, 0
	personal.Range(func(k, _ any) bool {
		v := k.(string)
		checked++
		if bytes.Contains(dump.Bytes(), []byte(v)) {
			fmt.Fprintf(os.Stderr, "plaintext personal data stored: %q\n", v)
			failed++
		}
		if strings.Contains(logs, v) {
			fmt.Fprintf(os.Stderr, "personal data in the logs: %q\n", v)
			failed++
		}
		return true
	})
	fmt.Printf("plaintext scan: %d items, %d personal values checked, %d found\n", items, checked, failed)
	// A full run must have had something to scan; a run of chosen tests
	// (-run) may not.
	fullRun := flag.Lookup("test.run").Value.String() == ""
	if failed > 0 || undeclared > 0 || fullRun && (checked == 0 || items == 0) {
		return 1
	}
	return 0
}

// scanTable reads every item of a table.
func scanTable(ctx context.Context, logical string) ([]map[string]types.AttributeValue, error) {
	var items []map[string]types.AttributeValue
	pages := dynamodb.NewScanPaginator(db, &dynamodb.ScanInput{TableName: aws.String(stack.Tables[logical])})
	for pages.HasMorePages() {
		out, err := pages.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		items = append(items, out.Items...)
	}
	return items, nil
}

func dumpValue(w *bytes.Buffer, av types.AttributeValue) {
	switch v := av.(type) {
	case *types.AttributeValueMemberS:
		w.WriteString(v.Value)
	case *types.AttributeValueMemberB:
		w.Write(v.Value)
	case *types.AttributeValueMemberSS:
		w.WriteString(strings.Join(v.Value, "\n"))
	case *types.AttributeValueMemberM:
		for k, x := range v.Value {
			w.WriteString(k)
			dumpValue(w, x)
		}
	case *types.AttributeValueMemberL:
		for _, x := range v.Value {
			dumpValue(w, x)
		}
	}
	w.WriteByte('\n')
}

// response is a decoded answer.
type response struct {
	Status  int
	Headers map[string]string
	Body    map[string]any
}

func (r response) errorCode() string {
	e, _ := r.Body["error"].(map[string]any)
	code, _ := e["code"].(string)
	return code
}

func (r response) errorField() string {
	e, _ := r.Body["error"].(map[string]any)
	field, _ := e["field"].(string)
	return field
}

func routeOf(t testing.TB, function string) routes.Route {
	for _, r := range routes.Table() {
		if r.Function == function {
			return r
		}
	}
	t.Fatalf("no route for %s", function)
	return routes.Route{}
}

// clockedHandlers builds the functions' handlers over a store of cfg's
// clients, with clk as the service's clock, for a test that moves time.
func clockedHandlers(t testing.TB, cfg config.Config, clk *fakeclock.Clock) map[string]apigw.Handler {
	t.Helper()
	return clockedHandlersVia(t, cfg, clk, nil)
}

// clockedHandlersVia is clockedHandlers with the DynamoDB traffic going
// through a transport (one with a hook, to count or race writes), when
// given.
func clockedHandlersVia(t testing.TB, cfg config.Config, clk *fakeclock.Clock, dbTransport *faultyTransport) map[string]apigw.Handler {
	t.Helper()
	dbClient, kmsClient, err := cfg.Clients(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if dbTransport != nil {
		dbClient = dynamodb.New(dbClient.Options(), func(o *dynamodb.Options) { o.HTTPClient = dbTransport })
	}
	store, _ := wiring.SealedStore(dbClient, kmsClient, cfg)
	return apigw.New(service.New(store, service.Options{Now: clk.Now}), wiring.Logger(&logBuffer, "info")).Handlers()
}

// invoke sends a body to a function the way API Gateway would, through the
// given handlers, and checks request and response against the OpenAPI
// document.
func invokeWith(t testing.TB, hs map[string]apigw.Handler, function, body string, headers map[string]string) response {
	t.Helper()
	return invokeRoute(t, hs, routeOf(t, function), body, headers, nil)
}

// invokeRoute sends a request to the function of one route.
func invokeRoute(t testing.TB, hs map[string]apigw.Handler, route routes.Route, body string, headers map[string]string, query url.Values) response {
	t.Helper()
	function := route.Function
	h := map[string]string{"content-type": "application/json", "user-agent": "waymark-tests"}
	for k, v := range headers {
		if v == "" {
			delete(h, k)
		} else {
			h[k] = v
		}
	}
	req := events.APIGatewayV2HTTPRequest{
		Version: "2.0", RouteKey: route.RouteKey(), RawPath: route.Path, Headers: h, Body: body, RawQueryString: query.Encode(),
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			RequestID: waymark.NewID(), Stage: "$default", RouteKey: route.RouteKey(),
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: route.Method, Path: route.Path, Protocol: "HTTP/1.1", SourceIP: "127.0.0.1", UserAgent: "waymark-tests"},
		},
	}
	if len(query) > 0 {
		req.QueryStringParameters = map[string]string{}
		for k := range query {
			req.QueryStringParameters[k] = query.Get(k)
		}
	}
	resp, err := hs[function](awscalls.WithCaller(context.Background(), function), req)
	if err != nil {
		t.Fatalf("%s: handler error %v", function, err)
	}
	if resp.Headers["x-request-id"] != req.RequestContext.RequestID {
		t.Errorf("%s: x-request-id %q, want %q", function, resp.Headers["x-request-id"], req.RequestContext.RequestID)
	}
	reqHeaders, respHeaders := http.Header{}, http.Header{}
	for k, v := range h {
		reqHeaders.Set(k, v)
	}
	for k, v := range resp.Headers {
		respHeaders.Set(k, v)
	}
	path := route.Path
	if len(query) > 0 {
		path += "?" + query.Encode()
	}
	if err := spec.Check(route.Method, path, reqHeaders, []byte(body), resp.StatusCode, respHeaders, []byte(resp.Body)); err != nil {
		t.Errorf("%s: OpenAPI: %v\nrequest: %.300s\nresponse %d: %.300s", function, err, body, resp.StatusCode, resp.Body)
	}
	out := response{Status: resp.StatusCode, Headers: resp.Headers}
	if err := json.Unmarshal([]byte(resp.Body), &out.Body); err != nil {
		t.Fatalf("%s: answer is not JSON: %v: %s", function, err, resp.Body)
	}
	return out
}

func invoke(t testing.TB, function, body string) response {
	t.Helper()
	return invokeWith(t, handlers, function, body, nil)
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// uniqueUser returns a username no other test uses, registered as personal.
func uniqueUser(t testing.TB) string {
	u := "user." + strings.ToLower(strings.ReplaceAll(t.Name(), "/", ".")) + "." + waymark.NewID()[:8] + "@example.com"
	remember(u)
	return u
}

// itemsOfUser counts the items of a user key in every table.
func itemsOfUser(t testing.TB, userKey string) int {
	t.Helper()
	ctx := context.Background()
	n := 0
	for _, tb := range schema.All() {
		if tb.Name == schema.WorkspacesTable {
			continue
		}
		out, err := db.Query(ctx, &dynamodb.QueryInput{
			TableName:                 &[]string{stack.Tables[tb.Name]}[0],
			KeyConditionExpression:    &[]string{"pk = :pk"}[0],
			ExpressionAttributeValues: map[string]types.AttributeValue{":pk": &types.AttributeValueMemberS{Value: userKey}},
			ConsistentRead:            &[]bool{true}[0],
		})
		if err != nil {
			t.Fatal(err)
		}
		n += len(out.Items)
	}
	return n
}

func workspace(t testing.TB, code string) *waymark.Workspace {
	t.Helper()
	ws, err := graph.Store.GetWorkspace(context.Background(), code)
	if err != nil {
		t.Fatal(err)
	}
	return ws
}

// newWorkspace creates a workspace for one test.
func newWorkspace(t testing.TB, opts waymark.NewWorkspaceOptions) *waymark.Workspace {
	t.Helper()
	ws, _ := workspaceWithKey(t, opts)
	return ws
}

// workspaceWithKey creates a workspace for one test and returns it with its
// server API key.
func workspaceWithKey(t testing.TB, opts waymark.NewWorkspaceOptions) (*waymark.Workspace, string) {
	t.Helper()
	if opts.Name == "" {
		opts.Name = t.Name()
	}
	ws, key, err := waymark.NewWorkspace(opts, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := graph.Store.PutWorkspace(context.Background(), ws); err != nil {
		t.Fatal(err)
	}
	return ws, key
}

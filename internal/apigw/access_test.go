package apigw_test

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/smithy-go/middleware"

	"github.com/waymarkhq/waymark/internal/apigw"
	"github.com/waymarkhq/waymark/internal/awscalls"
	"github.com/waymarkhq/waymark/internal/config"
	"github.com/waymarkhq/waymark/internal/fakeclock"
	"github.com/waymarkhq/waymark/internal/routes"
	"github.com/waymarkhq/waymark/internal/schema"
	"github.com/waymarkhq/waymark/internal/service"
	"github.com/waymarkhq/waymark/internal/waymark"
	"github.com/waymarkhq/waymark/internal/wiring"
)

// accessChecker is DynamoDB client middleware that holds every call a
// function makes against the table access routes declares for it, which is
// what its IAM role grants in AWS (infra/stack): the local engine checks no
// permission, so without it a call the role would refuse shows only once
// deployed.
type accessChecker struct {
	fn      routes.Function
	logical map[string]string // physical table name → logical

	mu         sync.Mutex
	violations []string
	calls      int
	// published counts the calls that publish a sealing key, refreshed
	// those that only move an expiry.
	published, refreshed int
}

// recorder records every DynamoDB and KMS call of the suite's clients, by
// the function whose handler made it (invokeRoute says which); make test
// hands the calls to the infra tests, which evaluate each one against the
// synthesized template's policies (infra/stack/calls_test.go).
var recorder *awscalls.Recorder

// recordedConfig is the local stack's configuration with the recorder in
// every client built from it.
func recordedConfig() config.Config { return recordedConfigFor(awscalls.Operator) }

// recordedConfigFor is recordedConfig for clients that only one function's
// handlers use: their calls are that function's even without the request's
// context.
func recordedConfigFor(caller string) config.Config {
	cfg := stack.Config()
	cfg.AWS = &aws.Config{
		Region:      stack.Region,
		Credentials: credentials.NewStaticCredentialsProvider("local", "local", ""),
		APIOptions:  []func(*middleware.Stack) error{recorder.RegisterFor(caller)},
	}
	return cfg
}

// writeRecordedCalls writes the recorded calls where make test asks for them.
func writeRecordedCalls() int {
	path := os.Getenv(awscalls.RecordEnv)
	if path == "" {
		return 0
	}
	if err := recorder.WriteFile(path); err != nil {
		fmt.Fprintln(os.Stderr, "recorded calls:", err)
		return 1
	}
	fmt.Printf("recorded %d distinct AWS authorization requests into %s\n", len(recorder.Calls()), path)
	return 0
}

func tableByName(name string) schema.Table {
	for _, t := range schema.All() {
		if t.Name == name {
			return t
		}
	}
	return schema.Table{Name: name}
}

// updatedAttributes lists what an update names, as dynamodb:Attributes does.
func updatedAttributes(in *dynamodb.UpdateItemInput) []string {
	var out []string
	for k := range in.Key {
		out = append(out, k)
	}
	out = append(out, awscalls.ExpressionAttributes(in.ExpressionAttributeNames, aws.ToString(in.UpdateExpression))...)
	return append(out, awscalls.ExpressionAttributes(in.ExpressionAttributeNames, aws.ToString(in.ConditionExpression))...)
}

// needs is the access a call requires of its table.
func (c *accessChecker) needs(input any) (map[string]routes.Access, error) {
	need := map[string]routes.Access{}
	switch in := input.(type) {
	case *dynamodb.GetItemInput:
		need[*in.TableName] = routes.Read
	case *dynamodb.QueryInput:
		need[*in.TableName] = routes.Read
	case *dynamodb.BatchGetItemInput:
		for t := range in.RequestItems {
			need[t] = routes.Read
		}
	case *dynamodb.PutItemInput:
		need[*in.TableName] = routes.ReadWrite
	case *dynamodb.DeleteItemInput:
		need[*in.TableName] = routes.ReadWrite
	case *dynamodb.BatchWriteItemInput:
		for t := range in.RequestItems {
			need[t] = routes.ReadWrite
		}
	case *dynamodb.UpdateItemInput:
		need[*in.TableName] = routes.ReadWrite
		if in.ReturnValues != "" && in.ReturnValues != "NONE" {
			break
		}
		if narrow := routes.NarrowUpdateOf(tableByName(c.logical[*in.TableName]), updatedAttributes(in)); narrow != 0 {
			need[*in.TableName] = narrow
		}
	default:
		return nil, fmt.Errorf("%T, which no role grants", input)
	}
	return need, nil
}

func (c *accessChecker) option(o *dynamodb.Options) {
	o.APIOptions = append(o.APIOptions, func(s *middleware.Stack) error {
		return s.Initialize.Add(middleware.InitializeMiddlewareFunc("accessChecker", func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			need, err := c.needs(in.Parameters)
			c.mu.Lock()
			c.calls++
			if err != nil {
				c.violations = append(c.violations, err.Error())
			}
			for table, level := range need {
				switch level {
				case routes.ReadPublishKey:
					c.published++
				case routes.ReadRefreshExpiry:
					c.refreshed++
				}
				if granted := c.fn.Tables[c.logical[table]]; !granted.Allows(level) {
					c.violations = append(c.violations, fmt.Sprintf("%T on %s needs %q, granted %q", in.Parameters, c.logical[table], level, granted))
				}
			}
			c.mu.Unlock()
			return next.HandleInitialize(ctx, in)
		}), middleware.Before)
	})
}

// Each function, serving its routes on a workspace nothing was written to
// yet (so that its first write publishes the sealing key), with retention
// (so that activity two days on refreshes expiries), makes only the DynamoDB
// calls its declared access allows.
func TestFunctionsStayWithinTheirTableAccess(t *testing.T) {
	logical := map[string]string{}
	for name, physical := range stack.Tables {
		logical[physical] = name
	}
	for _, f := range routes.Functions() {
		t.Run(f.Name, func(t *testing.T) {
			cfg := recordedConfigFor(f.Name)
			baseDB, kmsClient, err := cfg.Clients(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			checker := &accessChecker{fn: f, logical: logical}
			db := dynamodb.New(baseDB.Options(), checker.option)
			store, _ := wiring.SealedStore(db, kmsClient, cfg)
			clk := fakeclock.New(time.Now().UTC().Truncate(time.Second))
			hs := apigw.New(service.New(store, service.Options{Now: clk.Now}), wiring.Logger(&logBuffer, "info")).Handlers()
			ws, key := workspaceWithKey(t, waymark.NewWorkspaceOptions{RetentionDays: 30})
			user := uniqueUser(t)
			remember("access-check@example.com", "access check feedback")
			call := func(routeKey, body string, query url.Values) {
				t.Helper()
				route := serverRoute(t, routeKey)
				if route.Function != f.Name {
					return
				}
				headers := map[string]string{"authorization": "Bearer " + key}
				if body == "" {
					headers["content-type"] = ""
				}
				if r := invokeRoute(t, hs, route, body, headers, query); r.Status/100 != 2 {
					t.Fatalf("%s: %d %v", routeKey, r.Status, r.Body)
				}
			}
			identify := mustJSON(map[string]any{"workspace": ws.Code, "user": map[string]any{"username": user, "email": "access-check@example.com"}})
			call("POST /v1/identify", identify, nil)
			call("POST /v1/identify", identify, nil)
			call("POST /v1/identify", mustJSON(map[string]any{"workspace": ws.Code, "user": map[string]any{"username": user, "props": map[string]any{"plan": "pro"}}}), nil)
			call("POST /v1/events", mustJSON(map[string]any{"workspace": ws.Code, "username": user, "events": []any{
				map[string]any{"id": "a1", "content": "survey", "contentId": "s", "action": "answered", "answer": 4, "at": "2026-01-01T00:00:00Z"},
			}}), nil)
			call("POST /v1/state", mustJSON(map[string]any{"workspace": ws.Code, "username": user}), nil)
			// Two days on, the user comes back to a page: the expiry of what the
			// user did (written here by the suite's own events function, for the
			// functions that write no state) is refreshed.
			if r := invoke(t, "events", mustJSON(map[string]any{"workspace": ws.Code, "username": user, "events": []any{
				map[string]any{"id": "a2", "content": "tour", "contentId": "t", "action": "finished", "at": "2026-01-01T00:00:00Z"},
			}})); r.Status != 200 {
				t.Fatalf("events: %d %v", r.Status, r.Body)
			}
			clk.Advance(2 * 24 * time.Hour)
			call("POST /v1/identify", identify, nil)
			call("POST /v1/events", mustJSON(map[string]any{"workspace": ws.Code, "username": user, "events": []any{
				map[string]any{"id": "a3", "content": "hint", "contentId": "h", "action": "displayed", "at": "2026-01-01T00:00:00Z"},
			}}), nil)
			call("POST /v1/feedback", mustJSON(map[string]any{"workspace": ws.Code, "username": user, "text": "access check feedback"}), nil)
			call("POST /v1/server/identify", mustJSON(map[string]any{"user": map[string]any{"username": user, "email": "access-check@example.com"}}), nil)
			call("GET /v1/server/feedback", "", url.Values{"limit": {"10"}})
			call("POST /v1/server/users/export", mustJSON(map[string]any{"username": user}), nil)
			call("POST /v1/server/users/delete", mustJSON(map[string]any{"usernames": []string{user}}), nil)
			// The snippet's function declares no table: it must make no call.
			if checker.calls == 0 && len(f.Tables) > 0 {
				t.Fatal("the function made no DynamoDB call: nothing was checked")
			}
			if refreshes := f.Tables[schema.ContentStateTable] == routes.ReadRefreshExpiry; refreshes && checker.refreshed == 0 {
				t.Error("declared access to refresh expiries, but refreshed none: the retention step did not reach it")
			}
			if seals := f.Tables[schema.WorkspacesTable] == routes.ReadPublishKey; seals != (checker.published > 0) {
				t.Errorf("published a sealing key %d times; declared access to publish it: %v", checker.published, seals)
			}
			for _, v := range checker.violations {
				t.Error(v)
			}
		})
	}
}

// The operator's CLI reads and writes workspaces, lists them (a Scan),
// exports and erases users and lists feedback through the same store and
// service: these calls, recorded outside any handler, are checked against
// the operator's policy by the infra tests.
func TestOperatorCallsAreRecorded(t *testing.T) {
	ctx := context.Background()
	ws := newWorkspace(t, waymark.NewWorkspaceOptions{RetentionDays: 30})
	user := uniqueUser(t)
	remember("operator check feedback")
	if r := invoke(t, "feedback", mustJSON(map[string]any{"workspace": ws.Code, "username": user, "text": "operator check feedback"})); r.Status != 201 {
		t.Fatalf("feedback: %d %v", r.Status, r.Body)
	}
	before := len(recorder.Calls())
	if _, err := graph.Store.ListWorkspaces(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := graph.Store.GetWorkspace(ctx, ws.Code); err != nil {
		t.Fatal(err)
	}
	if _, err := graph.Service.FeedbackOf(ctx, ws, service.FeedbackQuery{}); err != nil {
		t.Fatal(err)
	}
	if _, err := graph.Service.ExportOf(ctx, ws, &service.ExportRequest{Username: user}); err != nil {
		t.Fatal(err)
	}
	if _, err := graph.Service.EraseOf(ctx, ws, &service.EraseRequest{Usernames: []string{user}}); err != nil {
		t.Fatal(err)
	}
	scans := 0
	for _, c := range recorder.Calls() {
		if c.Caller == awscalls.Operator && c.Action == "dynamodb:Scan" {
			scans++
		}
	}
	if len(recorder.Calls()) <= before || scans == 0 {
		t.Fatalf("the operator's calls were not recorded (%d before, %d after, %d scans)", before, len(recorder.Calls()), scans)
	}
}

package apigw_test

import (
	"context"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/smithy-go/middleware"

	"github.com/waymarkhq/waymark/internal/apigw"
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
	// published counts the calls that publish a sealing key.
	published int
}

// Names in an expression that are not attributes.
var expressionWords = map[string]bool{
	"SET": true, "REMOVE": true, "ADD": true, "DELETE": true, "AND": true, "OR": true, "NOT": true,
	"attribute_exists": true, "attribute_not_exists": true, "if_not_exists": true, "begins_with": true,
	"contains": true, "size": true, "attribute_type": true, "list_append": true, "BETWEEN": true, "IN": true,
}

var expressionName = regexp.MustCompile(`[#:]?[A-Za-z_][A-Za-z0-9_]*`)

// attributesOf lists the attributes an expression names, as the
// dynamodb:Attributes condition key sees them.
func attributesOf(names map[string]string, expressions ...*string) []string {
	var out []string
	for _, e := range expressions {
		if e == nil {
			continue
		}
		for _, w := range expressionName.FindAllString(*e, -1) {
			switch {
			case strings.HasPrefix(w, ":"), expressionWords[w]:
			case strings.HasPrefix(w, "#"):
				out = append(out, names[w])
			default:
				out = append(out, w)
			}
		}
	}
	return out
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
		if c.logical[*in.TableName] != schema.WorkspacesTable || in.ReturnValues != "" && in.ReturnValues != "NONE" {
			break
		}
		allowed := map[string]bool{schema.Workspaces.PartitionKey.Name: true, schema.SealKeyAttribute: true, schema.SealKeyAtAttribute: true}
		publishOnly := true
		for _, a := range attributesOf(in.ExpressionAttributeNames, in.UpdateExpression, in.ConditionExpression) {
			publishOnly = publishOnly && allowed[a]
		}
		if publishOnly {
			need[*in.TableName] = routes.ReadPublishKey
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
				if level == routes.ReadPublishKey {
					c.published++
				}
				if granted := c.fn.Tables[c.logical[table]]; granted < level {
					c.violations = append(c.violations, fmt.Sprintf("%T on %s needs %q, granted %q", in.Parameters, c.logical[table], level, granted))
				}
			}
			c.mu.Unlock()
			return next.HandleInitialize(ctx, in)
		}), middleware.Before)
	})
}

// Each function, serving its routes on a workspace nothing was written to
// yet (so that its first write publishes the sealing key), makes only the
// DynamoDB calls its declared access allows.
func TestFunctionsStayWithinTheirTableAccess(t *testing.T) {
	cfg := stack.Config()
	baseDB, kmsClient, err := cfg.Clients(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	logical := map[string]string{}
	for name, physical := range stack.Tables {
		logical[physical] = name
	}
	for _, f := range routes.Functions() {
		t.Run(f.Name, func(t *testing.T) {
			checker := &accessChecker{fn: f, logical: logical}
			db := dynamodb.New(baseDB.Options(), checker.option)
			store, _ := wiring.SealedStore(db, kmsClient, cfg)
			hs := apigw.New(service.New(store, service.Options{}), wiring.Logger(&logBuffer, "info")).Handlers()
			ws, key := workspaceWithKey(t, waymark.NewWorkspaceOptions{})
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
			call("POST /v1/feedback", mustJSON(map[string]any{"workspace": ws.Code, "username": user, "text": "access check feedback"}), nil)
			call("POST /v1/server/identify", mustJSON(map[string]any{"user": map[string]any{"username": user, "email": "access-check@example.com"}}), nil)
			call("GET /v1/server/feedback", "", url.Values{"limit": {"10"}})
			call("POST /v1/server/users/export", mustJSON(map[string]any{"username": user}), nil)
			call("POST /v1/server/users/delete", mustJSON(map[string]any{"usernames": []string{user}}), nil)
			// The snippet's function declares no table: it must make no call.
			if checker.calls == 0 && len(f.Tables) > 0 {
				t.Fatal("the function made no DynamoDB call: nothing was checked")
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

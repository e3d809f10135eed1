// Package awscalls records the authorization requests that the AWS calls of
// the tests make: for each DynamoDB, KMS and S3 call, which function's handler
// made it, the IAM action, the resource and the condition keys the request
// carries. The infra tests evaluate every recorded request against the
// policies of the synthesized template (internal/iampolicy), so a call that
// new code makes is checked against the deployed permissions without anyone
// listing it. Test tooling: no function imports it.
package awscalls

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go/middleware"
)

// Environment variables of `make test`: the integration suite writes the
// calls it recorded to RecordEnv's file, and the infra test evaluates the
// file CheckEnv names once that suite has finished.
const (
	RecordEnv = "WAYMARK_RECORD_AWS_CALLS"
	CheckEnv  = "WAYMARK_CHECK_AWS_CALLS"
)

// SuitePath is where a test suite other than the integration suite writes
// its calls, next to RecordEnv's file: "calls.json" becomes
// "calls-<suite>.json". The infra test reads them all (SuitePaths).
func SuitePath(recordPath, suite string) string {
	return strings.TrimSuffix(recordPath, ".json") + "-" + suite + ".json"
}

// SuitePaths lists the files SuitePath made next to recordPath.
func SuitePaths(recordPath string) ([]string, error) {
	return filepath.Glob(strings.TrimSuffix(recordPath, ".json") + "-*.json")
}

// Operator is the caller of calls made outside any function's handler: the
// test harness creates and reads workspaces through the store as the
// operator CLI does, so its calls need what the operator's policy grants.
const Operator = "operator"

// KeyResource stands for the stack's KMS key in Call.Resource.
const KeyResource = "key"

// BucketResource stands for the attachments bucket in Call.Resource, and
// BucketResource + "/" + key for one of its objects.
const BucketResource = "bucket"

// Call is one authorization request of a recorded call.
type Call struct {
	// Caller is a function's name (routes.Function.Name) or Operator.
	Caller string `json:"caller"`
	// Action is the IAM action, "dynamodb:UpdateItem".
	Action string `json:"action"`
	// Resource is relative to the stack: "table/<logical name>",
	// "table/<logical name>/index/<index>", KeyResource, BucketResource or
	// BucketResource + "/<object key>". A table the
	// recorder does not know keeps its physical name, which no policy grants.
	Resource string `json:"resource"`
	// Context holds the condition keys the request carries.
	Context map[string][]string `json:"context,omitempty"`
}

type callerKey struct{}

// WithCaller marks the calls made with ctx as made by a function.
func WithCaller(ctx context.Context, function string) context.Context {
	return context.WithValue(ctx, callerKey{}, function)
}

// Recorder collects distinct calls; it is safe for concurrent use.
type Recorder struct {
	logical map[string]string // physical table name → logical
	mu      sync.Mutex
	calls   map[string]Call // by JSON text, to keep each request once
}

// New returns a recorder for the tables of config.Config.Tables (logical →
// physical name).
func New(tables map[string]string) *Recorder {
	r := &Recorder{logical: map[string]string{}, calls: map[string]Call{}}
	for logical, physical := range tables {
		r.logical[physical] = logical
	}
	return r
}

// Register adds the recording middleware to a client's stack; put it in
// aws.Config.APIOptions (every client built from the config records) or in
// a client's Options.APIOptions. A call is the caller's that WithCaller put
// in its context, else the operator's.
func (r *Recorder) Register(s *middleware.Stack) error { return r.RegisterFor(Operator)(s) }

// RegisterFor is Register for the clients of one function: a call whose
// context names no caller (a goroutine started without the request's
// context) is still that function's.
func (r *Recorder) RegisterFor(caller string) func(*middleware.Stack) error {
	return func(s *middleware.Stack) error {
		return s.Initialize.Add(middleware.InitializeMiddlewareFunc("awscalls.Recorder",
			func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				c, ok := ctx.Value(callerKey{}).(string)
				if !ok {
					c = caller
				}
				r.record(c, in.Parameters)
				return next.HandleInitialize(ctx, in)
			}), middleware.Before)
	}
}

func (r *Recorder) record(caller string, input any) {
	reqs := r.requests(input)
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range reqs {
		c.Caller = caller
		b, _ := json.Marshal(c)
		r.calls[string(b)] = c
	}
}

// Calls returns the recorded calls in a stable order.
func (r *Recorder) Calls() []Call {
	r.mu.Lock()
	defer r.mu.Unlock()
	keys := make([]string, 0, len(r.calls))
	for k := range r.calls {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]Call, len(keys))
	for i, k := range keys {
		out[i] = r.calls[k]
	}
	return out
}

// WriteFile writes the recorded calls as JSON.
func (r *Recorder) WriteFile(path string) error {
	b, err := json.MarshalIndent(r.Calls(), "", " ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

// ReadFile reads calls written by WriteFile.
func ReadFile(path string) ([]Call, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var calls []Call
	if err := json.Unmarshal(b, &calls); err != nil {
		return nil, fmt.Errorf("awscalls: %s: %w", path, err)
	}
	return calls, nil
}

func (r *Recorder) table(physical *string, index *string) string {
	name := deref(physical)
	if l, ok := r.logical[name]; ok {
		name = l
	}
	if index != nil {
		return "table/" + name + "/index/" + *index
	}
	return "table/" + name
}

// requests turns one SDK input into the authorization requests IAM makes
// for it. A transaction is authorized item by item, as the action of each
// item (TransactWriteItems has no action of its own); a batch once per table.
func (r *Recorder) requests(input any) []Call {
	d := func(action, resource string, attrs []string, returnValues, sel string) Call {
		c := Call{Action: "dynamodb:" + action, Resource: resource, Context: map[string][]string{}}
		if len(attrs) > 0 {
			c.Context["dynamodb:Attributes"] = attrs
		}
		if returnValues != "" {
			c.Context["dynamodb:ReturnValues"] = []string{returnValues}
		}
		if sel != "" {
			c.Context["dynamodb:Select"] = []string{sel}
		}
		if len(c.Context) == 0 {
			c.Context = nil
		}
		return c
	}
	switch in := input.(type) {
	case *dynamodb.GetItemInput:
		return []Call{d("GetItem", r.table(in.TableName, nil), attributes(in.ExpressionAttributeNames, keys(in.Key), in.AttributesToGet, in.ProjectionExpression), "", "")}
	case *dynamodb.PutItemInput:
		return []Call{d("PutItem", r.table(in.TableName, nil), attributes(in.ExpressionAttributeNames, keys(in.Item), nil, in.ConditionExpression), string(in.ReturnValues), "")}
	case *dynamodb.UpdateItemInput:
		return []Call{d("UpdateItem", r.table(in.TableName, nil), attributes(in.ExpressionAttributeNames, keys(in.Key), nil, in.UpdateExpression, in.ConditionExpression), string(in.ReturnValues), "")}
	case *dynamodb.DeleteItemInput:
		return []Call{d("DeleteItem", r.table(in.TableName, nil), attributes(in.ExpressionAttributeNames, keys(in.Key), nil, in.ConditionExpression), string(in.ReturnValues), "")}
	case *dynamodb.QueryInput:
		return []Call{d("Query", r.table(in.TableName, in.IndexName), attributes(in.ExpressionAttributeNames, nil, in.AttributesToGet, in.ProjectionExpression), "", string(in.Select))}
	case *dynamodb.ScanInput:
		return []Call{d("Scan", r.table(in.TableName, in.IndexName), attributes(in.ExpressionAttributeNames, nil, in.AttributesToGet, in.ProjectionExpression), "", string(in.Select))}
	case *dynamodb.BatchGetItemInput:
		var out []Call
		for t, ka := range in.RequestItems {
			var ks []string
			for _, k := range ka.Keys {
				ks = append(ks, keys(k)...)
			}
			out = append(out, d("BatchGetItem", r.table(&t, nil), attributes(ka.ExpressionAttributeNames, ks, ka.AttributesToGet, ka.ProjectionExpression), "", ""))
		}
		return out
	case *dynamodb.BatchWriteItemInput:
		var out []Call
		for t, ws := range in.RequestItems {
			var ks []string
			for _, w := range ws {
				if w.PutRequest != nil {
					ks = append(ks, keys(w.PutRequest.Item)...)
				}
				if w.DeleteRequest != nil {
					ks = append(ks, keys(w.DeleteRequest.Key)...)
				}
			}
			out = append(out, d("BatchWriteItem", r.table(&t, nil), attributes(nil, ks, nil), "", ""))
		}
		return out
	case *dynamodb.TransactWriteItemsInput:
		var out []Call
		for _, it := range in.TransactItems {
			out = append(out, r.transactItem(it, d))
		}
		return out
	case *dynamodb.TransactGetItemsInput:
		var out []Call
		for _, it := range in.TransactItems {
			g := it.Get
			out = append(out, d("GetItem", r.table(g.TableName, nil), attributes(g.ExpressionAttributeNames, keys(g.Key), nil, g.ProjectionExpression), "", ""))
		}
		return out
	case *s3.PutObjectInput:
		// Also the presigned POST upload: S3 authorizes the browser's
		// request as the role that signed it.
		return []Call{object("s3:PutObject", in.Key)}
	case *s3.GetObjectInput:
		return []Call{object("s3:GetObject", in.Key)}
	case *s3.HeadObjectInput:
		// HEAD is authorized as s3:GetObject.
		return []Call{object("s3:GetObject", in.Key)}
	case *s3.CopyObjectInput:
		source := strings.TrimPrefix(deref(in.CopySource), deref(in.Bucket)+"/")
		return []Call{object("s3:GetObject", &source), object("s3:PutObject", in.Key)}
	case *s3.DeleteObjectInput:
		return []Call{object("s3:DeleteObject", in.Key)}
	case *s3.ListObjectsV2Input:
		return []Call{{Action: "s3:ListBucket", Resource: BucketResource, Context: map[string][]string{"s3:prefix": {deref(in.Prefix)}}}}
	case *kms.GenerateDataKeyInput:
		return []Call{kmsCall("GenerateDataKey", in.EncryptionContext)}
	case *kms.DecryptInput:
		return []Call{kmsCall("Decrypt", in.EncryptionContext)}
	case *kms.EncryptInput:
		return []Call{kmsCall("Encrypt", in.EncryptionContext)}
	}
	return []Call{r.other(input)}
}

func (r *Recorder) transactItem(it types.TransactWriteItem, d func(action, resource string, attrs []string, returnValues, sel string) Call) Call {
	switch {
	case it.Put != nil:
		p := it.Put
		return d("PutItem", r.table(p.TableName, nil), attributes(p.ExpressionAttributeNames, keys(p.Item), nil, p.ConditionExpression), "", "")
	case it.Update != nil:
		u := it.Update
		return d("UpdateItem", r.table(u.TableName, nil), attributes(u.ExpressionAttributeNames, keys(u.Key), nil, u.UpdateExpression, u.ConditionExpression), "", "")
	case it.Delete != nil:
		x := it.Delete
		return d("DeleteItem", r.table(x.TableName, nil), attributes(x.ExpressionAttributeNames, keys(x.Key), nil, x.ConditionExpression), "", "")
	case it.ConditionCheck != nil:
		c := it.ConditionCheck
		return d("ConditionCheckItem", r.table(c.TableName, nil), attributes(c.ExpressionAttributeNames, keys(c.Key), nil, c.ConditionExpression), "", "")
	}
	return Call{Action: "dynamodb:TransactWriteItems", Resource: "empty transaction item"}
}

// other records a call this package has no rule for by its service and
// operation (from the input's type) and its TableName if it has one, with
// no condition keys: a policy that allows it without conditions passes.
func (r *Recorder) other(input any) Call {
	t := reflect.TypeOf(input)
	v := reflect.ValueOf(input)
	if t.Kind() == reflect.Pointer {
		t, v = t.Elem(), v.Elem()
	}
	service := t.PkgPath()[strings.LastIndex(t.PkgPath(), "/")+1:]
	c := Call{Action: service + ":" + strings.TrimSuffix(t.Name(), "Input"), Resource: "*"}
	switch service {
	case "kms":
		c.Resource = KeyResource
	case "dynamodb":
		if f := v.FieldByName("TableName"); f.IsValid() {
			if s, ok := f.Interface().(*string); ok {
				c.Resource = r.table(s, nil)
			}
		}
	}
	return c
}

// object is an S3 request on an object of the attachments bucket.
func object(action string, key *string) Call {
	return Call{Action: action, Resource: BucketResource + "/" + deref(key)}
}

// kmsCall is a KMS request on the stack's key with its encryption context
// as condition keys.
func kmsCall(action string, encryptionContext map[string]string) Call {
	c := Call{Action: "kms:" + action, Resource: KeyResource}
	if len(encryptionContext) == 0 {
		return c
	}
	c.Context = map[string][]string{}
	var names []string
	for k, v := range encryptionContext {
		c.Context["kms:EncryptionContext:"+k] = []string{v}
		names = append(names, k)
	}
	sort.Strings(names)
	c.Context["kms:EncryptionContextKeys"] = names
	return c
}

func keys(item map[string]types.AttributeValue) []string {
	out := make([]string, 0, len(item))
	for k := range item {
		out = append(out, k)
	}
	return out
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// attributes is the dynamodb:Attributes of a request: the top-level
// attribute names it reads or writes (key attributes included), sorted and
// without repeats. Names in expressions count whether they are read by a
// condition or written by an update, which is the stricter reading.
func attributes(names map[string]string, fixed []string, toGet []string, expressions ...*string) []string {
	set := map[string]bool{}
	for _, a := range append(append([]string{}, fixed...), toGet...) {
		set[a] = true
	}
	for _, e := range expressions {
		for _, a := range ExpressionAttributes(names, deref(e)) {
			set[a] = true
		}
	}
	out := make([]string, 0, len(set))
	for a := range set {
		out = append(out, a)
	}
	sort.Strings(out)
	return out
}

// Words of DynamoDB's expression language that are not attribute names.
var expressionWords = map[string]bool{
	"SET": true, "REMOVE": true, "ADD": true, "DELETE": true, "AND": true, "OR": true, "NOT": true,
	"BETWEEN": true, "IN": true, "attribute_exists": true, "attribute_not_exists": true, "if_not_exists": true,
	"begins_with": true, "contains": true, "size": true, "attribute_type": true, "list_append": true,
}

// ExpressionAttributes lists the top-level attribute names an expression
// names, with #placeholders replaced from names. A name after "." is a
// nested attribute and not listed; :values are not names.
func ExpressionAttributes(names map[string]string, expression string) []string {
	var out []string
	s := expression
	for i := 0; i < len(s); {
		c := s[i]
		start := i
		if c == '#' || c == ':' || isNameStart(c) {
			i++
			for i < len(s) && isNamePart(s[i]) {
				i++
			}
			word := s[start:i]
			nested := previousNonSpace(s, start) == '.'
			switch {
			case nested, c == ':', expressionWords[word], len(word) == 1 && c == '#':
			case c == '#':
				if n, ok := names[word]; ok {
					out = append(out, n)
				} else {
					out = append(out, word)
				}
			case isNameStart(c):
				out = append(out, word)
			}
			continue
		}
		if c >= '0' && c <= '9' {
			for i < len(s) && isNamePart(s[i]) {
				i++
			}
			continue
		}
		i++
	}
	return out
}

func isNameStart(c byte) bool { return c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' }
func isNamePart(c byte) bool  { return isNameStart(c) || c >= '0' && c <= '9' }

func previousNonSpace(s string, i int) byte {
	for i--; i >= 0; i-- {
		if s[i] != ' ' {
			return s[i]
		}
	}
	return 0
}

// Package routes is Waymark's one route table. The CDK stack, the local
// gateway and the tests all read it, so a route is never defined twice.
package routes

import "github.com/waymarkhq/waymark/internal/schema"

// Access is what a function may do with a table.
type Access int

// Access levels, from least to most.
const (
	Read Access = iota + 1
	// ReadPublishKey is Read and the one write the envelope's key board
	// makes on a workspace item: publishing the workspace's sealing key
	// (schema.SealKeyAttribute, schema.SealKeyAtAttribute), and no other
	// attribute.
	ReadPublishKey
	// ReadRefreshExpiry is Read and the one write of retention on an item
	// the function only reads: moving its expiry (schema.TTLAttribute), and
	// no other attribute.
	ReadRefreshExpiry
	ReadWrite
)

// Allows says a function granted a may make a call that needs access need.
// The two narrow writes allow each other nothing.
func (a Access) Allows(need Access) bool {
	return a == need || a == ReadWrite || need == Read && a >= Read
}

// NarrowAttributes are the attributes an update under a narrow access level
// may name on table t (its key attributes among them, as IAM's
// dynamodb:Attributes lists them); nil for the other levels.
func NarrowAttributes(a Access, t schema.Table) []string {
	key := []string{t.PartitionKey.Name}
	if t.SortKey != nil {
		key = append(key, t.SortKey.Name)
	}
	switch a {
	case ReadPublishKey:
		return append(key, schema.SealKeyAttribute, schema.SealKeyAtAttribute)
	case ReadRefreshExpiry:
		return append(key, t.TTLAttribute)
	}
	return nil
}

// NarrowUpdateOf is the narrow level that allows an update naming attrs on
// table t (ReadPublishKey for the workspace's sealing key, ReadRefreshExpiry
// for an expiry), or 0 when only ReadWrite does.
func NarrowUpdateOf(t schema.Table, attrs []string) Access {
	for _, level := range []Access{ReadPublishKey, ReadRefreshExpiry} {
		if level == ReadPublishKey && t.Name != schema.WorkspacesTable {
			continue
		}
		allowed := map[string]bool{}
		for _, a := range NarrowAttributes(level, t) {
			allowed[a] = true
		}
		within := true
		for _, a := range attrs {
			within = within && allowed[a]
		}
		if within {
			return level
		}
	}
	return 0
}

func (a Access) String() string {
	switch a {
	case Read:
		return "read"
	case ReadPublishKey:
		return "read and publish the sealing key"
	case ReadRefreshExpiry:
		return "read and refresh the expiry"
	case ReadWrite:
		return "read and write"
	}
	return "none"
}

// Function is one Lambda function.
type Function struct {
	// Name is the directory under functions/ and the handler's name.
	Name string
	// LogicalID is the stable CloudFormation logical id of the function, so
	// that `sam local invoke <LogicalID>` commands stay valid.
	LogicalID string
	// Tables maps a logical table name to what the function does with it.
	Tables map[string]Access
	// UsesKMS says the function seals or opens values with KMS data keys.
	UsesKMS bool
	// Bucket is what the function does with the attachments bucket (0:
	// nothing).
	Bucket BucketAccess
}

// BucketAccess is what a function may do with the attachments bucket.
type BucketAccess int

// Bucket access levels.
const (
	// AttachUploads presigns uploads (under objects.UploadsPrefix), reads
	// them, copies them under objects.AttachmentsPrefix when a feedback
	// references them and then deletes them.
	AttachUploads BucketAccess = iota + 1
	// ServeAttachments presigns downloads of attachments and lists and
	// deletes a user's objects (erasure).
	ServeAttachments
)

// Route maps an HTTP method and path to a function.
type Route struct {
	Method   string
	Path     string
	Function string
}

// RouteKey is the API Gateway route key, for example "POST /v1/identify".
func (r Route) RouteKey() string { return r.Method + " " + r.Path }

// The public (snippet) functions. Every one of them reads the workspace and
// writes or reads user data; those that seal values may publish the
// workspace's sealing key. Identify reads the user's content state and, in a
// workspace with retention, moves the expiry of items the user is still
// active on (service.refreshRetention), and writes nothing else there.
var (
	Identify = Function{Name: "identify", LogicalID: "IdentifyFunction", UsesKMS: true, Tables: map[string]Access{
		schema.WorkspacesTable: ReadPublishKey, schema.UsersTable: ReadWrite, schema.ContentStateTable: ReadRefreshExpiry,
		schema.GroupsTable: ReadWrite,
	}}
	Events = Function{Name: "events", LogicalID: "EventsFunction", UsesKMS: true, Tables: map[string]Access{
		schema.WorkspacesTable: ReadPublishKey, schema.UsersTable: ReadWrite, schema.ContentStateTable: ReadWrite,
	}}
	State = Function{Name: "state", LogicalID: "StateFunction", UsesKMS: true, Tables: map[string]Access{
		schema.WorkspacesTable: Read, schema.ContentStateTable: Read,
	}}
	Feedback = Function{Name: "feedback", LogicalID: "FeedbackFunction", UsesKMS: true, Bucket: AttachUploads, Tables: map[string]Access{
		schema.WorkspacesTable: ReadPublishKey, schema.UsersTable: ReadWrite, schema.FeedbackTable: ReadWrite,
	}}
)

// Server serves the server API (/v1/server/...), authenticated by a
// workspace secret key: server-side identify, feedback listing, export and
// erasure. One function, because these calls are rare next to the snippet's
// and share everything but their handler.
var Server = Function{Name: "server", LogicalID: "ServerFunction", UsesKMS: true, Bucket: ServeAttachments, Tables: map[string]Access{
	schema.WorkspacesTable: ReadPublishKey, schema.UsersTable: ReadWrite, schema.ContentStateTable: ReadWrite, schema.FeedbackTable: ReadWrite,
	schema.GroupsTable:    ReadWrite,
	schema.AnalyticsTable: Read,
}}

// Analytics is the content analytics' aggregator, fed by the ContentState
// table's stream (not by a route): it opens survey answers with the data
// keys their items carry (KMS Decrypt; it never seals) and writes the
// Analytics table's counters. It reads the stream, no other table. Not in
// Functions(), which lists the functions routes serve: the stack deploys it
// on its own (infra/stack/analytics.go), like the webhook deliverer.
var Analytics = Function{Name: "analytics", LogicalID: "AnalyticsFunction", UsesKMS: true, Tables: map[string]Access{
	schema.AnalyticsTable: ReadWrite,
}}

// Snippet serves the browser snippet, waymark.js, to pages that load it
// from the API. It reads no table and uses no key: a function of its own so
// that the static file needs none of the others' permissions.
var Snippet = Function{Name: "snippet", LogicalID: "SnippetFunction"}

// Functions lists every function, in a stable order.
func Functions() []Function { return []Function{Identify, Events, State, Feedback, Server, Snippet} }

// Table lists every route.
func Table() []Route {
	return []Route{
		{Method: "POST", Path: "/v1/identify", Function: Identify.Name},
		{Method: "POST", Path: "/v1/events", Function: Events.Name},
		{Method: "POST", Path: "/v1/state", Function: State.Name},
		{Method: "POST", Path: "/v1/feedback", Function: Feedback.Name},
		{Method: "POST", Path: "/v1/feedback/attachments", Function: Feedback.Name},
		{Method: "POST", Path: "/v1/server/identify", Function: Server.Name},
		{Method: "GET", Path: "/v1/server/feedback", Function: Server.Name},
		{Method: "POST", Path: "/v1/server/users/export", Function: Server.Name},
		{Method: "POST", Path: "/v1/server/users/delete", Function: Server.Name},
		{Method: "POST", Path: "/v1/server/groups/identify", Function: Server.Name},
		{Method: "POST", Path: "/v1/server/groups/export", Function: Server.Name},
		{Method: "POST", Path: "/v1/server/groups/delete", Function: Server.Name},
		{Method: "POST", Path: "/v1/server/users/import", Function: Server.Name},
		{Method: "GET", Path: "/v1/server/analytics", Function: Server.Name},
		{Method: "GET", Path: "/waymark.js", Function: Snippet.Name},
	}
}

// CORSConfig is the cross-origin configuration the deployed API (API Gateway's
// CORS settings) and the local gateway both apply. Origins are checked per
// workspace by the functions (403 origin_not_allowed), so the gateway allows
// any origin and leaves the decision to them.
type CORSConfig struct {
	AllowOrigins  []string
	AllowMethods  []string
	AllowHeaders  []string
	ExposeHeaders []string
	MaxAgeSeconds int
}

// CORS is Waymark's one CORS configuration. It allows no Authorization
// header: server routes are not for browsers (a page holding a secret key
// leaks it to every visitor), and a browser sends a cross-origin request with
// that header only after a preflight allowing it, so no page can make a
// server call. Deployed this is the whole protection, because an HTTP API's
// CORS configuration is API-wide; locally the gateway also answers server
// routes without CORS headers (internal/gateway/cors.go).
var CORS = CORSConfig{
	AllowOrigins:  []string{"*"},
	AllowMethods:  []string{"GET", "POST", "OPTIONS"},
	AllowHeaders:  []string{"content-type"},
	ExposeHeaders: []string{"x-request-id", "retry-after"},
	MaxAgeSeconds: 86400,
}

// Package schema defines Waymark's DynamoDB tables once. The CDK stack, the
// local engines started by `waymark dev` and the tests all create their tables
// from these definitions, so a table never has to be edited in two places.
package schema

// AttributeType is a DynamoDB key attribute type.
type AttributeType string

// Key attribute types used by Waymark.
const (
	String AttributeType = "S"
	Number AttributeType = "N"
	Binary AttributeType = "B"
)

// Protection says how an attribute is kept at rest.
type Protection string

// The ways an attribute may be stored.
const (
	// Clear is stored as is: identifiers, timestamps, counters and flags that
	// are not personal data.
	Clear Protection = "clear"
	// KeyedHash is an HMAC-SHA256 under a per-workspace secret (of the
	// username; of the last identify input).
	KeyedHash Protection = "keyed-hash"
	// Sealed is AES-256-GCM under a KMS data key, bound to table, item and attribute.
	Sealed Protection = "sealed"
	// Hashed is a one-way SHA-256 of a high-entropy secret (API keys).
	Hashed Protection = "hashed"
)

// KeyAttribute is a partition or sort key attribute.
type KeyAttribute struct {
	Name string
	Type AttributeType
}

// Index is a global secondary index. Its projection is always ALL.
type Index struct {
	Name         string
	PartitionKey KeyAttribute
	SortKey      *KeyAttribute
}

// Attribute documents one attribute an item of the table may carry.
type Attribute struct {
	Name       string
	Holds      string
	Personal   bool
	Protection Protection
}

// Table is one DynamoDB table.
type Table struct {
	// Name is the logical name; deployed tables get it as their CDK id and
	// local tables get it (with a prefix) as their table name.
	Name string
	// EnvVar is the environment variable that carries the physical table name
	// to a function.
	EnvVar        string
	PartitionKey  KeyAttribute
	SortKey       *KeyAttribute
	GlobalIndexes []Index
	// TTLAttribute is the attribute DynamoDB's time to live reads.
	TTLAttribute string
	Attributes   []Attribute
	// Stream turns on the table's stream with new and old images (the
	// content analytics read the ContentState table's; retention deletes
	// the attachment files an expired feedback item's old image lists).
	Stream bool
}

// TTLAttribute is the time-to-live attribute of every table (unix seconds).
const TTLAttribute = "expiresAt"

// Logical table names.
const (
	WorkspacesTable   = "Workspaces"
	UsersTable        = "Users"
	ContentStateTable = "ContentState"
	FeedbackTable     = "Feedback"
	GroupsTable       = "Groups"
	AnalyticsTable    = "Analytics"
)

// Attributes of a workspace item that publish the sealing key the functions
// share (internal/envelope): the KMS-wrapped data key and when it was
// generated. They are the only ones the functions may write there.
const (
	SealKeyAttribute   = "sealKey"
	SealKeyAtAttribute = "sealKeyAt"
)

// FeedbackByWorkspaceIndex lists a workspace's feedback by month and time.
const FeedbackByWorkspaceIndex = "ByWorkspaceMonth"

// Workspaces holds one item per workspace.
var Workspaces = Table{
	Name:         WorkspacesTable,
	EnvVar:       "WORKSPACES_TABLE",
	PartitionKey: KeyAttribute{Name: "code", Type: String},
	TTLAttribute: TTLAttribute,
	Attributes: []Attribute{
		{Name: "code", Holds: "public workspace code", Protection: Clear},
		{Name: "name", Holds: "workspace display name chosen by the operator", Protection: Clear},
		{Name: "createdAt", Holds: "creation time (RFC 3339)", Protection: Clear},
		{Name: "identityVerification", Holds: "whether calls must carry an HMAC", Protection: Clear},
		{Name: "hmacExpiration", Holds: "which HMAC message form identity verification accepts (required, none, optional)", Protection: Clear},
		{Name: "origins", Holds: "allowed browser origins", Protection: Clear},
		{Name: "allowedProps", Holds: "user prop keys stored (data minimization; absent = any)", Protection: Clear},
		{Name: "allowedGroupProps", Holds: "group prop keys stored (data minimization; absent = any)", Protection: Clear},
		{Name: "retentionDays", Holds: "days of inactivity after which user data expires (0 = kept)", Protection: Clear},
		{Name: "disabled", Holds: "whether the workspace refuses all calls", Protection: Clear},
		{Name: "hmacSecret", Holds: "secret for identity verification", Protection: Sealed},
		{Name: "userKeySecret", Holds: "secret for the keyed hash of usernames", Protection: Sealed},
		{Name: "keys", Holds: "server API keys: id, SHA-256 of the key, created and revoked times", Protection: Hashed},
		{Name: "webhookUrl", Holds: "URL new feedback is delivered to (set by the operator)", Protection: Clear},
		{Name: "webhookFormat", Holds: "body of the deliveries: json or slack", Protection: Clear},
		{Name: "webhookSecret", Holds: "secret that signs the deliveries", Protection: Sealed},
		{Name: "dk", Holds: "KMS-wrapped data key that sealed this item's sealed attributes", Protection: Clear},
		{Name: SealKeyAttribute, Holds: "KMS-wrapped data key the functions seal this workspace's new values with, shared between function instances", Protection: Clear},
		{Name: SealKeyAtAttribute, Holds: "when that data key was generated (RFC 3339); it seals for 10 minutes", Protection: Clear},
		{Name: "v", Holds: "item version for optimistic concurrency", Protection: Clear},
		{Name: TTLAttribute, Holds: "unused on workspaces (schema-wide TTL attribute)", Protection: Clear},
	},
}

// Users holds one item per user of a workspace: the user information object.
var Users = Table{
	Name:         UsersTable,
	EnvVar:       "USERS_TABLE",
	PartitionKey: KeyAttribute{Name: "pk", Type: String},
	TTLAttribute: TTLAttribute,
	Attributes: []Attribute{
		{Name: "pk", Holds: "workspace code and keyed hash of the username", Personal: true, Protection: KeyedHash},
		{Name: "username", Holds: "the username", Personal: true, Protection: Sealed},
		{Name: "email", Holds: "e-mail address", Personal: true, Protection: Sealed},
		{Name: "firstname", Holds: "first name", Personal: true, Protection: Sealed},
		{Name: "lastname", Holds: "last name", Personal: true, Protection: Sealed},
		{Name: "role", Holds: "role in the customer's app", Personal: true, Protection: Sealed},
		{Name: "signUpAt", Holds: "sign-up time in the customer's app", Personal: true, Protection: Sealed},
		{Name: "props", Holds: "free-form properties (JSON object)", Personal: true, Protection: Sealed},
		{Name: "lastInput", Holds: "keyed hash of the last identify input the profile took (a repeat of it skips the read)", Personal: true, Protection: KeyedHash},
		{Name: "pin", Holds: "identify inputs waiting to be applied to the profile (each recorded by an identify that lost the race for the item; folded in by the next write), each sealed under its own data key", Personal: true, Protection: Sealed},
		{Name: "pinReq", Holds: "random ids of the requests whose inputs wait in pin or were folded in lately (retry detection)", Protection: Clear},
		{Name: "groups", Holds: "keyed hashes of the ids of the groups the user belongs to (the user's side of its memberships)", Personal: true, Protection: KeyedHash},
		{Name: "firstSeenAt", Holds: "first call seen for this user", Protection: Clear},
		{Name: "lastSeenAt", Holds: "latest call seen for this user", Protection: Clear},
		{Name: "dk", Holds: "KMS-wrapped data key that sealed this item's sealed attributes", Protection: Clear},
		{Name: "v", Holds: "item version for optimistic concurrency", Protection: Clear},
		{Name: "req", Holds: "random id of the request that wrote the item last (retry detection)", Protection: Clear},
		{Name: TTLAttribute, Holds: "expiry under the workspace's retention", Protection: Clear},
	},
}

// ContentState holds, in one partition per user, one item per content item the
// user touched; each item also carries the fingerprints of the events applied
// to it, which make events idempotent.
var ContentState = Table{
	Name:         ContentStateTable,
	EnvVar:       "CONTENT_STATE_TABLE",
	PartitionKey: KeyAttribute{Name: "pk", Type: String},
	SortKey:      &KeyAttribute{Name: "sk", Type: String},
	TTLAttribute: TTLAttribute,
	Attributes: []Attribute{
		{Name: "pk", Holds: "workspace code and keyed hash of the username", Personal: true, Protection: KeyedHash},
		{Name: "sk", Holds: "content kind and content id", Protection: Clear},
		{Name: "st", Holds: "state of the content item (status, step, counters, items, times)", Protection: Clear},
		{Name: "seen", Holds: "fingerprints (truncated SHA-256) and times of applied event ids", Protection: Clear},
		{Name: "claims", Holds: "fingerprints (truncated SHA-256) of the event ids the item holds, applied or pending (duplicate detection in conditions)", Protection: Clear},
		{Name: "pend", Holds: "pending events (id, action, time, step, item, request id; never an answer) recorded by writers that raced, until the next write folds them in", Protection: Clear},
		{Name: "answer", Holds: "latest survey answer (JSON)", Personal: true, Protection: Sealed},
		{Name: "dk", Holds: "KMS-wrapped data key that sealed this item's sealed attributes", Protection: Clear},
		{Name: "v", Holds: "item version for optimistic concurrency", Protection: Clear},
		{Name: "req", Holds: "random id of the request that wrote the item last (retry detection)", Protection: Clear},
		{Name: TTLAttribute, Holds: "expiry under the workspace's retention", Protection: Clear},
	},
	Stream: true,
}

// Feedback holds feedback items in the sending user's partition (for export
// and erasure) and indexes them by workspace and month (for listing).
var Feedback = Table{
	Name:         FeedbackTable,
	EnvVar:       "FEEDBACK_TABLE",
	PartitionKey: KeyAttribute{Name: "pk", Type: String},
	SortKey:      &KeyAttribute{Name: "sk", Type: String},
	GlobalIndexes: []Index{{
		Name:         FeedbackByWorkspaceIndex,
		PartitionKey: KeyAttribute{Name: "wsMonth", Type: String},
		SortKey:      &KeyAttribute{Name: "sk", Type: String},
	}},
	TTLAttribute: TTLAttribute,
	Attributes: []Attribute{
		{Name: "pk", Holds: "workspace code and keyed hash of the username", Personal: true, Protection: KeyedHash},
		{Name: "sk", Holds: "creation time and feedback id", Protection: Clear},
		{Name: "wsMonth", Holds: "workspace code and creation month (index partition)", Protection: Clear},
		{Name: "id", Holds: "feedback id", Protection: Clear},
		{Name: "createdAt", Holds: "creation time", Protection: Clear},
		{Name: "rating", Holds: "rating given in the widget", Protection: Clear},
		{Name: "category", Holds: "category chosen in the widget", Protection: Clear},
		{Name: "username", Holds: "the sender's username (for the workspace's feedback list)", Personal: true, Protection: Sealed},
		{Name: "text", Holds: "feedback text", Personal: true, Protection: Sealed},
		{Name: "environment", Holds: "page URL, user agent, language, platform, viewport (JSON)", Personal: true, Protection: Sealed},
		{Name: "attachments", Holds: "attached files: random id, content type, size (the files are in the attachments bucket)", Protection: Clear},
		{Name: "dk", Holds: "KMS-wrapped data key that sealed this item's sealed attributes", Protection: Clear},
		{Name: TTLAttribute, Holds: "expiry under the workspace's retention (parked deliveries: 30 days after parking)", Protection: Clear},
		{Name: "fpk", Holds: "parked delivery (pk " + ParkedDeliveryPrefix + "CODE, sk delivery id): the feedback's pk", Personal: true, Protection: KeyedHash},
		{Name: "fsk", Holds: "parked delivery: the feedback's sk", Protection: Clear},
		{Name: "firstAt", Holds: "parked delivery: when it was first queued; requeued delivery (pk " + RequeuedDeliveryPrefix + "CODE): when it was requeued", Protection: Clear},
		{Name: "parkedAt", Holds: "parked delivery: when it was parked", Protection: Clear},
		{Name: "attempts", Holds: "parked delivery: attempts made", Protection: Clear},
		{Name: "lastError", Holds: "parked delivery: outcome of the last attempt (status code or error class, never a body)", Protection: Clear},
	},
	// New feedback items reach the webhook deliverer through the stream,
	// and so do expired ones, whose attachment files it deletes.
	Stream: true,
}

// Groups holds, in one partition per group (a customer's account), the group
// item (sk GroupItemSK) and one membership item per member (sk
// GroupMemberPrefix + the member's user key), so that a group's export
// counts and its erasure finds its memberships with one Query. The user's
// side of a membership is the user item's "groups" attribute, written in the
// same transaction as the membership items.
var Groups = Table{
	Name:         GroupsTable,
	EnvVar:       "GROUPS_TABLE",
	PartitionKey: KeyAttribute{Name: "pk", Type: String},
	SortKey:      &KeyAttribute{Name: "sk", Type: String},
	TTLAttribute: TTLAttribute,
	Attributes: []Attribute{
		{Name: "pk", Holds: "workspace code and keyed hash of the group id", Personal: true, Protection: KeyedHash},
		{Name: "sk", Holds: "\"group\" for the group item; \"member#\", workspace code and keyed hash of the username for a membership", Personal: true, Protection: KeyedHash},
		{Name: "id", Holds: "the group id (group item)", Personal: true, Protection: Sealed},
		{Name: "props", Holds: "the group's free-form properties (JSON object; group item)", Personal: true, Protection: Sealed},
		{Name: "dk", Holds: "KMS-wrapped data key that sealed this item's sealed attributes", Protection: Clear},
		{Name: "v", Holds: "item version for optimistic concurrency (group item)", Protection: Clear},
		{Name: "req", Holds: "random id of the request that wrote the item last (retry detection)", Protection: Clear},
		{Name: TTLAttribute, Holds: "expiry under the workspace's retention", Protection: Clear},
	},
}

// Sort keys of the Groups table.
const (
	GroupItemSK       = "group"
	GroupMemberPrefix = "member#"
)

// ParkedDeliveryPrefix starts the partition key of a workspace's parked
// webhook deliveries in the Feedback table. Workspace codes cannot hold
// '~', so no user's partition (CODE#hash) can take this form.
const ParkedDeliveryPrefix = "~parked#"

// RequeuedDeliveryPrefix starts the partition key of a redelivery request
// (sk: the delivery id): written by `waymark workspace redeliver`, it
// reaches the deliverer through the table's stream like new feedback.
const RequeuedDeliveryPrefix = "~requeue#"

// Analytics holds the content analytics: per workspace and content item,
// all-time counters (partition "<workspace>#totals", one item per content
// item) and per-day counters (partition "<workspace>#<kind>#<id>", one item
// per UTC day). Counts only: no user key, no personal data.
var Analytics = Table{
	Name:         AnalyticsTable,
	EnvVar:       "ANALYTICS_TABLE",
	PartitionKey: KeyAttribute{Name: "pk", Type: String},
	SortKey:      &KeyAttribute{Name: "sk", Type: String},
	TTLAttribute: TTLAttribute,
	Attributes: []Attribute{
		{Name: "pk", Holds: "workspace code, and content kind and id for per-day counters", Protection: Clear},
		{Name: "sk", Holds: "content kind and id (all-time counters) or UTC day (per-day counters)", Protection: Clear},
		{Name: "c", Holds: "counters: distinct users per action, tour step, checklist item and scalar survey answer; total displays", Protection: Clear},
		{Name: "q", Holds: "per stream shard (short hash of its id), the last stream sequence number applied and when (exactly-once application)", Protection: Clear},
		{Name: TTLAttribute, Holds: "expiry of per-day counters (400 days after the day)", Protection: Clear},
	},
}

// All lists every table Waymark uses.
func All() []Table { return []Table{Workspaces, Users, ContentState, Feedback, Groups, Analytics} }

package waymark

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"time"
	"unicode"
	"unicode/utf8"
)

// HMAC is the identity-verification proof a call may carry.
type HMAC struct {
	Hash       string `json:"hash"`
	Expiration *int64 `json:"expiration,omitempty"`
}

// Nullable is a JSON field that may be absent, null, or a value; identify
// needs the difference (absent keeps, null clears, a value replaces).
type Nullable struct {
	Set   bool
	Null  bool
	Value string
	// notString is set when the value was neither a string nor null.
	notString bool
}

// UnmarshalJSON records that the field was present, and whether it was
// null. A value of another type is recorded too, for Validate to refuse with
// the field's name: an error returned from here reaches the caller without
// the path of the field it came from.
func (n *Nullable) UnmarshalJSON(b []byte) error {
	n.Set = true
	if bytes.Equal(b, []byte("null")) {
		n.Null = true
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		return json.Unmarshal(b, &n.Value)
	}
	n.notString = true
	return nil
}

// MarshalJSON writes the field back as it came: null or its string (an
// absent field is left out by omitzero).
func (n Nullable) MarshalJSON() ([]byte, error) {
	if n.Null {
		return []byte("null"), nil
	}
	return json.Marshal(n.Value)
}

// UserInput is the user information object sent to identify. It encodes
// back to the JSON it was decoded from (a user's input waiting to be
// applied is stored so).
type UserInput struct {
	Username  string         `json:"username"`
	Email     Nullable       `json:"email,omitzero"`
	Firstname Nullable       `json:"firstname,omitzero"`
	Lastname  Nullable       `json:"lastname,omitzero"`
	Role      Nullable       `json:"role,omitzero"`
	SignUpAt  Nullable       `json:"signUpAt,omitzero"`
	Props     map[string]any `json:"props,omitempty"`
	// Groups and Group are the user's memberships (Memberships).
	Groups *[]GroupInput `json:"groups,omitzero"`
	Group  *GroupInput   `json:"group,omitzero"`
}

// canonical encodes the input so that inputs that merge alike encode alike:
// fields in a fixed order, each absent, null or its value; props sorted by
// name (encoding/json sorts map keys). A number written two ways ("1",
// "1.0") encodes two ways, which only costs the repeat its shortcut.
func (in UserInput) canonical() []byte {
	b := []byte(strconv.Quote(in.Username))
	for _, n := range []Nullable{in.Email, in.Firstname, in.Lastname, in.Role, in.SignUpAt} {
		switch {
		case !n.Set:
			b = append(b, ",-"...)
		case n.Null:
			b = append(b, ",null"...)
		default:
			b = append(b, ',')
			b = strconv.AppendQuote(b, n.Value)
		}
	}
	b = append(b, ',')
	if len(in.Props) == 0 {
		return append(b, '-')
	}
	// Props were decoded from JSON and validated: they encode again.
	props, _ := json.Marshal(in.Props)
	return append(b, props...)
}

// IdentifyRequest is the body of POST /v1/identify.
type IdentifyRequest struct {
	Workspace string    `json:"workspace"`
	User      UserInput `json:"user"`
	HMAC      *HMAC     `json:"hmac"`
}

// EventInput is one event of POST /v1/events.
type EventInput struct {
	ID        string `json:"id"`
	Content   string `json:"content"`
	ContentID string `json:"contentId"`
	Action    string `json:"action"`
	At        string `json:"at"`
	Step      string `json:"step"`
	Item      string `json:"item"`
	Answer    any    `json:"answer"`
}

// EventsRequest is the body of POST /v1/events.
type EventsRequest struct {
	Workspace string       `json:"workspace"`
	Username  string       `json:"username"`
	HMAC      *HMAC        `json:"hmac"`
	Events    []EventInput `json:"events"`
}

// StateRequest is the body of POST /v1/state.
type StateRequest struct {
	Workspace string `json:"workspace"`
	Username  string `json:"username"`
	HMAC      *HMAC  `json:"hmac"`
}

// Environment is what the feedback widget reports about the page.
type Environment struct {
	URL            string `json:"url,omitempty"`
	UserAgent      string `json:"userAgent,omitempty"`
	Language       string `json:"language,omitempty"`
	Platform       string `json:"platform,omitempty"`
	ViewportWidth  *int   `json:"viewportWidth,omitempty"`
	ViewportHeight *int   `json:"viewportHeight,omitempty"`
}

// FeedbackRequest is the body of POST /v1/feedback.
type FeedbackRequest struct {
	Workspace   string       `json:"workspace"`
	Username    string       `json:"username"`
	HMAC        *HMAC        `json:"hmac"`
	Text        string       `json:"text"`
	Rating      *int         `json:"rating"`
	Category    *string      `json:"category"`
	Environment *Environment `json:"environment"`
	// Attachments are ids of uploads (POST /v1/feedback/attachments) of
	// the same user.
	Attachments []string `json:"attachments"`
}

var (
	workspaceCodePattern = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)
	propKeyPattern       = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)
	hexDigits            = regexp.MustCompile(`^[0-9A-Fa-f]+$`)
	// rfc3339 is RFC 3339's date-time: time.Parse alone also takes a comma
	// before the fraction and offsets up to 24:60.
	rfc3339 = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]([01]\d|2[0-3]):[0-5]\d)$`)
)

// ParseTime parses an RFC 3339 date-time, as every time in a request is.
func ParseTime(s string) (time.Time, error) {
	if !rfc3339.MatchString(s) {
		return time.Time{}, fmt.Errorf("%q is not an RFC 3339 date-time", s)
	}
	return time.Parse(time.RFC3339Nano, s)
}

// ValidateWorkspaceCode checks the shape of a workspace code.
func ValidateWorkspaceCode(field, code string) error {
	if code == "" {
		return Invalid(field, "required")
	}
	if len(code) > MaxWorkspaceChars {
		return Invalid(field, "longer than %d characters", MaxWorkspaceChars)
	}
	if !workspaceCodePattern.MatchString(code) {
		return Invalid(field, "only letters, digits, '_' and '-' are allowed")
	}
	return nil
}

// ValidateUsername checks a username: 1–256 bytes of valid UTF-8 without
// control characters.
func ValidateUsername(field, username string) error {
	if username == "" {
		return Invalid(field, "required")
	}
	if len(username) > MaxUsernameBytes {
		return Invalid(field, "longer than %d bytes", MaxUsernameBytes)
	}
	return validText(field, username)
}

// validText rejects invalid UTF-8 and control characters.
func validText(field, s string) error {
	if !utf8.ValidString(s) {
		return Invalid(field, "not valid UTF-8")
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return Invalid(field, "contains a control character")
		}
	}
	return nil
}

// validID checks content ids, event ids, steps and items: 1–128 printable
// characters.
func validID(field, id string) error {
	if id == "" {
		return Invalid(field, "required")
	}
	if !utf8.ValidString(id) {
		return Invalid(field, "not valid UTF-8")
	}
	n := 0
	for _, r := range id {
		n++
		if !unicode.IsPrint(r) {
			return Invalid(field, "contains a character that is not printable")
		}
	}
	if n > MaxIDChars {
		return Invalid(field, "longer than %d characters", MaxIDChars)
	}
	return nil
}

// validBoundedText checks optional free text bounded in characters.
func validBoundedText(field, s string, maxChars int) error {
	if err := validText(field, s); err != nil {
		return err
	}
	if utf8.RuneCountInString(s) > maxChars {
		return Invalid(field, "longer than %d characters", maxChars)
	}
	return nil
}

func validHMAC(h *HMAC) error {
	if h == nil {
		return nil
	}
	if h.Hash == "" {
		return Invalid("hmac.hash", "required")
	}
	if len(h.Hash) != 64 || !hexDigits.MatchString(h.Hash) {
		return Invalid("hmac.hash", "must be 64 hexadecimal characters")
	}
	if h.Expiration != nil && *h.Expiration <= 0 {
		return Invalid("hmac.expiration", "must be a positive unix time in seconds")
	}
	return nil
}

func validCaller(workspace, username, usernameField string, h *HMAC) error {
	if err := ValidateWorkspaceCode("workspace", workspace); err != nil {
		return err
	}
	if err := ValidateUsername(usernameField, username); err != nil {
		return err
	}
	return validHMAC(h)
}

// Validate checks an identify request against every documented limit.
func (r *IdentifyRequest) Validate() error {
	if err := validCaller(r.Workspace, r.User.Username, "user.username", r.HMAC); err != nil {
		return err
	}
	fields := []struct {
		name string
		v    Nullable
	}{{"email", r.User.Email}, {"firstname", r.User.Firstname}, {"lastname", r.User.Lastname}, {"role", r.User.Role}, {"signUpAt", r.User.SignUpAt}}
	for _, f := range fields {
		if f.v.notString {
			return Invalid("user."+f.name, "must be a string or null")
		}
	}
	for _, f := range fields[:4] {
		if !f.v.Set || f.v.Null {
			continue
		}
		field := "user." + f.name
		if len(f.v.Value) > MaxProfileFieldBytes {
			return Invalid(field, "longer than %d bytes", MaxProfileFieldBytes)
		}
		if err := validText(field, f.v.Value); err != nil {
			return err
		}
	}
	if s := r.User.SignUpAt; s.Set && !s.Null {
		if _, err := ParseTime(s.Value); err != nil {
			return Invalid("user.signUpAt", "not an RFC 3339 date-time")
		}
	}
	if err := ValidateProps("user.props", r.User.Props); err != nil {
		return err
	}
	return r.User.validGroups()
}

// ValidateProps checks a props object: at most MaxProps keys of the allowed
// shape, and values within the size and nesting limits. A null value (delete
// this key) and an attribute operation (see MergeProps) are allowed at the
// top level only.
func ValidateProps(field string, props map[string]any) error {
	if len(props) > MaxProps {
		return Invalid(field, "more than %d props", MaxProps)
	}
	for _, k := range sortedKeys(props) {
		if err := validPropKey(field, k); err != nil {
			return err
		}
		if props[k] == nil {
			continue
		}
		if _, _, isOp := operation(props[k]); isOp {
			if err := validOperation(field+"."+k, props[k].(map[string]any)); err != nil {
				return err
			}
			continue
		}
		if err := validValue(field+"."+k, props[k], 1); err != nil {
			return err
		}
	}
	return nil
}

func validPropKey(field, k string) error {
	if k == "" || len(k) > MaxPropKeyBytes || !propKeyPattern.MatchString(k) {
		return Invalid(field+"."+k, "a key must be 1–%d of A–Z, a–z, 0–9, '_', '.', '-'", MaxPropKeyBytes)
	}
	return nil
}

// validValue checks one JSON value at the given nesting depth (1 = a value
// of the top-level object).
func validValue(field string, v any, depth int) error {
	switch x := v.(type) {
	case nil:
		return Invalid(field, "null is only allowed as a top-level prop value (it deletes the prop)")
	case string:
		if len(x) > MaxStringValueBytes {
			return Invalid(field, "longer than %d bytes", MaxStringValueBytes)
		}
		if !utf8.ValidString(x) {
			return Invalid(field, "not valid UTF-8")
		}
	case bool:
	case json.Number:
		if _, err := strconv.ParseFloat(string(x), 64); err != nil {
			return Invalid(field, "number out of range")
		}
	case float64:
	case []any:
		if len(x) > MaxArrayItems {
			return Invalid(field, "more than %d items", MaxArrayItems)
		}
		for i, item := range x {
			itemField := fmt.Sprintf("%s[%d]", field, i)
			switch item.(type) {
			case []any, map[string]any, nil:
				return Invalid(itemField, "arrays may hold only strings, numbers and booleans")
			}
			if err := validValue(itemField, item, depth); err != nil {
				return err
			}
		}
	case map[string]any:
		if depth >= MaxNesting {
			return Invalid(field, "nested deeper than %d levels", MaxNesting)
		}
		if len(x) > MaxProps {
			return Invalid(field, "more than %d keys", MaxProps)
		}
		for _, k := range sortedKeys(x) {
			if err := validPropKey(field, k); err != nil {
				return err
			}
			if err := validValue(field+"."+k, x[k], depth+1); err != nil {
				return err
			}
		}
	default:
		return Invalid(field, "unsupported value")
	}
	return nil
}

// Validate checks an events request; one bad event rejects the whole batch.
func (r *EventsRequest) Validate(now time.Time) ([]Event, error) {
	if err := validCaller(r.Workspace, r.Username, "username", r.HMAC); err != nil {
		return nil, err
	}
	if len(r.Events) == 0 {
		return nil, Invalid("events", "at least one event is required")
	}
	if len(r.Events) > MaxEventsPerBatch {
		return nil, Invalid("events", "more than %d events", MaxEventsPerBatch)
	}
	events := make([]Event, len(r.Events))
	for i := range r.Events {
		ev, err := r.Events[i].toEvent(fmt.Sprintf("events[%d]", i), now)
		if err != nil {
			return nil, err
		}
		events[i] = ev
	}
	return events, nil
}

func (in *EventInput) toEvent(field string, now time.Time) (Event, error) {
	if err := validID(field+".id", in.ID); err != nil {
		return Event{}, err
	}
	kind := Kind(in.Content)
	actions, ok := kindActions[kind]
	if !ok {
		return Event{}, Invalid(field+".content", "must be one of tour, hint, announcement, checklist, survey")
	}
	if err := validID(field+".contentId", in.ContentID); err != nil {
		return Event{}, err
	}
	action := Action(in.Action)
	if !actions[action] {
		return Event{}, Invalid(field+".action", "%q is not an action of %s", in.Action, kind)
	}
	if in.At == "" {
		return Event{}, Invalid(field+".at", "required")
	}
	at, err := ParseTime(in.At)
	if err != nil {
		return Event{}, Invalid(field+".at", "not an RFC 3339 date-time")
	}
	if at.Before(EarliestEventTime) {
		// The reducer orders an item's events after its zero time: one dated
		// earlier would count without ever showing in the state.
		return Event{}, Invalid(field+".at", "before %s", EarliestEventTime.Format(time.RFC3339))
	}
	if limit := now.Add(MaxFutureSkew); at.After(limit) {
		at = limit
	}
	ev := Event{ID: in.ID, Kind: kind, ContentID: in.ContentID, Action: action, At: at.UTC()}
	if in.Step != "" || action == ActionAdvanced {
		if kind != KindTour {
			return Event{}, Invalid(field+".step", "only tour events carry a step")
		}
		if err := validID(field+".step", in.Step); err != nil {
			return Event{}, err
		}
		ev.Step = in.Step
	}
	if in.Item != "" || action == ActionItemCompleted {
		if action != ActionItemCompleted {
			return Event{}, Invalid(field+".item", "only item_completed events carry an item")
		}
		if err := validID(field+".item", in.Item); err != nil {
			return Event{}, err
		}
		ev.Item = in.Item
	}
	if in.Answer != nil || action == ActionAnswered {
		if action != ActionAnswered {
			return Event{}, Invalid(field+".answer", "only answered events carry an answer")
		}
		if in.Answer == nil {
			return Event{}, Invalid(field+".answer", "required")
		}
		if _, isObject := in.Answer.(map[string]any); isObject {
			return Event{}, Invalid(field+".answer", "must be a string, number, boolean or array of those")
		}
		if err := validValue(field+".answer", in.Answer, MaxNesting); err != nil {
			return Event{}, err
		}
		ev.Answer = in.Answer
	}
	return ev, nil
}

// Validate checks a state request.
func (r *StateRequest) Validate() error {
	return validCaller(r.Workspace, r.Username, "username", r.HMAC)
}

// CategoryText is the feedback's category, "" when it has none. Category
// is a pointer so that validation tells an empty category (refused) from
// none.
func (r *FeedbackRequest) CategoryText() string {
	if r.Category == nil {
		return ""
	}
	return *r.Category
}

// Validate checks a feedback request.
func (r *FeedbackRequest) Validate() error {
	if err := validCaller(r.Workspace, r.Username, "username", r.HMAC); err != nil {
		return err
	}
	if r.Text == "" {
		return Invalid("text", "required")
	}
	if !utf8.ValidString(r.Text) {
		return Invalid("text", "not valid UTF-8")
	}
	if utf8.RuneCountInString(r.Text) > MaxFeedbackChars {
		return Invalid("text", "longer than %d characters", MaxFeedbackChars)
	}
	if r.Rating != nil && (*r.Rating < 0 || *r.Rating > MaxRating) {
		return Invalid("rating", "must be an integer from 0 to %d", MaxRating)
	}
	if r.Category != nil {
		// Counted first, so that a long category hears its own limit.
		if utf8.RuneCountInString(*r.Category) > MaxCategoryChars {
			return Invalid("category", "longer than %d characters", MaxCategoryChars)
		}
		if err := validID("category", *r.Category); err != nil {
			return err
		}
	}
	if env := r.Environment; env != nil {
		texts := []struct {
			field, value string
			max          int
		}{
			{"environment.url", env.URL, MaxURLChars},
			{"environment.userAgent", env.UserAgent, MaxUserAgentChars},
			{"environment.language", env.Language, MaxLanguageChars},
			{"environment.platform", env.Platform, MaxPlatformChars},
		}
		for _, t := range texts {
			if err := validBoundedText(t.field, t.value, t.max); err != nil {
				return err
			}
		}
		viewport := []struct {
			field string
			value *int
		}{{"environment.viewportWidth", env.ViewportWidth}, {"environment.viewportHeight", env.ViewportHeight}}
		for _, v := range viewport {
			if v.value != nil && (*v.value < 0 || *v.value > MaxViewport) {
				return Invalid(v.field, "must be an integer from 0 to %d", MaxViewport)
			}
		}
	}
	return validAttachmentIDs(r.Attachments)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

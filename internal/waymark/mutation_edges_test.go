package waymark_test

// Edges that `make mutate` found untested: every limit at its value (allowed)
// and one past it (refused), the optional parts of an event that only some
// actions carry, and the small rules of the domain types.

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/waymarkhq/waymark/internal/waymark"
)

var edgeNow = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

// checkInvalid fails unless err is invalid_argument on field, or nil when
// field is "".
func checkInvalid(t *testing.T, err error, field string) {
	t.Helper()
	if field == "" {
		if err != nil {
			t.Fatalf("refused: %v", err)
		}
		return
	}
	var e *waymark.Error
	if !errors.As(err, &e) || e.Code != waymark.EInvalidArgument || e.Field != field {
		t.Fatalf("got %v, want invalid_argument on %q", err, field)
	}
}

// validHash is the shape of an identity-verification hash: 64 hex digits.
var validHash = strings.Repeat("ab", 32)

func TestIdentifyLimitsAtTheEdge(t *testing.T) {
	props := func(n int, value any) map[string]any {
		m := make(map[string]any, n)
		for i := range n {
			m[fmt.Sprintf("k%d", i)] = value
		}
		return m
	}
	expiration := func(v int64) *waymark.HMAC { return &waymark.HMAC{Hash: validHash, Expiration: &v} }
	cases := []struct {
		name  string
		user  waymark.UserInput
		hmac  *waymark.HMAC
		field string
	}{
		{"email at the limit", waymark.UserInput{Email: set(strings.Repeat("e", waymark.MaxProfileFieldBytes))}, nil, ""},
		{"email past the limit", waymark.UserInput{Email: set(strings.Repeat("e", waymark.MaxProfileFieldBytes+1))}, nil, "user.email"},
		{"role with a control character", waymark.UserInput{Role: set("admin\x07")}, nil, "user.role"},
		{"valid field, then bad props", waymark.UserInput{Email: set("ada@example.com"), Props: map[string]any{"bad key": 1}}, nil, "user.props.bad key"},
		{"valid field, then bad signUpAt", waymark.UserInput{Firstname: set("Ada"), SignUpAt: set("yesterday")}, nil, "user.signUpAt"},
		{"prop key at the limit", waymark.UserInput{Props: map[string]any{strings.Repeat("k", waymark.MaxPropKeyBytes): true}}, nil, ""},
		{"prop key past the limit", waymark.UserInput{Props: map[string]any{strings.Repeat("k", waymark.MaxPropKeyBytes+1): true}}, nil, "user.props." + strings.Repeat("k", waymark.MaxPropKeyBytes+1)},
		{"nested object with as many keys as allowed", waymark.UserInput{Props: map[string]any{"o": props(waymark.MaxProps, true)}}, nil, ""},
		{"nested object with one key too many", waymark.UserInput{Props: map[string]any{"o": props(waymark.MaxProps+1, true)}}, nil, "user.props.o"},
		{"array item past the string limit after a good one", waymark.UserInput{Props: map[string]any{"a": []any{"ok", strings.Repeat("s", waymark.MaxStringValueBytes+1)}}}, nil, "user.props.a[1]"},
		{"hmac of the right shape", waymark.UserInput{}, &waymark.HMAC{Hash: validHash}, ""},
		{"hmac without a hash", waymark.UserInput{}, &waymark.HMAC{}, "hmac.hash"},
		{"hmac expiring at second 1", waymark.UserInput{}, expiration(1), ""},
		{"hmac expiring at 0", waymark.UserInput{}, expiration(0), "hmac.expiration"},
		{"hmac expiring before 1970", waymark.UserInput{}, expiration(-1), "hmac.expiration"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.user.Username = "ada-lovelace"
			req := waymark.IdentifyRequest{Workspace: "ws1", User: tc.user, HMAC: tc.hmac}
			checkInvalid(t, req.Validate(), tc.field)
		})
	}
}

func set(v string) waymark.Nullable { return waymark.Nullable{Set: true, Value: v} }

func TestWorkspaceCodeAndUsernameLimits(t *testing.T) {
	cases := []struct {
		name, workspace, username, field string
	}{
		{"code at the limit", strings.Repeat("w", waymark.MaxWorkspaceChars), "u", ""},
		{"code past the limit", strings.Repeat("w", waymark.MaxWorkspaceChars+1), "u", "workspace"},
		{"no code", "", "u", "workspace"},
		{"username at the limit", "ws", strings.Repeat("u", waymark.MaxUsernameBytes), ""},
		{"username past the limit", "ws", strings.Repeat("u", waymark.MaxUsernameBytes+1), "username"},
		{"no username", "ws", "", "username"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := waymark.StateRequest{Workspace: tc.workspace, Username: tc.username}
			checkInvalid(t, req.Validate(), tc.field)
		})
	}
}

func TestEventLimitsAndOptionalParts(t *testing.T) {
	at := edgeNow.Add(-time.Minute).Format(time.RFC3339)
	hint := func(id, contentID string) waymark.EventInput {
		return waymark.EventInput{ID: id, Content: "hint", ContentID: contentID, Action: "displayed", At: at}
	}
	batch := func(n int) []waymark.EventInput {
		evs := make([]waymark.EventInput, n)
		for i := range evs {
			evs[i] = hint(fmt.Sprint("e", i), "h1")
		}
		return evs
	}
	one := func(e waymark.EventInput) []waymark.EventInput { return []waymark.EventInput{e} }
	cases := []struct {
		name   string
		events []waymark.EventInput
		field  string
	}{
		{"a full batch", batch(waymark.MaxEventsPerBatch), ""},
		{"one event too many", batch(waymark.MaxEventsPerBatch + 1), "events"},
		{"content id at the limit", one(hint("e", strings.Repeat("c", waymark.MaxIDChars))), ""},
		{"content id at the limit in characters", one(hint("e", strings.Repeat("é", waymark.MaxIDChars))), ""},
		{"content id past the limit", one(hint("e", strings.Repeat("c", waymark.MaxIDChars+1))), "events[0].contentId"},
		{"no content id", one(hint("e", "")), "events[0].contentId"},
		{"no time", one(waymark.EventInput{ID: "e", Content: "hint", ContentID: "h", Action: "displayed"}), "events[0].at"},
		{"a step on a hint", one(waymark.EventInput{ID: "e", Content: "hint", ContentID: "h", Action: "displayed", At: at, Step: "s1"}), "events[0].step"},
		{"an item on another action", one(waymark.EventInput{ID: "e", Content: "checklist", ContentID: "c", Action: "completed", At: at, Item: "i1"}), "events[0].item"},
		{"an answer on another action", one(waymark.EventInput{ID: "e", Content: "survey", ContentID: "s", Action: "displayed", At: at, Answer: "yes"}), "events[0].answer"},
		{"an answer past the string limit", one(waymark.EventInput{ID: "e", Content: "survey", ContentID: "s", Action: "answered", At: at, Answer: strings.Repeat("a", waymark.MaxStringValueBytes+1)}), "events[0].answer"},
		{"an answer array holding an array", one(waymark.EventInput{ID: "e", Content: "survey", ContentID: "s", Action: "answered", At: at, Answer: []any{[]any{"x"}}}), "events[0].answer[0]"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := waymark.EventsRequest{Workspace: "ws1", Username: "ada-lovelace", Events: tc.events}
			events, err := req.Validate(edgeNow)
			checkInvalid(t, err, tc.field)
			if err == nil && len(events) != len(tc.events) {
				t.Fatalf("%d events validated, want %d", len(events), len(tc.events))
			}
		})
	}
}

// The parts that only some actions carry come through validation.
func TestEventsCarryTheirItemAndAnswer(t *testing.T) {
	at := edgeNow.Add(-time.Minute).Format(time.RFC3339)
	req := waymark.EventsRequest{Workspace: "ws1", Username: "ada-lovelace", Events: []waymark.EventInput{
		{ID: "e1", Content: "checklist", ContentID: "c1", Action: "item_completed", At: at, Item: "invite-team"},
		{ID: "e2", Content: "survey", ContentID: "s1", Action: "answered", At: at, Answer: []any{"red", 3.0, true}},
		{ID: "e3", Content: "tour", ContentID: "t1", Action: "started", At: at, Step: "welcome"},
	}}
	events, err := req.Validate(edgeNow)
	if err != nil {
		t.Fatal(err)
	}
	if events[0].Item != "invite-team" || events[0].Action != waymark.ActionItemCompleted {
		t.Errorf("item_completed event = %+v", events[0])
	}
	if answer, ok := events[1].Answer.([]any); !ok || len(answer) != 3 || answer[0] != "red" {
		t.Errorf("answered event carries %#v", events[1].Answer)
	}
	if events[2].Step != "welcome" {
		t.Errorf("tour event step %q", events[2].Step)
	}
}

func TestFeedbackLimitsAtTheEdge(t *testing.T) {
	n := func(v int) *int { return &v }
	str := func(v string) *string { return &v }
	cases := []struct {
		name  string
		req   waymark.FeedbackRequest
		field string
	}{
		{"rating 0", waymark.FeedbackRequest{Rating: n(0)}, ""},
		{"rating at the maximum", waymark.FeedbackRequest{Rating: n(waymark.MaxRating)}, ""},
		{"rating below 0", waymark.FeedbackRequest{Rating: n(-1)}, "rating"},
		{"category at the limit", waymark.FeedbackRequest{Category: str(strings.Repeat("c", waymark.MaxCategoryChars))}, ""},
		{"category empty", waymark.FeedbackRequest{Category: str("")}, "category"},
		{"category past the limit", waymark.FeedbackRequest{Category: str(strings.Repeat("c", waymark.MaxCategoryChars+1))}, "category"},
		{"url at the limit", waymark.FeedbackRequest{Environment: &waymark.Environment{URL: strings.Repeat("u", waymark.MaxURLChars)}}, ""},
		{"language at the limit", waymark.FeedbackRequest{Environment: &waymark.Environment{Language: strings.Repeat("l", waymark.MaxLanguageChars)}}, ""},
		{"language past the limit", waymark.FeedbackRequest{Environment: &waymark.Environment{Language: strings.Repeat("l", waymark.MaxLanguageChars+1)}}, "environment.language"},
		{"platform with a control character", waymark.FeedbackRequest{Environment: &waymark.Environment{Platform: "Linux\n"}}, "environment.platform"},
		{"viewport 0 wide", waymark.FeedbackRequest{Environment: &waymark.Environment{ViewportWidth: n(0)}}, ""},
		{"viewport at the maximum", waymark.FeedbackRequest{Environment: &waymark.Environment{ViewportWidth: n(waymark.MaxViewport), ViewportHeight: n(waymark.MaxViewport)}}, ""},
		{"viewport past the maximum", waymark.FeedbackRequest{Environment: &waymark.Environment{ViewportWidth: n(waymark.MaxViewport + 1)}}, "environment.viewportWidth"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.req.Workspace, tc.req.Username, tc.req.Text = "ws1", "ada-lovelace", "the export button does nothing"
			checkInvalid(t, tc.req.Validate(), tc.field)
		})
	}
}

func TestMergeAtThePropsLimit(t *testing.T) {
	stored := waymark.Profile{Props: map[string]any{"plan": "free"}}
	in := waymark.UserInput{Username: "ada-lovelace", Props: map[string]any{}}
	for i := range waymark.MaxProps - 1 {
		in.Props[fmt.Sprintf("k%d", i)] = i
	}
	got, err := stored.Merge(in, nil)
	if err != nil {
		t.Fatalf("a merge reaching exactly %d props: %v", waymark.MaxProps, err)
	}
	if len(got.Props) != waymark.MaxProps || got.Props["plan"] != "free" || got.Props["k7"] != 7 {
		t.Fatalf("merged %d props: plan=%v k7=%v", len(got.Props), got.Props["plan"], got.Props["k7"])
	}
	in.Props["one-more"] = true
	if _, err := stored.Merge(in, nil); err == nil {
		t.Fatalf("a merge reaching %d props was accepted", waymark.MaxProps+1)
	}
}

func TestExpiryIsStrictlyAfterExpiresAt(t *testing.T) {
	now := edgeNow
	cases := []struct {
		name      string
		expiresAt int64
		expired   bool
	}{
		{"kept (0)", 0, false},
		{"expires later", now.Unix() + 1, false},
		{"expires this second", now.Unix(), false},
		{"expired a second ago", now.Unix() - 1, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			user := waymark.User{ExpiresAt: tc.expiresAt}
			item := waymark.ContentItem{ExpiresAt: tc.expiresAt}
			if got := user.Expired(now); got != tc.expired {
				t.Errorf("user expired = %v", got)
			}
			if got := item.Expired(now); got != tc.expired {
				t.Errorf("content item expired = %v", got)
			}
		})
	}
}

func TestAMarkDoesNotOrderAfterItself(t *testing.T) {
	m := waymark.Mark{At: edgeNow, ID: "e1"}
	if m.After(m) {
		t.Fatal("a mark orders after itself")
	}
	if !(waymark.Mark{At: edgeNow, ID: "e2"}).After(m) || m.After(waymark.Mark{At: edgeNow, ID: "e2"}) {
		t.Fatal("at one time, the greater id does not order after")
	}
}

func TestSurveyDisplayedShowsInTheState(t *testing.T) {
	survey := &waymark.ContentItem{Key: waymark.ContentKey{Kind: waymark.KindSurvey, ID: "nps"}}
	survey.Apply(waymark.Event{ID: "e1", Kind: waymark.KindSurvey, ContentID: "nps", Action: waymark.ActionDisplayed, At: edgeNow}, edgeNow)
	hint := &waymark.ContentItem{Key: waymark.ContentKey{Kind: waymark.KindHint, ID: "h"}}
	hint.Apply(waymark.Event{ID: "e2", Kind: waymark.KindHint, ContentID: "h", Action: waymark.ActionDisplayed, At: edgeNow}, edgeNow)
	st := waymark.StateOf([]*waymark.ContentItem{survey, hint})
	if got := st.Surveys["nps"]; got.Status != waymark.SurveyDisplayed {
		t.Fatalf("survey after displayed = %+v", got)
	}
	if hint.Status != "" {
		t.Fatalf("a displayed hint took the status %q", hint.Status)
	}
}

// Past MaxSeenPerItem, the fingerprints applied first are the ones
// forgotten, also among those applied within the same second.
func TestPruneDropsTheFirstAppliedWithinASecond(t *testing.T) {
	c := &waymark.ContentItem{}
	for i := range waymark.MaxSeenPerItem + 2 {
		c.Seen = append(c.Seen, waymark.Seen{Fingerprint: waymark.Fingerprint(i + 1), AppliedAt: edgeNow.Unix()})
	}
	c.Prune(edgeNow)
	if len(c.Seen) != waymark.MaxSeenPerItem {
		t.Fatalf("kept %d fingerprints", len(c.Seen))
	}
	if c.HasSeen(1) || c.HasSeen(2) || !c.HasSeen(3) || !c.HasSeen(waymark.Fingerprint(waymark.MaxSeenPerItem+2)) {
		t.Fatal("prune did not drop the two applied first")
	}
}

func TestErrorText(t *testing.T) {
	if got := waymark.Invalid("user.email", "too long").Error(); got != "waymark: invalid_argument: user.email: user.email: too long" {
		t.Errorf("field error reads %q", got)
	}
	if got := waymark.Errorf(waymark.EThrottled, "slow down").Error(); got != "waymark: throttled: slow down" {
		t.Errorf("error without a field reads %q", got)
	}
	unavailable := waymark.ErrUnavailable("kms")
	if unavailable.Code != waymark.EUnavailable || !strings.HasSuffix(unavailable.Message, ": kms") || unavailable.RetryAfter != 2*time.Second {
		t.Errorf("unavailable = %+v", unavailable)
	}
}

// An event id is remembered for the whole idempotency window, its last
// second included.
func TestPruneKeepsTheWindowInclusive(t *testing.T) {
	c := &waymark.ContentItem{Seen: []waymark.Seen{
		{Fingerprint: 1, AppliedAt: edgeNow.Add(-waymark.IdempotencyWindow).Unix()},
		{Fingerprint: 2, AppliedAt: edgeNow.Add(-waymark.IdempotencyWindow - time.Second).Unix()},
	}}
	c.Prune(edgeNow)
	if !c.HasSeen(1) || c.HasSeen(2) {
		t.Fatalf("kept %+v, want only the one applied exactly a window ago", c.Seen)
	}
}

func TestParseAPIKeyRefusesAKeyNamingNoWorkspace(t *testing.T) {
	secret := strings.Repeat("0f", 32)
	if code, id, ok := waymark.ParseAPIKey("wmk_ws1_abcd1234_" + secret); !ok || code != "ws1" || id != "abcd1234" {
		t.Fatalf("a well-formed key parsed as %q %q %v", code, id, ok)
	}
	if code, id, ok := waymark.ParseAPIKey("wmk__abcd1234_" + secret); ok {
		t.Fatalf("a key with no workspace code parsed as %q %q", code, id)
	}
}

// An identity proof is good through its expiration second and expired from
// the next one on.
func TestHMACExpirationSecond(t *testing.T) {
	ws := &waymark.Workspace{Code: "ws1", IdentityVerification: true, HMACSecret: strings.Repeat("5e", 32)}
	cases := []struct {
		name       string
		expiration int64
		code       string
	}{
		{"expires next second", edgeNow.Unix() + 1, ""},
		{"expires this second", edgeNow.Unix(), ""},
		{"expired a second ago", edgeNow.Unix() - 1, waymark.EHMACExpired},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			proof := &waymark.HMAC{Hash: waymark.SignUsername(ws.HMACSecret, "ada-lovelace", &tc.expiration), Expiration: &tc.expiration}
			err := ws.VerifyIdentity("ada-lovelace", proof, edgeNow)
			if tc.code == "" && err != nil || tc.code != "" && waymark.ErrorCode(err) != tc.code {
				t.Fatalf("got %v, want %q", err, tc.code)
			}
		})
	}
}

func TestRetentionSetsExpiry(t *testing.T) {
	cases := []struct {
		days int
		want int64
	}{
		{0, 0},
		{-1, 0},
		{1, edgeNow.Add(24 * time.Hour).Unix()},
		{30, edgeNow.Add(30 * 24 * time.Hour).Unix()},
	}
	for _, tc := range cases {
		ws := waymark.Workspace{RetentionDays: tc.days}
		if got := ws.ExpiresAt(edgeNow); got != tc.want {
			t.Errorf("retention %d days: expires at %d, want %d", tc.days, got, tc.want)
		}
	}
}

// A feedback without a category has none; one with a category gives it back.
func TestCategoryText(t *testing.T) {
	var none waymark.FeedbackRequest
	if got := none.CategoryText(); got != "" {
		t.Errorf("no category gave %q", got)
	}
	category := "bug"
	if got := (&waymark.FeedbackRequest{Category: &category}).CategoryText(); got != "bug" {
		t.Errorf("category %q gave %q", category, got)
	}
}

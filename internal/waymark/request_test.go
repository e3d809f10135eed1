package waymark

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"
)

func decode(t *testing.T, body string, v any) {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
}

func wantInvalid(t *testing.T, err error, field string) {
	t.Helper()
	e, ok := err.(*Error)
	if !ok || e.Code != EInvalidArgument || e.Field != field {
		t.Fatalf("got %v, want invalid_argument on %q", err, field)
	}
}

func TestIdentifyValidation(t *testing.T) {
	long := func(n int) string { return strings.Repeat("a", n) }
	nested := `{"a":{"b":{"c":1}}}`
	tooDeep := `{"a":{"b":{"c":{"d":1}}}}`
	manyProps := func(n int) string {
		parts := make([]string, n)
		for i := range parts {
			parts[i] = `"p` + strings.Repeat("x", i%3) + string(rune('a'+i%26)) + `_` + itoa(i) + `":1`
		}
		return "{" + strings.Join(parts, ",") + "}"
	}
	array := func(n int) string {
		parts := make([]string, n)
		for i := range parts {
			parts[i] = "1"
		}
		return "[" + strings.Join(parts, ",") + "]"
	}
	cases := []struct {
		name, user, field string
	}{
		{"ok", `{"username":"u1","email":"a@b.c","props":` + nested + `}`, ""},
		{"missing username", `{}`, "user.username"},
		{"username 256 bytes", `{"username":"` + long(256) + `"}`, ""},
		{"username 257 bytes", `{"username":"` + long(257) + `"}`, "user.username"},
		{"username control char", `{"username":"a\u0007b"}`, "user.username"},
		{"email too long", `{"username":"u","email":"` + long(257) + `"}`, "user.email"},
		{"email null ok", `{"username":"u","email":null}`, ""},
		{"signUpAt bad", `{"username":"u","signUpAt":"yesterday"}`, "user.signUpAt"},
		{"signUpAt offset +23:59", `{"username":"u","signUpAt":"2026-01-01T00:00:00+23:59"}`, ""},
		{"signUpAt offset +24:00", `{"username":"u","signUpAt":"2026-01-01T00:00:00+24:00"}`, "user.signUpAt"},
		{"signUpAt offset minutes 60", `{"username":"u","signUpAt":"2026-01-01T00:00:00-05:60"}`, "user.signUpAt"},
		{"signUpAt comma fraction", `{"username":"u","signUpAt":"2026-01-01T00:00:00,5Z"}`, "user.signUpAt"},
		{"signUpAt nanoseconds", `{"username":"u","signUpAt":"2026-01-01T00:00:00.123456789Z"}`, ""},
		{"signUpAt a number", `{"username":"u","signUpAt":1767225600}`, "user.signUpAt"},
		{"email a number", `{"username":"u","email":5}`, "user.email"},
		{"role an object", `{"username":"u","role":{"a":1}}`, "user.role"},
		{"100 props", `{"username":"u","props":` + manyProps(100) + `}`, ""},
		{"101 props", `{"username":"u","props":` + manyProps(101) + `}`, "user.props"},
		{"bad key", `{"username":"u","props":{"a b":1}}`, "user.props.a b"},
		{"key 65", `{"username":"u","props":{"` + long(65) + `":1}}`, "user.props." + long(65)},
		{"value 1024", `{"username":"u","props":{"plan":"` + long(1024) + `"}}`, ""},
		{"value 1025", `{"username":"u","props":{"plan":"` + long(1025) + `"}}`, "user.props.plan"},
		{"array 100", `{"username":"u","props":{"tags":` + array(100) + `}}`, ""},
		{"array 101", `{"username":"u","props":{"tags":` + array(101) + `}}`, "user.props.tags"},
		{"array of objects", `{"username":"u","props":{"tags":[{"a":1}]}}`, "user.props.tags[0]"},
		{"too deep", `{"username":"u","props":` + tooDeep + `}`, "user.props.a.b.c"},
		{"nested null", `{"username":"u","props":{"a":{"b":null}}}`, "user.props.a.b"},
		{"top-level null deletes", `{"username":"u","props":{"a":null}}`, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var req IdentifyRequest
			decode(t, `{"workspace":"ws1","user":`+tc.user+`}`, &req)
			err := req.Validate()
			if tc.field == "" {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			wantInvalid(t, err, tc.field)
		})
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

// JSON decoding replaces invalid UTF-8, so the check is reached by values
// built in code (the CLI, the server API).
func TestUsernameInvalidUTF8(t *testing.T) {
	wantInvalid(t, ValidateUsername("username", "a\xffb"), "username")
}

func TestWorkspaceCodeAndHMACShape(t *testing.T) {
	for code, field := range map[string]string{"": "workspace", "a b": "workspace", strings.Repeat("w", 65): "workspace"} {
		req := StateRequest{Workspace: code, Username: "u"}
		wantInvalid(t, req.Validate(), field)
	}
	for _, hash := range []string{"abc", strings.Repeat("g", 64)} {
		req := StateRequest{Workspace: "ws", Username: "u", HMAC: &HMAC{Hash: hash}}
		wantInvalid(t, req.Validate(), "hmac.hash")
	}
}

func TestEventsValidation(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	ev := func(fields string) string { return `{"id":"e1","at":"2026-01-02T03:00:00Z",` + fields + `}` }
	cases := []struct {
		name, events, field string
	}{
		{"ok tour", `[` + ev(`"content":"tour","contentId":"t1","action":"advanced","step":"s2"`) + `]`, ""},
		{"empty", `[]`, "events"},
		{"unknown kind", `[` + ev(`"content":"popup","contentId":"t1","action":"displayed"`) + `]`, "events[0].content"},
		{"wrong action", `[` + ev(`"content":"hint","contentId":"h1","action":"finished"`) + `]`, "events[0].action"},
		{"advanced without step", `[` + ev(`"content":"tour","contentId":"t1","action":"advanced"`) + `]`, "events[0].step"},
		{"item without item", `[` + ev(`"content":"checklist","contentId":"c1","action":"item_completed"`) + `]`, "events[0].item"},
		{"answer missing", `[` + ev(`"content":"survey","contentId":"s1","action":"answered"`) + `]`, "events[0].answer"},
		{"answer object", `[` + ev(`"content":"survey","contentId":"s1","action":"answered","answer":{"a":1}`) + `]`, "events[0].answer"},
		{"bad at", `[{"id":"e1","content":"hint","contentId":"h1","action":"displayed","at":"now"}]`, "events[0].at"},
		{"at offset +24:00", `[{"id":"e1","content":"hint","contentId":"h1","action":"displayed","at":"2026-01-02T03:00:00+24:00"}]`, "events[0].at"},
		{"at offset -23:59", `[{"id":"e1","content":"hint","contentId":"h1","action":"displayed","at":"2026-01-02T03:00:00-23:59"}]`, ""},
		{"at the epoch", `[{"id":"e1","content":"hint","contentId":"h1","action":"displayed","at":"1970-01-01T00:00:00Z"}]`, ""},
		{"at before the epoch", `[{"id":"e1","content":"hint","contentId":"h1","action":"displayed","at":"1969-12-31T23:59:59.999Z"}]`, "events[0].at"},
		{"at in year 0 (found by FuzzEventsBatch)", `[{"id":"e1","content":"hint","contentId":"h1","action":"displayed","at":"0000-01-01T00:00:00Z"}]`, "events[0].at"},
		{"content id 129", `[` + ev(`"content":"hint","contentId":"`+strings.Repeat("c", 129)+`","action":"displayed"`) + `]`, "events[0].contentId"},
		{"content id not printable", `[` + ev(`"content":"hint","contentId":"a\nb","action":"displayed"`) + `]`, "events[0].contentId"},
		{"second bad", `[` + ev(`"content":"hint","contentId":"h1","action":"displayed"`) + `,{"id":"","content":"hint","contentId":"h1","action":"displayed","at":"2026-01-02T03:00:00Z"}]`, "events[1].id"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var req EventsRequest
			decode(t, `{"workspace":"ws1","username":"u","events":`+tc.events+`}`, &req)
			_, err := req.Validate(now)
			if tc.field == "" {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			wantInvalid(t, err, tc.field)
		})
	}
	t.Run("26 events", func(t *testing.T) {
		req := EventsRequest{Workspace: "ws", Username: "u", Events: make([]EventInput, 26)}
		_, err := req.Validate(now)
		wantInvalid(t, err, "events")
	})
	t.Run("future clamped", func(t *testing.T) {
		req := EventsRequest{Workspace: "ws", Username: "u", Events: []EventInput{{ID: "e", Content: "hint", ContentID: "h", Action: "displayed", At: "2027-01-01T00:00:00Z"}}}
		events, err := req.Validate(now)
		if err != nil {
			t.Fatal(err)
		}
		if want := now.Add(MaxFutureSkew); !events[0].At.Equal(want) {
			t.Fatalf("at = %v, want clamped to %v", events[0].At, want)
		}
	})
}

func TestFeedbackValidation(t *testing.T) {
	cases := []struct {
		name, body, field string
	}{
		{"ok", `"text":"hi","rating":5,"category":"bug","environment":{"url":"https://a.example/x","viewportWidth":1024}`, ""},
		{"no text", `"text":""`, "text"},
		{"10000 chars", `"text":"` + strings.Repeat("é", 10000) + `"`, ""},
		{"10001 chars", `"text":"` + strings.Repeat("é", 10001) + `"`, "text"},
		{"rating 11", `"text":"x","rating":11`, "rating"},
		{"category 64", `"text":"x","category":"` + strings.Repeat("ç", 64) + `"`, ""},
		{"category long", `"text":"x","category":"` + strings.Repeat("c", 65) + `"`, "category"},
		{"category empty", `"text":"x","category":""`, "category"},
		{"category null", `"text":"x","category":null`, ""},
		{"url long", `"text":"x","environment":{"url":"` + strings.Repeat("u", 2049) + `"}`, "environment.url"},
		{"viewport negative", `"text":"x","environment":{"viewportHeight":-1}`, "environment.viewportHeight"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var req FeedbackRequest
			decode(t, `{"workspace":"ws1","username":"u",`+tc.body+`}`, &req)
			err := req.Validate()
			if tc.field == "" {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			wantInvalid(t, err, tc.field)
		})
	}
}

func TestProfileMerge(t *testing.T) {
	email := "old@example.com"
	stored := Profile{Email: &email, Props: map[string]any{"plan": "free", "seats": json.Number("3")}}
	var in UserInput
	decode(t, `{"username":"u","email":null,"firstname":"Ada","props":{"plan":"pro","seats":null,"new":true}}`, &in)
	got, err := stored.Merge(in, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got.Email != nil || got.Firstname == nil || *got.Firstname != "Ada" {
		t.Fatalf("standard fields: %+v", got)
	}
	if len(got.Props) != 2 || got.Props["plan"] != "pro" || got.Props["new"] != true {
		t.Fatalf("props: %v", got.Props)
	}
	if stored.Props["plan"] != "free" {
		t.Fatal("merge changed the stored profile")
	}

	full := Profile{Props: map[string]any{}}
	for i := range MaxProps {
		full.Props["k"+itoa(i)] = 1
	}
	decode(t, `{"username":"u","props":{"one_more":1}}`, &in)
	if _, err := full.Merge(in, nil); err == nil {
		t.Fatal("merge past MaxProps accepted")
	}
}

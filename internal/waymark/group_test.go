package waymark

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
)

func decodeUser(t *testing.T, s string) UserInput {
	t.Helper()
	var in UserInput
	if err := json.Unmarshal([]byte(s), &in); err != nil {
		t.Fatal(err)
	}
	return in
}

func TestMembershipsOfGroupAndGroups(t *testing.T) {
	cases := []struct {
		user  string
		ids   []string
		given bool
	}{
		{`{"username":"u"}`, nil, false},
		{`{"username":"u","groups":null}`, nil, false},
		{`{"username":"u","groups":[]}`, []string{}, true},
		{`{"username":"u","group":{"id":"a"}}`, []string{"a"}, true},
		{`{"username":"u","groups":[{"id":"a"},{"id":"b"}]}`, []string{"a", "b"}, true},
	}
	for _, c := range cases {
		groups, given := decodeUser(t, c.user).Memberships()
		ids := []string{}
		for _, g := range groups {
			ids = append(ids, g.ID)
		}
		if given != c.given || c.given && strings.Join(ids, ",") != strings.Join(c.ids, ",") {
			t.Errorf("%s: %v %v, want %v %v", c.user, ids, given, c.ids, c.given)
		}
	}
}

// The digest of an input without groups is what it was before groups
// existed (stored digests stay valid); groups change it, in any order alike.
func TestIdentifyDigestCoversGroups(t *testing.T) {
	ws := &Workspace{Code: "w", UserKeySecret: []byte("secret")}
	plain := decodeUser(t, `{"username":"u","props":{"a":1}}`)
	if got, want := ws.IdentifyDigest(plain), digestOf(ws, plain.canonical()); got != want {
		t.Errorf("digest without groups changed: %s, want %s", got, want)
	}
	ab := ws.IdentifyDigest(decodeUser(t, `{"username":"u","props":{"a":1},"groups":[{"id":"a"},{"id":"b","props":{"p":1}}]}`))
	ba := ws.IdentifyDigest(decodeUser(t, `{"username":"u","props":{"a":1},"groups":[{"id":"b","props":{"p":1}},{"id":"a"}]}`))
	if ab != ba {
		t.Error("the order of the groups changes the digest")
	}
	for _, other := range []string{
		`{"username":"u","props":{"a":1},"groups":[]}`,
		`{"username":"u","props":{"a":1},"groups":[{"id":"a"},{"id":"b","props":{"p":2}}]}`,
		`{"username":"u","props":{"a":1},"groups":[{"id":"a"}]}`,
	} {
		if d := ws.IdentifyDigest(decodeUser(t, other)); d == ab || d == ws.IdentifyDigest(plain) {
			t.Errorf("%s has the digest of another input", other)
		}
	}
}

// digestOf is IdentifyDigest as it was before groups.
func digestOf(ws *Workspace, canonical []byte) string {
	mac := hmac.New(sha256.New, ws.UserKeySecret)
	mac.Write([]byte("identify-input\x00"))
	mac.Write(canonical)
	mac.Write([]byte("\x00allowed\x00" + strings.Join(ws.AllowedProps, ",")))
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil)[:16])
}

func TestGroupKeyIsPerWorkspaceAndApartFromUserKeys(t *testing.T) {
	a := &Workspace{Code: "a", UserKeySecret: []byte("one")}
	b := &Workspace{Code: "b", UserKeySecret: []byte("two")}
	if a.GroupKey("acme") == b.GroupKey("acme") || a.GroupKey("acme") == a.GroupKey("acme2") {
		t.Error("group keys collide")
	}
	if a.GroupKey("acme") == a.UserKey("acme") || strings.Contains(a.GroupKey("acme"), "acme") {
		t.Error("a group key is a user key or holds the id")
	}
}

func TestMergePropsNamesTheGroupsField(t *testing.T) {
	stored := map[string]any{}
	for i := range MaxProps {
		stored[strings.Repeat("k", i+1)] = 1
	}
	_, err := MergeProps("user.groups[2].props", stored, map[string]any{"new": 1}, nil)
	e, ok := err.(*Error)
	if !ok || e.Field != "user.groups[2].props" || !strings.HasPrefix(e.Message, "user.groups[2].props: ") {
		t.Fatalf("merge past the limit: %v", err)
	}
	merged, err := MergeProps("group.props", map[string]any{"a": 1, "b": 2}, map[string]any{"b": nil, "c": 3}, nil)
	if err != nil || len(merged) != 2 || merged["a"] != 1 || merged["c"] != 3 {
		t.Fatalf("merge: %v %v", merged, err)
	}
}

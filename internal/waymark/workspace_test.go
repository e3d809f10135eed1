package waymark

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestVerifyIdentity(t *testing.T) {
	ws, _, err := NewWorkspace(NewWorkspaceOptions{Name: "Acme", IdentityVerification: true}, t0)
	if err != nil {
		t.Fatal(err)
	}
	exp := t0.Add(time.Hour).Unix()
	past := t0.Add(-time.Second).Unix()
	cases := []struct {
		name  string
		proof *HMAC
		code  string
	}{
		{"valid", &HMAC{Hash: SignUsername(ws.HMACSecret, "ada", nil)}, ""},
		{"valid upper-case hex", &HMAC{Hash: strings.ToUpper(SignUsername(ws.HMACSecret, "ada", nil))}, ""},
		{"valid with expiration", &HMAC{Hash: SignUsername(ws.HMACSecret, "ada", &exp), Expiration: &exp}, ""},
		{"missing", nil, EHMACInvalid},
		{"other user", &HMAC{Hash: SignUsername(ws.HMACSecret, "bob", nil)}, EHMACInvalid},
		{"other secret", &HMAC{Hash: SignUsername("not-the-secret", "ada", nil)}, EHMACInvalid},
		{"expiration not signed", &HMAC{Hash: SignUsername(ws.HMACSecret, "ada", nil), Expiration: &exp}, EHMACInvalid},
		{"expired", &HMAC{Hash: SignUsername(ws.HMACSecret, "ada", &past), Expiration: &past}, EHMACExpired},
		{"not hex", &HMAC{Hash: strings.Repeat("zz", 32)}, EHMACInvalid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := ws.VerifyIdentity("ada", tc.proof, t0)
			if tc.code == "" && err != nil || tc.code != "" && ErrorCode(err) != tc.code {
				t.Fatalf("got %v, want %q", err, tc.code)
			}
		})
	}
	open := &Workspace{}
	if err := open.VerifyIdentity("ada", nil, t0); err != nil {
		t.Fatalf("a workspace without identity verification refused a call: %v", err)
	}
}

func TestCheckOrigin(t *testing.T) {
	ws := &Workspace{}
	if err := ws.CheckOrigin(""); err != nil {
		t.Fatal("an empty allow-list must allow any caller")
	}
	origins, err := NormalizeOrigins([]string{"https://App.Example.com/", "http://localhost:8080"})
	if err != nil {
		t.Fatal(err)
	}
	ws.Origins = origins
	for origin, allowed := range map[string]bool{
		"https://app.example.com":      true,
		"http://localhost:8080":        true,
		"https://evil.example.com":     false,
		"http://app.example.com":       false,
		"":                             false,
		"null":                         false,
		"https://app.example.com.evil": false,
	} {
		err := ws.CheckOrigin(origin)
		if allowed != (err == nil) || !allowed && ErrorCode(err) != EOriginNotAllowed {
			t.Errorf("origin %q: %v", origin, err)
		}
	}
	if _, err := NormalizeOrigins([]string{"app.example.com"}); err == nil {
		t.Fatal("an origin without scheme was accepted")
	}
}

func TestUserKeyIsKeyedPerWorkspace(t *testing.T) {
	a, _, _ := NewWorkspace(NewWorkspaceOptions{Name: "A"}, t0)
	b, _, _ := NewWorkspace(NewWorkspaceOptions{Name: "B"}, t0)
	ka, kb := a.UserKey("ada"), b.UserKey("ada")
	if ka == kb || strings.Contains(ka, "ada") || !strings.HasPrefix(ka, a.Code+"#") {
		t.Fatalf("user keys %q and %q", ka, kb)
	}
	if a.UserKey("ada") != ka {
		t.Fatal("user key is not stable")
	}
}

func TestNewWorkspaceKey(t *testing.T) {
	ws, key, err := NewWorkspace(NewWorkspaceOptions{Name: "Acme", Origins: []string{"https://a.example"}}, t0)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(key, "wmk_"+ws.Code+"_") || len(ws.Keys) != 1 || strings.Contains(ws.Keys[0].Hash, key) {
		t.Fatalf("key %q, stored %+v", key, ws.Keys)
	}
	if _, _, err := NewWorkspace(NewWorkspaceOptions{Name: " "}, t0); ErrorCode(err) != EInvalidArgument {
		t.Fatalf("empty name: %v", err)
	}
}

func TestAPIKeys(t *testing.T) {
	ws, key, err := NewWorkspace(NewWorkspaceOptions{Name: "Acme", Code: "team_a-1"}, t0)
	if err != nil {
		t.Fatal(err)
	}
	code, id, ok := ParseAPIKey(key)
	if !ok || code != "team_a-1" || id != ws.Keys[0].ID {
		t.Fatalf("parse %q: %q %q %v", key, code, id, ok)
	}
	if _, err := ws.CheckAPIKey(key); err != nil {
		t.Fatal(err)
	}
	second := ws.AddKey(t0)
	for _, bad := range []string{"", "wmk_", key[:len(key)-1] + "0", strings.Replace(key, "team_a-1", "other", 1), second + "x"} {
		if _, err := ws.CheckAPIKey(bad); ErrorCode(err) != EUnauthorized {
			t.Errorf("key %q: %v", bad, err)
		}
	}
	if err := ws.RevokeKey(ws.Keys[0].ID, t0); err != nil {
		t.Fatal(err)
	}
	if _, err := ws.CheckAPIKey(key); ErrorCode(err) != EUnauthorized {
		t.Fatal("a revoked key still works")
	}
	if _, err := ws.CheckAPIKey(second); err != nil {
		t.Fatal("revoking one key revoked another")
	}
}

// Inputs that merge alike digest alike; any difference a merge would see
// digests apart, and so does another workspace's secret.
func TestIdentifyDigest(t *testing.T) {
	a, _, _ := NewWorkspace(NewWorkspaceOptions{Name: "A"}, t0)
	b, _, _ := NewWorkspace(NewWorkspaceOptions{Name: "B"}, t0)
	input := func(body string) UserInput {
		t.Helper()
		var in UserInput
		if err := json.Unmarshal([]byte(body), &in); err != nil {
			t.Fatal(err)
		}
		return in
	}
	base := `{"username":"ada","email":"ada@example.com","props":{"plan":"pro","seats":3}}`
	if a.IdentifyDigest(input(base)) != a.IdentifyDigest(input(`{"props":{"seats":3,"plan":"pro"},"email":"ada@example.com","username":"ada"}`)) {
		t.Error("the same input with its keys in another order digests apart")
	}
	for name, other := range map[string]string{
		"another user":        `{"username":"bob","email":"ada@example.com","props":{"plan":"pro","seats":3}}`,
		"another e-mail":      `{"username":"ada","email":"ada@example.org","props":{"plan":"pro","seats":3}}`,
		"e-mail cleared":      `{"username":"ada","email":null,"props":{"plan":"pro","seats":3}}`,
		"e-mail absent":       `{"username":"ada","props":{"plan":"pro","seats":3}}`,
		"e-mail as the name":  `{"username":"ada","firstname":"ada@example.com","props":{"plan":"pro","seats":3}}`,
		"a prop changed":      `{"username":"ada","email":"ada@example.com","props":{"plan":"team","seats":3}}`,
		"a prop deleted":      `{"username":"ada","email":"ada@example.com","props":{"plan":null,"seats":3}}`,
		"a prop more":         `{"username":"ada","email":"ada@example.com","props":{"plan":"pro","seats":3,"beta":true}}`,
		"no props":            `{"username":"ada","email":"ada@example.com"}`,
		"a value that quotes": `{"username":"ada\",\"","email":"ada@example.com","props":{"plan":"pro","seats":3}}`,
	} {
		if a.IdentifyDigest(input(base)) == a.IdentifyDigest(input(other)) {
			t.Errorf("%s: digests like the base input", name)
		}
	}
	if a.IdentifyDigest(input(base)) == b.IdentifyDigest(input(base)) {
		t.Error("two workspaces digest one input alike")
	}
}

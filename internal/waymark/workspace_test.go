package waymark

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// Hashes computed outside Go, so that a change to the message this code
// signs cannot agree with itself:
//
//	printf %s 'ada' | openssl dgst -sha256 -hmac secret
//	printf %s 'ada|1900000000' | openssl dgst -sha256 -hmac secret
//	printf %s 'x|1900000000' | openssl dgst -sha256 -hmac secret
const (
	vectorSecret        = "secret"
	vectorExpiration    = int64(1900000000)
	vectorAda           = "3c30486140e27f6f8b09ea69da2a6ca718bcf875c8249a1e23d7e401c1cfb3ab"
	vectorAdaExpiration = "4bba47e7bea0201eb62e7c817178fd1544e931d44838003af0e2d23b0b155341"
	// vectorXPipe is the hash a customer's server makes for a user named
	// "x|1900000000" without expiration: the forgery of user "x".
	vectorXPipe = "efe0b9a07be7915ce83b66077f2550fe4538587cca4927500ea91bc3325ab0f4"
)

// vectorNow is an hour before the vectors' expiration.
var vectorNow = time.Unix(vectorExpiration-3600, 0)

func TestSignUsernameVectors(t *testing.T) {
	exp := vectorExpiration
	if got := SignUsername(vectorSecret, "ada", nil); got != vectorAda {
		t.Errorf("username form: %s, want %s", got, vectorAda)
	}
	if got := SignUsername(vectorSecret, "ada", &exp); got != vectorAdaExpiration {
		t.Errorf("username|expiration form: %s, want %s", got, vectorAdaExpiration)
	}
}

func TestVerifyIdentity(t *testing.T) {
	exp := vectorExpiration
	past := vectorNow.Unix() - 1
	proof := func(hash string, expiration *int64) *HMAC { return &HMAC{Hash: hash, Expiration: expiration} }
	type attempt struct {
		name     string
		username string
		proof    *HMAC
		code     string
	}
	common := []attempt{
		{"missing", "ada", nil, EHMACInvalid},
		{"empty hash", "ada", proof("", &exp), EHMACInvalid},
		{"not hex", "ada", proof(strings.Repeat("zz", 32), &exp), EHMACInvalid},
		{"other user", "bob", proof(vectorAdaExpiration, &exp), EHMACInvalid},
		{"other secret", "ada", proof(SignUsername("not-the-secret", "ada", &exp), &exp), EHMACInvalid},
	}
	cases := map[HMACExpiration][]attempt{
		HMACExpirationRequired: append(common,
			attempt{"with expiration", "ada", proof(vectorAdaExpiration, &exp), ""},
			attempt{"upper-case hex", "ada", proof(strings.ToUpper(vectorAdaExpiration), &exp), ""},
			attempt{"expiration not signed", "ada", proof(vectorAda, &exp), EHMACInvalid},
			attempt{"without expiration", "ada", proof(vectorAda, nil), EHMACInvalid},
			// The hash of "x|1900000000" is never made by a server signing
			// this form, and a pipe in the name does not make it one.
			attempt{"the no-expiration form of x|1900000000", "x|1900000000", proof(vectorXPipe, nil), EHMACInvalid},
			attempt{"expired", "ada", proof(SignUsername(vectorSecret, "ada", &past), &past), EHMACExpired},
		),
		HMACExpirationNone: append(common,
			attempt{"username alone", "ada", proof(vectorAda, nil), ""},
			attempt{"a user named x|1900000000", "x|1900000000", proof(vectorXPipe, nil), ""},
			// The forgery: x|1900000000's hash as user x, expiring then.
			attempt{"forgery of x", "x", proof(vectorXPipe, &exp), EHMACInvalid},
			attempt{"with expiration", "ada", proof(vectorAdaExpiration, &exp), EHMACInvalid},
		),
		// The legacy setting accepts both forms, the forgery included: it is
		// documented as such and kept only until the operator chooses.
		HMACExpirationOptional: append(common,
			attempt{"username alone", "ada", proof(vectorAda, nil), ""},
			attempt{"with expiration", "ada", proof(vectorAdaExpiration, &exp), ""},
			attempt{"forgery of x", "x", proof(vectorXPipe, &exp), ""},
		),
	}
	for setting, attempts := range cases {
		ws := &Workspace{IdentityVerification: true, HMACExpiration: setting, HMACSecret: vectorSecret}
		for _, a := range attempts {
			t.Run(string(setting)+"/"+a.name, func(t *testing.T) {
				err := ws.VerifyIdentity(a.username, a.proof, vectorNow)
				if a.code == "" && err != nil || a.code != "" && ErrorCode(err) != a.code {
					t.Fatalf("got %v, want %q", err, a.code)
				}
			})
		}
	}
	open := &Workspace{}
	if err := open.VerifyIdentity("ada", nil, t0); err != nil {
		t.Fatalf("a workspace without identity verification refused a call: %v", err)
	}
}

// An expiration is good up to its second and at most MaxHMACLifetime ahead;
// both edges, and one past each, under every setting that takes one.
func TestHMACExpirationEdges(t *testing.T) {
	now := vectorNow
	for _, setting := range []HMACExpiration{HMACExpirationRequired, HMACExpirationOptional} {
		ws := &Workspace{IdentityVerification: true, HMACExpiration: setting, HMACSecret: vectorSecret}
		for _, c := range []struct {
			name       string
			expiration int64
			code       string
			field      string
		}{
			{"expires now", now.Unix(), "", ""},
			{"expired a second ago", now.Unix() - 1, EHMACExpired, ""},
			{"the longest lifetime", now.Add(MaxHMACLifetime).Unix(), "", ""},
			{"a second longer", now.Add(MaxHMACLifetime).Unix() + 1, EHMACInvalid, "hmac.expiration"},
			{"the forgery's far future", 9999999999, EHMACInvalid, "hmac.expiration"},
		} {
			t.Run(string(setting)+"/"+c.name, func(t *testing.T) {
				proof := &HMAC{Hash: SignUsername(vectorSecret, "ada", &c.expiration), Expiration: &c.expiration}
				err := ws.VerifyIdentity("ada", proof, now)
				if c.code == "" && err != nil || c.code != "" && (ErrorCode(err) != c.code || AsError(err).Field != c.field) {
					t.Fatalf("got %v, want %q on %q", err, c.code, c.field)
				}
			})
		}
	}
}

func TestNewWorkspaceHMACExpiration(t *testing.T) {
	ws, _, err := NewWorkspace(NewWorkspaceOptions{Name: "Acme", IdentityVerification: true}, t0)
	if err != nil || ws.HMACExpiration != HMACExpirationRequired {
		t.Fatalf("a new workspace has %q (%v), want required", ws.HMACExpiration, err)
	}
	if ws, _, err := NewWorkspace(NewWorkspaceOptions{Name: "Acme", HMACExpiration: HMACExpirationNone}, t0); err != nil || ws.HMACExpiration != HMACExpirationNone {
		t.Fatalf("none: %v", err)
	}
	if _, _, err := NewWorkspace(NewWorkspaceOptions{Name: "Acme", HMACExpiration: HMACExpirationOptional}, t0); ErrorCode(err) != EInvalidArgument {
		t.Fatalf("a new workspace took the legacy setting: %v", err)
	}
	if _, err := ParseHMACExpiration("sometimes"); ErrorCode(err) != EInvalidArgument {
		t.Fatalf("parsed an unknown setting: %v", err)
	}
	// A workspace whose setting is unknown to this code verifies as required.
	unknown := &Workspace{IdentityVerification: true, HMACSecret: vectorSecret}
	if err := unknown.VerifyIdentity("ada", &HMAC{Hash: vectorAda}, vectorNow); ErrorCode(err) != EHMACInvalid {
		t.Fatalf("an unset setting accepted the username form: %v", err)
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
	// The last digit changed to another: replacing it by a fixed one would
	// leave the key as it was whenever it already ended in that digit.
	last := "0"
	if strings.HasSuffix(key, "0") {
		last = "1"
	}
	for _, bad := range []string{"", "wmk_", key[:len(key)-1] + last, strings.Replace(key, "team_a-1", "other", 1), second + "x"} {
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

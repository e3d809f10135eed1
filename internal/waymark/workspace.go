package waymark

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Workspace is a customer's workspace with its secrets opened.
type Workspace struct {
	Code                 string
	Name                 string
	CreatedAt            time.Time
	IdentityVerification bool
	// HMACExpiration is which message form identity verification accepts.
	HMACExpiration HMACExpiration
	// Origins is the allow-list of browser origins; empty allows any.
	Origins       []string
	RetentionDays int
	Disabled      bool
	// AllowedProps and AllowedGroupProps are the user and group prop keys
	// the workspace stores (data minimization); empty allows any.
	AllowedProps      AllowList
	AllowedGroupProps AllowList
	// HMACSecret is shared with the customer's server, which signs usernames
	// with it. Its bytes are the printed secret's characters.
	HMACSecret string
	// UserKeySecret never leaves Waymark: it keys the hash that replaces
	// usernames in every table key, so rotating the HMAC secret changes no key.
	UserKeySecret []byte
	Keys          []APIKey
	// Webhook, when set, receives the workspace's new feedback.
	Webhook *Webhook
	Version int64
}

// APIKey is a server API key: only its hash is stored.
type APIKey struct {
	ID        string
	Hash      string // hex SHA-256 of the whole key
	CreatedAt time.Time
	RevokedAt time.Time
}

// NewWorkspaceOptions are the settings of a new workspace.
type NewWorkspaceOptions struct {
	Name                 string
	IdentityVerification bool
	// HMACExpiration defaults to HMACExpirationRequired; a new workspace
	// cannot choose HMACExpirationOptional.
	HMACExpiration HMACExpiration
	Origins        []string
	RetentionDays  int
	// Code, when set, is used instead of a random one (fixed demo codes).
	Code string
}

// NewWorkspace creates a workspace with fresh secrets and one server API
// key, returned in full only here.
func NewWorkspace(opts NewWorkspaceOptions, now time.Time) (*Workspace, string, error) {
	if strings.TrimSpace(opts.Name) == "" {
		return nil, "", Invalid("name", "required")
	}
	if err := validBoundedText("name", opts.Name, 128); err != nil {
		return nil, "", err
	}
	origins, err := NormalizeOrigins(opts.Origins)
	if err != nil {
		return nil, "", err
	}
	hmacExpiration := opts.HMACExpiration
	switch hmacExpiration {
	case "":
		hmacExpiration = HMACExpirationRequired
	case HMACExpirationRequired, HMACExpirationNone:
	default:
		return nil, "", Invalid("hmacExpiration", "a new workspace takes %s or %s", HMACExpirationRequired, HMACExpirationNone)
	}
	if opts.RetentionDays < 0 {
		return nil, "", Invalid("retentionDays", "must not be negative")
	}
	code := opts.Code
	if code == "" {
		code = "ws" + randomToken(10, lowerAlphanumeric)
	}
	if err := ValidateWorkspaceCode("code", code); err != nil {
		return nil, "", err
	}
	ws := &Workspace{
		Code:                 code,
		Name:                 opts.Name,
		CreatedAt:            now.UTC(),
		IdentityVerification: opts.IdentityVerification,
		HMACExpiration:       hmacExpiration,
		Origins:              origins,
		RetentionDays:        opts.RetentionDays,
		HMACSecret:           hex.EncodeToString(randomBytes(32)),
		UserKeySecret:        randomBytes(32),
	}
	key := ws.AddKey(now)
	return ws, key, nil
}

const lowerAlphanumeric = "abcdefghijklmnopqrstuvwxyz0123456789"

// AddKey adds a server API key and returns it; only its hash is kept. The
// key names its workspace so the server API finds the workspace without a
// secondary index: wmk_<code>_<id>_<64 hex digits>. The id and secret hold
// no '_', so a code that does still parses from the right.
func (w *Workspace) AddKey(now time.Time) string {
	id := randomToken(8, lowerAlphanumeric)
	key := apiKeyPrefix + w.Code + "_" + id + "_" + hex.EncodeToString(randomBytes(32))
	w.Keys = append(w.Keys, APIKey{ID: id, Hash: HashAPIKey(key), CreatedAt: now.UTC()})
	return key
}

const apiKeyPrefix = "wmk_"

// HashAPIKey is what is stored of a server API key: the hex SHA-256 of the
// whole key. Keys are 256-bit random, so a plain hash is enough.
func HashAPIKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// ParseAPIKey splits a server API key into its workspace code and key id.
func ParseAPIKey(key string) (code, id string, ok bool) {
	rest, ok := strings.CutPrefix(key, apiKeyPrefix)
	if !ok {
		return "", "", false
	}
	i := strings.LastIndexByte(rest, '_')
	if i < 0 || len(rest)-i-1 != 64 {
		return "", "", false
	}
	rest = rest[:i]
	j := strings.LastIndexByte(rest, '_')
	if j <= 0 {
		return "", "", false
	}
	return rest[:j], rest[j+1:], true
}

// CheckAPIKey finds the workspace's live key that matches, comparing hashes
// in constant time. Every failure is the same unauthorized error, so a
// caller learns nothing about which part was wrong.
func (w *Workspace) CheckAPIKey(key string) (*APIKey, error) {
	unauthorized := Errorf(EUnauthorized, "missing, unknown or revoked secret key")
	_, id, ok := ParseAPIKey(key)
	if !ok {
		return nil, unauthorized
	}
	given := HashAPIKey(key)
	for i := range w.Keys {
		k := &w.Keys[i]
		if k.ID == id && k.RevokedAt.IsZero() && subtle.ConstantTimeCompare([]byte(k.Hash), []byte(given)) == 1 {
			return k, nil
		}
	}
	return nil, unauthorized
}

// RevokeKey revokes a key by id; revoking twice is fine, an unknown id is
// an error.
func (w *Workspace) RevokeKey(id string, now time.Time) error {
	for i := range w.Keys {
		if w.Keys[i].ID == id {
			if w.Keys[i].RevokedAt.IsZero() {
				w.Keys[i].RevokedAt = now.UTC()
			}
			return nil
		}
	}
	return Invalid("keyId", "no key %q in this workspace", id)
}

// RotateHMACSecret replaces the identity-verification secret. User keys do
// not change: they are keyed by the separate user-key secret.
func (w *Workspace) RotateHMACSecret() string {
	w.HMACSecret = hex.EncodeToString(randomBytes(32))
	return w.HMACSecret
}

// UserKey is the keyed hash that stands for a username in every table key.
func (w *Workspace) UserKey(username string) string {
	mac := hmac.New(sha256.New, w.UserKeySecret)
	mac.Write([]byte(username))
	return w.Code + "#" + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// GroupKey is the keyed hash that stands for a group id in the Groups
// table's keys and on its members' user items. It cannot collide with a
// user key: a username holds no control character.
func (w *Workspace) GroupKey(id string) string {
	mac := hmac.New(sha256.New, w.UserKeySecret)
	mac.Write([]byte("group\x00"))
	mac.Write([]byte(id))
	return w.Code + "#" + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// IdentifyDigest is a keyed hash of an identify input, stored with the user
// it was applied to. Applying one input twice changes nothing (Merge), so
// an identify that finds its digest on the user item, as the snippet's
// identify of every page load does, only records the visit: it needs
// neither the stored profile nor a data key. Keyed by the user-key secret
// so that a table dump cannot test guesses of a profile against it.
//
// An input with an attribute operation has no digest (""): applying it twice
// is two changes. The allow-list is part of the digest, so that the first
// identify after it changes writes the profile within it.
func (w *Workspace) IdentifyDigest(in UserInput) string {
	groups, _ := in.Memberships()
	if HasOperations(in.Props) || slices.ContainsFunc(groups, func(g GroupInput) bool { return HasOperations(g.Props) }) {
		return ""
	}
	mac := hmac.New(sha256.New, w.UserKeySecret)
	mac.Write([]byte("identify-input\x00"))
	mac.Write(in.canonical())
	mac.Write([]byte("\x00allowed\x00" + strings.Join(w.AllowedProps, ",")))
	// Without groups the digest is the one stored before groups existed.
	if g := in.canonicalGroups(); g != nil {
		mac.Write(g)
		mac.Write([]byte("\x00allowedGroups\x00" + strings.Join(w.AllowedGroupProps, ",")))
	}
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil)[:16])
}

// HMACExpiration says which of the two message forms of identity
// verification a workspace accepts. The forms collide: the hash of
// "a|9" signed without expiration is the hash of "a" with expiration 9, so a
// workspace accepting both lets a user named "a|9" sign in as "a". Each
// setting but the legacy one accepts exactly one form, which makes the
// message a one-to-one function of (username, expiration): an expiration
// is digits only, so "username|expiration" splits at its last '|'.
type HMACExpiration string

const (
	// HMACExpirationRequired accepts only hex(HMAC(secret,
	// "username|expiration")): a call without an expiration is refused. The
	// default of new workspaces.
	HMACExpirationRequired HMACExpiration = "required"
	// HMACExpirationNone accepts only hex(HMAC(secret, username)): a call
	// carrying an expiration is refused.
	HMACExpirationNone HMACExpiration = "none"
	// HMACExpirationOptional accepts both forms, as every workspace did
	// before the setting existed; workspaces stored without the setting
	// read as this. It is open to the collision above and kept only so that
	// those workspaces keep working until their operator chooses a form.
	HMACExpirationOptional HMACExpiration = "optional"
)

// ParseHMACExpiration reads the setting as the CLI and the store spell it.
func ParseHMACExpiration(s string) (HMACExpiration, error) {
	switch e := HMACExpiration(s); e {
	case HMACExpirationRequired, HMACExpirationNone, HMACExpirationOptional:
		return e, nil
	}
	return "", Invalid("hmacExpiration", "must be %s, %s or %s", HMACExpirationRequired, HMACExpirationNone, HMACExpirationOptional)
}

// Message is the message form the setting signs, as documented.
func (e HMACExpiration) Message() string {
	switch e {
	case HMACExpirationNone:
		return "username"
	case HMACExpirationOptional:
		return "username or username|expiration"
	}
	return "username|expiration"
}

// VerifyIdentity checks the HMAC a call carries when the workspace requires
// identity verification. The comparison takes the same time wherever the
// hashes differ.
func (w *Workspace) VerifyIdentity(username string, proof *HMAC, now time.Time) error {
	if !w.IdentityVerification {
		return nil
	}
	if proof == nil || proof.Hash == "" {
		return Errorf(EHMACInvalid, "this workspace requires identity verification: hmac.hash is missing")
	}
	given, err := hex.DecodeString(strings.ToLower(proof.Hash))
	if err != nil {
		return Errorf(EHMACInvalid, "hmac.hash is not hexadecimal")
	}
	switch w.HMACExpiration {
	case HMACExpirationOptional:
	case HMACExpirationNone:
		if proof.Expiration != nil {
			return &Error{Code: EHMACInvalid, Field: "hmac.expiration", Message: "hmac.expiration: this workspace signs the username alone; send no expiration"}
		}
	default:
		// Required, and any value this code does not know: the safe form.
		if proof.Expiration == nil {
			return &Error{Code: EHMACInvalid, Field: "hmac.expiration", Message: "hmac.expiration: this workspace requires an expiration; sign username|expiration"}
		}
	}
	if subtle.ConstantTimeCompare(signature(w.HMACSecret, username, proof.Expiration), given) != 1 {
		return Errorf(EHMACInvalid, "hmac.hash does not match")
	}
	// The expiration is checked only once the hash proves it authentic.
	if proof.Expiration != nil {
		if now.Unix() > *proof.Expiration {
			return Errorf(EHMACExpired, "hmac has expired")
		}
		if *proof.Expiration > now.Add(MaxHMACLifetime).Unix() {
			return &Error{Code: EHMACInvalid, Field: "hmac.expiration", Message: fmt.Sprintf("hmac.expiration: more than %d days ahead of the server's clock", MaxHMACLifetime/(24*time.Hour))}
		}
	}
	return nil
}

// SignUsername computes the identity-verification hash a customer's server
// sends along with a username (used by the CLI and the tests).
func SignUsername(secret, username string, expiration *int64) string {
	return hex.EncodeToString(signature(secret, username, expiration))
}

// signature is HMAC-SHA256(secret, message), the message being the username
// or username|expiration.
func signature(secret, username string, expiration *int64) []byte {
	message := username
	if expiration != nil {
		message += "|" + strconv.FormatInt(*expiration, 10)
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(message))
	return mac.Sum(nil)
}

// CheckOrigin enforces the workspace's origin allow-list. An empty list
// allows any caller; a non-empty one refuses calls from other origins and
// calls that name no origin.
func (w *Workspace) CheckOrigin(origin string) error {
	if len(w.Origins) == 0 {
		return nil
	}
	normalized, err := normalizeOrigin(origin)
	if err == nil {
		for _, allowed := range w.Origins {
			if normalized == allowed {
				return nil
			}
		}
	}
	return Errorf(EOriginNotAllowed, "this origin is not allowed for the workspace")
}

// ExpiresAt is when data written now expires under the workspace's
// retention, in unix seconds, or 0 when the workspace keeps data.
func (w *Workspace) ExpiresAt(now time.Time) int64 {
	if w.RetentionDays <= 0 {
		return 0
	}
	return now.Add(time.Duration(w.RetentionDays) * 24 * time.Hour).Unix()
}

// NormalizeOrigins validates and normalizes an origin allow-list.
func NormalizeOrigins(origins []string) ([]string, error) {
	out := make([]string, 0, len(origins))
	for _, o := range origins {
		if strings.TrimSpace(o) == "" {
			continue
		}
		n, err := normalizeOrigin(o)
		if err != nil {
			return nil, Invalid("origins", "%q is not an origin like https://app.example.com", o)
		}
		out = append(out, n)
	}
	return out, nil
}

// normalizeOrigin lower-cases scheme and host and drops a trailing slash;
// an origin carries no path.
func normalizeOrigin(o string) (string, error) {
	o = strings.TrimSuffix(strings.TrimSpace(o), "/")
	scheme, rest, ok := strings.Cut(o, "://")
	if !ok || (scheme != "http" && scheme != "https") || rest == "" || strings.ContainsAny(rest, "/?#@ ") {
		return "", Invalid("origin", "not an origin")
	}
	return strings.ToLower(scheme + "://" + rest), nil
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	// crypto/rand.Read never fails on supported platforms (Go 1.24+).
	_, _ = rand.Read(b)
	return b
}

func randomToken(n int, alphabet string) string {
	b := randomBytes(n)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

// NewID returns a random identifier for server-made ids (feedback, requests).
func NewID() string { return hex.EncodeToString(randomBytes(16)) }

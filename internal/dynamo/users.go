package dynamo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/waymarkhq/waymark/internal/schema"
	"github.com/waymarkhq/waymark/internal/waymark"
)

// profileFields are the sealed standard fields of a user item.
var profileFields = []string{"email", "firstname", "lastname", "role", "signUpAt"}

func profileField(p *waymark.Profile, name string) **string {
	switch name {
	case "email":
		return &p.Email
	case "firstname":
		return &p.Firstname
	case "lastname":
		return &p.Lastname
	case "role":
		return &p.Role
	default:
		return &p.SignUpAt
	}
}

// GetUser reads a user and opens the sealed fields; a user never seen is
// waymark.ErrNotFound.
func (s *Store) GetUser(ctx context.Context, ws *waymark.Workspace, userKey string) (*waymark.User, error) {
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      s.table(schema.UsersTable),
		Key:            map[string]types.AttributeValue{attrPK: str(userKey)},
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return nil, mapError("get user", err)
	}
	if out.Item == nil {
		return nil, waymark.ErrNotFound
	}
	return s.userFromItem(ctx, ws, out.Item)
}

func (s *Store) userFromItem(ctx context.Context, ws *waymark.Workspace, item map[string]types.AttributeValue) (*waymark.User, error) {
	pk := getString(item, attrPK)
	opener, err := s.openerFor(ctx, ws.Code, schema.UsersTable, pk, "", item)
	if err != nil {
		return nil, err
	}
	u := &waymark.User{
		Key:         pk,
		FirstSeenAt: getTime(item, "firstSeenAt"),
		LastSeenAt:  getTime(item, "lastSeenAt"),
		Version:     getInt(item, attrVersion),
		ExpiresAt:   getInt(item, attrExpiresAt),
		Groups:      getStrings(item, attrGroups),
	}
	name, _, err := opener.open(item, "username")
	if err != nil {
		return nil, err
	}
	u.Username = string(name)
	for _, f := range profileFields {
		v, ok, err := opener.open(item, f)
		if err != nil {
			return nil, err
		}
		if ok {
			value := string(v)
			*profileField(&u.Profile, f) = &value
		}
	}
	props, ok, err := opener.open(item, "props")
	if err != nil {
		return nil, err
	}
	if ok {
		dec := json.NewDecoder(bytes.NewReader(props))
		dec.UseNumber()
		if err := dec.Decode(&u.Profile.Props); err != nil {
			return nil, fmt.Errorf("dynamo: user props: %w", err)
		}
	}
	if err := s.applyPendingInputs(ctx, ws, u, item); err != nil {
		return nil, err
	}
	return u, nil
}

// PutUser writes the whole user item over the version it was read at (0 for
// a new user), sealing every personal field under a fresh data key use.
// requestID marks the write so a retried call can tell its own earlier
// success from another writer's.
func (s *Store) PutUser(ctx context.Context, ws *waymark.Workspace, u *waymark.User, requestID string, now time.Time) error {
	item, err := s.userItem(ctx, ws, u, requestID, now)
	if err != nil {
		return err
	}
	if err := s.putOverVersion(ctx, schema.UsersTable, item, u.Version, "put user"); err != nil {
		return err
	}
	u.Version++
	return nil
}

// userItem is the whole item of a user at its next version, every personal
// field sealed; it sets u.ExpiresAt to the workspace's retention from now.
func (s *Store) userItem(ctx context.Context, ws *waymark.Workspace, u *waymark.User, requestID string, now time.Time) (map[string]types.AttributeValue, error) {
	sealer, err := s.sealerFor(ctx, ws.Code, schema.UsersTable, u.Key, "")
	if err != nil {
		return nil, err
	}
	item := map[string]types.AttributeValue{
		attrPK:        str(u.Key),
		"username":    sealer.seal("username", []byte(u.Username)),
		"firstSeenAt": str(waymark.FormatTime(u.FirstSeenAt)),
		"lastSeenAt":  str(waymark.FormatTime(u.LastSeenAt)),
		attrDataKey:   &types.AttributeValueMemberB{Value: sealer.key.Wrapped},
		attrVersion:   number(u.Version + 1),
		attrRequest:   str(requestID),
	}
	if u.InputDigest != "" {
		item[attrLastInput] = str(u.InputDigest)
	}
	if len(u.Folded) > 0 {
		item[attrPendingRequests] = foldedRequests(u)
	}
	if len(u.Groups) > 0 {
		item[attrGroups] = &types.AttributeValueMemberSS{Value: u.Groups}
	}
	for _, f := range profileFields {
		if v := *profileField(&u.Profile, f); v != nil {
			item[f] = sealer.seal(f, []byte(*v))
		}
	}
	if len(u.Profile.Props) > 0 {
		props, err := json.Marshal(u.Profile.Props)
		if err != nil {
			return nil, fmt.Errorf("dynamo: user props: %w", err)
		}
		item["props"] = sealer.seal("props", props)
	}
	u.ExpiresAt = ws.ExpiresAt(now)
	putExpiry(item, u.ExpiresAt)
	return item, nil
}

// attrLastInput holds the waymark.Workspace.IdentifyDigest of the last
// identify input applied to the user's profile.
const attrLastInput = "lastInput"

// VisitResolution is how finely a returning user's visits are recorded: a
// visit on the same UTC day as the stored lastSeenAt writes nothing, so a
// returning user's page loads cost one write a day instead of one each.
// lastSeenAt is then the time of the user's first visit on the last day
// the user was seen, accurate to the day.
const VisitResolution = 24 * time.Hour

// RepeatIdentify serves a returning user's identify when the input is the
// one the profile last took (digest), without opening or sealing anything.
// It reads the user item; when the input is unchanged and the visit falls on
// the day lastSeenAt already records (and the retention's expiry is current)
// it writes nothing, so the caller's page load is one round trip with no
// write. The first visit of a day records itself with a conditional write
// (a second round trip). Otherwise (changed input, new user, past its
// retention) it returns the user opened and repeated false: the caller
// merges and writes the profile over the version read, waymark.ErrNotFound
// standing for a user not stored yet. An input without a digest (it holds
// an attribute operation) is never a repeat.
func (s *Store) RepeatIdentify(ctx context.Context, ws *waymark.Workspace, userKey, digest, requestID string, now time.Time) (*waymark.User, bool, error) {
	key := map[string]types.AttributeValue{attrPK: str(userKey)}
	read, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      s.table(schema.UsersTable),
		Key:            key,
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return nil, false, mapError("get user", err)
	}
	if read.Item == nil {
		return nil, false, waymark.ErrNotFound
	}
	seen := seenUser(userKey, digest, read.Item)
	if digest == "" || getString(read.Item, attrLastInput) != digest || seen.Expired(now) {
		user, err := s.userFromItem(ctx, ws, read.Item)
		return user, false, err
	}
	want := ws.ExpiresAt(now)
	if sameVisit(seen.LastSeenAt, now) && expiryCurrent(seen.ExpiresAt, want) {
		return seen, true, nil
	}

	update := "SET lastSeenAt = :now, req = :req, v = v + :one"
	values := map[string]types.AttributeValue{
		":now":     str(waymark.FormatTime(now)),
		":req":     str(requestID),
		":one":     number(1),
		":digest":  str(digest),
		":nowUnix": number(now.Unix()),
	}
	update = withExpiry(update, values, want)
	out, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 s.table(schema.UsersTable),
		Key:                       key,
		UpdateExpression:          aws.String(update),
		ConditionExpression:       aws.String(attrLastInput + " = :digest AND (attribute_not_exists(expiresAt) OR expiresAt >= :nowUnix)"),
		ExpressionAttributeValues: values,
		// The answer needs the first-seen time, which the update does not
		// set: only the whole item brings it back.
		ReturnValues: types.ReturnValueAllNew,
	})
	if err == nil {
		return seenUser(userKey, digest, out.Attributes), true, nil
	}
	if err := mapError("repeat identify", err); !errors.Is(err, waymark.ErrConflict) {
		return nil, false, err
	}
	// Another identify changed the user since the read: the caller's
	// write, over the version read, meets the conflict and reads again.
	user, err := s.userFromItem(ctx, ws, read.Item)
	return user, false, err
}

// seenUser is the part of a user item a repeat identify answers with; it
// opens nothing.
func seenUser(userKey, digest string, item map[string]types.AttributeValue) *waymark.User {
	return &waymark.User{
		Key:         userKey,
		FirstSeenAt: getTime(item, "firstSeenAt"),
		LastSeenAt:  getTime(item, "lastSeenAt"),
		Version:     getInt(item, attrVersion),
		ExpiresAt:   getInt(item, attrExpiresAt),
		InputDigest: digest,
		Groups:      getStrings(item, attrGroups),
	}
}

// sameVisit says whether now falls on the UTC day (VisitResolution) of the
// recorded lastSeenAt. A lastSeenAt ahead of now (another instance's
// clock) counts as the same visit.
func sameVisit(lastSeenAt, now time.Time) bool {
	return !lastSeenAt.IsZero() && !now.Truncate(VisitResolution).After(lastSeenAt)
}

// expiryCurrent says whether the stored expiry is the one a write now would
// set, give or take a day: no expiry when the workspace keeps data for
// ever, else at most VisitResolution older and never later (a retention
// made shorter applies at the next visit).
func expiryCurrent(stored, want int64) bool {
	if want == 0 || stored == 0 {
		return want == stored
	}
	return stored <= want && stored >= want-int64(VisitResolution/time.Second)
}

// UserWrittenBy reports whether the user item's last write was the given
// request's (so a conflict after an SDK retry was our own success).
func (s *Store) UserWrittenBy(ctx context.Context, userKey, requestID string) (bool, error) {
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:            s.table(schema.UsersTable),
		Key:                  map[string]types.AttributeValue{attrPK: str(userKey)},
		ConsistentRead:       aws.Bool(true),
		ProjectionExpression: aws.String(attrRequest),
	})
	if err != nil {
		return false, mapError("get user", err)
	}
	return getString(out.Item, attrRequest) == requestID, nil
}

// SealedUsername is a username sealed for a user item, made before any write
// so that an unreachable KMS fails a request before it stores anything.
type SealedUsername struct {
	userKey  string
	wrapped  []byte
	username types.AttributeValue
}

// SealUsername seals a username for TouchUser.
func (s *Store) SealUsername(ctx context.Context, ws *waymark.Workspace, userKey, username string) (*SealedUsername, error) {
	sealer, err := s.sealerFor(ctx, ws.Code, schema.UsersTable, userKey, "")
	if err != nil {
		return nil, err
	}
	return &SealedUsername{userKey: userKey, wrapped: sealer.key.Wrapped, username: sealer.seal("username", []byte(username))}, nil
}

// TouchUser records that a user was seen now, creating the user item (first
// seen now, username sealed) when it does not exist. It reads nothing: every
// attribute it sets only once is set with if_not_exists, and a repeat of it
// is harmless. A user item past its retention (not yet removed by DynamoDB's
// time to live) is replaced by a fresh one instead, so expired data never
// comes back to life.
func (s *Store) TouchUser(ctx context.Context, ws *waymark.Workspace, sealed *SealedUsername, now time.Time) error {
	update := "SET lastSeenAt = :now, firstSeenAt = if_not_exists(firstSeenAt, :now), " +
		"username = if_not_exists(username, :username), dk = if_not_exists(dk, :dk), v = if_not_exists(v, :one)"
	values := map[string]types.AttributeValue{
		":now":      str(waymark.FormatTime(now)),
		":username": sealed.username,
		":dk":       &types.AttributeValueMemberB{Value: sealed.wrapped},
		":one":      number(1),
		":nowUnix":  number(now.Unix()),
	}
	update = withExpiry(update, values, ws.ExpiresAt(now))
	_, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 s.table(schema.UsersTable),
		Key:                       map[string]types.AttributeValue{attrPK: str(sealed.userKey)},
		UpdateExpression:          aws.String(update),
		ConditionExpression:       aws.String("attribute_not_exists(expiresAt) OR expiresAt >= :nowUnix"),
		ExpressionAttributeValues: values,
	})
	if err = mapError("touch user", err); !errors.Is(err, waymark.ErrConflict) {
		return err
	}
	// Expired: start over, keeping only the version counter so that a
	// writer that read the expired item still conflicts.
	replace := "SET username = :username, dk = :dk, firstSeenAt = :now, lastSeenAt = :now, v = v + :one"
	remove := " REMOVE email, firstname, lastname, #role, signUpAt, props, " + attrLastInput + ", " + attrPendingInputs + ", " + attrPendingRequests + ", " + attrGroups
	if _, ok := values[":exp"]; ok {
		replace += ", expiresAt = :exp"
	} else {
		remove += ", expiresAt"
	}
	_, err = s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 s.table(schema.UsersTable),
		Key:                       map[string]types.AttributeValue{attrPK: str(sealed.userKey)},
		UpdateExpression:          aws.String(replace + remove),
		ConditionExpression:       aws.String("expiresAt < :nowUnix"),
		ExpressionAttributeNames:  map[string]string{"#role": "role"},
		ExpressionAttributeValues: values,
	})
	if err = mapError("replace expired user", err); errors.Is(err, waymark.ErrConflict) {
		// Someone refreshed it meanwhile: it is live again, which is all a
		// touch needs.
		return nil
	}
	return err
}

package dynamo

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/waymarkhq/waymark/internal/schema"
	"github.com/waymarkhq/waymark/internal/waymark"
)

// stateAttr is the clear `st` attribute of a content-state item: content ids
// and times only, so a state read needs no decryption.
type stateAttr struct {
	Status          string   `dynamodbav:"status,omitempty"`
	StatusAt        int64    `dynamodbav:"statusAt,omitempty"`
	StatusID        string   `dynamodbav:"statusId,omitempty"`
	Step            string   `dynamodbav:"step,omitempty"`
	StepAt          int64    `dynamodbav:"stepAt,omitempty"`
	StepID          string   `dynamodbav:"stepId,omitempty"`
	Displayed       int      `dynamodbav:"displayed,omitempty"`
	LastDisplayedAt string   `dynamodbav:"lastDisplayedAt,omitempty"`
	Dismissed       bool     `dynamodbav:"dismissed,omitempty"`
	Read            bool     `dynamodbav:"read,omitempty"`
	ReadAt          string   `dynamodbav:"readAt,omitempty"`
	Items           []string `dynamodbav:"items,omitempty,stringset"`
	Acts            []string `dynamodbav:"acts,omitempty,stringset"`
	Steps           []string `dynamodbav:"steps,omitempty,stringset"`
	AnswerAt        int64    `dynamodbav:"answerAt,omitempty"`
	AnswerID        string   `dynamodbav:"answerId,omitempty"`
	UpdatedAt       string   `dynamodbav:"updatedAt"`
}

// seenEntrySize is the size of one remembered event in the `seen` attribute:
// an 8-byte fingerprint and a 4-byte unix time (seconds, good until 2106).
const seenEntrySize = 12

func sortKey(k waymark.ContentKey) string { return string(k.Kind) + "#" + k.ID }

func parseSortKey(sk string) (waymark.ContentKey, bool) {
	kind, id, ok := strings.Cut(sk, "#")
	return waymark.ContentKey{Kind: waymark.Kind(kind), ID: id}, ok
}

func unixNanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// markOf decodes a stored mark. The zero time and the Unix epoch are both
// stored as 0; a mark that an event set carries that event's id, so only a
// mark without an id is the zero one (read as the zero time, an event at the
// epoch would lose to any event at the epoch read afterwards, whatever its
// id).
func markOf(nanos int64, id string) waymark.Mark {
	if id == "" {
		return waymark.Mark{}
	}
	return waymark.Mark{At: time.Unix(0, nanos).UTC(), ID: id}
}

func encodeSeen(seen []waymark.Seen) []byte {
	b := make([]byte, len(seen)*seenEntrySize)
	for i, s := range seen {
		binary.BigEndian.PutUint64(b[i*seenEntrySize:], uint64(s.Fingerprint))
		binary.BigEndian.PutUint32(b[i*seenEntrySize+8:], uint32(s.AppliedAt))
	}
	return b
}

func decodeSeen(b []byte) []waymark.Seen {
	seen := make([]waymark.Seen, 0, len(b)/seenEntrySize)
	for i := 0; i+seenEntrySize <= len(b); i += seenEntrySize {
		seen = append(seen, waymark.Seen{
			Fingerprint: waymark.Fingerprint(binary.BigEndian.Uint64(b[i:])),
			AppliedAt:   int64(binary.BigEndian.Uint32(b[i+8:])),
		})
	}
	return seen
}

// contentFromItem decodes a content-state item, its pending events applied;
// the sealed survey answer is left sealed (state reads never need it).
func contentFromItem(item map[string]types.AttributeValue) (*waymark.ContentItem, error) {
	key, ok := parseSortKey(getString(item, attrSK))
	if !ok {
		return nil, fmt.Errorf("dynamo: content-state item with sort key %q", getString(item, attrSK))
	}
	// An item that only pending events were recorded on has no state yet.
	var st stateAttr
	if av, ok := item["st"]; ok {
		if err := attributevalue.Unmarshal(av, &st); err != nil {
			return nil, fmt.Errorf("dynamo: content state: %w", err)
		}
	}
	c := &waymark.ContentItem{
		Key:        key,
		Status:     st.Status,
		StatusMark: markOf(st.StatusAt, st.StatusID),
		Step:       st.Step,
		StepMark:   markOf(st.StepAt, st.StepID),
		Displayed:  st.Displayed,
		Dismissed:  st.Dismissed,
		Read:       st.Read,
		AnswerMark: markOf(st.AnswerAt, st.AnswerID),
		Version:    getInt(item, attrVersion),
		ExpiresAt:  getInt(item, attrExpiresAt),
	}
	c.LastDisplayedAt, _ = time.Parse(time.RFC3339Nano, st.LastDisplayedAt)
	c.ReadAt, _ = time.Parse(time.RFC3339Nano, st.ReadAt)
	c.UpdatedAt, _ = time.Parse(time.RFC3339Nano, st.UpdatedAt)
	if len(st.Items) > 0 {
		c.Items = make(map[string]bool, len(st.Items))
		for _, it := range st.Items {
			c.Items[it] = true
		}
	}
	for _, a := range st.Acts {
		if c.Acts == nil {
			c.Acts = map[waymark.Action]bool{}
		}
		c.Acts[waymark.Action(a)] = true
	}
	for _, step := range st.Steps {
		if c.Steps == nil {
			c.Steps = map[string]bool{}
		}
		c.Steps[step] = true
	}
	if seen, ok := item["seen"].(*types.AttributeValueMemberB); ok {
		c.Seen = decodeSeen(seen.Value)
	}
	if claims, ok := item["claims"].(*types.AttributeValueMemberBS); ok {
		c.Claimed = len(claims.Value)
	}
	pend, err := readPending(item)
	if err != nil {
		return nil, err
	}
	applyPending(c, pend)
	return c, nil
}

// LoadState reads every content item of a user with one Query. Consistent
// reads are for writers, which must see the latest version; readers of state
// use eventually consistent reads at half the cost.
func (s *Store) LoadState(ctx context.Context, userKey string, consistent bool) ([]*waymark.ContentItem, error) {
	raw, err := s.queryAll(ctx, "query state", &dynamodb.QueryInput{
		TableName:                 s.table(schema.ContentStateTable),
		KeyConditionExpression:    aws.String("pk = :pk"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": str(userKey)},
		ConsistentRead:            aws.Bool(consistent),
	})
	if err != nil {
		return nil, err
	}
	items := make([]*waymark.ContentItem, 0, len(raw))
	for _, it := range raw {
		c, err := contentFromItem(it)
		if err != nil {
			return nil, err
		}
		items = append(items, c)
	}
	return items, nil
}

// GetContent reads one content item consistently; a missing one is
// waymark.ErrNotFound. It also returns the id of the request that wrote it.
func (s *Store) GetContent(ctx context.Context, userKey string, key waymark.ContentKey) (*waymark.ContentItem, string, error) {
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      s.table(schema.ContentStateTable),
		Key:            map[string]types.AttributeValue{attrPK: str(userKey), attrSK: str(sortKey(key))},
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return nil, "", mapError("get content state", err)
	}
	if out.Item == nil {
		return nil, "", waymark.ErrNotFound
	}
	c, err := contentFromItem(out.Item)
	if err != nil {
		return nil, "", err
	}
	return c, getString(out.Item, attrRequest), nil
}

// ContentWrite is a content item ready to be written: its survey answer, if
// any, already sealed, so that sealing (which may need KMS) happens before
// any write of a request.
type ContentWrite struct {
	Item    *waymark.ContentItem
	applies []waymark.Fingerprint
	answer  types.AttributeValue
	wrapped []byte
}

// PrepareContent seals what needs sealing in a content item for a write
// that applies the given events to it. Only items that received a new
// survey answer need a data key.
func (s *Store) PrepareContent(ctx context.Context, ws *waymark.Workspace, userKey string, c *waymark.ContentItem, applies []waymark.Fingerprint, newAnswer bool) (*ContentWrite, error) {
	w := &ContentWrite{Item: c, applies: applies}
	if !newAnswer {
		return w, nil
	}
	sealer, err := s.sealerFor(ctx, ws.Code, schema.ContentStateTable, userKey, sortKey(c.Key))
	if err != nil {
		return nil, err
	}
	answer, err := json.Marshal(c.Answer)
	if err != nil {
		return nil, fmt.Errorf("dynamo: survey answer: %w", err)
	}
	w.answer = sealer.seal("answer", answer)
	w.wrapped = sealer.key.Wrapped
	return w, nil
}

// PutContent writes a prepared content item over the version it was read at
// (0 for an item never written), folding in the pending events it was read
// with. It fails with waymark.ErrConflict when another write came first, or
// when one of the events it applies was recorded meanwhile as pending. An
// item whose answer did not change keeps its sealed answer and data key:
// they are copied by an update, not rewritten.
func (s *Store) PutContent(ctx context.Context, ws *waymark.Workspace, userKey string, w *ContentWrite, requestID string, now time.Time) error {
	c := w.Item
	st := stateAttr{
		Status: c.Status, StatusAt: unixNanos(c.StatusMark.At), StatusID: c.StatusMark.ID,
		Step: c.Step, StepAt: unixNanos(c.StepMark.At), StepID: c.StepMark.ID,
		Displayed: c.Displayed, LastDisplayedAt: waymark.FormatTime(c.LastDisplayedAt),
		Dismissed: c.Dismissed, Read: c.Read, ReadAt: waymark.FormatTime(c.ReadAt),
		AnswerAt: unixNanos(c.AnswerMark.At), AnswerID: c.AnswerMark.ID,
		UpdatedAt: waymark.FormatTime(c.UpdatedAt),
	}
	for it := range c.Items {
		st.Items = append(st.Items, it)
	}
	sort.Strings(st.Items)
	for a := range c.Acts {
		st.Acts = append(st.Acts, string(a))
	}
	sort.Strings(st.Acts)
	for step := range c.Steps {
		st.Steps = append(st.Steps, step)
	}
	sort.Strings(st.Steps)
	stAV, err := attributevalue.Marshal(st)
	if err != nil {
		return fmt.Errorf("dynamo: content state: %w", err)
	}
	values := map[string]types.AttributeValue{
		":st":   stAV,
		":seen": &types.AttributeValueMemberB{Value: encodeSeen(c.Seen)},
		":next": number(c.Version + 1),
		":req":  str(requestID),
	}
	// An update rather than a put, so the sealed answer and its data key
	// survive writes that do not touch them, and so do events recorded as
	// pending after the read: the version condition does not see them
	// (they do not count as writes), the fingerprints added to `claims`
	// and the pending events removed by position leave them be.
	set := []string{"st = :st", "seen = :seen", "v = :next", "req = :req"}
	var add, remove []string
	cond := "attribute_not_exists(v)"
	if c.Version > 0 {
		cond = "v = :expected"
		values[":expected"] = number(c.Version)
	}
	if len(c.Seen) < c.Claimed+len(w.applies) {
		// Fingerprints were forgotten (pruned, or the item expired): the
		// claims are replaced, over exactly the ones read.
		if len(c.Seen) > 0 {
			set = append(set, "claims = :claims")
			values[":claims"] = claimsOf(c.Seen)
		} else {
			remove = append(remove, "claims")
		}
		if c.Claimed > 0 {
			cond += " AND size(claims) = :claimed"
			values[":claimed"] = number(c.Claimed)
		} else {
			cond += " AND attribute_not_exists(claims)"
		}
	} else if len(c.Seen) > 0 {
		add = append(add, "claims :claims")
		values[":claims"] = claimsOf(c.Seen)
	}
	for i, fp := range w.applies {
		name := ":a" + strconv.Itoa(i)
		cond += " AND NOT contains(claims, " + name + ")"
		values[name] = &types.AttributeValueMemberB{Value: fingerprintBytes(fp)}
	}
	for i := range c.Pending {
		remove = append(remove, "pend["+strconv.Itoa(i)+"]")
	}
	if w.answer != nil {
		set = append(set, "answer = :answer", "dk = :dk")
		values[":answer"] = w.answer
		values[":dk"] = &types.AttributeValueMemberB{Value: w.wrapped}
	}
	c.ExpiresAt = ws.ExpiresAt(now)
	if setExpiry, removeExpiry := expiryClauses(values, c.ExpiresAt); setExpiry != "" {
		set = append(set, setExpiry)
	} else {
		remove = append(remove, removeExpiry)
	}
	update := "SET " + strings.Join(set, ", ")
	if len(add) > 0 {
		update += " ADD " + strings.Join(add, ", ")
	}
	if len(remove) > 0 {
		update += " REMOVE " + strings.Join(remove, ", ")
	}
	_, err = s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 s.table(schema.ContentStateTable),
		Key:                       map[string]types.AttributeValue{attrPK: str(userKey), attrSK: str(sortKey(c.Key))},
		UpdateExpression:          aws.String(update),
		ConditionExpression:       aws.String(cond),
		ExpressionAttributeValues: values,
	})
	if err != nil {
		return mapError("put content state", err)
	}
	c.Version++
	c.Claimed = len(c.Seen)
	c.Pending = nil
	return nil
}

// SetContentExpiry moves a content item's expiry (0 removes it) without
// touching its state or version: retention is refreshed on activity for the
// items the activity did not write.
func (s *Store) SetContentExpiry(ctx context.Context, userKey string, key waymark.ContentKey, expiresAt int64) error {
	in := &dynamodb.UpdateItemInput{
		TableName:           s.table(schema.ContentStateTable),
		Key:                 map[string]types.AttributeValue{attrPK: str(userKey), attrSK: str(sortKey(key))},
		ConditionExpression: aws.String("attribute_exists(pk)"),
		UpdateExpression:    aws.String("REMOVE expiresAt"),
	}
	if expiresAt > 0 {
		in.UpdateExpression = aws.String("SET expiresAt = :exp")
		in.ExpressionAttributeValues = map[string]types.AttributeValue{":exp": number(expiresAt)}
	}
	_, err := s.db.UpdateItem(ctx, in)
	if errors.Is(mapError("", err), waymark.ErrConflict) {
		// Erased meanwhile: nothing to keep alive.
		return nil
	}
	return mapError("set content expiry", err)
}

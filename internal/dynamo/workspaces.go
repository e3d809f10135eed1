package dynamo

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/waymarkhq/waymark/internal/schema"
	"github.com/waymarkhq/waymark/internal/waymark"
)

// apiKeyItem is how a server API key is stored: its hash, never the key.
type apiKeyItem struct {
	Hash      string `dynamodbav:"hash"`
	CreatedAt string `dynamodbav:"createdAt"`
	RevokedAt string `dynamodbav:"revokedAt,omitempty"`
}

// GetWorkspace reads a workspace and opens its secrets. An unknown code is
// waymark.ErrNotFound.
func (s *Store) GetWorkspace(ctx context.Context, code string) (*waymark.Workspace, error) {
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      s.table(schema.WorkspacesTable),
		Key:            map[string]types.AttributeValue{"code": str(code)},
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return nil, mapError("get workspace", err)
	}
	if out.Item == nil {
		return nil, waymark.ErrNotFound
	}
	return s.workspaceFromItem(ctx, out.Item)
}

func (s *Store) workspaceFromItem(ctx context.Context, item map[string]types.AttributeValue) (*waymark.Workspace, error) {
	code := getString(item, "code")
	if wrapped, at := publishedSealingKey(item); wrapped != nil {
		s.sealer.Offer(ctx, code, wrapped, at)
	}
	opener, err := s.openerFor(ctx, code, schema.WorkspacesTable, code, "", item)
	if err != nil {
		return nil, err
	}
	hmacSecret, _, err := opener.open(item, "hmacSecret")
	if err != nil {
		return nil, err
	}
	userKeySecret, _, err := opener.open(item, "userKeySecret")
	if err != nil {
		return nil, err
	}
	// A workspace stored before the setting existed accepted both message
	// forms; it keeps doing so until its operator chooses one.
	hmacExpiration := waymark.HMACExpirationOptional
	if stored := getString(item, "hmacExpiration"); stored != "" {
		if hmacExpiration, err = waymark.ParseHMACExpiration(stored); err != nil {
			return nil, fmt.Errorf("dynamo: workspace %s: %w", code, err)
		}
	}
	ws := &waymark.Workspace{
		Code:                 code,
		Name:                 getString(item, "name"),
		CreatedAt:            getTime(item, "createdAt"),
		IdentityVerification: getBool(item, "identityVerification"),
		HMACExpiration:       hmacExpiration,
		RetentionDays:        int(getInt(item, "retentionDays")),
		Disabled:             getBool(item, "disabled"),
		HMACSecret:           string(hmacSecret),
		UserKeySecret:        userKeySecret,
		Version:              getInt(item, attrVersion),
	}
	if ws.Webhook, err = openWebhook(opener, item); err != nil {
		return nil, err
	}
	if err := attributevalue.Unmarshal(item["origins"], &ws.Origins); err != nil && item["origins"] != nil {
		return nil, fmt.Errorf("dynamo: workspace origins: %w", err)
	}
	for attr, list := range map[string]*waymark.AllowList{"allowedProps": &ws.AllowedProps, "allowedGroupProps": &ws.AllowedGroupProps} {
		if err := attributevalue.Unmarshal(item[attr], list); err != nil && item[attr] != nil {
			return nil, fmt.Errorf("dynamo: workspace %s: %w", attr, err)
		}
		// A string set comes back in no particular order; the identify
		// digest hashes the list.
		slices.Sort(*list)
	}
	var keys map[string]apiKeyItem
	if err := attributevalue.Unmarshal(item["keys"], &keys); err != nil && item["keys"] != nil {
		return nil, fmt.Errorf("dynamo: workspace keys: %w", err)
	}
	for id, k := range keys {
		key := waymark.APIKey{ID: id, Hash: k.Hash}
		key.CreatedAt, _ = time.Parse(time.RFC3339Nano, k.CreatedAt)
		key.RevokedAt, _ = time.Parse(time.RFC3339Nano, k.RevokedAt)
		ws.Keys = append(ws.Keys, key)
	}
	return ws, nil
}

// PutWorkspace writes a workspace over the version it was read at (0 for a
// new one, which must not exist yet), sealing its secrets.
func (s *Store) PutWorkspace(ctx context.Context, ws *waymark.Workspace) error {
	sealer, err := s.sealerFor(ctx, ws.Code, schema.WorkspacesTable, ws.Code, "")
	if err != nil {
		return err
	}
	origins, err := attributevalue.Marshal(append([]string{}, ws.Origins...))
	if err != nil {
		return fmt.Errorf("dynamo: workspace origins: %w", err)
	}
	keys := map[string]apiKeyItem{}
	for _, k := range ws.Keys {
		item := apiKeyItem{Hash: k.Hash, CreatedAt: waymark.FormatTime(k.CreatedAt), RevokedAt: waymark.FormatTime(k.RevokedAt)}
		keys[k.ID] = item
	}
	keysAV, err := attributevalue.Marshal(keys)
	if err != nil {
		return fmt.Errorf("dynamo: workspace keys: %w", err)
	}
	// VerifyIdentity reads an unset setting as required: store it so.
	hmacExpiration := ws.HMACExpiration
	if hmacExpiration == "" {
		hmacExpiration = waymark.HMACExpirationRequired
	}
	item := map[string]types.AttributeValue{
		"code":                 str(ws.Code),
		"name":                 str(ws.Name),
		"createdAt":            str(waymark.FormatTime(ws.CreatedAt)),
		"identityVerification": &types.AttributeValueMemberBOOL{Value: ws.IdentityVerification},
		"hmacExpiration":       str(string(hmacExpiration)),
		"origins":              origins,
		"retentionDays":        number(ws.RetentionDays),
		"disabled":             &types.AttributeValueMemberBOOL{Value: ws.Disabled},
		"hmacSecret":           sealer.seal("hmacSecret", []byte(ws.HMACSecret)),
		"userKeySecret":        sealer.seal("userKeySecret", ws.UserKeySecret),
		"keys":                 keysAV,
		attrDataKey:            &types.AttributeValueMemberB{Value: sealer.key.Wrapped},
		attrVersion:            number(ws.Version + 1),
	}
	for attr, list := range map[string]waymark.AllowList{"allowedProps": ws.AllowedProps, "allowedGroupProps": ws.AllowedGroupProps} {
		if len(list) > 0 {
			item[attr] = &types.AttributeValueMemberSS{Value: list}
		}
	}
	if ws.Webhook != nil {
		item[attrWebhookURL] = str(ws.Webhook.URL)
		item[attrWebhookFormat] = str(string(ws.Webhook.Format))
		item[attrWebhookSecret] = sealer.seal(attrWebhookSecret, []byte(ws.Webhook.Secret))
	}
	cond := "attribute_not_exists(code)"
	values := map[string]types.AttributeValue(nil)
	if ws.Version > 0 {
		cond, values = versionCondition(ws.Version)
	}
	_, err = s.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:                 s.table(schema.WorkspacesTable),
		Item:                      item,
		ConditionExpression:       aws.String(cond),
		ExpressionAttributeValues: values,
	})
	if err != nil {
		return mapError("put workspace", err)
	}
	ws.Version++
	return nil
}

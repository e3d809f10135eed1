package apigw

import (
	"bytes"
	"context"
	"encoding/json"

	"github.com/aws/aws-lambda-go/events"

	"github.com/waymarkhq/waymark/internal/service"
	"github.com/waymarkhq/waymark/internal/waymark"
)

// MaxImportBodyBytes is the largest body of POST /v1/server/users/import,
// the one route that takes more than waymark.MaxBodyBytes: a Lambda
// function's synchronous payload is at most 6 MiB (6,291,456 bytes) with the
// event around the body, and this leaves the event's headers room.
const MaxImportBodyBytes = 6_000_000

// importBody is the body of POST /v1/server/users/import. Users are decoded
// one by one, so that one malformed user is refused alone.
type importBody struct {
	Users []json.RawMessage `json:"users"`
}

func (a *API) importUsers(ctx context.Context, c service.Call, _ events.APIGatewayV2HTTPRequest, body []byte) (any, error) {
	var in importBody
	if err := decodeJSON(body, &in); err != nil {
		return nil, err
	}
	req := &service.ImportRequest{Users: make([]service.ImportEntry, len(in.Users))}
	for i, raw := range in.Users {
		req.Users[i] = DecodeImportUser(raw)
	}
	return a.svc.ImportUsers(ctx, c, req)
}

// DecodeImportUser decodes one user object of an import as strictly as
// identify's body (unknown fields, wrong types and altered text refused),
// naming a failure's field relative to the user object.
func DecodeImportUser(raw []byte) service.ImportEntry {
	var e service.ImportEntry
	if trimmed := bytes.TrimSpace(raw); len(trimmed) == 0 || trimmed[0] != '{' {
		e.DecodeErr = &waymark.Error{Code: waymark.EInvalidArgument, Message: "must be a JSON object"}
		return e
	}
	e.DecodeErr = decodeJSON(raw, &e.Input)
	return e
}

// bodyLimit is the largest body a route takes.
func bodyLimit(routeKey string) int {
	if routeKey == "POST /v1/server/users/import" {
		return MaxImportBodyBytes
	}
	return waymark.MaxBodyBytes
}

// Package waymark holds Waymark's domain: workspaces, users, onboarding
// content state, feedback, their validation rules and the one application
// error type. It knows nothing of AWS, HTTP or storage.
package waymark

import (
	"errors"
	"fmt"
	"time"
)

// Error codes. Each maps to one HTTP status in the API adapter.
const (
	EInvalidJSON          = "invalid_json"
	EInvalidArgument      = "invalid_argument"
	EPayloadTooLarge      = "payload_too_large"
	EUnsupportedMediaType = "unsupported_media_type"
	EUnknownWorkspace     = "unknown_workspace"
	EWorkspaceDisabled    = "workspace_disabled"
	EHMACInvalid          = "hmac_invalid"
	EHMACExpired          = "hmac_expired"
	EOriginNotAllowed     = "origin_not_allowed"
	EUnauthorized         = "unauthorized"
	EThrottled            = "throttled"
	EUnavailable          = "unavailable"
	EInternal             = "internal"
)

// Error is the application error: a machine code, a message safe to show to
// the caller, and for bad input the JSON path of the offending field.
type Error struct {
	Code    string
	Message string
	Field   string
	// RetryAfter, when set, tells the caller when to try again (throttled,
	// unavailable).
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("waymark: %s: %s: %s", e.Code, e.Field, e.Message)
	}
	return fmt.Sprintf("waymark: %s: %s", e.Code, e.Message)
}

// Errorf builds an Error with a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Invalid builds an invalid_argument Error about one field; the message names
// the field first, as callers see it.
func Invalid(field, format string, args ...any) *Error {
	return &Error{Code: EInvalidArgument, Field: field, Message: field + ": " + fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the application error in err's chain, or
// internal for any other error.
func ErrorCode(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EInternal
}

// AsError returns the application error in err's chain. Any other error
// becomes an internal error whose message reveals nothing of its cause.
func AsError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return &Error{Code: EInternal, Message: "internal error"}
}

// ErrUnavailable is returned when a dependency (KMS, DynamoDB) cannot be
// reached; the caller may retry.
func ErrUnavailable(cause string) *Error {
	return &Error{Code: EUnavailable, Message: "service temporarily unavailable: " + cause, RetryAfter: 2 * time.Second}
}

// ErrThrottled is returned when the database refuses the request rate.
func ErrThrottled() *Error {
	return &Error{Code: EThrottled, Message: "too many requests, retry later", RetryAfter: time.Second}
}

// ErrConflict is returned by a conditional write that lost a race with
// another writer; the caller re-reads and tries again.
var ErrConflict = errors.New("waymark: conflicting write")

// ErrNotFound is returned when an item does not exist.
var ErrNotFound = errors.New("waymark: not found")

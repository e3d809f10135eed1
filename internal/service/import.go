package service

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/waymarkhq/waymark/internal/waymark"
)

// MaxImportUsers bounds the users of one import call.
const MaxImportUsers = 1000

// ImportEntry is one user of an import, as the transport decoded it:
// Input, or DecodeErr when the user object itself could not be decoded
// (its field named relative to the user object).
type ImportEntry struct {
	Input     waymark.UserInput
	DecodeErr error
}

// ImportRequest is the body of POST /v1/server/users/import.
type ImportRequest struct {
	Users []ImportEntry
}

// ImportFailure is one user an import did not write, and why.
type ImportFailure struct {
	Index   int    `json:"index"`
	Code    string `json:"code"`
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
}

// ImportResult is the answer to an import: every user is counted in
// exactly one of its three parts.
type ImportResult struct {
	// Imported is how many users were written (new, or changed).
	Imported int `json:"imported"`
	// Unchanged is how many users were stored already with this very input.
	Unchanged int `json:"unchanged"`
	// Failed lists the users refused, by their index in the request.
	Failed []ImportFailure `json:"failed"`
}

// changedInFlight bounds the users already stored that one import updates
// at once through identify's path.
const changedInFlight = 8

// ImportUsers imports users for the customer's backend (server key).
func (s *Service) ImportUsers(ctx context.Context, call Call, req *ImportRequest) (*ImportResult, error) {
	ws, err := s.authenticate(ctx, call.Authorization)
	if err != nil {
		return nil, err
	}
	return s.ImportOf(ctx, call, ws, req)
}

// ImportOf imports users into a workspace for an authorized caller (the
// server API, or the operator CLI with AWS credentials).
//
// Each user is validated as identify validates it and refused alone when
// invalid; the valid ones are written, each user's item whole or not at all.
// A user stored already with the same input (identify's digest) is counted
// unchanged and not written, so a repeated import writes nothing. Users not
// stored yet are written in batches (dynamo.PutNewUsers); users stored with
// another input, or past their retention, go through identify's own path
// (merge over the version read, conditional write, retried on conflict), so
// that an import never overwrites what a concurrent identify wrote to a
// stored user.
//
// A new user written by the batch is written unconditionally: an identify
// that creates the same user in the moment between the import's read and
// its write is overwritten by the import (the snippet's next identify of
// that user, its digest no longer stored, merges its input again). A
// conditional write per user closes that gap at the cost of one call per
// user instead of one per 25; bench/results.md has both figures.
//
// On an error of the store (429/503) some users may be written already;
// the call can be repeated as is: those count as unchanged then.
func (s *Service) ImportOf(ctx context.Context, call Call, ws *waymark.Workspace, req *ImportRequest) (*ImportResult, error) {
	if len(req.Users) == 0 {
		return nil, waymark.Invalid("users", "at least one user is required")
	}
	if len(req.Users) > MaxImportUsers {
		return nil, waymark.Invalid("users", "more than %d users", MaxImportUsers)
	}
	now := s.opts.Now().UTC()
	res := &ImportResult{Failed: []ImportFailure{}}
	type valid struct {
		index  int
		in     waymark.UserInput
		key    string
		digest string
	}
	var users []valid
	firstIndex := map[string]int{}
	for i, e := range req.Users {
		if e.DecodeErr != nil {
			res.fail(i, e.DecodeErr, "")
			continue
		}
		full := waymark.IdentifyRequest{Workspace: ws.Code, User: e.Input}
		if err := full.Validate(); err != nil {
			res.fail(i, err, "user")
			continue
		}
		key := ws.UserKey(e.Input.Username)
		if j, seen := firstIndex[key]; seen {
			// Two inputs for one user in one call have no order the
			// batch write could keep: the caller sends the second later.
			res.fail(i, waymark.Invalid("user.username", "the same user as users[%d] of this call", j), "user")
			continue
		}
		firstIndex[key] = i
		users = append(users, valid{index: i, in: e.Input, key: key, digest: ws.IdentifyDigest(e.Input)})
	}
	if len(users) == 0 {
		return res, nil
	}
	keys := make([]string, len(users))
	for i, u := range users {
		keys[i] = u.key
	}
	stored, err := s.store.StoredInputs(ctx, keys)
	if err != nil {
		return nil, err
	}
	var (
		fresh   []*waymark.User
		changed []valid
	)
	for _, u := range users {
		prior, exists := stored[u.key]
		expired := prior.ExpiresAt > 0 && prior.ExpiresAt < now.Unix()
		switch {
		case exists && prior.Digest == u.digest && !expired:
			res.Unchanged++
		case exists:
			changed = append(changed, u)
		case namesGroups(u.in):
			// Memberships are written with the user item in a
			// transaction (dynamo.PutUserMemberships): identify's path.
			changed = append(changed, u)
		default:
			profile, err := waymark.Profile{}.Merge(u.in, ws.AllowedProps)
			if err != nil {
				res.fail(u.index, err, "user")
				continue
			}
			fresh = append(fresh, &waymark.User{Key: u.key, Username: u.in.Username, Profile: profile,
				FirstSeenAt: now, LastSeenAt: now, InputDigest: u.digest})
		}
	}
	var (
		freshErr error
		wg       sync.WaitGroup
	)
	if len(fresh) > 0 {
		spawn(&wg, &freshErr, func() error { return s.store.PutNewUsers(ctx, ws, fresh, call.RequestID, now) })
	}
	changedFails := make([]error, len(changed))
	sem := make(chan struct{}, changedInFlight)
	for i, u := range changed {
		sem <- struct{}{}
		spawn(&wg, &changedFails[i], func() error {
			defer func() { <-sem }()
			_, err := s.identify(ctx, call, ws, u.in)
			return err
		})
	}
	wg.Wait()
	if freshErr != nil {
		return nil, freshErr
	}
	res.Imported += len(fresh)
	for i, err := range changedFails {
		switch {
		case err == nil:
			res.Imported++
		case waymark.AsError(err).Code == waymark.EInvalidArgument:
			// The input is valid but does not merge with what is stored
			// (too many props once merged): this user only.
			res.fail(changed[i].index, err, "user")
		default:
			return nil, err
		}
	}
	slices.SortFunc(res.Failed, func(a, b ImportFailure) int { return a.Index - b.Index })
	return res, nil
}

// fail records a refused user, naming its field by its path in the import
// call (users[i].email): from, when given, is the prefix the error's field
// carries instead ("user" for identify's validation).
func (r *ImportResult) fail(index int, err error, from string) {
	appErr := waymark.AsError(err)
	prefix := fmt.Sprintf("users[%d]", index)
	field := appErr.Field
	switch {
	case from != "" && (field == from || strings.HasPrefix(field, from+".")):
		field = prefix + strings.TrimPrefix(field, from)
	case from == "" && field != "":
		field = prefix + "." + field
	case field == "":
		field = prefix
	}
	message := field + ": " + appErr.Message
	if rest, ok := strings.CutPrefix(appErr.Message, appErr.Field+": "); ok && appErr.Field != "" {
		message = field + ": " + rest
	}
	r.Failed = append(r.Failed, ImportFailure{Index: index, Code: appErr.Code, Field: field, Message: message})
}

// namesGroups says an imported user's input names its groups.
func namesGroups(in waymark.UserInput) bool {
	_, named := in.Memberships()
	return named
}

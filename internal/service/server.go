package service

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/waymarkhq/waymark/internal/dynamo"
	"github.com/waymarkhq/waymark/internal/waymark"
)

// The server API: a customer's backend calls it with a workspace secret key.

// MaxErasePerCall bounds the usernames of one erase call.
const MaxErasePerCall = 100

// MaxFeedbackPage bounds a feedback page; DefaultFeedbackPage is used when
// the caller names no limit.
const (
	MaxFeedbackPage     = 100
	DefaultFeedbackPage = 20
)

// authenticate finds the workspace of a server key and checks the key. The
// workspace is read afresh, not from the cache, so that a revoked key stops
// working at once.
func (s *Service) authenticate(ctx context.Context, authorization string) (*waymark.Workspace, error) {
	unauthorized := waymark.Errorf(waymark.EUnauthorized, "missing, unknown or revoked secret key")
	scheme, key, ok := strings.Cut(strings.TrimSpace(authorization), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return nil, unauthorized
	}
	key = strings.TrimSpace(key)
	code, _, ok := waymark.ParseAPIKey(key)
	if !ok || waymark.ValidateWorkspaceCode("code", code) != nil {
		return nil, unauthorized
	}
	ws, err := s.store.GetWorkspace(ctx, code)
	if errors.Is(err, waymark.ErrNotFound) {
		return nil, unauthorized
	}
	if err != nil {
		return nil, err
	}
	if _, err := ws.CheckAPIKey(key); err != nil {
		return nil, err
	}
	if ws.Disabled {
		return nil, waymark.Errorf(waymark.EWorkspaceDisabled, "this workspace is disabled")
	}
	return ws, nil
}

// ServerIdentifyRequest is the body of POST /v1/server/identify.
type ServerIdentifyRequest struct {
	User waymark.UserInput `json:"user"`
}

// ServerIdentify is identify for the customer's backend: the key stands for
// the workspace and proves the identity, so no HMAC is needed.
func (s *Service) ServerIdentify(ctx context.Context, call Call, req *ServerIdentifyRequest) (*IdentifyResult, error) {
	ws, err := s.authenticate(ctx, call.Authorization)
	if err != nil {
		return nil, err
	}
	full := waymark.IdentifyRequest{Workspace: ws.Code, User: req.User}
	if err := full.Validate(); err != nil {
		return nil, err
	}
	return s.identify(ctx, call, ws, req.User)
}

// FeedbackQuery is the query of GET /v1/server/feedback.
type FeedbackQuery struct {
	Since  string
	Limit  string
	Cursor string
}

// FeedbackItem is one feedback message as the server API returns it.
type FeedbackItem struct {
	ID          string               `json:"id"`
	Username    string               `json:"username"`
	Text        string               `json:"text"`
	Rating      *int                 `json:"rating,omitempty"`
	Category    string               `json:"category,omitempty"`
	Environment *waymark.Environment `json:"environment,omitempty"`
	Attachments []AttachmentLink     `json:"attachments,omitempty"`
	CreatedAt   string               `json:"createdAt"`
}

// FeedbackPage is a page of the workspace's feedback, newest first.
type FeedbackPage struct {
	Items      []FeedbackItem `json:"items"`
	NextCursor string         `json:"nextCursor,omitempty"`
}

// feedbackCursor is where a listing stopped: the month partition and the
// position in it. It holds no workspace: the month partition is rebuilt from
// the caller's own workspace, so a cursor cannot reach another tenant.
type feedbackCursor struct {
	Month string                   `json:"m"`
	After *dynamo.FeedbackPosition `json:"a,omitempty"`
	Since string                   `json:"s"`
}

// ListFeedback lists the workspace's feedback, newest first, month by month
// (the index partitions feedback by workspace and month so that no workspace
// writes to one hot partition forever).
func (s *Service) ListFeedback(ctx context.Context, call Call, q FeedbackQuery) (*FeedbackPage, error) {
	ws, err := s.authenticate(ctx, call.Authorization)
	if err != nil {
		return nil, err
	}
	return s.FeedbackOf(ctx, ws, q)
}

// FeedbackOf lists a workspace's feedback for an authorized caller (the
// server API, or the operator CLI with AWS credentials).
func (s *Service) FeedbackOf(ctx context.Context, ws *waymark.Workspace, q FeedbackQuery) (*FeedbackPage, error) {
	limit := DefaultFeedbackPage
	if q.Limit != "" {
		n, err := parseLimit(q.Limit)
		if err != nil {
			return nil, err
		}
		limit = n
	}
	now := s.opts.Now().UTC()
	cur := feedbackCursor{Month: now.Format("2006-01")}
	if q.Cursor != "" {
		raw, err := base64.RawURLEncoding.DecodeString(q.Cursor)
		if err != nil || json.Unmarshal(raw, &cur) != nil {
			return nil, waymark.Invalid("cursor", "not a cursor this API returned")
		}
	} else if q.Since != "" {
		cur.Since = q.Since
	}
	since := ws.CreatedAt.UTC()
	if cur.Since != "" {
		t, err := waymark.ParseTime(cur.Since)
		if err != nil {
			return nil, waymark.Invalid("since", "not an RFC 3339 date-time")
		}
		since = t.UTC()
	}
	month, err := time.Parse("2006-01", cur.Month)
	if err != nil {
		return nil, waymark.Invalid("cursor", "not a cursor this API returned")
	}
	page := &FeedbackPage{Items: []FeedbackItem{}}
	firstMonth := time.Date(since.Year(), since.Month(), 1, 0, 0, 0, 0, time.UTC)
	after := cur.After
	for !month.Before(firstMonth) && len(page.Items) < limit {
		items, next, err := s.store.ListFeedback(ctx, ws, dynamo.FeedbackMonth(ws.Code, month), after, since, limit-len(page.Items))
		if err != nil {
			return nil, err
		}
		for _, fb := range items {
			if fb.ExpiresAt > 0 && fb.ExpiresAt < now.Unix() {
				continue
			}
			item, err := s.feedbackItem(ctx, fb)
			if err != nil {
				return nil, err
			}
			page.Items = append(page.Items, item)
		}
		// A month's query stops at its limit and says where (the loop
		// condition then ends the page), or at the month's end.
		if next != nil {
			after = next
		} else {
			month, after = month.AddDate(0, -1, 0), nil
		}
	}
	if !month.Before(firstMonth) {
		next, _ := json.Marshal(feedbackCursor{Month: month.Format("2006-01"), After: after, Since: cur.Since})
		page.NextCursor = base64.RawURLEncoding.EncodeToString(next)
	}
	return page, nil
}

func parseLimit(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > MaxFeedbackPage {
		return 0, waymark.Invalid("limit", "must be an integer from 1 to %d", MaxFeedbackPage)
	}
	return n, nil
}

// feedbackItem is a feedback as the server API returns it, each attachment
// with a presigned download.
func (s *Service) feedbackItem(ctx context.Context, fb *waymark.Feedback) (FeedbackItem, error) {
	links, err := s.links(ctx, fb)
	if err != nil {
		return FeedbackItem{}, err
	}
	return FeedbackItem{ID: fb.ID, Username: fb.Username, Text: fb.Text, Rating: fb.Rating, Category: fb.Category,
		Environment: fb.Environment, Attachments: links, CreatedAt: waymark.FormatTime(fb.CreatedAt)}, nil
}

// ExportRequest is the body of POST /v1/server/users/export.
type ExportRequest struct {
	Username string `json:"username"`
}

// ExportedUser is the user information object as stored.
type ExportedUser struct {
	Username    string         `json:"username"`
	Email       *string        `json:"email,omitempty"`
	Firstname   *string        `json:"firstname,omitempty"`
	Lastname    *string        `json:"lastname,omitempty"`
	Role        *string        `json:"role,omitempty"`
	SignUpAt    *string        `json:"signUpAt,omitempty"`
	Props       map[string]any `json:"props,omitempty"`
	FirstSeenAt string         `json:"firstSeenAt"`
	LastSeenAt  string         `json:"lastSeenAt"`
}

// Export is everything Waymark stores about one user.
type Export struct {
	Found         bool           `json:"found"`
	User          *ExportedUser  `json:"user"`
	State         waymark.State  `json:"state"`
	SurveyAnswers map[string]any `json:"surveyAnswers"`
	Feedback      []FeedbackItem `json:"feedback"`
	Groups        []UserGroup    `json:"groups"`
}

// ExportUser returns everything stored about one user, opened.
func (s *Service) ExportUser(ctx context.Context, call Call, req *ExportRequest) (*Export, error) {
	ws, err := s.authenticate(ctx, call.Authorization)
	if err != nil {
		return nil, err
	}
	return s.ExportOf(ctx, ws, req)
}

// ExportOf exports a user of a workspace for an authorized caller.
func (s *Service) ExportOf(ctx context.Context, ws *waymark.Workspace, req *ExportRequest) (*Export, error) {
	if err := waymark.ValidateUsername("username", req.Username); err != nil {
		return nil, err
	}
	now := s.opts.Now()
	userKey := ws.UserKey(req.Username)
	out := &Export{State: waymark.NewState(), SurveyAnswers: map[string]any{}, Feedback: []FeedbackItem{}, Groups: []UserGroup{}}
	user, err := s.store.GetUser(ctx, ws, userKey)
	switch {
	case errors.Is(err, waymark.ErrNotFound):
	case err != nil:
		return nil, err
	case !user.Expired(now):
		p := user.Profile
		out.User = &ExportedUser{Username: user.Username, Email: p.Email, Firstname: p.Firstname, Lastname: p.Lastname,
			Role: p.Role, SignUpAt: p.SignUpAt, Props: p.Props,
			FirstSeenAt: waymark.FormatTime(user.FirstSeenAt), LastSeenAt: waymark.FormatTime(user.LastSeenAt)}
		if out.Groups, err = s.exportGroups(ctx, ws, user.Groups, now); err != nil {
			return nil, err
		}
	}
	items, err := s.store.LoadState(ctx, userKey, true)
	if err != nil {
		return nil, err
	}
	out.State = waymark.StateOf(forgetExpired(items, now))
	answers, err := s.store.SurveyAnswers(ctx, ws, userKey)
	if err != nil {
		return nil, err
	}
	for id, answer := range answers {
		if _, live := out.State.Surveys[id]; live {
			out.SurveyAnswers[id] = answer
		}
	}
	feedback, err := s.store.UserFeedback(ctx, ws, userKey)
	if err != nil {
		return nil, err
	}
	for _, fb := range feedback {
		if fb.ExpiresAt == 0 || fb.ExpiresAt >= now.Unix() {
			item, err := s.feedbackItem(ctx, fb)
			if err != nil {
				return nil, err
			}
			out.Feedback = append(out.Feedback, item)
		}
	}
	out.Found = out.User != nil || len(items) > 0 || len(out.Feedback) > 0
	return out, nil
}

// EraseRequest is the body of POST /v1/server/users/delete.
type EraseRequest struct {
	Usernames []string `json:"usernames"`
}

// EraseResult says what an erasure removed.
type EraseResult struct {
	// Users is how many of the usernames had anything stored.
	Users int `json:"users"`
	// Items is how many items were deleted across all tables.
	Items int `json:"items"`
	// Attachments is how many stored files (uploads and attachments of
	// feedback) were deleted from the attachments bucket.
	Attachments int `json:"attachments"`
}

// EraseUsers deletes everything stored about the given users. It is
// idempotent: erasing an erased or unknown user removes nothing and is no
// error. Events sent for a user after its erasure create a new record, so
// the customer stops tracking the user before erasing.
func (s *Service) EraseUsers(ctx context.Context, call Call, req *EraseRequest) (*EraseResult, error) {
	ws, err := s.authenticate(ctx, call.Authorization)
	if err != nil {
		return nil, err
	}
	return s.EraseOf(ctx, ws, req)
}

// EraseOf erases users of a workspace for an authorized caller.
func (s *Service) EraseOf(ctx context.Context, ws *waymark.Workspace, req *EraseRequest) (*EraseResult, error) {
	if len(req.Usernames) == 0 {
		return nil, waymark.Invalid("usernames", "at least one username is required")
	}
	if len(req.Usernames) > MaxErasePerCall {
		return nil, waymark.Invalid("usernames", "more than %d usernames", MaxErasePerCall)
	}
	for i, u := range req.Usernames {
		if err := waymark.ValidateUsername(fmt.Sprintf("usernames[%d]", i), u); err != nil {
			return nil, err
		}
	}
	res := &EraseResult{}
	for _, u := range req.Usernames {
		userKey := ws.UserKey(u)
		// Memberships first: the user item lists them.
		memberships, err := s.store.EraseMemberships(ctx, userKey)
		if err != nil {
			return nil, err
		}
		n, err := s.store.EraseUser(ctx, userKey)
		if err != nil {
			return nil, err
		}
		n += memberships
		files := 0
		if s.opts.Attachments != nil {
			if files, err = s.opts.Attachments.DeleteUser(ctx, userKey); err != nil {
				return nil, err
			}
		}
		if n > 0 || files > 0 {
			res.Users++
			res.Items += n
			res.Attachments += files
		}
	}
	return res, nil
}

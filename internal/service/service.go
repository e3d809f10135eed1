// Package service is Waymark's application layer: it authorizes a call
// against its workspace, applies the domain rules and drives the store with
// bounded optimistic-concurrency retries. It is transport-agnostic; the API
// Gateway adapter calls it.
package service

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/waymarkhq/waymark/internal/dynamo"
	"github.com/waymarkhq/waymark/internal/waymark"
)

// Store is what the service needs from storage.
type Store interface {
	GetWorkspace(ctx context.Context, code string) (*waymark.Workspace, error)
	GetUser(ctx context.Context, ws *waymark.Workspace, userKey string) (*waymark.User, error)
	RepeatIdentify(ctx context.Context, ws *waymark.Workspace, userKey, digest, requestID string, now time.Time) (*waymark.User, bool, error)
	PutUser(ctx context.Context, ws *waymark.Workspace, u *waymark.User, requestID string, now time.Time) error
	UserWrittenBy(ctx context.Context, userKey, requestID string) (bool, error)
	RecordPendingInput(ctx context.Context, ws *waymark.Workspace, userKey string, in waymark.UserInput, requestID string, now time.Time) error
	SealUsername(ctx context.Context, ws *waymark.Workspace, userKey, username string) (*dynamo.SealedUsername, error)
	TouchUser(ctx context.Context, ws *waymark.Workspace, sealed *dynamo.SealedUsername, now time.Time) error
	LoadState(ctx context.Context, userKey string, consistent bool) ([]*waymark.ContentItem, error)
	GetContent(ctx context.Context, userKey string, key waymark.ContentKey) (*waymark.ContentItem, string, error)
	PrepareContent(ctx context.Context, ws *waymark.Workspace, userKey string, c *waymark.ContentItem, applies []waymark.Fingerprint, newAnswer bool) (*dynamo.ContentWrite, error)
	PutContent(ctx context.Context, ws *waymark.Workspace, userKey string, w *dynamo.ContentWrite, requestID string, now time.Time) error
	PrepareFeedback(ctx context.Context, ws *waymark.Workspace, fb *waymark.Feedback) (*dynamo.FeedbackWrite, error)
	PutFeedback(ctx context.Context, w *dynamo.FeedbackWrite) error
	RecordPending(ctx context.Context, ws *waymark.Workspace, userKey string, ev waymark.Event, requestID string, now time.Time) (bool, error)
	SetContentExpiry(ctx context.Context, userKey string, key waymark.ContentKey, expiresAt int64) error
	ListFeedback(ctx context.Context, ws *waymark.Workspace, month string, after *dynamo.FeedbackPosition, since time.Time, limit int) ([]*waymark.Feedback, *dynamo.FeedbackPosition, error)
	UserFeedback(ctx context.Context, ws *waymark.Workspace, userKey string) ([]*waymark.Feedback, error)
	SurveyAnswers(ctx context.Context, ws *waymark.Workspace, userKey string) (map[string]any, error)
	EraseUser(ctx context.Context, userKey string) (int, error)
	GetGroups(ctx context.Context, ws *waymark.Workspace, keys []string) (map[string]*waymark.Group, error)
	GetGroup(ctx context.Context, ws *waymark.Workspace, key string) (*waymark.Group, error)
	PutGroup(ctx context.Context, ws *waymark.Workspace, g *waymark.Group, requestID string, now time.Time) error
	GroupWrittenBy(ctx context.Context, key, requestID string) (bool, error)
	PutUserMemberships(ctx context.Context, ws *waymark.Workspace, u *waymark.User, before []string, requestID string, now time.Time) error
	RefreshGroupsExpiry(ctx context.Context, userKey string, groups []string, expiresAt int64) error
	CountMembers(ctx context.Context, groupKey string) (int, error)
	EraseGroup(ctx context.Context, groupKey string) (int, error)
	EraseMemberships(ctx context.Context, userKey string) (int, error)
	StoredInputs(ctx context.Context, userKeys []string) (map[string]dynamo.StoredInput, error)
	PutNewUsers(ctx context.Context, ws *waymark.Workspace, users []*waymark.User, requestID string, now time.Time) error
	ContentCounters(ctx context.Context, workspace string, content waymark.ContentKey, from, to string) (waymark.Counts, []waymark.DayCounts, error)
	WorkspaceCounters(ctx context.Context, workspace string) (map[waymark.ContentKey]waymark.Counts, error)
}

var _ Store = (*dynamo.Store)(nil)

// Options tune the service.
type Options struct {
	// MaxAttempts bounds the optimistic-concurrency retries of one write
	// (default 16; with the backoff below, about a second in all).
	MaxAttempts int
	// Now is the clock (tests).
	Now func() time.Time
	// Attachments is the bucket of feedback attachments; nil in a function
	// that handles none.
	Attachments Attachments
}

// Service serves the public API.
type Service struct {
	store      Store
	opts       Options
	workspaces *workspaceCache
}

// New builds a Service.
func New(store Store, opts Options) *Service {
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = 16
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Service{store: store, opts: opts, workspaces: newWorkspaceCache(store, opts.Now)}
}

// Call is what the transport knows about a call besides its body.
type Call struct {
	// Origin is the browser's Origin header ("" when absent).
	Origin string
	// RequestID identifies the call in logs and marks its writes.
	RequestID string
	// Authorization is the Authorization header (server API only).
	Authorization string
}

// authorize finds the workspace and checks that the call may act for the
// user: the workspace is enabled, the origin is allowed and, when the
// workspace requires it, the identity is verified.
func (s *Service) authorize(ctx context.Context, call Call, code, username string, proof *waymark.HMAC) (*waymark.Workspace, error) {
	ws, err := s.workspaces.get(ctx, code)
	if err != nil {
		return nil, err
	}
	if ws.Disabled {
		return nil, waymark.Errorf(waymark.EWorkspaceDisabled, "this workspace is disabled")
	}
	if err := ws.CheckOrigin(call.Origin); err != nil {
		return nil, err
	}
	if err := ws.VerifyIdentity(username, proof, s.opts.Now()); err != nil {
		return nil, err
	}
	return ws, nil
}

// UserSeen is the part of the user an identify returns: no personal data.
type UserSeen struct {
	FirstSeenAt string `json:"firstSeenAt"`
	LastSeenAt  string `json:"lastSeenAt"`
}

// IdentifyResult is the answer to identify.
type IdentifyResult struct {
	User  UserSeen      `json:"user"`
	State waymark.State `json:"state"`
	// Ignored lists the prop keys the workspace's allow-list kept out.
	Ignored []string `json:"ignored,omitempty"`
}

// Identify upserts the user information object and returns the user's state.
func (s *Service) Identify(ctx context.Context, call Call, req *waymark.IdentifyRequest) (*IdentifyResult, error) {
	if err := req.Validate(); err != nil {
		return nil, err
	}
	ws, err := s.authorize(ctx, call, req.Workspace, req.User.Username, req.HMAC)
	if err != nil {
		return nil, err
	}
	return s.identify(ctx, call, ws, req.User)
}

// identify makes one round trip and no write when the input is the one the
// user's profile last took and the day's visit is already recorded (most of
// a returning user's page loads): the reads of the user and of the state,
// side by side. The day's first visit adds a conditional write of
// lastSeenAt (see dynamo.VisitResolution). Otherwise the user read is
// merged and written over the version read: two round trips. A writer that
// loses that race records its input beside the item instead of racing
// again (dynamo.RecordPendingInput), so parallel identifies of one user,
// and the attribute operations they carry, each apply exactly once.
func (s *Service) identify(ctx context.Context, call Call, ws *waymark.Workspace, in waymark.UserInput) (*IdentifyResult, error) {
	userKey := ws.UserKey(in.Username)
	digest := ws.IdentifyDigest(in)
	now := s.opts.Now().UTC()
	var (
		user              *waymark.User
		repeated          bool
		items             []*waymark.ContentItem
		userErr, stateErr error
		wg                sync.WaitGroup
	)
	spawn(&wg, &userErr, func() (err error) {
		user, repeated, err = s.store.RepeatIdentify(ctx, ws, userKey, digest, call.RequestID, now)
		return err
	})
	spawn(&wg, &stateErr, func() (err error) {
		items, err = s.store.LoadState(ctx, userKey, false)
		return err
	})
	wg.Wait()
	if stateErr != nil {
		return nil, stateErr
	}
	items = forgetExpired(items, now)
	var refreshErr, groupsErr error
	spawn(&wg, &refreshErr, func() error { return s.refreshRetention(ctx, ws, userKey, items, nil, now) })
	memberships, named := in.Memberships()
	var groupKeys []string
	if repeated && userErr == nil && len(user.Groups) > 0 && ws.RetentionDays > 0 && user.LastSeenAt.Equal(now) {
		// The day's first visit moved the user's expiry: its memberships
		// and groups follow.
		spawn(&wg, &groupsErr, func() error { return s.store.RefreshGroupsExpiry(ctx, userKey, user.Groups, ws.ExpiresAt(now)) })
	}
	if !repeated && named {
		groups, err := s.prepareGroups(ctx, ws, memberships, groupsField(in), now)
		if err != nil {
			wg.Wait()
			return nil, err
		}
		for _, g := range groups {
			groupKeys = append(groupKeys, g.group.Key)
		}
		spawn(&wg, &groupsErr, func() error { return s.saveGroups(ctx, call, ws, groups, now) })
	}
	for attempt := 1; !repeated; attempt++ {
		if errors.Is(userErr, waymark.ErrNotFound) {
			user, userErr = &waymark.User{Key: userKey}, nil
		}
		if userErr != nil {
			wg.Wait()
			return nil, userErr
		}
		before := user.Groups
		if user.Expired(now) {
			// Past its retention: start over, over the same item.
			user = &waymark.User{Key: userKey, Version: user.Version}
		}
		if named {
			user.Groups = groupKeys
		}
		profile, err := user.Profile.Merge(in, ws.AllowedProps)
		if err != nil {
			wg.Wait()
			return nil, err
		}
		user.Username, user.Profile, user.LastSeenAt, user.InputDigest = in.Username, profile, now, digest
		if user.FirstSeenAt.IsZero() {
			user.FirstSeenAt = now
		}
		err = s.store.PutUserMemberships(ctx, ws, user, before, call.RequestID, now)
		if err == nil {
			break
		}
		if !errors.Is(err, waymark.ErrConflict) {
			wg.Wait()
			return nil, err
		}
		// A conflict is either another writer or our own earlier attempt,
		// applied but unanswered, that the SDK retried.
		if mine, err := s.store.UserWrittenBy(ctx, userKey, call.RequestID); err != nil {
			wg.Wait()
			return nil, err
		} else if mine {
			break
		}
		// Another writer won the item: record the input beside it rather
		// than read and race again (dynamo.RecordPendingInput). The item
		// may not take it; then the race goes on. An input that names the
		// user's groups races on: its memberships are written with the
		// user item (PutUserMemberships), which a pending input is not.
		if !named {
			if err := s.store.RecordPendingInput(ctx, ws, userKey, in, call.RequestID, now); err == nil {
				break
			} else if !errors.Is(err, waymark.ErrConflict) {
				wg.Wait()
				return nil, err
			}
		}
		if attempt >= s.opts.MaxAttempts {
			wg.Wait()
			return nil, waymark.ErrUnavailable("too much contention on this user")
		}
		backoff(ctx, attempt)
		user, userErr = s.store.GetUser(ctx, ws, userKey)
	}
	wg.Wait()
	if err := firstAppError([]error{refreshErr, groupsErr}); err != nil {
		return nil, err
	}
	return &IdentifyResult{
		User:    UserSeen{FirstSeenAt: waymark.FormatTime(user.FirstSeenAt), LastSeenAt: waymark.FormatTime(user.LastSeenAt)},
		State:   waymark.StateOf(items),
		Ignored: waymark.IgnoredProps(in.Props, ws.AllowedProps),
	}, nil
}

// forgetExpired empties items past their retention: DynamoDB's time to live
// removes them only later, and until then they must not count.
func forgetExpired(items []*waymark.ContentItem, now time.Time) []*waymark.ContentItem {
	for _, c := range items {
		if c.Expired(now) {
			c.Forget()
		}
	}
	return items
}

// retentionSlack is how stale an item's expiry may get before activity
// refreshes it: at most one refresh write per item and day.
const retentionSlack = 24 * 60 * 60

// refreshRetention moves the expiry of a user's content items that this
// call does not write, so that the data of an active user does not expire
// while the user is active, and a workspace's new retention reaches old items.
func (s *Service) refreshRetention(ctx context.Context, ws *waymark.Workspace, userKey string, items []*waymark.ContentItem, written map[waymark.ContentKey]bool, now time.Time) error {
	want := ws.ExpiresAt(now)
	errs := make([]error, len(items))
	var wg sync.WaitGroup
	for i, c := range items {
		stale := want == 0 && c.ExpiresAt != 0 || want > 0 && c.ExpiresAt < want-retentionSlack
		if !stale || written[c.Key] || c.UpdatedAt.IsZero() {
			continue
		}
		spawn(&wg, &errs[i], func() error { return s.store.SetContentExpiry(ctx, userKey, c.Key, want) })
	}
	wg.Wait()
	return firstAppError(errs)
}

// StateResult is the answer to state.
type StateResult struct {
	State waymark.State `json:"state"`
}

// State returns the user's state with one Query; a user never seen gets an
// empty state and nothing is written.
func (s *Service) State(ctx context.Context, call Call, req *waymark.StateRequest) (*StateResult, error) {
	if err := req.Validate(); err != nil {
		return nil, err
	}
	ws, err := s.authorize(ctx, call, req.Workspace, req.Username, req.HMAC)
	if err != nil {
		return nil, err
	}
	items, err := s.store.LoadState(ctx, ws.UserKey(req.Username), false)
	if err != nil {
		return nil, err
	}
	return &StateResult{State: waymark.StateOf(forgetExpired(items, s.opts.Now()))}, nil
}

// FeedbackResult is the answer to feedback.
type FeedbackResult struct {
	ID        string `json:"id"`
	CreatedAt string `json:"createdAt"`
}

// SubmitFeedback stores a feedback message and records the user as seen.
// Everything is sealed before anything is written, so an unreachable KMS
// stores nothing.
func (s *Service) SubmitFeedback(ctx context.Context, call Call, req *waymark.FeedbackRequest) (*FeedbackResult, error) {
	if err := req.Validate(); err != nil {
		return nil, err
	}
	ws, err := s.authorize(ctx, call, req.Workspace, req.Username, req.HMAC)
	if err != nil {
		return nil, err
	}
	now := s.opts.Now().UTC()
	userKey := ws.UserKey(req.Username)
	fb := &waymark.Feedback{
		ID: waymark.NewID(), UserKey: userKey, Username: req.Username, Text: req.Text, Rating: req.Rating,
		Category: req.CategoryText(), Environment: req.Environment, CreatedAt: now,
	}
	var uploaded []string
	if fb.Attachments, uploaded, err = s.attach(ctx, userKey, req.Attachments, now); err != nil {
		return nil, err
	}
	sealedName, err := s.store.SealUsername(ctx, ws, userKey, req.Username)
	if err != nil {
		return nil, err
	}
	write, err := s.store.PrepareFeedback(ctx, ws, fb)
	if err != nil {
		return nil, err
	}
	if err := s.promote(ctx, userKey, uploaded); err != nil {
		return nil, err
	}
	var putErr, touchErr error
	var wg sync.WaitGroup
	spawn(&wg, &putErr, func() error { return s.store.PutFeedback(ctx, write) })
	spawn(&wg, &touchErr, func() error { return s.store.TouchUser(ctx, ws, sealedName, now) })
	wg.Wait()
	if err := errors.Join(putErr, touchErr); err != nil {
		return nil, err
	}
	s.releaseUploads(ctx, userKey, uploaded)
	return &FeedbackResult{ID: fb.ID, CreatedAt: waymark.FormatTime(now)}, nil
}

// backoff waits a random time up to an exponentially growing cap (2 ms,
// 4 ms, ... at most 100 ms): full jitter spreads racing writers so that one
// of them wins each round.
func backoff(ctx context.Context, attempt int) {
	ceiling := min(100*time.Millisecond, time.Millisecond<<min(attempt, 7))
	d := time.Millisecond + rand.N(ceiling)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

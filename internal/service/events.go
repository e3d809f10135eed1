package service

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/waymarkhq/waymark/internal/waymark"
)

// EventsResult is the answer to events.
type EventsResult struct {
	Accepted   int           `json:"accepted"`
	Duplicates int           `json:"duplicates"`
	State      waymark.State `json:"state"`
}

// RecordEvents applies a batch of events exactly once each. The batch is
// validated whole before anything is written. Events are grouped by content
// item; each item is one conditional write carrying the fingerprints of the
// events it applied, so a repeated event id (a client retry, an SDK retry, a
// duplicate in the batch) is recognised and counted once. Round trips: the
// user's state is read (consistently) while the user is recorded as seen,
// then the changed items are written in parallel. A writer that loses the
// race for an item records its events beside it instead (applyGroup).
func (s *Service) RecordEvents(ctx context.Context, call Call, req *waymark.EventsRequest) (*EventsResult, error) {
	events, err := req.Validate(s.opts.Now())
	if err != nil {
		return nil, err
	}
	ws, err := s.authorize(ctx, call, req.Workspace, req.Username, req.HMAC)
	if err != nil {
		return nil, err
	}
	userKey := ws.UserKey(req.Username)
	// Sealing first: with KMS unreachable and no cached key the call fails
	// here, before it writes anything.
	sealedName, err := s.store.SealUsername(ctx, ws, userKey, req.Username)
	if err != nil {
		return nil, err
	}
	now := s.opts.Now().UTC()
	var (
		items             []*waymark.ContentItem
		loadErr, touchErr error
		wg                sync.WaitGroup
	)
	spawn(&wg, &loadErr, func() (err error) {
		items, err = s.store.LoadState(ctx, userKey, true)
		return err
	})
	spawn(&wg, &touchErr, func() error { return s.store.TouchUser(ctx, ws, sealedName, now) })
	wg.Wait()
	if err := errors.Join(loadErr, touchErr); err != nil {
		return nil, err
	}

	items = forgetExpired(items, now)
	byKey := make(map[waymark.ContentKey]*waymark.ContentItem, len(items))
	for _, c := range items {
		byKey[c.Key] = c
	}
	var order []waymark.ContentKey
	groups := map[waymark.ContentKey][]waymark.Event{}
	for _, ev := range events {
		k := ev.Key()
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], ev)
	}

	results := make([]groupResult, len(order))
	errs := make([]error, len(order)+1)
	for i, k := range order {
		spawn(&wg, &errs[i], func() error {
			results[i] = s.applyGroup(ctx, call, ws, userKey, byKey[k], k, groups[k], now)
			return results[i].err
		})
	}
	written := make(map[waymark.ContentKey]bool, len(groups))
	for k := range groups {
		written[k] = true
	}
	spawn(&wg, &errs[len(order)], func() error { return s.refreshRetention(ctx, ws, userKey, items, written, now) })
	wg.Wait()
	if err := firstAppError(errs); err != nil {
		// Items written before the failure keep their events; a retry of
		// the batch with the same ids completes it without counting twice.
		return nil, err
	}

	accepted := 0
	for _, r := range results {
		accepted += r.applied
		byKey[r.item.Key] = r.item
	}
	all := make([]*waymark.ContentItem, 0, len(byKey))
	for _, c := range byKey {
		all = append(all, c)
	}
	return &EventsResult{Accepted: accepted, Duplicates: len(events) - accepted, State: waymark.StateOf(all)}, nil
}

type groupResult struct {
	item    *waymark.ContentItem
	applied int
	err     error
}

// applyGroup applies one content item's events and writes the item over the
// version it was read at, folding in the events pending on it. A writer that
// loses the race re-reads the item and records its events on it as pending
// events (dynamo.RecordPending), which no other writer's write can fail: so
// parallel writers on one item all get their answer in a bounded number of
// round trips instead of retrying against each other. Survey answers, sealed
// with the item, are never pending: a group carrying one re-applies and
// rewrites the item, up to MaxAttempts times, and so does a group for an
// item that cannot take pending events (expired, or older than them).
func (s *Service) applyGroup(ctx context.Context, call Call, ws *waymark.Workspace, userKey string, stored *waymark.ContentItem, key waymark.ContentKey, events []waymark.Event, now time.Time) groupResult {
	item := stored
	for attempt := 1; ; attempt++ {
		next := cloneItem(item, key)
		answerBefore := next.AnswerMark
		var applies []waymark.Fingerprint
		for _, ev := range events {
			if next.Apply(ev, now) {
				applies = append(applies, waymark.FingerprintOf(ev.ID))
			}
		}
		if len(applies) == 0 {
			return groupResult{item: next}
		}
		if len(next.Pending) == 0 {
			// Forgetting fingerprints makes the write conditional on every
			// one the item holds, which any pending event changes: it
			// waits for a write with no race going on.
			next.Prune(now)
		}
		write, err := s.store.PrepareContent(ctx, ws, userKey, next, applies, next.AnswerMark != answerBefore)
		if err != nil {
			return groupResult{err: err}
		}
		readVersion := next.Version
		err = s.store.PutContent(ctx, ws, userKey, write, call.RequestID, now)
		if err == nil {
			return groupResult{item: next, applied: len(applies)}
		}
		if !errors.Is(err, waymark.ErrConflict) {
			return groupResult{err: err}
		}
		fresh, writer, err := s.store.GetContent(ctx, userKey, key)
		switch {
		case errors.Is(err, waymark.ErrNotFound):
			fresh = nil
		case err != nil:
			return groupResult{err: err}
		case writer == call.RequestID && fresh.Version == readVersion+1:
			// Our own write was applied and its answer lost: the SDK's
			// retry then failed the condition.
			return groupResult{item: fresh, applied: len(applies)}
		case fresh.Expired(now):
			fresh.Forget()
		}
		if !carriesAnswer(events) {
			if r := s.recordPending(ctx, call, ws, userKey, fresh, key, events, now); !errors.Is(r.err, waymark.ErrConflict) {
				return r
			}
		}
		if attempt >= s.opts.MaxAttempts {
			return groupResult{err: waymark.ErrUnavailable("too much contention on this content item")}
		}
		backoff(ctx, attempt)
		item = fresh
	}
}

// recordPending records, as pending events on the content item, the events
// of a group that the item as just read does not hold, all at once. Its
// error is waymark.ErrConflict when the item takes no pending event.
func (s *Service) recordPending(ctx context.Context, call Call, ws *waymark.Workspace, userKey string, fresh *waymark.ContentItem, key waymark.ContentKey, events []waymark.Event, now time.Time) groupResult {
	next := cloneItem(fresh, key)
	var unseen []waymark.Event
	for _, ev := range events {
		// Apply also drops a repeat within the batch.
		if next.Apply(ev, now) {
			unseen = append(unseen, ev)
		}
	}
	recorded := make([]bool, len(unseen))
	errs := make([]error, len(unseen))
	var wg sync.WaitGroup
	for i, ev := range unseen {
		spawn(&wg, &errs[i], func() (err error) {
			recorded[i], err = s.store.RecordPending(ctx, ws, userKey, ev, call.RequestID, now)
			return err
		})
	}
	wg.Wait()
	if err := firstAppError(errs); err != nil {
		return groupResult{err: err}
	}
	applied := 0
	for _, ok := range recorded {
		if ok {
			applied++
		}
	}
	return groupResult{item: next, applied: applied}
}

func carriesAnswer(events []waymark.Event) bool {
	for _, ev := range events {
		if ev.Answer != nil {
			return true
		}
	}
	return false
}

// cloneItem copies a content item so that a failed attempt leaves the read
// version untouched; a nil item is a content item the user never touched.
func cloneItem(c *waymark.ContentItem, key waymark.ContentKey) *waymark.ContentItem {
	if c == nil {
		return &waymark.ContentItem{Key: key}
	}
	out := *c
	out.Seen = append([]waymark.Seen(nil), c.Seen...)
	if c.Items != nil {
		out.Items = make(map[string]bool, len(c.Items))
		for k, v := range c.Items {
			out.Items[k] = v
		}
	}
	return &out
}

// firstAppError returns one of errs (nil when all are), preferring an
// application error (throttled, unavailable) so that the caller gets its
// status and Retry-After.
func firstAppError(errs []error) error {
	var first error
	for _, err := range errs {
		var e *waymark.Error
		if errors.As(err, &e) {
			return err
		}
		if first == nil {
			first = err
		}
	}
	return first
}

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
// then the changed items are written in parallel.
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
	wg.Go(func() { items, loadErr = s.store.LoadState(ctx, userKey, true) })
	wg.Go(func() { touchErr = s.store.TouchUser(ctx, ws, sealedName, now) })
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
	for i, k := range order {
		wg.Go(func() { results[i] = s.applyGroup(ctx, call, ws, userKey, byKey[k], k, groups[k], now) })
	}
	var refreshErr error
	written := make(map[waymark.ContentKey]bool, len(groups))
	for k := range groups {
		written[k] = true
	}
	wg.Go(func() { refreshErr = s.refreshRetention(ctx, ws, userKey, items, written, now) })
	wg.Wait()
	if refreshErr != nil {
		return nil, refreshErr
	}

	accepted := 0
	var errs []error
	for _, r := range results {
		if r.err != nil {
			errs = append(errs, r.err)
			continue
		}
		accepted += r.applied
		byKey[r.item.Key] = r.item
	}
	if err := errors.Join(errs...); err != nil {
		// Items written before the failure keep their events; a retry of
		// the batch with the same ids completes it without counting twice.
		return nil, firstAppError(errs)
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
// version it was read at, re-reading and re-applying on a conflict.
func (s *Service) applyGroup(ctx context.Context, call Call, ws *waymark.Workspace, userKey string, stored *waymark.ContentItem, key waymark.ContentKey, events []waymark.Event, now time.Time) groupResult {
	item := stored
	for attempt := 1; ; attempt++ {
		next := cloneItem(item, key)
		answerBefore := next.AnswerMark
		applied := 0
		for _, ev := range events {
			if next.Apply(ev, now) {
				applied++
			}
		}
		if applied == 0 {
			return groupResult{item: next}
		}
		next.Prune(now)
		write, err := s.store.PrepareContent(ctx, ws, userKey, next, next.AnswerMark != answerBefore)
		if err != nil {
			return groupResult{err: err}
		}
		readVersion := next.Version
		err = s.store.PutContent(ctx, ws, userKey, write, call.RequestID, now)
		if err == nil {
			return groupResult{item: next, applied: applied}
		}
		if !errors.Is(err, waymark.ErrConflict) {
			return groupResult{err: err}
		}
		fresh, writer, err := s.store.GetContent(ctx, userKey, key)
		switch {
		case errors.Is(err, waymark.ErrNotFound):
			fresh = nil
		case fresh.Expired(now):
			fresh.Forget()
		case err != nil:
			return groupResult{err: err}
		case writer == call.RequestID && fresh.Version == readVersion+1:
			// Our own write was applied and its answer lost: the SDK's
			// retry then failed the condition.
			return groupResult{item: fresh, applied: applied}
		}
		if attempt >= s.opts.MaxAttempts {
			return groupResult{err: waymark.ErrUnavailable("too much contention on this content item")}
		}
		backoff(ctx, attempt)
		item = fresh
	}
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

// firstAppError prefers an application error (throttled, unavailable) so the
// caller gets its status and Retry-After.
func firstAppError(errs []error) error {
	for _, err := range errs {
		var e *waymark.Error
		if errors.As(err, &e) {
			return err
		}
	}
	return errs[0]
}

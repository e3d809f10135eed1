package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/waymarkhq/waymark/internal/dynamo"
	"github.com/waymarkhq/waymark/internal/waymark"
)

// Delivery is one feedback on its way to a workspace's webhook: what the
// queue carries. It names the feedback item rather than holding its text,
// so the queue holds no personal data and an erased feedback is not sent.
type Delivery struct {
	ID         string `json:"id"`
	Workspace  string `json:"workspace"`
	FeedbackPK string `json:"fpk"`
	FeedbackSK string `json:"fsk"`
	// Queued is when the delivery was first queued: the retry window
	// counts from it.
	Queued time.Time `json:"queued"`
}

// DeliveryID is the delivery id of a feedback: derived from the feedback id,
// so a stream record seen twice makes the same delivery, which a receiver
// that remembers ids takes once.
func DeliveryID(feedbackID string) string { return "dlv_" + feedbackID }

// Store is what the deliverer reads and writes.
type Store interface {
	GetWebhook(ctx context.Context, code string) (*waymark.Webhook, error)
	GetFeedback(ctx context.Context, workspace, pk, sk string) (*waymark.Feedback, error)
	ParkDelivery(ctx context.Context, p dynamo.ParkedDelivery) error
}

var _ Store = (*dynamo.Store)(nil)

// Result is what became of an attempt.
type Result int

const (
	// Delivered: the receiver answered 2xx.
	Delivered Result = iota
	// Retry: the attempt failed; try again after Outcome.RetryAfter.
	Retry
	// Parked: the attempt failed at the end of the retry window; the
	// delivery is recorded for the operator and leaves the queue.
	Parked
	// Dropped: nothing to deliver (no webhook any more, feedback erased).
	Dropped
)

func (r Result) String() string {
	return [...]string{"delivered", "retry", "parked", "dropped"}[r]
}

// Outcome is the result of one attempt.
type Outcome struct {
	Result     Result
	RetryAfter time.Duration
	// Status is the receiver's HTTP status, 0 if none came.
	Status int
	// Reason says why an attempt failed: a status or an error class, never
	// a body, a URL or feedback content.
	Reason string
}

// Deliverer makes attempts.
type Deliverer struct {
	Store    Store
	Policy   Policy
	Schedule Schedule
	Now      func() time.Time
	Log      *slog.Logger
	client   *http.Client
}

// NewDeliverer builds a deliverer with the policy's HTTP client.
func NewDeliverer(store Store, policy Policy, log *slog.Logger) *Deliverer {
	return &Deliverer{Store: store, Policy: policy, Schedule: DefaultSchedule, Now: time.Now, Log: log, client: policy.Client()}
}

// Attempt makes the attempt-th (1-based) attempt of a delivery and says
// what the queue should do next. It fails only when not even a retry can be
// scheduled (the parking write failed): the queue then retries on its own.
func (d *Deliverer) Attempt(ctx context.Context, dl Delivery, attempt int) (Outcome, error) {
	out := d.try(ctx, dl)
	if out.Result == Retry {
		if d.Now().Sub(dl.Queued) >= d.Schedule.Window {
			err := d.Store.ParkDelivery(ctx, dynamo.ParkedDelivery{
				ID: dl.ID, Workspace: dl.Workspace, FeedbackPK: dl.FeedbackPK, FeedbackSK: dl.FeedbackSK,
				FirstAt: dl.Queued, ParkedAt: d.Now(), Attempts: attempt, LastError: out.Reason,
			})
			if err != nil {
				return out, fmt.Errorf("webhook: park %s: %w", dl.ID, err)
			}
			out.Result = Parked
		} else {
			out.RetryAfter = d.Schedule.Delay(attempt)
		}
	}
	// The dev console and the functions' logs show every attempt: ids,
	// status and attempt number only.
	d.Log.Info("webhook delivery", slog.String("delivery", dl.ID), slog.String("workspace", dl.Workspace),
		slog.Int("attempt", attempt), slog.String("result", out.Result.String()), slog.Int("status", out.Status),
		slog.String("reason", out.Reason), slog.Duration("retryAfter", out.RetryAfter))
	return out, nil
}

func (d *Deliverer) try(ctx context.Context, dl Delivery) Outcome {
	hook, err := d.Store.GetWebhook(ctx, dl.Workspace)
	if err != nil {
		return Outcome{Result: Retry, Reason: "reading the webhook failed"}
	}
	if hook == nil {
		return Outcome{Result: Dropped, Reason: "no webhook"}
	}
	fb, err := d.Store.GetFeedback(ctx, dl.Workspace, dl.FeedbackPK, dl.FeedbackSK)
	if errors.Is(err, waymark.ErrNotFound) {
		return Outcome{Result: Dropped, Reason: "feedback gone"}
	}
	if err != nil {
		return Outcome{Result: Retry, Reason: "reading the feedback failed"}
	}
	body, err := Body(hook.Format, dl.ID, dl.Workspace, fb)
	if err != nil {
		return Outcome{Result: Retry, Reason: "rendering failed"}
	}
	if err := d.Policy.CheckURL(hook.URL); err != nil {
		return Outcome{Result: Retry, Reason: "url refused"}
	}
	return d.post(ctx, hook, dl.ID, body)
}

func (d *Deliverer) post(ctx context.Context, hook *waymark.Webhook, id string, body []byte) Outcome {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, hook.URL, bytes.NewReader(body))
	if err != nil {
		return Outcome{Result: Retry, Reason: "url refused"}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Waymark-Webhook/1")
	req.Header.Set(HeaderDelivery, id)
	req.Header.Set(HeaderSignature, Sign(hook.Secret, d.Now(), body))
	resp, err := d.client.Do(req)
	if err != nil {
		reason := "connection failed"
		switch {
		case errors.Is(err, ErrRefusedAddress):
			reason = "address refused"
		case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
			reason = "timeout"
		}
		return Outcome{Result: Retry, Reason: reason}
	}
	// Read a little of the answer so the connection can be reused; its
	// content is of no interest.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return Outcome{Result: Delivered, Status: resp.StatusCode}
	}
	return Outcome{Result: Retry, Status: resp.StatusCode, Reason: fmt.Sprintf("status %d", resp.StatusCode)}
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

package apigw

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/waymarkhq/waymark/internal/waymark"
)

func TestWithinDeadline(t *testing.T) {
	t.Run("done in time", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		got, err := withinDeadline(ctx, func(context.Context) (any, error) { return "answer", nil })
		if got != "answer" || err != nil {
			t.Fatalf("%v %v", got, err)
		}
	})
	t.Run("deaf to cancellation", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), deadlineMargin+200*time.Millisecond)
		defer cancel()
		release := make(chan struct{})
		defer close(release)
		_, err := withinDeadline(ctx, func(context.Context) (any, error) {
			<-release
			return "too late", nil
		})
		if waymark.ErrorCode(err) != waymark.EUnavailable || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("%v", err)
		}
		if left := time.Until(mustDeadline(t, ctx)); left < deadlineMargin/2 {
			t.Fatalf("answered %v before the deadline, want about %v", left, deadlineMargin)
		}
	})
	t.Run("failed for lack of time", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), deadlineMargin+10*time.Millisecond)
		defer cancel()
		_, err := withinDeadline(ctx, func(ctx context.Context) (any, error) {
			<-ctx.Done()
			return nil, errors.New("a call cut short")
		})
		if waymark.ErrorCode(err) != waymark.EUnavailable {
			t.Fatalf("%v", err)
		}
	})
	t.Run("panic reaches the caller", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		defer func() {
			if p := recover(); p != "boom" {
				t.Fatalf("recovered %v", p)
			}
		}()
		withinDeadline(ctx, func(context.Context) (any, error) { panic("boom") })
		t.Fatal("no panic")
	})
}

func mustDeadline(t *testing.T, ctx context.Context) time.Time {
	d, ok := ctx.Deadline()
	if !ok {
		t.Fatal("no deadline")
	}
	return d
}

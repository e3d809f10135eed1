package apigw

import (
	"context"
	"fmt"
	"time"

	"github.com/waymarkhq/waymark/internal/waymark"
)

// deadlineMargin is the time kept before the function's deadline to send the
// answer: the runtime must still serialize it and post it to Lambda, on a
// 128 MB function's fraction of a CPU. A request whose work is not done by
// then is answered 503 unavailable with Retry-After, Waymark's own error,
// instead of the platform's timeout.
const deadlineMargin = time.Second

// withinDeadline does a request's work so that its answer comes before the
// deadline of ctx (Lambda's, and the local gateway's, which is the same):
// the work gets a context that ends deadlineMargin earlier, and the answer
// is given when that context ends even if the work has not returned, since a
// call that does not heed cancellation (a connection stuck in a read) would
// otherwise hold the answer past the function's timeout. The work left
// behind sees its context cancelled; what it wrote stays written, as after
// any 503 (README.md, "Errors"). Without a deadline (a test calling the
// handler directly) the work runs as it is.
func withinDeadline(ctx context.Context, work func(context.Context) (any, error)) (any, error) {
	deadline, ok := ctx.Deadline()
	if !ok {
		return work(ctx)
	}
	ctx, cancel := context.WithDeadline(ctx, deadline.Add(-deadlineMargin))
	defer cancel()
	type outcome struct {
		result   any
		err      error
		panicked any
	}
	done := make(chan outcome, 1)
	go func() {
		var o outcome
		defer func() {
			if p := recover(); p != nil {
				o = outcome{panicked: p}
			}
			done <- o
		}()
		o.result, o.err = work(ctx)
	}()
	select {
	case o := <-done:
		if o.panicked != nil {
			// Raised again where it would have been raised without the
			// goroutine, for the handler's own recovery.
			panic(o.panicked)
		}
		return o.result, o.err
	case <-ctx.Done():
		return nil, pastDeadline(ctx.Err())
	}
}

// pastDeadline is the error of a request whose work did not end in time.
func pastDeadline(cause error) error {
	return fmt.Errorf("%w: apigw: no answer %s before the function's deadline: %w",
		waymark.ErrUnavailable("the request did not complete in time"), deadlineMargin, cause)
}

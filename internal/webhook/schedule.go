package webhook

import (
	"math/rand/v2"
	"time"
)

// The retry schedule (docs/webhooks.md): the n-th failed attempt waits
// FirstRetry·2^(n-1), at most MaxRetryDelay, with full jitter in its upper
// half; a delivery whose attempt fails RetryWindow or more after it was
// queued is parked.
const (
	FirstRetry    = 10 * time.Second
	MaxRetryDelay = time.Hour
	RetryWindow   = 24 * time.Hour
)

// Schedule is a retry schedule; the tests shorten it.
type Schedule struct {
	First, Max, Window time.Duration
	// Jitter returns a number in [0, 1); nil is math/rand.
	Jitter func() float64
}

// DefaultSchedule is the deployed and local schedule.
var DefaultSchedule = Schedule{First: FirstRetry, Max: MaxRetryDelay, Window: RetryWindow}

// Delay is how long to wait after the attempt-th failed attempt (1-based).
// Half of it is fixed and half random, so receivers coming back from an
// outage are not hit by every delivery at the same instant.
func (s Schedule) Delay(attempt int) time.Duration {
	d := s.First
	for i := 1; i < attempt && d < s.Max; i++ {
		d *= 2
	}
	d = min(d, s.Max)
	jitter := s.Jitter
	if jitter == nil {
		jitter = rand.Float64
	}
	return d/2 + time.Duration(jitter()*float64(d/2))
}

package waymark

import "time"

// EarliestEventTime is the earliest `at` an event may carry (the Unix epoch).
var EarliestEventTime = time.Unix(0, 0).UTC()

// Documented limits (README "Limits"); every one is enforced by validation
// and covered by a test.
const (
	MaxBodyBytes         = 64 << 10
	MaxUsernameBytes     = 256
	MaxProfileFieldBytes = 256
	MaxProps             = 100
	MaxPropKeyBytes      = 64
	MaxStringValueBytes  = 1024
	MaxArrayItems        = 100
	MaxNesting           = 3
	MaxFeedbackChars     = 10000
	MaxIDChars           = 128
	MaxWorkspaceChars    = 64
	MaxEventsPerBatch    = 25
	MaxRating            = 10
	MaxCategoryChars     = 64
	MaxURLChars          = 2048
	MaxUserAgentChars    = 512
	MaxLanguageChars     = 35
	MaxPlatformChars     = 64
	MaxViewport          = 100000

	// MaxFutureSkew is how far ahead of the server's clock an event's `at`
	// may be; later times are clamped to now + MaxFutureSkew, so a client
	// with a fast clock cannot pin a state for hours.
	MaxFutureSkew = 5 * time.Minute

	// MaxHMACLifetime is how far ahead of the server's clock an identity
	// verification expiration may be: a hash leaked from a page stops
	// working within this time, whatever expiration its server chose.
	MaxHMACLifetime = 7 * 24 * time.Hour

	// IdempotencyWindow is how long an event id is remembered: a repeat of
	// it within this time is reported as a duplicate and changes nothing.
	IdempotencyWindow = 8 * 24 * time.Hour
	// MaxSeenPerItem bounds the event fingerprints one content item keeps
	// (20 bytes each: 12 with the time, 8 in the set the write conditions
	// check), so an item stays small and cheap to write. Past it the
	// oldest are dropped: only more than this many events on one content item
	// of one user within the window shorten that item's memory.
	MaxSeenPerItem = 2048
)

package waymark

import (
	"crypto/sha256"
	"encoding/binary"
	"sort"
	"time"
)

// Kind is a kind of onboarding content.
type Kind string

// Content kinds.
const (
	KindTour         Kind = "tour"
	KindHint         Kind = "hint"
	KindAnnouncement Kind = "announcement"
	KindChecklist    Kind = "checklist"
	KindSurvey       Kind = "survey"
)

// Action is what a user did with a content item.
type Action string

// Actions, by the kinds that accept them (kindActions).
const (
	ActionStarted       Action = "started"
	ActionAdvanced      Action = "advanced"
	ActionFinished      Action = "finished"
	ActionSkipped       Action = "skipped"
	ActionDisplayed     Action = "displayed"
	ActionDismissed     Action = "dismissed"
	ActionRead          Action = "read"
	ActionItemCompleted Action = "item_completed"
	ActionCompleted     Action = "completed"
	ActionAnswered      Action = "answered"
)

var kindActions = map[Kind]map[Action]bool{
	KindTour:         {ActionStarted: true, ActionAdvanced: true, ActionFinished: true, ActionSkipped: true},
	KindHint:         {ActionDisplayed: true, ActionDismissed: true},
	KindAnnouncement: {ActionDisplayed: true, ActionRead: true},
	KindChecklist:    {ActionItemCompleted: true, ActionCompleted: true, ActionDismissed: true},
	KindSurvey:       {ActionDisplayed: true, ActionAnswered: true, ActionDismissed: true},
}

// Statuses as returned in the state.
const (
	TourNotFinished     = "not_finished"
	TourFinished        = "finished"
	TourSkipped         = "skipped"
	ChecklistInProgress = "in_progress"
	ChecklistFinished   = "finished"
	ChecklistDismissed  = "dismissed"
	SurveyDisplayed     = "displayed"
	SurveyAnswered      = "answered"
	SurveyDismissed     = "dismissed"
	ItemDone            = "done"
)

// Event is a validated event, its time already clamped.
type Event struct {
	ID        string
	Kind      Kind
	ContentID string
	Action    Action
	At        time.Time
	Step      string
	Item      string
	Answer    any
}

// ContentKey identifies a content item within a user's state.
type ContentKey struct {
	Kind Kind
	ID   string
}

// Key returns the content item an event is about.
func (e Event) Key() ContentKey { return ContentKey{Kind: e.Kind, ID: e.ContentID} }

// Mark orders events of one content item: by time, then by event id. The
// latest mark wins, whatever order the events arrive in.
type Mark struct {
	At time.Time
	ID string
}

// After reports whether m orders after o.
func (m Mark) After(o Mark) bool {
	if !m.At.Equal(o.At) {
		return m.At.After(o.At)
	}
	return m.ID > o.ID
}

// Fingerprint is a short hash of an event id. Content items remember the
// fingerprints of the events they applied instead of the ids themselves, so
// that an item stays small however long the client's ids are; 64 bits make a
// false duplicate within one item's bounded set negligibly unlikely.
type Fingerprint uint64

// FingerprintOf hashes an event id.
func FingerprintOf(eventID string) Fingerprint {
	sum := sha256.Sum256([]byte(eventID))
	return Fingerprint(binary.BigEndian.Uint64(sum[:8]))
}

// Seen is a remembered event: its fingerprint and when it was applied.
type Seen struct {
	Fingerprint Fingerprint
	AppliedAt   int64 // unix seconds
}

// ContentItem is the state of one content item for one user, with what it
// needs to apply further events in any order and exactly once.
type ContentItem struct {
	Key ContentKey

	// Status and StatusMark: the status set by the latest status-bearing
	// event (tours, checklists, surveys' displayed/dismissed).
	Status     string
	StatusMark Mark
	// Step and StepMark: the step of the latest tour event that carried one.
	Step     string
	StepMark Mark

	Displayed       int
	LastDisplayedAt time.Time
	Dismissed       bool
	Read            bool
	ReadAt          time.Time // earliest read
	Items           map[string]bool
	// Acts and Steps are every action and every tour step the item's events
	// ever carried, whatever the latest status says: content analytics
	// count a user once per action and step from the moment one appears
	// here (internal/waymark/analytics.go).
	Acts  map[Action]bool
	Steps map[string]bool

	// Answer and AnswerMark: the latest survey answer. Answer is personal
	// data and is sealed at rest.
	Answer     any
	AnswerMark Mark

	UpdatedAt time.Time
	Seen      []Seen

	// Pending are the fingerprints of the pending events of the item:
	// events recorded on it by writers that lost the race for it (already
	// applied here), which its next write folds in.
	Pending []Fingerprint
	// Claimed is how many event fingerprints the stored item holds,
	// applied or pending: a write that forgets some is conditional on it.
	Claimed int

	// Version counts writes of the item (optimistic concurrency).
	Version int64
	// ExpiresAt is when the workspace's retention lets the item go (unix
	// seconds, 0 = kept).
	ExpiresAt int64
}

// Expired reports whether the item outlived its retention. DynamoDB's time
// to live deletes such items only some time later, so they are treated as
// gone as soon as they expire.
func (c *ContentItem) Expired(now time.Time) bool {
	return c.ExpiresAt > 0 && c.ExpiresAt < now.Unix()
}

// Forget empties an expired item, keeping only what a write over it needs.
func (c *ContentItem) Forget() {
	*c = ContentItem{Key: c.Key, Version: c.Version, Pending: c.Pending, Claimed: c.Claimed}
}

// HasSeen reports whether an event id was already applied.
func (c *ContentItem) HasSeen(fp Fingerprint) bool {
	for _, s := range c.Seen {
		if s.Fingerprint == fp {
			return true
		}
	}
	return false
}

// Apply applies one event that the item has not seen, as of now (the server
// time, which dates its fingerprint). It reports false, changing nothing,
// for an event already seen.
func (c *ContentItem) Apply(e Event, now time.Time) bool {
	fp := FingerprintOf(e.ID)
	if c.HasSeen(fp) {
		return false
	}
	c.Seen = append(c.Seen, Seen{Fingerprint: fp, AppliedAt: now.Unix()})
	mark := Mark{At: e.At, ID: e.ID}
	if c.Acts == nil {
		c.Acts = map[Action]bool{}
	}
	c.Acts[e.Action] = true
	if e.Step != "" {
		if c.Steps == nil {
			c.Steps = map[string]bool{}
		}
		c.Steps[e.Step] = true
	}
	if e.At.After(c.UpdatedAt) {
		c.UpdatedAt = e.At
	}
	setStatus := func(status string) {
		if mark.After(c.StatusMark) {
			c.Status, c.StatusMark = status, mark
		}
	}
	switch e.Action {
	case ActionStarted, ActionAdvanced:
		setStatus(TourNotFinished)
	case ActionFinished:
		setStatus(TourFinished)
	case ActionSkipped:
		setStatus(TourSkipped)
	case ActionDisplayed:
		c.Displayed++
		if e.At.After(c.LastDisplayedAt) {
			c.LastDisplayedAt = e.At
		}
		if e.Kind == KindSurvey {
			setStatus(SurveyDisplayed)
		}
	case ActionDismissed:
		switch e.Kind {
		case KindHint:
			c.Dismissed = true
		case KindChecklist:
			setStatus(ChecklistDismissed)
		case KindSurvey:
			setStatus(SurveyDismissed)
		}
	case ActionRead:
		if !c.Read || e.At.Before(c.ReadAt) {
			c.ReadAt = e.At
		}
		c.Read = true
	case ActionItemCompleted:
		if c.Items == nil {
			c.Items = map[string]bool{}
		}
		c.Items[e.Item] = true
	case ActionCompleted:
		setStatus(ChecklistFinished)
	case ActionAnswered:
		if mark.After(c.AnswerMark) {
			c.Answer, c.AnswerMark = e.Answer, mark
		}
	}
	if e.Step != "" && mark.After(c.StepMark) {
		c.Step, c.StepMark = e.Step, mark
	}
	return true
}

// Prune forgets fingerprints older than the idempotency window and, past
// MaxSeenPerItem, the oldest ones.
func (c *ContentItem) Prune(now time.Time) {
	cutoff := now.Add(-IdempotencyWindow).Unix()
	kept := c.Seen[:0]
	for _, s := range c.Seen {
		if s.AppliedAt >= cutoff {
			kept = append(kept, s)
		}
	}
	if len(kept) > MaxSeenPerItem {
		sort.SliceStable(kept, func(i, j int) bool { return kept[i].AppliedAt < kept[j].AppliedAt })
		kept = kept[len(kept)-MaxSeenPerItem:]
	}
	c.Seen = kept
}

// TourState is a tour as returned in the state.
type TourState struct {
	Status    string `json:"status"`
	Step      string `json:"step,omitempty"`
	UpdatedAt string `json:"updatedAt"`
}

// HintState is a hint as returned in the state.
type HintState struct {
	Displayed       int    `json:"displayed"`
	Dismissed       bool   `json:"dismissed"`
	LastDisplayedAt string `json:"lastDisplayedAt,omitempty"`
	UpdatedAt       string `json:"updatedAt"`
}

// AnnouncementState is an announcement as returned in the state.
type AnnouncementState struct {
	Displayed       int    `json:"displayed"`
	Read            bool   `json:"read"`
	ReadAt          string `json:"readAt,omitempty"`
	LastDisplayedAt string `json:"lastDisplayedAt,omitempty"`
	UpdatedAt       string `json:"updatedAt"`
}

// ChecklistState is a checklist as returned in the state.
type ChecklistState struct {
	Status    string            `json:"status"`
	Items     map[string]string `json:"items"`
	UpdatedAt string            `json:"updatedAt"`
}

// SurveyState is a survey as returned in the state. The answer itself is not
// returned: state reads need no decryption.
type SurveyState struct {
	Status     string `json:"status"`
	AnsweredAt string `json:"answeredAt,omitempty"`
	UpdatedAt  string `json:"updatedAt"`
}

// State is a user's state of onboarding content, as returned by the API.
type State struct {
	Tours         map[string]TourState         `json:"tours"`
	Hints         map[string]HintState         `json:"hints"`
	Announcements map[string]AnnouncementState `json:"announcements"`
	Checklists    map[string]ChecklistState    `json:"checklists"`
	Surveys       map[string]SurveyState       `json:"surveys"`
}

// NewState returns an empty state: every kind present, none touched.
func NewState() State {
	return State{
		Tours:         map[string]TourState{},
		Hints:         map[string]HintState{},
		Announcements: map[string]AnnouncementState{},
		Checklists:    map[string]ChecklistState{},
		Surveys:       map[string]SurveyState{},
	}
}

// StateOf builds the returned state from a user's content items.
func StateOf(items []*ContentItem) State {
	st := NewState()
	for _, c := range items {
		st.add(c)
	}
	return st
}

func (st State) add(c *ContentItem) {
	if c.UpdatedAt.IsZero() {
		// A forgotten (expired) item: nothing to show.
		return
	}
	updated := formatTime(c.UpdatedAt)
	switch c.Key.Kind {
	case KindTour:
		st.Tours[c.Key.ID] = TourState{Status: c.Status, Step: c.Step, UpdatedAt: updated}
	case KindHint:
		st.Hints[c.Key.ID] = HintState{Displayed: c.Displayed, Dismissed: c.Dismissed, LastDisplayedAt: formatTime(c.LastDisplayedAt), UpdatedAt: updated}
	case KindAnnouncement:
		st.Announcements[c.Key.ID] = AnnouncementState{Displayed: c.Displayed, Read: c.Read, ReadAt: formatTime(c.ReadAt), LastDisplayedAt: formatTime(c.LastDisplayedAt), UpdatedAt: updated}
	case KindChecklist:
		status := c.Status
		if status == "" {
			status = ChecklistInProgress
		}
		items := make(map[string]string, len(c.Items))
		for item := range c.Items {
			items[item] = ItemDone
		}
		st.Checklists[c.Key.ID] = ChecklistState{Status: status, Items: items, UpdatedAt: updated}
	case KindSurvey:
		s := SurveyState{Status: c.Status, UpdatedAt: updated}
		if !c.AnswerMark.At.IsZero() {
			s.Status, s.AnsweredAt = SurveyAnswered, formatTime(c.AnswerMark.At)
		}
		st.Surveys[c.Key.ID] = s
	}
}

// formatTime renders a time as RFC 3339 in UTC, or "" for the zero time.
func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// FormatTime renders a time the way the API returns times.
func FormatTime(t time.Time) string { return formatTime(t) }

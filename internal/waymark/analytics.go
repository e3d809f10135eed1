package waymark

import (
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Content analytics: per content item, how many users did each action, from
// the transitions of their content-state items. A user counts once for an
// action when the action first appears among the item's Acts, once for a
// tour step when it first appears among its Steps, once for a checklist item
// when it is first done; retried and duplicate events never reach a
// transition, because the state applies an event once. The counters hold no
// personal data: counts, content ids, steps, items and scalar survey
// answers only.

// CountedActions are the actions counted as distinct users, in the order
// they are shown.
var CountedActions = []Action{
	ActionStarted, ActionDisplayed, ActionItemCompleted, ActionRead, ActionAnswered,
	ActionFinished, ActionCompleted, ActionSkipped, ActionDismissed,
}

// Counter names besides the actions themselves.
const (
	CounterDisplays     = "displays"
	counterStepPrefix   = "step:"
	counterItemPrefix   = "item:"
	counterAnswerPrefix = "answer:"
)

// Counts are counter increments (or totals) by counter name.
type Counts map[string]int64

// Add adds o to c.
func (c Counts) Add(o Counts) {
	for k, v := range o {
		c[k] += v
	}
}

// MaxChoiceChars bounds a survey answer counted as a choice.
const MaxChoiceChars = 32

// choicePattern is what a choice looks like: an identifier, no spaces. A
// string answer of any other shape is free text and is never counted.
var choicePattern = regexp.MustCompile(`^[A-Za-z0-9_.:-]{1,32}$`)

// AnswerKey is how a survey answer is counted: a boolean, a finite number
// or a choice (1–32 letters, digits, '_', '.', ':' or '-'). Anything else
// (free text, arrays, nothing) is not counted.
func AnswerKey(answer any) (string, bool) {
	switch v := answer.(type) {
	case bool:
		return strconv.FormatBool(v), true
	case float64:
		if math.IsInf(v, 0) || math.IsNaN(v) {
			return "", false
		}
		return strconv.FormatFloat(v, 'g', -1, 64), true
	case string:
		if choicePattern.MatchString(v) {
			return v, true
		}
	}
	return "", false
}

// Transition is what one change of a user's content item adds to its
// counters: old is the item before (nil if it did not exist), now after (nil
// if it was deleted: an erasure or an expiry, which takes nothing back).
// oldAnswer and newAnswer are the survey answers the two hold, when they
// are counted (AnswerKey); a changed answer moves the user from one value
// to the other, so that answers count each user's latest answer.
func Transition(old, now *ContentItem, oldAnswer, newAnswer string) Counts {
	counts := Counts{}
	if now == nil {
		return counts
	}
	if old == nil {
		old = &ContentItem{}
	}
	for _, a := range CountedActions {
		if now.Acts[a] && !old.Acts[a] {
			counts[string(a)]++
		}
	}
	for step := range now.Steps {
		if !old.Steps[step] {
			counts[counterStepPrefix+step]++
		}
	}
	for item := range now.Items {
		if !old.Items[item] {
			counts[counterItemPrefix+item]++
		}
	}
	if d := now.Displayed - old.Displayed; d > 0 && (now.Key.Kind == KindHint || now.Key.Kind == KindAnnouncement) {
		counts[CounterDisplays] += int64(d)
	}
	if oldAnswer != newAnswer {
		if oldAnswer != "" {
			counts[counterAnswerPrefix+oldAnswer]--
		}
		if newAnswer != "" {
			counts[counterAnswerPrefix+newAnswer]++
		}
	}
	for k, v := range counts {
		if v == 0 {
			delete(counts, k)
		}
	}
	return counts
}

// DateLayout is how analytics name a day (UTC).
const DateLayout = "2006-01-02"

// AnalyticsDays is how long per-day counters are kept: at least 90 days are
// always reportable.
const AnalyticsDays = 400

// MaxAnalyticsRange bounds the days of one report.
const MaxAnalyticsRange = 366

// DayCounts are the counters of one UTC day.
type DayCounts struct {
	Date   string
	Counts Counts
}

// ContentAnalytics is a content item's report, as the server API returns it.
type ContentAnalytics struct {
	Content   string           `json:"content"`
	ContentID string           `json:"contentId"`
	From      string           `json:"from,omitempty"`
	To        string           `json:"to,omitempty"`
	Totals    map[string]int64 `json:"totals"`
	Steps     map[string]int64 `json:"steps,omitempty"`
	Items     map[string]int64 `json:"items,omitempty"`
	Answers   map[string]int64 `json:"answers,omitempty"`
	NPS       *int             `json:"nps,omitempty"`
	Displays  *int64           `json:"displays,omitempty"`
	Days      []map[string]any `json:"days,omitempty"`
}

// NewContentAnalytics builds a report from all-time counters and the
// counters of the days from..to (missing days are zeros).
func NewContentAnalytics(key ContentKey, totals Counts, days []DayCounts, from, to time.Time) *ContentAnalytics {
	a := &ContentAnalytics{Content: string(key.Kind), ContentID: key.ID, Totals: actionCounts(key.Kind, totals)}
	for name, n := range totals {
		switch {
		case strings.HasPrefix(name, counterStepPrefix):
			a.Steps = setCount(a.Steps, strings.TrimPrefix(name, counterStepPrefix), n)
		case strings.HasPrefix(name, counterItemPrefix):
			a.Items = setCount(a.Items, strings.TrimPrefix(name, counterItemPrefix), n)
		case strings.HasPrefix(name, counterAnswerPrefix):
			if n > 0 {
				a.Answers = setCount(a.Answers, strings.TrimPrefix(name, counterAnswerPrefix), n)
			}
		}
	}
	if key.Kind == KindHint || key.Kind == KindAnnouncement {
		n := totals[CounterDisplays]
		a.Displays = &n
	}
	if key.Kind == KindSurvey {
		a.NPS = NPS(a.Answers)
	}
	if from.IsZero() {
		return a
	}
	a.From, a.To = from.Format(DateLayout), to.Format(DateLayout)
	byDate := map[string]Counts{}
	for _, d := range days {
		byDate[d.Date] = d.Counts
	}
	a.Days = []map[string]any{}
	for d := from; !d.After(to); d = d.AddDate(0, 0, 1) {
		date := d.Format(DateLayout)
		day := map[string]any{"date": date}
		for action, n := range actionCounts(key.Kind, byDate[date]) {
			day[action] = n
		}
		a.Days = append(a.Days, day)
	}
	return a
}

func setCount(m map[string]int64, k string, n int64) map[string]int64 {
	if m == nil {
		m = map[string]int64{}
	}
	m[k] = n
	return m
}

// actionCounts are the counters of the actions a kind accepts, zeros
// included, so every report of a kind has the same keys.
func actionCounts(kind Kind, c Counts) map[string]int64 {
	out := map[string]int64{}
	for _, a := range CountedActions {
		if kindActions[kind][a] {
			out[string(a)] = c[string(a)]
		}
	}
	return out
}

// ActionsOf are the counted actions of a kind, in display order.
func ActionsOf(kind Kind) []string {
	var out []string
	for _, a := range CountedActions {
		if kindActions[kind][a] {
			out = append(out, string(a))
		}
	}
	return out
}

// NPS is the Net Promoter Score of answers that are all whole numbers from
// 0 to 10 (promoters 9–10 minus detractors 0–6, in percent of the answers,
// rounded), or nil when any answer is something else or there is none.
func NPS(answers map[string]int64) *int {
	var total, promoters, detractors int64
	for value, n := range answers {
		score, err := strconv.Atoi(value)
		if err != nil || score < 0 || score > 10 {
			return nil
		}
		total += n
		switch {
		case score >= 9:
			promoters += n
		case score <= 6:
			detractors += n
		}
	}
	if total == 0 {
		return nil
	}
	nps := int(math.Round(float64(100*(promoters-detractors)) / float64(total)))
	return &nps
}

// ContentTotals is one line of the list of a workspace's content items.
type ContentTotals struct {
	Content   string           `json:"content"`
	ContentID string           `json:"contentId"`
	Totals    map[string]int64 `json:"totals"`
	Displays  *int64           `json:"displays,omitempty"`
}

// NewContentTotals builds a line of the list from all-time counters.
func NewContentTotals(key ContentKey, totals Counts) ContentTotals {
	a := NewContentAnalytics(key, totals, nil, time.Time{}, time.Time{})
	return ContentTotals{Content: a.Content, ContentID: a.ContentID, Totals: a.Totals, Displays: a.Displays}
}

// SortContentTotals orders the list by kind, then id.
func SortContentTotals(list []ContentTotals) {
	sort.Slice(list, func(i, j int) bool {
		if list[i].Content != list[j].Content {
			return list[i].Content < list[j].Content
		}
		return list[i].ContentID < list[j].ContentID
	})
}

// ValidKind reports whether k names a content kind.
func ValidKind(k string) bool { _, ok := kindActions[Kind(k)]; return ok }

// ValidateContentID checks a content id given in a query: 1–128 printable
// characters, as in events.
func ValidateContentID(field, id string) error { return validID(field, id) }

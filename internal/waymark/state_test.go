package waymark

import (
	"math/rand/v2"
	"reflect"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func at(sec int) time.Time { return t0.Add(time.Duration(sec) * time.Second) }

func apply(events ...Event) *ContentItem {
	c := &ContentItem{Key: events[0].Key()}
	for _, e := range events {
		c.Apply(e, t0)
	}
	return c
}

func TestTourLatestEventWinsWhateverTheArrivalOrder(t *testing.T) {
	events := []Event{
		{ID: "a", Kind: KindTour, ContentID: "t", Action: ActionStarted, At: at(1)},
		{ID: "b", Kind: KindTour, ContentID: "t", Action: ActionAdvanced, Step: "s2", At: at(2)},
		{ID: "c", Kind: KindTour, ContentID: "t", Action: ActionFinished, Step: "s3", At: at(3)},
		{ID: "d", Kind: KindTour, ContentID: "t", Action: ActionAdvanced, Step: "s1", At: at(1)},
	}
	want := StateOf([]*ContentItem{apply(events...)})
	if got := want.Tours["t"]; got.Status != TourFinished || got.Step != "s3" || got.UpdatedAt != "2026-01-02T03:04:08Z" {
		t.Fatalf("tour = %+v", got)
	}
	for range 20 {
		shuffled := append([]Event(nil), events...)
		rand.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		if got := StateOf([]*ContentItem{apply(shuffled...)}); !reflect.DeepEqual(got, want) {
			t.Fatalf("order %v gave %+v, want %+v", shuffled, got.Tours, want.Tours)
		}
	}
}

func TestTieOnTimeBrokenByID(t *testing.T) {
	finished := Event{ID: "b", Kind: KindTour, ContentID: "t", Action: ActionFinished, At: at(1)}
	skipped := Event{ID: "a", Kind: KindTour, ContentID: "t", Action: ActionSkipped, At: at(1)}
	for _, order := range [][]Event{{finished, skipped}, {skipped, finished}} {
		if got := StateOf([]*ContentItem{apply(order...)}).Tours["t"].Status; got != TourFinished {
			t.Fatalf("status %q, want finished (id b > a)", got)
		}
	}
}

func TestCountersCountEachEventIDOnce(t *testing.T) {
	c := &ContentItem{Key: ContentKey{KindHint, "h"}}
	d := Event{ID: "x", Kind: KindHint, ContentID: "h", Action: ActionDisplayed, At: at(1)}
	if !c.Apply(d, t0) || c.Apply(d, t0) {
		t.Fatal("a repeated event id was applied twice")
	}
	c.Apply(Event{ID: "y", Kind: KindHint, ContentID: "h", Action: ActionDisplayed, At: at(5)}, t0)
	c.Apply(Event{ID: "z", Kind: KindHint, ContentID: "h", Action: ActionDismissed, At: at(3)}, t0)
	got := StateOf([]*ContentItem{c}).Hints["h"]
	if got.Displayed != 2 || !got.Dismissed || got.LastDisplayedAt != "2026-01-02T03:04:10Z" {
		t.Fatalf("hint = %+v", got)
	}
}

func TestAnnouncementChecklistSurvey(t *testing.T) {
	ann := apply(
		Event{ID: "1", Kind: KindAnnouncement, ContentID: "a", Action: ActionDisplayed, At: at(1)},
		Event{ID: "2", Kind: KindAnnouncement, ContentID: "a", Action: ActionRead, At: at(9)},
		Event{ID: "3", Kind: KindAnnouncement, ContentID: "a", Action: ActionRead, At: at(4)},
	)
	if got := StateOf([]*ContentItem{ann}).Announcements["a"]; got.Displayed != 1 || !got.Read || got.ReadAt != "2026-01-02T03:04:09Z" {
		t.Fatalf("announcement = %+v (readAt must be the earliest read)", got)
	}
	cl := apply(
		Event{ID: "1", Kind: KindChecklist, ContentID: "c", Action: ActionItemCompleted, Item: "i1", At: at(1)},
		Event{ID: "2", Kind: KindChecklist, ContentID: "c", Action: ActionItemCompleted, Item: "i2", At: at(2)},
	)
	if got := StateOf([]*ContentItem{cl}).Checklists["c"]; got.Status != ChecklistInProgress || len(got.Items) != 2 || got.Items["i2"] != ItemDone {
		t.Fatalf("checklist = %+v", got)
	}
	cl.Apply(Event{ID: "3", Kind: KindChecklist, ContentID: "c", Action: ActionCompleted, At: at(3)}, t0)
	if got := StateOf([]*ContentItem{cl}).Checklists["c"].Status; got != ChecklistFinished {
		t.Fatalf("checklist status %q", got)
	}
	sv := apply(
		Event{ID: "1", Kind: KindSurvey, ContentID: "s", Action: ActionAnswered, Answer: "yes", At: at(2)},
		Event{ID: "2", Kind: KindSurvey, ContentID: "s", Action: ActionDisplayed, At: at(5)},
	)
	got := StateOf([]*ContentItem{sv}).Surveys["s"]
	if got.Status != SurveyAnswered || got.AnsweredAt != "2026-01-02T03:04:07Z" || sv.Answer != "yes" {
		t.Fatalf("survey = %+v answer %v (an answer stays answered)", got, sv.Answer)
	}
}

func TestPruneForgetsOldAndBoundsSize(t *testing.T) {
	c := &ContentItem{}
	old := t0.Add(-IdempotencyWindow - time.Hour).Unix()
	c.Seen = append(c.Seen, Seen{Fingerprint: 1, AppliedAt: old})
	for i := range MaxSeenPerItem + 10 {
		c.Seen = append(c.Seen, Seen{Fingerprint: Fingerprint(i + 2), AppliedAt: t0.Unix() - int64(MaxSeenPerItem+10-i)})
	}
	c.Prune(t0)
	if len(c.Seen) != MaxSeenPerItem {
		t.Fatalf("kept %d, want %d", len(c.Seen), MaxSeenPerItem)
	}
	if c.HasSeen(1) || c.HasSeen(2) || !c.HasSeen(Fingerprint(MaxSeenPerItem+11)) {
		t.Fatal("prune kept the wrong fingerprints")
	}
}

func TestEmptyStateHasEveryKind(t *testing.T) {
	st := NewState()
	if st.Tours == nil || st.Hints == nil || st.Announcements == nil || st.Checklists == nil || st.Surveys == nil {
		t.Fatal("a kind is missing")
	}
}

package waymark

import (
	"reflect"
	"testing"
	"time"
)

func applied(kind Kind, events ...Event) *ContentItem {
	c := &ContentItem{Key: ContentKey{Kind: kind, ID: "c1"}}
	for _, e := range events {
		e.Kind, e.ContentID = kind, "c1"
		c.Apply(e, time.Unix(1700000000, 0))
	}
	return c
}

func TestTransitionCountsFirstAppearancesOnly(t *testing.T) {
	at := time.Unix(1700000000, 0)
	old := applied(KindTour, Event{ID: "1", Action: ActionFinished, At: at, Step: "s1"})
	// A later restart moves the status back; finished was counted already.
	now := applied(KindTour, Event{ID: "1", Action: ActionFinished, At: at, Step: "s1"},
		Event{ID: "2", Action: ActionStarted, At: at.Add(time.Second), Step: "s2"})
	got := Transition(old, now, "", "")
	want := Counts{"started": 1, "step:s2": 1}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if got := Transition(now, now, "", ""); len(got) != 0 {
		t.Fatalf("an unchanged item counted %v", got)
	}
	if got := Transition(now, nil, "", ""); len(got) != 0 {
		t.Fatalf("a deleted item counted %v", got)
	}
}

func TestTransitionOfAnOutOfOrderStatusStillCountsTheAction(t *testing.T) {
	at := time.Unix(1700000000, 0)
	old := applied(KindTour, Event{ID: "2", Action: ActionSkipped, At: at.Add(time.Minute)})
	now := applied(KindTour, Event{ID: "2", Action: ActionSkipped, At: at.Add(time.Minute)}, Event{ID: "1", Action: ActionFinished, At: at})
	if now.Status != TourSkipped {
		t.Fatalf("status %s", now.Status)
	}
	if got := Transition(old, now, "", ""); !reflect.DeepEqual(got, Counts{"finished": 1}) {
		t.Fatalf("got %v", got)
	}
}

func TestTransitionDisplaysItemsAndAnswers(t *testing.T) {
	at := time.Unix(1700000000, 0)
	hint := applied(KindHint, Event{ID: "1", Action: ActionDisplayed, At: at}, Event{ID: "2", Action: ActionDisplayed, At: at})
	if got := Transition(nil, hint, "", ""); !reflect.DeepEqual(got, Counts{"displayed": 1, "displays": 2}) {
		t.Fatalf("hint: %v", got)
	}
	list := applied(KindChecklist, Event{ID: "1", Action: ActionItemCompleted, At: at, Item: "i1"})
	if got := Transition(nil, list, "", ""); !reflect.DeepEqual(got, Counts{"item_completed": 1, "item:i1": 1}) {
		t.Fatalf("checklist: %v", got)
	}
	survey := applied(KindSurvey, Event{ID: "1", Action: ActionAnswered, At: at, Answer: 9.0})
	if got := Transition(survey, survey, "7", "9"); !reflect.DeepEqual(got, Counts{"answer:7": -1, "answer:9": 1}) {
		t.Fatalf("changed answer: %v", got)
	}
}

func TestAnswerKeyCountsScalarsNeverFreeText(t *testing.T) {
	for answer, want := range map[any]string{true: "true", 9.0: "9", 2.5: "2.5", "very_likely": "very_likely"} {
		if got, ok := AnswerKey(answer); !ok || got != want {
			t.Errorf("AnswerKey(%v) = %q, %v", answer, got, ok)
		}
	}
	for _, answer := range []any{"I love it", "me@example.com", "", "a-choice-id-that-is-longer-than-32", []any{"a"}, nil} {
		if got, ok := AnswerKey(answer); ok {
			t.Errorf("AnswerKey(%v) counted as %q", answer, got)
		}
	}
}

func TestNPS(t *testing.T) {
	// 2 promoters, 1 passive, 1 detractor: (2-1)/4 = 25.
	if got := NPS(map[string]int64{"10": 1, "9": 1, "8": 1, "0": 1}); got == nil || *got != 25 {
		t.Fatalf("NPS = %v", got)
	}
	if got := NPS(map[string]int64{"yes": 1}); got != nil {
		t.Fatalf("NPS of choices = %d", *got)
	}
	if got := NPS(map[string]int64{"11": 1}); got != nil {
		t.Fatalf("NPS of 11 = %d", *got)
	}
}

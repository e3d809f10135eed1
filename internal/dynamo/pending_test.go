package dynamo

import (
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/waymarkhq/waymark/internal/waymark"
)

// An item that only pending events were recorded on (no state, no version
// yet) reads as those events applied, each seen at the time it was
// recorded; an event the item already holds counts once.
func TestPendingEventsAreAppliedOnRead(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	pend, err := attributevalue.Marshal([]pendAttr{
		{ID: "b", Action: "displayed", At: at.Add(time.Second).UnixNano(), AppliedAt: 200, Request: "r2"},
		{ID: "a", Action: "displayed", At: at.UnixNano(), AppliedAt: 100, Request: "r1"},
		{ID: "b", Action: "displayed", At: at.Add(time.Second).UnixNano(), AppliedAt: 300, Request: "r3"},
	})
	if err != nil {
		t.Fatal(err)
	}
	c, err := contentFromItem(map[string]types.AttributeValue{
		attrSK: str("hint#h"),
		"pend": pend,
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.Version != 0 || c.Displayed != 2 || !c.LastDisplayedAt.Equal(at.Add(time.Second)) {
		t.Fatalf("version %d, displayed %d, last displayed %v", c.Version, c.Displayed, c.LastDisplayedAt)
	}
	want := []waymark.Seen{{Fingerprint: waymark.FingerprintOf("a"), AppliedAt: 100}, {Fingerprint: waymark.FingerprintOf("b"), AppliedAt: 200}}
	if len(c.Seen) != 2 || c.Seen[0] != want[0] || c.Seen[1] != want[1] {
		t.Fatalf("seen %v, want %v", c.Seen, want)
	}
	// The next write of the item removes all three entries it read.
	if len(c.Pending) != 3 {
		t.Fatalf("%d pending events to fold in, want 3", len(c.Pending))
	}
}

// The Unix epoch, the earliest `at` an event may carry, is stored as 0 as
// the zero time is: an item decodes it as the epoch wherever an event set
// it (its mark has the event's id), from its state or from a pending event.
func TestEpochMarksDecodeAsTheEpoch(t *testing.T) {
	epoch := time.Unix(0, 0).UTC()
	st, err := attributevalue.Marshal(stateAttr{Status: "finished", StatusAt: 0, StatusID: "e1", UpdatedAt: "1970-01-01T00:00:00Z"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := contentFromItem(map[string]types.AttributeValue{attrSK: str("tour#t"), "st": st})
	if err != nil {
		t.Fatal(err)
	}
	if !c.StatusMark.At.Equal(epoch) || c.StatusMark.At.IsZero() || c.StatusMark.ID != "e1" {
		t.Fatalf("stored status mark read as %+v, want the epoch with id e1", c.StatusMark)
	}
	if !c.StepMark.At.IsZero() || c.StepMark.ID != "" {
		t.Fatalf("no step: step mark %+v, want the zero mark", c.StepMark)
	}

	pend, err := attributevalue.Marshal([]pendAttr{{ID: "e2", Action: "skipped", At: 0, AppliedAt: 100, Request: "r1"}})
	if err != nil {
		t.Fatal(err)
	}
	c, err = contentFromItem(map[string]types.AttributeValue{attrSK: str("tour#t"), "pend": pend})
	if err != nil {
		t.Fatal(err)
	}
	if c.Status != "skipped" || !c.StatusMark.At.Equal(epoch) || c.StatusMark.At.IsZero() {
		t.Fatalf("pending event at the epoch read as %q at %v", c.Status, c.StatusMark.At)
	}
}

package dynamo

import (
	"testing"
	"time"
)

func TestSameVisitIsTheUTCDay(t *testing.T) {
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	cases := []struct {
		last, now string
		same      bool
	}{
		{"2026-03-04T00:00:00Z", "2026-03-04T23:59:59Z", true},
		{"2026-03-04T10:00:00Z", "2026-03-04T10:00:00Z", true},
		{"2026-03-04T10:00:00Z", "2026-03-04T09:00:00Z", true}, // another instance's clock ahead
		{"2026-03-04T23:59:59Z", "2026-03-05T00:00:00Z", false},
		{"2026-03-03T12:00:00Z", "2026-03-04T11:00:00Z", false}, // under 24 hours, another day
		// The day is UTC's, whatever the zone the time was written in.
		{"2026-03-04T01:30:00+02:00", "2026-03-04T12:00:00Z", false},
	}
	for _, c := range cases {
		if got := sameVisit(at(c.last), at(c.now)); got != c.same {
			t.Errorf("sameVisit(%s, %s) = %v", c.last, c.now, got)
		}
	}
	if sameVisit(time.Time{}, at("2026-03-04T10:00:00Z")) {
		t.Error("no lastSeenAt counted as a visit")
	}
}

func TestExpiryCurrent(t *testing.T) {
	const day = 86400
	want := int64(1_800_000_000)
	cases := []struct {
		stored, want int64
		current      bool
	}{
		{0, 0, true},                  // kept for ever, and still so
		{want, 0, false},              // retention turned off: remove the expiry
		{0, want, false},              // retention turned on
		{want, want, true},            //
		{want - day, want, true},      // set earlier today
		{want - day - 1, want, false}, // older than a day
		{want + 1, want, false},       // retention made shorter
	}
	for _, c := range cases {
		if got := expiryCurrent(c.stored, c.want); got != c.current {
			t.Errorf("expiryCurrent(%d, %d) = %v", c.stored, c.want, got)
		}
	}
}

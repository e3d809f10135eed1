package apigw_test

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"
)

// Parallel /v1/events batches for one user over a few shared content items
// of every kind, with duplicates across and within batches and events out of
// order: every accepted event reaches the user's state, as the domain orders
// them (within an item the latest `at` wins, ties to the greater id), and
// each distinct event is accepted by exactly one answer. The batches race
// for the same items, so writers lose and record their events as pending.
func TestParallelBatchesKeepEveryAcceptedEvent(t *testing.T) {
	const (
		rounds = 12
		// Each writer sends its batches one after the other, so later
		// batches also meet items that hold pending events.
		writers, batchesPerWriter = 6, 2
	)
	for round := range rounds {
		user := uniqueUser(t)
		rng := rand.New(rand.NewPCG(uint64(round), 0x5eed))
		sent := parallelBatches(rng, round, writers*batchesPerWriter)
		accepted, retried := sendInParallel(t, user, sent, batchesPerWriter)
		distinct := map[string]sentEvent{}
		for _, batch := range sent {
			for _, ev := range batch {
				distinct[ev.ID] = ev
			}
		}
		if retried > 0 {
			t.Logf("round %d: %d batches retried", round, retried)
		} else if accepted != len(distinct) {
			t.Errorf("round %d: the answers accepted %d events in all, want the %d distinct ones", round, accepted, len(distinct))
		}
		r := invoke(t, "state", mustJSON(map[string]any{"workspace": "demo", "username": user}))
		if r.Status != 200 {
			t.Fatalf("round %d: state answered %d %s", round, r.Status, r.errorCode())
		}
		got := r.Body["state"].(map[string]any)
		for _, diff := range compareState(expectedState(slices.Collect(maps.Values(distinct))), got) {
			t.Errorf("round %d: %s", round, diff)
		}
	}
}

// sentEvent is one event as sent; Step, Item and Answer only for the
// actions that carry them.
type sentEvent struct {
	ID, Content, ContentID, Action string
	At                             time.Time
	Step, Item, Answer             string
}

func (e sentEvent) body() map[string]any {
	m := map[string]any{"id": e.ID, "content": e.Content, "contentId": e.ContentID, "action": e.Action, "at": e.At.Format(time.RFC3339Nano)}
	if e.Step != "" {
		m["step"] = e.Step
	}
	if e.Item != "" {
		m["item"] = e.Item
	}
	if e.Answer != "" {
		m["answer"] = e.Answer
	}
	return m
}

// sharedItems are the content items every batch draws from, with the
// actions each accepts.
var sharedItems = []struct {
	content, id string
	actions     []string
}{
	{"tour", "welcome", []string{"started", "advanced", "advanced", "finished", "skipped"}},
	{"tour", "reports", []string{"started", "advanced", "finished", "skipped"}},
	{"hint", "export-button", []string{"displayed", "displayed", "dismissed"}},
	{"hint", "share-button", []string{"displayed", "dismissed"}},
	{"announcement", "release-2", []string{"displayed", "read"}},
	{"checklist", "setup", []string{"item_completed", "item_completed", "completed", "dismissed"}},
	{"survey", "nps", []string{"displayed", "answered", "dismissed"}},
}

// parallelBatches makes the batches of one round: 5–25 events each, with
// distinct ids and times except for the deliberate duplicates (an earlier
// event sent again, by another batch or the same one).
func parallelBatches(rng *rand.Rand, round, n int) [][]sentEvent {
	base := time.Now().UTC().Add(-time.Hour).Truncate(time.Millisecond)
	var all []sentEvent
	out := make([][]sentEvent, n)
	for b := range out {
		size := 5 + rng.IntN(21)
		for e := range size {
			if len(all) > 0 && rng.IntN(8) == 0 {
				out[b] = append(out[b], all[rng.IntN(len(all))])
				continue
			}
			it := sharedItems[rng.IntN(len(sharedItems))]
			ev := sentEvent{
				ID: fmt.Sprintf("r%d-b%d-e%d", round, b, e), Content: it.content, ContentID: it.id,
				Action: it.actions[rng.IntN(len(it.actions))],
				// Distinct times in random order: batches interleave in
				// time, and arrive in any order.
				At: base.Add(time.Duration(rng.IntN(3_600_000)) * time.Millisecond),
			}
			switch ev.Action {
			case "advanced":
				ev.Step = fmt.Sprintf("card-%d", rng.IntN(5))
			case "item_completed":
				ev.Item = fmt.Sprintf("item-%d", rng.IntN(6))
			case "answered":
				ev.Answer = fmt.Sprintf("option-%d", rng.IntN(4))
			}
			all = append(all, ev)
			out[b] = append(out[b], ev)
		}
	}
	return out
}

// sendInParallel sends the batches from parallel writers, each sending
// perWriter of them one after the other, and returns the events accepted in
// all. An answer that is not 200 (too much
// contention on a survey answer) is retried with the same ids, as a client
// would; retried counts those, since a retry may find some of its events
// already applied.
func sendInParallel(t *testing.T, user string, batches [][]sentEvent, perWriter int) (accepted, retried int) {
	t.Helper()
	var (
		mu sync.Mutex
		wg sync.WaitGroup
	)
	start := make(chan struct{})
	send := func(batch []sentEvent) {
		events := make([]any, len(batch))
		for i, ev := range batch {
			events[i] = ev.body()
		}
		body := mustJSON(map[string]any{"workspace": "demo", "username": user, "events": events})
		for attempt := 1; ; attempt++ {
			r := invoke(t, "events", body)
			mu.Lock()
			if r.Status == 200 {
				accepted += int(r.Body["accepted"].(float64))
				mu.Unlock()
				return
			}
			retried++
			mu.Unlock()
			if attempt == 5 {
				t.Errorf("a batch answered %d %s %d times", r.Status, r.errorCode(), attempt)
				return
			}
		}
	}
	for own := range slices.Chunk(batches, perWriter) {
		wg.Go(func() {
			<-start
			for _, batch := range own {
				send(batch)
			}
		})
	}
	close(start)
	wg.Wait()
	return accepted, retried
}

// latest reports whether event a orders after b within one content item.
func latest(a, b sentEvent) bool {
	if !a.At.Equal(b.At) {
		return a.At.After(b.At)
	}
	return a.ID > b.ID
}

func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// expectedState is the state the domain's rules make of the distinct events
// sent, in the shape of /v1/state.
func expectedState(events []sentEvent) map[string]map[string]map[string]any {
	type acc struct {
		updated, lastDisplayed, readAt time.Time
		status, step, answer           *sentEvent
		displayed                      int
		dismissed, read                bool
		items                          map[string]any
	}
	byItem := map[[2]string]*acc{}
	for _, ev := range events {
		k := [2]string{ev.Content, ev.ContentID}
		a := byItem[k]
		if a == nil {
			a = &acc{items: map[string]any{}}
			byItem[k] = a
		}
		later := func(cur *sentEvent) *sentEvent {
			if cur == nil || latest(ev, *cur) {
				return &ev
			}
			return cur
		}
		if ev.At.After(a.updated) {
			a.updated = ev.At
		}
		if ev.Step != "" {
			a.step = later(a.step)
		}
		switch ev.Action {
		case "displayed":
			a.displayed++
			if ev.At.After(a.lastDisplayed) {
				a.lastDisplayed = ev.At
			}
		case "read":
			if !a.read || ev.At.Before(a.readAt) {
				a.readAt = ev.At
			}
			a.read = true
		case "item_completed":
			a.items[ev.Item] = "done"
		case "answered":
			a.answer = later(a.answer)
		}
		switch {
		case ev.Content == "tour",
			ev.Content == "checklist" && (ev.Action == "completed" || ev.Action == "dismissed"),
			ev.Content == "survey" && ev.Action != "answered":
			a.status = later(a.status)
		case ev.Content == "hint" && ev.Action == "dismissed":
			a.dismissed = true
		}
	}
	tourStatus := map[string]string{"started": "not_finished", "advanced": "not_finished", "finished": "finished", "skipped": "skipped"}
	checklistStatus := map[string]string{"completed": "finished", "dismissed": "dismissed"}
	want := map[string]map[string]map[string]any{"tours": {}, "hints": {}, "announcements": {}, "checklists": {}, "surveys": {}}
	for k, a := range byItem {
		m := map[string]any{"updatedAt": rfc3339(a.updated)}
		switch k[0] {
		case "tour":
			m["status"] = tourStatus[a.status.Action]
			if a.step != nil {
				m["step"] = a.step.Step
			}
			want["tours"][k[1]] = m
		case "hint":
			m["displayed"], m["dismissed"] = float64(a.displayed), a.dismissed
			if a.displayed > 0 {
				m["lastDisplayedAt"] = rfc3339(a.lastDisplayed)
			}
			want["hints"][k[1]] = m
		case "announcement":
			m["displayed"], m["read"] = float64(a.displayed), a.read
			if a.displayed > 0 {
				m["lastDisplayedAt"] = rfc3339(a.lastDisplayed)
			}
			if a.read {
				m["readAt"] = rfc3339(a.readAt)
			}
			want["announcements"][k[1]] = m
		case "checklist":
			m["status"], m["items"] = "in_progress", a.items
			if a.status != nil {
				m["status"] = checklistStatus[a.status.Action]
			}
			want["checklists"][k[1]] = m
		case "survey":
			if a.status != nil {
				m["status"] = a.status.Action
			}
			if a.answer != nil {
				m["status"], m["answeredAt"] = "answered", rfc3339(a.answer.At)
			}
			want["surveys"][k[1]] = m
		}
	}
	return want
}

// compareState lists how the returned state differs from the expected one.
func compareState(want map[string]map[string]map[string]any, got map[string]any) []string {
	var diffs []string
	for kind, items := range want {
		gotItems, _ := got[kind].(map[string]any)
		for id, w := range items {
			g, ok := gotItems[id].(map[string]any)
			if !ok {
				diffs = append(diffs, fmt.Sprintf("%s %s missing from the state", kind, id))
				continue
			}
			if fmt.Sprint(g) != fmt.Sprint(w) {
				diffs = append(diffs, fmt.Sprintf("%s %s is %v, want %v", kind, id, g, w))
			}
		}
		if len(gotItems) != len(items) {
			diffs = append(diffs, fmt.Sprintf("%s: %d items in the state, want %d", kind, len(gotItems), len(items)))
		}
	}
	return diffs
}

package apigw_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/waymarkhq/waymark/internal/waymark"
)

const importRoute = "POST /v1/server/users/import"

// importUsers calls the import route with users encoded as given.
func importUsers(t testing.TB, key string, users ...any) response {
	t.Helper()
	return server(t, importRoute, key, mustJSON(map[string]any{"users": users}), nil)
}

// exported reads a user back through the server API's export.
func exported(t testing.TB, key, username string) map[string]any {
	t.Helper()
	r := server(t, "POST /v1/server/users/export", key, mustJSON(map[string]any{"username": username}), nil)
	if r.Status != 200 {
		t.Fatalf("export: %d %v", r.Status, r.Body)
	}
	user, _ := r.Body["user"].(map[string]any)
	return user
}

func wantCounts(t testing.TB, r response, imported, unchanged, failed int) {
	t.Helper()
	if r.Status != 200 {
		t.Fatalf("import: %d %v", r.Status, r.Body)
	}
	got := []any{r.Body["imported"], r.Body["unchanged"], len(r.Body["failed"].([]any))}
	want := []any{float64(imported), float64(unchanged), failed}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("imported, unchanged, failed = %v, want %v (%v)", got, want, r.Body["failed"])
	}
}

// TestImportPartialSuccess: the valid users of a call are written, each
// invalid one is reported by its index and its path in the body, and
// nothing of an invalid user is stored.
func TestImportPartialSuccess(t *testing.T) {
	_, key := workspaceWithKey(t, waymark.NewWorkspaceOptions{})
	ada, bob, bad := uniqueUser(t), uniqueUser(t), uniqueUser(t)
	remember("Lovelace-Byron", "analytical-engine")
	users := []any{
		map[string]any{"username": ada, "lastname": "Lovelace-Byron", "props": map[string]any{"plan": "analytical-engine", "seats": 3}},
		map[string]any{"username": bad, "props": map[string]any{"plan": strings.Repeat("x", waymark.MaxStringValueBytes+1)}},
		"not a user",
		map[string]any{"username": bad, "nickname": "unknown field"},
		map[string]any{"username": bad, "signUpAt": "yesterday"},
		map[string]any{"username": bob},
		map[string]any{"username": ada, "role": "second input for the same user"},
		map[string]any{"username": bad, "email": 42},
	}
	r := importUsers(t, key, users...)
	wantCounts(t, r, 2, 0, 6)
	want := []string{
		"1 invalid_argument users[1].props.plan",
		"2 invalid_argument users[2]",
		"3 invalid_argument users[3].nickname",
		"4 invalid_argument users[4].signUpAt",
		"6 invalid_argument users[6].username",
		"7 invalid_argument users[7].email",
	}
	for i, f := range r.Body["failed"].([]any) {
		f := f.(map[string]any)
		got := fmt.Sprintf("%v %v %v", f["index"], f["code"], f["field"])
		if got != want[i] {
			t.Errorf("failed[%d] = %s, want %s", i, got, want[i])
		}
		msg := f["message"].(string)
		if !strings.HasPrefix(msg, f["field"].(string)+": ") {
			t.Errorf("failed[%d] message %q does not start with its field", i, msg)
		}
		// The field is named once, by its path in the import call, not
		// again by its path in an identify request.
		if rest := strings.TrimPrefix(msg, f["field"].(string)+": "); strings.HasPrefix(rest, "user") {
			t.Errorf("failed[%d] message %q names the field twice", i, msg)
		}
	}
	user := exported(t, key, ada)
	if user["lastname"] != "Lovelace-Byron" || fmt.Sprint(user["props"]) != "map[plan:analytical-engine seats:3]" || user["role"] != nil {
		t.Errorf("ada exported as %v", user)
	}
	if exported(t, key, bob)["username"] != bob {
		t.Error("bob was not imported")
	}
	if user := exported(t, key, bad); user != nil {
		t.Errorf("an invalid user was stored: %v", user)
	}
}

// TestImportAgainIsUnchanged: importing the same users again writes
// nothing; a changed user is merged into what is stored, as identify would.
func TestImportAgainIsUnchanged(t *testing.T) {
	ws, key := workspaceWithKey(t, waymark.NewWorkspaceOptions{})
	var users []any
	for i := range 60 {
		users = append(users, map[string]any{"username": uniqueUser(t), "props": map[string]any{"n": i}})
	}
	wantCounts(t, importUsers(t, key, users...), 60, 0, 0)
	before := versions(t, ws, users)
	wantCounts(t, importUsers(t, key, users...), 0, 60, 0)
	if after := versions(t, ws, users); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("a repeated import wrote: versions %v, then %v", before, after)
	}

	first := users[0].(map[string]any)["username"].(string)
	users[0] = map[string]any{"username": first, "firstname": "Augusta-Ada", "props": map[string]any{"plan": "difference-engine"}}
	remember("Augusta-Ada", "difference-engine")
	wantCounts(t, importUsers(t, key, users...), 1, 59, 0)
	user := exported(t, key, first)
	if user["firstname"] != "Augusta-Ada" || fmt.Sprint(user["props"]) != "map[n:0 plan:difference-engine]" {
		t.Errorf("changed user exported as %v, want its props merged", user)
	}
}

// versions reads the stored version of each imported user.
func versions(t testing.TB, ws *waymark.Workspace, users []any) []int64 {
	t.Helper()
	out := make([]int64, len(users))
	for i, u := range users {
		stored, err := graph.Store.GetUser(t.Context(), ws, ws.UserKey(u.(map[string]any)["username"].(string)))
		if err != nil {
			t.Fatal(err)
		}
		out[i] = stored.Version
	}
	return out
}

// TestImportKeepsWhatIdentifyStored: a user stored before is updated over
// what identify stored, not replaced: props merge, fields not given stay.
func TestImportKeepsWhatIdentifyStored(t *testing.T) {
	ws, key := workspaceWithKey(t, waymark.NewWorkspaceOptions{})
	user := uniqueUser(t)
	remember("stored-by-identify")
	r := invoke(t, "identify", mustJSON(map[string]any{"workspace": ws.Code, "user": map[string]any{
		"username": user, "role": "stored-by-identify", "props": map[string]any{"from": "identify"}}}))
	if r.Status != 200 {
		t.Fatalf("identify: %d %v", r.Status, r.Body)
	}
	wantCounts(t, importUsers(t, key, map[string]any{"username": user, "props": map[string]any{"via": "import"}}), 1, 0, 0)
	got := exported(t, key, user)
	if got["role"] != "stored-by-identify" || fmt.Sprint(got["props"]) != "map[from:identify via:import]" {
		t.Errorf("exported %v, want identify's role and both props", got)
	}
}

// TestImportConcurrentWithIdentify: imports and identifies of the same
// stored users at once lose no prop: every writer's key is there at the end.
func TestImportConcurrentWithIdentify(t *testing.T) {
	ws, key := workspaceWithKey(t, waymark.NewWorkspaceOptions{})
	var users []string
	for range 5 {
		users = append(users, uniqueUser(t))
	}
	var initial []any
	for _, u := range users {
		initial = append(initial, map[string]any{"username": u})
	}
	wantCounts(t, importUsers(t, key, initial...), len(users), 0, 0)
	const writers = 8
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			prop := fmt.Sprintf("w%d", w)
			if w%2 == 0 {
				var batch []any
				for _, u := range users {
					batch = append(batch, map[string]any{"username": u, "props": map[string]any{prop: w}})
				}
				wantCounts(t, importUsers(t, key, batch...), len(users), 0, 0)
				return
			}
			for _, u := range users {
				r := invoke(t, "identify", mustJSON(map[string]any{"workspace": ws.Code, "user": map[string]any{"username": u, "props": map[string]any{prop: w}}}))
				if r.Status != 200 {
					t.Errorf("identify: %d %v", r.Status, r.Body)
				}
			}
		})
	}
	wg.Wait()
	for _, u := range users {
		if props := exported(t, key, u)["props"].(map[string]any); len(props) != writers {
			t.Errorf("user has props %v, want one of each of the %d writers", props, writers)
		}
	}
}

// TestImportLimits: 1000 users and a 6 000 000-byte body are taken, one
// more user or one more byte are refused, and nothing of a refused call is
// written; an empty list and a missing key are refused too.
func TestImportLimits(t *testing.T) {
	ws, key := workspaceWithKey(t, waymark.NewWorkspaceOptions{})
	users := make([]any, 1001)
	for i := range users {
		users[i] = map[string]any{"username": fmt.Sprintf("limit-%04d@example.com", i)}
	}
	r := importUsers(t, key, users...)
	if r.Status != 400 || r.errorCode() != waymark.EInvalidArgument || r.errorField() != "users" {
		t.Fatalf("1001 users: %d %v, want 400 on users", r.Status, r.Body)
	}
	if _, err := graph.Store.GetUser(t.Context(), ws, ws.UserKey("limit-0000@example.com")); err == nil {
		t.Fatal("a refused call wrote a user")
	}
	wantCounts(t, importUsers(t, key, users[:1000]...), 1000, 0, 0)

	if r := importUsers(t, key); r.Status != 400 || r.errorField() != "users" {
		t.Errorf("no users: %d %v, want 400 on users", r.Status, r.Body)
	}
	if r := server(t, importRoute, "", mustJSON(map[string]any{"users": users[:1]}), nil); r.Status != 401 {
		t.Errorf("no key: %d %v, want 401", r.Status, r.Body)
	}

	// JSON allows whitespace anywhere between tokens: the body is padded to
	// the limit exactly, and one byte past it.
	body := mustJSON(map[string]any{"users": users[1000:]})
	padded := body[:len(body)-1] + strings.Repeat(" ", 6_000_000-len(body)) + "}"
	wantCounts(t, server(t, importRoute, key, padded, nil), 1, 0, 0)
	over := padded[:len(padded)-1] + " }"
	if r := server(t, importRoute, key, over, nil); r.Status != 413 || r.errorCode() != waymark.EPayloadTooLarge {
		t.Errorf("6 000 001 bytes: %d %v, want 413", r.Status, r.Body)
	}
	// The larger body is this route's only.
	large := `{"user":{"username":"limit-large@example.com"}}` + strings.Repeat(" ", waymark.MaxBodyBytes)
	if r := server(t, "POST /v1/server/identify", key, large, nil); r.Status != 413 {
		t.Errorf("server identify with a body over %d bytes: %d, want 413", waymark.MaxBodyBytes, r.Status)
	}
}

// TestImportKMSDownWritesNothing: with KMS unreachable and no data key
// cached, an import answers 503 and stores none of its users: every user is
// sealed before the first write.
func TestImportKMSDownWritesNothing(t *testing.T) {
	kmsFaults := &faultyTransport{}
	hs, _ := faultyGraph(t, nil, kmsFaults)
	ws, key := workspaceWithKey(t, waymark.NewWorkspaceOptions{})
	call := func(users ...any) response {
		return invokeRoute(t, hs, serverRoute(t, importRoute), mustJSON(map[string]any{"users": users}), map[string]string{"authorization": "Bearer " + key}, nil)
	}
	// A call whose only user is refused opens the workspace's secrets (one
	// KMS call) and seals nothing...
	if r := call(map[string]any{"username": ""}); r.Status != 200 {
		t.Fatalf("import: %d %v", r.Status, r.Body)
	}
	// ...then KMS goes away before any data key for sealing was generated.
	kmsFaults.down.Store(true)
	var users []any
	var names []string
	for range 30 {
		names = append(names, uniqueUser(t))
		users = append(users, map[string]any{"username": names[len(names)-1]})
	}
	if r := call(users...); r.Status != 503 || r.errorCode() != waymark.EUnavailable || r.Headers["retry-after"] == "" {
		t.Fatalf("import with KMS down: %d %v %v", r.Status, r.Body, r.Headers)
	}
	for _, u := range names {
		if n := itemsOfUser(t, ws.UserKey(u)); n != 0 {
			t.Fatalf("%d items stored while KMS was down", n)
		}
	}
}

// TestImportAgainWithARetention: a stored user is unchanged by the same
// input until its expiry, that second included; one second later it has
// expired and the import stores it anew.
func TestImportAgainWithARetention(t *testing.T) {
	_, key := workspaceWithKey(t, waymark.NewWorkspaceOptions{RetentionDays: 30})
	clk := testClock()
	hs := clockedHandlers(t, recordedConfig(), clk)
	users := []any{map[string]any{"username": uniqueUser(t)}, map[string]any{"username": uniqueUser(t), "props": map[string]any{"plan": "pro"}}}
	importAt := func() response {
		t.Helper()
		return serverWith(t, hs, importRoute, key, mustJSON(map[string]any{"users": users}), nil)
	}
	wantCounts(t, importAt(), 2, 0, 0)
	wantCounts(t, importAt(), 0, 2, 0)
	clk.Advance(30 * 24 * time.Hour)
	wantCounts(t, importAt(), 0, 2, 0)
	clk.Advance(time.Second)
	wantCounts(t, importAt(), 2, 0, 0)
}

// TestImportFailuresInIndexOrder: failures found at different stages (a
// user refused by validation, a stored user whose props would exceed the
// limit once merged) are listed in the order of the users in the call.
func TestImportFailuresInIndexOrder(t *testing.T) {
	_, key := workspaceWithKey(t, waymark.NewWorkspaceOptions{})
	full := uniqueUser(t)
	props := map[string]any{}
	for i := range waymark.MaxProps {
		props[fmt.Sprintf("p%d", i)] = i
	}
	wantCounts(t, importUsers(t, key, map[string]any{"username": full, "props": props}), 1, 0, 0)
	r := importUsers(t, key,
		map[string]any{"username": full, "props": map[string]any{"one_more": true}},
		"not a user",
		map[string]any{"username": uniqueUser(t)},
	)
	wantCounts(t, r, 1, 0, 2)
	var got []string
	for _, f := range r.Body["failed"].([]any) {
		f := f.(map[string]any)
		got = append(got, fmt.Sprintf("%v %v", f["index"], f["field"]))
		if msg := f["message"].(string); strings.Contains(msg, "user.props") {
			t.Errorf("message %q names the field by its identify path", msg)
		}
	}
	if want := []string{"0 users[0].props", "1 users[1]"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("failed %v, want %v", got, want)
	}
}

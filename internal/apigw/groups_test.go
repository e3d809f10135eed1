package apigw_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/waymarkhq/waymark/internal/fakeclock"
	"github.com/waymarkhq/waymark/internal/schema"
	"github.com/waymarkhq/waymark/internal/waymark"
)

// uniqueGroup returns a group id no other test uses, registered as personal.
func uniqueGroup(t testing.TB, name string) string {
	g := "acct-" + name + "-" + waymark.NewID()[:10]
	remember(g)
	return g
}

// mentions counts the items of every table holding text in a string or a
// string set attribute (keys, the user item's groups, membership sort keys).
func mentions(t testing.TB, text string) int {
	t.Helper()
	n := 0
	for _, tb := range schema.All() {
		items, err := scanTable(context.Background(), tb.Name)
		if err != nil {
			t.Fatal(err)
		}
	item:
		for _, item := range items {
			for _, av := range item {
				switch v := av.(type) {
				case *types.AttributeValueMemberS:
					if strings.Contains(v.Value, text) {
						n++
						continue item
					}
				case *types.AttributeValueMemberSS:
					for _, s := range v.Value {
						if strings.Contains(s, text) {
							n++
							continue item
						}
					}
				}
			}
		}
	}
	return n
}

func exportGroup(t testing.TB, key, id string) response {
	t.Helper()
	r := server(t, "POST /v1/server/groups/export", key, mustJSON(map[string]any{"id": id}), nil)
	if r.Status != 200 {
		t.Fatalf("export group: %d %v", r.Status, r.Body)
	}
	return r
}

func members(t testing.TB, key, id string) int {
	t.Helper()
	r := exportGroup(t, key, id)
	if r.Body["found"] != true {
		t.Fatalf("group %s not found: %v", id, r.Body)
	}
	return int(r.Body["group"].(map[string]any)["members"].(float64))
}

func exportedGroups(t testing.TB, key, user string) string {
	t.Helper()
	r := server(t, "POST /v1/server/users/export", key, mustJSON(map[string]any{"username": user}), nil)
	if r.Status != 200 {
		t.Fatalf("export user: %d %v", r.Status, r.Body)
	}
	return mustJSON(r.Body["groups"])
}

func identifyOK(t testing.TB, body string) {
	t.Helper()
	if r := invoke(t, "identify", body); r.Status != 200 {
		t.Fatalf("identify: %d %v", r.Status, r.Body)
	}
}

// A user joins groups through identify (public and server), group props
// merge like user props, memberships are replaced when given and kept when
// not; the group's export counts its members and the user's export lists
// its groups.
func TestGroupsThroughIdentifyAndExport(t *testing.T) {
	ws, key := workspaceWithKey(t, waymark.NewWorkspaceOptions{})
	ada, bob := uniqueUser(t), uniqueUser(t)
	acme, globex := uniqueGroup(t, "acme"), uniqueGroup(t, "globex")
	remember("enterprise-plan", "Acme Widgets Ltd")

	identifyOK(t, mustJSON(map[string]any{"workspace": ws.Code, "user": map[string]any{"username": ada,
		"groups": []any{map[string]any{"id": acme, "props": map[string]any{"plan": "enterprise-plan", "seats": 25}}, map[string]any{"id": globex}}}}))
	r := server(t, "POST /v1/server/identify", key, mustJSON(map[string]any{"user": map[string]any{"username": bob,
		"group": map[string]any{"id": acme, "props": map[string]any{"name": "Acme Widgets Ltd", "seats": nil}}}}), nil)
	if r.Status != 200 {
		t.Fatalf("server identify: %d %v", r.Status, r.Body)
	}
	if _, ok := r.Body["user"]; !ok || len(r.Body) != 2 {
		t.Fatalf("the identify answer changed shape: %v", r.Body)
	}

	g := exportGroup(t, key, acme)
	if g.Body["found"] != true || mustJSON(g.Body["group"]) != mustJSON(map[string]any{"id": acme, "members": 2,
		"props": map[string]any{"name": "Acme Widgets Ltd", "plan": "enterprise-plan"}}) {
		t.Fatalf("group export: %v", g.Body)
	}
	if got, want := exportedGroups(t, key, ada), mustJSON([]any{map[string]any{"id": acme, "props": map[string]any{"name": "Acme Widgets Ltd", "plan": "enterprise-plan"}},
		map[string]any{"id": globex, "props": map[string]any{}}}); got != want {
		t.Fatalf("ada's groups: %s, want %s", got, want)
	}

	// Omitted: the memberships stay, even when the rest of the user changes.
	identifyOK(t, mustJSON(map[string]any{"workspace": ws.Code, "user": map[string]any{"username": ada, "role": "owner"}}))
	if n := members(t, key, globex); n != 1 {
		t.Fatalf("globex has %d members after an identify without groups, want 1", n)
	}
	// Given: they replace the stored ones.
	identifyOK(t, mustJSON(map[string]any{"workspace": ws.Code, "user": map[string]any{"username": ada, "group": map[string]any{"id": globex}}}))
	if a, g := members(t, key, acme), members(t, key, globex); a != 1 || g != 1 {
		t.Fatalf("after ada left acme: acme %d, globex %d members; want 1 and 1", a, g)
	}
	if got := exportedGroups(t, key, ada); got != mustJSON([]any{map[string]any{"id": globex, "props": map[string]any{}}}) {
		t.Fatalf("ada's groups: %s", got)
	}
	// An empty list clears them.
	identifyOK(t, mustJSON(map[string]any{"workspace": ws.Code, "user": map[string]any{"username": ada, "groups": []any{}}}))
	if n := members(t, key, globex); n != 0 {
		t.Fatalf("globex has %d members after groups: [], want 0", n)
	}
	if got := exportedGroups(t, key, ada); got != "[]" {
		t.Fatalf("ada's groups after groups: []: %s", got)
	}

	// The group API: identify merges, an unknown group is no error.
	r = server(t, "POST /v1/server/groups/identify", key, mustJSON(map[string]any{"group": map[string]any{"id": globex, "props": map[string]any{"tier": 2}}}), nil)
	if r.Status != 200 || mustJSON(r.Body) != mustJSON(map[string]any{"group": map[string]any{"id": globex}}) {
		t.Fatalf("group identify: %d %v", r.Status, r.Body)
	}
	if g := exportGroup(t, key, globex); mustJSON(g.Body["group"]) != mustJSON(map[string]any{"id": globex, "members": 0, "props": map[string]any{"tier": 2}}) {
		t.Fatalf("globex after group identify: %v", g.Body)
	}
	if g := exportGroup(t, key, "never-stored-group"); g.Body["found"] != false || g.Body["group"] != nil {
		t.Fatalf("unknown group: %v", g.Body)
	}
	// Another workspace's group of the same id is another group.
	_, otherKey := workspaceWithKey(t, waymark.NewWorkspaceOptions{})
	if g := exportGroup(t, otherKey, acme); g.Body["found"] != false {
		t.Fatalf("another workspace sees the group: %v", g.Body)
	}
}

// Erasing a group removes the group item and every membership, and drops
// the group from its members' user items; erasing a user removes its
// memberships. A scan of every table proves it.
func TestGroupAndUserErasureLeaveNothing(t *testing.T) {
	ws, key := workspaceWithKey(t, waymark.NewWorkspaceOptions{})
	ada, bob := uniqueUser(t), uniqueUser(t)
	acme, initech := uniqueGroup(t, "acme"), uniqueGroup(t, "initech")
	remember("acme-secret-prop")
	for _, u := range []string{ada, bob} {
		identifyOK(t, mustJSON(map[string]any{"workspace": ws.Code, "user": map[string]any{"username": u,
			"groups": []any{map[string]any{"id": acme, "props": map[string]any{"motto": "acme-secret-prop"}}, map[string]any{"id": initech}}}}))
	}
	acmeKey, initechKey, adaKey := ws.GroupKey(acme), ws.GroupKey(initech), ws.UserKey(ada)
	// The group item, two memberships, two user items listing it.
	if n := mentions(t, acmeKey); n != 5 {
		t.Fatalf("before erasure %d items mention acme, want 5", n)
	}

	r := server(t, "POST /v1/server/groups/delete", key, mustJSON(map[string]any{"ids": []string{acme, "never-stored-group"}}), nil)
	if r.Status != 200 || mustJSON(r.Body) != mustJSON(map[string]any{"groups": 1, "items": 3}) {
		t.Fatalf("group delete: %d %v", r.Status, r.Body)
	}
	if n := mentions(t, acmeKey); n != 0 {
		t.Fatalf("a scan of every table still finds %d items of the erased group", n)
	}
	if got := exportedGroups(t, key, bob); got != mustJSON([]any{map[string]any{"id": initech, "props": map[string]any{}}}) {
		t.Fatalf("bob's groups after acme's erasure: %s", got)
	}
	if g := exportGroup(t, key, acme); g.Body["found"] != false {
		t.Fatalf("erased group exported: %v", g.Body)
	}
	r = server(t, "POST /v1/server/groups/delete", key, mustJSON(map[string]any{"ids": []string{acme}}), nil)
	if r.Status != 200 || mustJSON(r.Body) != mustJSON(map[string]any{"groups": 0, "items": 0}) {
		t.Fatalf("second group delete: %d %v", r.Status, r.Body)
	}
	// The members' next identify with the same input writes again (the
	// erasure forgot the input), creating the group afresh.
	identifyOK(t, mustJSON(map[string]any{"workspace": ws.Code, "user": map[string]any{"username": bob,
		"groups": []any{map[string]any{"id": acme, "props": map[string]any{"motto": "acme-secret-prop"}}, map[string]any{"id": initech}}}}))
	if n := members(t, key, acme); n != 1 {
		t.Fatalf("acme has %d members after bob named it again, want 1", n)
	}

	// User erasure: ada's user item and her membership of initech go.
	r = server(t, "POST /v1/server/users/delete", key, mustJSON(map[string]any{"usernames": []string{ada}}), nil)
	if r.Status != 200 || mustJSON(r.Body) != mustJSON(map[string]any{"users": 1, "items": 2, "attachments": 0}) {
		t.Fatalf("user delete: %d %v", r.Status, r.Body)
	}
	if n := mentions(t, adaKey); n != 0 {
		t.Fatalf("a scan of every table still finds %d items of the erased user", n)
	}
	if n := members(t, key, initech); n != 1 {
		t.Fatalf("initech has %d members after ada's erasure, want 1 (bob)", n)
	}
	if n := mentions(t, initechKey); n != 3 {
		t.Fatalf("%d items mention initech, want 3 (group item, bob's membership, bob's user item)", n)
	}
}

// 25 identifies of one user, each naming other groups, at the same time,
// none retried by the caller: every one answers 2xx, and afterwards the
// user's groups and the groups' membership items agree (the last write
// wins, whole).
func TestParallelMembershipChangesOfOneUser(t *testing.T) {
	const writers = 25
	ws, key := workspaceWithKey(t, waymark.NewWorkspaceOptions{})
	user := uniqueUser(t)
	ids := make([]string, writers+1)
	for i := range ids {
		ids[i] = uniqueGroup(t, fmt.Sprintf("g%d", i))
	}
	identifyOK(t, mustJSON(map[string]any{"workspace": ws.Code, "user": map[string]any{"username": user,
		"groups": []any{map[string]any{"id": ids[writers]}}}}))
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		failed  []string
		slowest time.Duration
	)
	for w := range writers {
		wg.Go(func() {
			// Each writer names two groups: its own and its neighbour's.
			groups := []any{map[string]any{"id": ids[w]}, map[string]any{"id": ids[(w+1)%writers], "props": map[string]any{"writer": w}}}
			began := time.Now()
			r := invoke(t, "identify", mustJSON(map[string]any{"workspace": ws.Code, "user": map[string]any{"username": user, "groups": groups}}))
			took := time.Since(began)
			mu.Lock()
			defer mu.Unlock()
			slowest = max(slowest, took)
			if r.Status/100 != 2 {
				failed = append(failed, fmt.Sprintf("%d %s", r.Status, r.errorCode()))
			}
		})
	}
	wg.Wait()
	// About 200 transactions on the user item, most refused by its version
	// condition: DynamoDB Local answered single ones of them in up to 8 s
	// here (a lone one takes milliseconds), so the slowest writer waits
	// seconds.
	t.Logf("%d writers: slowest answer in %v", writers, slowest.Round(time.Millisecond))
	if len(failed) > 0 {
		t.Fatalf("%d of %d answers were not 2xx, e.g. %s", len(failed), writers, failed[0])
	}
	var exported []string
	r := server(t, "POST /v1/server/users/export", key, mustJSON(map[string]any{"username": user}), nil)
	for _, g := range r.Body["groups"].([]any) {
		exported = append(exported, g.(map[string]any)["id"].(string))
	}
	if len(exported) != 2 {
		t.Fatalf("the user ends in %d groups, want the 2 of one writer: %v", len(exported), exported)
	}
	total := 0
	for _, id := range ids {
		n := members(t, key, id)
		total += n
		member := id == exported[0] || id == exported[1]
		if member && n != 1 || !member && n != 0 {
			t.Errorf("group %s has %d members; the user's groups are %v", id, n, exported)
		}
	}
	if total != 2 {
		t.Errorf("%d membership items in all, want 2", total)
	}
}

// Bad groups are refused with the field named, before anything is written.
func TestGroupValidation(t *testing.T) {
	ws, key := workspaceWithKey(t, waymark.NewWorkspaceOptions{})
	user := uniqueUser(t)
	many := make([]any, waymark.MaxGroupsPerUser+1)
	for i := range many {
		many[i] = map[string]any{"id": fmt.Sprintf("g%d", i)}
	}
	props := map[string]any{}
	for i := range waymark.MaxProps {
		props[fmt.Sprintf("k%d", i)] = i
	}
	long := strings.Repeat("x", waymark.MaxIDChars+1)
	cases := map[string]struct {
		user  map[string]any
		field string
	}{
		"both":            {map[string]any{"group": map[string]any{"id": "a"}, "groups": []any{}}, "user.group"},
		"too many":        {map[string]any{"groups": many}, "user.groups"},
		"twice":           {map[string]any{"groups": []any{map[string]any{"id": "a"}, map[string]any{"id": "a"}}}, "user.groups[1].id"},
		"empty id":        {map[string]any{"group": map[string]any{"id": ""}}, "user.group.id"},
		"long id":         {map[string]any{"groups": []any{map[string]any{"id": long}}}, "user.groups[0].id"},
		"control char":    {map[string]any{"group": map[string]any{"id": "a\tb"}}, "user.group.id"},
		"bad prop key":    {map[string]any{"group": map[string]any{"id": "a", "props": map[string]any{"bad key": 1}}}, "user.group.props.bad key"},
		"long prop value": {map[string]any{"groups": []any{map[string]any{"id": "a", "props": map[string]any{"v": strings.Repeat("y", 1025)}}}}, "user.groups[0].props.v"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			c.user["username"] = user
			r := invoke(t, "identify", mustJSON(map[string]any{"workspace": ws.Code, "user": c.user}))
			if r.Status != 400 || r.errorField() != c.field {
				t.Fatalf("%d %s field %q, want 400 field %q", r.Status, r.errorCode(), r.errorField(), c.field)
			}
		})
	}
	// Props that pass alone but not merged with the stored ones.
	big := uniqueGroup(t, "big")
	r := server(t, "POST /v1/server/groups/identify", key, mustJSON(map[string]any{"group": map[string]any{"id": big, "props": props}}), nil)
	if r.Status != 200 {
		t.Fatalf("group with %d props: %d %v", len(props), r.Status, r.Body)
	}
	r = invoke(t, "identify", mustJSON(map[string]any{"workspace": ws.Code, "user": map[string]any{"username": user,
		"groups": []any{map[string]any{"id": big, "props": map[string]any{"one-more": 1}}}}}))
	if r.Status != 400 || r.errorField() != "user.groups[0].props" {
		t.Fatalf("merge past %d props: %d field %q", waymark.MaxProps, r.Status, r.errorField())
	}
	if n := mentions(t, ws.UserKey(user)); n != 0 {
		t.Fatalf("refused identifies wrote %d items", n)
	}
	server400 := map[string]struct{ route, body, field string }{
		"identify without group": {"POST /v1/server/groups/identify", `{}`, "group"},
		"identify bad props":     {"POST /v1/server/groups/identify", `{"group":{"id":"a","props":{"$x":1}}}`, "group.props.$x"},
		"export empty id":        {"POST /v1/server/groups/export", `{"id":""}`, "id"},
		"delete none":            {"POST /v1/server/groups/delete", `{"ids":[]}`, "ids"},
		"delete bad id":          {"POST /v1/server/groups/delete", `{"ids":["ok","` + long + `"]}`, "ids[1]"},
		"delete too many":        {"POST /v1/server/groups/delete", mustJSON(map[string]any{"ids": make([]string, waymark.MaxGroupsPerCall+1)}), "ids"},
	}
	for name, c := range server400 {
		t.Run(name, func(t *testing.T) {
			r := server(t, c.route, key, c.body, nil)
			if r.Status != 400 || r.errorField() != c.field {
				t.Fatalf("%d %s field %q, want 400 field %q", r.Status, r.errorCode(), r.errorField(), c.field)
			}
		})
	}
	for _, route := range []string{"POST /v1/server/groups/identify", "POST /v1/server/groups/export", "POST /v1/server/groups/delete"} {
		if r := server(t, route, "", `{}`, nil); r.Status != 401 {
			t.Errorf("%s without a key: %d", route, r.Status)
		}
	}
}

// groupExpiries reads the expiry of every item of a group's partition, by
// sort key kind ("group", "member").
func groupExpiries(t *testing.T, groupKey string) map[string]int64 {
	t.Helper()
	res, err := db.Query(context.Background(), &dynamodb.QueryInput{
		TableName:                 aws.String(stack.Tables[schema.GroupsTable]),
		KeyConditionExpression:    aws.String("pk = :pk"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": &types.AttributeValueMemberS{Value: groupKey}},
		ConsistentRead:            aws.Bool(true),
	})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for _, item := range res.Items {
		kind := "member"
		if item["sk"].(*types.AttributeValueMemberS).Value == schema.GroupItemSK {
			kind = "group"
		}
		var exp int64
		if v, ok := item[schema.TTLAttribute].(*types.AttributeValueMemberN); ok {
			exp, _ = strconv.ParseInt(v.Value, 10, 64)
		}
		out[kind] = exp
	}
	return out
}

// With a retention, the group item and the membership carry an expiry; a
// member's visit on a later day, with the same user object, moves both
// with the user's.
func TestGroupRetention(t *testing.T) {
	ws := newWorkspace(t, waymark.NewWorkspaceOptions{RetentionDays: 30})
	clk := fakeclock.New(time.Now().UTC().Truncate(time.Second))
	hs := clockedHandlers(t, recordedConfig(), clk)
	user := uniqueUser(t)
	acme := uniqueGroup(t, "acme")
	body := mustJSON(map[string]any{"workspace": ws.Code, "user": map[string]any{"username": user, "group": map[string]any{"id": acme, "props": map[string]any{"plan": "pro"}}}})
	identify := func() {
		t.Helper()
		if r := invokeWith(t, hs, "identify", body, nil); r.Status != 200 {
			t.Fatalf("identify: %d %v", r.Status, r.Body)
		}
	}
	day := int64(24 * 60 * 60)
	identify()
	start := clk.Now().Unix()
	if got, want := groupExpiries(t, ws.GroupKey(acme)), map[string]int64{"group": start + 30*day, "member": start + 30*day}; mustJSON(got) != mustJSON(want) {
		t.Fatalf("expiries %v, want %v", got, want)
	}
	clk.Advance(10 * 24 * time.Hour)
	identify()
	later := clk.Now().Unix()
	if got, want := groupExpiries(t, ws.GroupKey(acme)), map[string]int64{"group": later + 30*day, "member": later + 30*day}; mustJSON(got) != mustJSON(want) {
		t.Fatalf("after a visit ten days later, expiries %v, want %v", got, want)
	}
}

// The groups' limits of the README's "Limits" table at their edges: the
// maximum is accepted, one more refused naming the field.
func TestGroupLimitsAtTheirEdges(t *testing.T) {
	ws, key := workspaceWithKey(t, waymark.NewWorkspaceOptions{})
	groups := func(n int, id func(i int) string) []any {
		out := make([]any, n)
		for i := range out {
			out[i] = map[string]any{"id": id(i)}
		}
		return out
	}
	edges := []struct {
		name  string
		max   int
		send  func(t *testing.T, n int) response
		field string
	}{
		{"groups per user", waymark.MaxGroupsPerUser, func(t *testing.T, n int) response {
			return invoke(t, "identify", mustJSON(map[string]any{"workspace": ws.Code, "user": map[string]any{"username": uniqueUser(t),
				"groups": groups(n, func(i int) string { return fmt.Sprintf("edge-group-%d", i) })}}))
		}, "user.groups"},
		{"group id characters", waymark.MaxIDChars, func(t *testing.T, n int) response {
			return server(t, "POST /v1/server/identify", key, mustJSON(map[string]any{"user": map[string]any{"username": uniqueUser(t),
				"group": map[string]any{"id": strings.Repeat("é", n)}}}), nil)
		}, "user.group.id"},
		{"group ids per erasure", waymark.MaxGroupsPerCall, func(t *testing.T, n int) response {
			ids := make([]string, n)
			for i := range ids {
				ids[i] = fmt.Sprintf("edge-erased-%d", i)
			}
			return server(t, "POST /v1/server/groups/delete", key, mustJSON(map[string]any{"ids": ids}), nil)
		}, "ids"},
	}
	for _, e := range edges {
		t.Run(e.name, func(t *testing.T) {
			if r := e.send(t, e.max); r.Status != 200 {
				t.Fatalf("at the limit %d: %d %v", e.max, r.Status, r.Body)
			}
			if r := e.send(t, e.max+1); r.Status != 400 || r.errorField() != e.field {
				t.Fatalf("past the limit: %d field %q, want 400 field %q", r.Status, r.errorField(), e.field)
			}
		})
	}
}

// Ten groups swapped for ten others is 21 writes, more than DynamoDB Local
// takes in one transaction: the store splits them, and the user's groups
// and the memberships still agree.
func TestMembershipChangeLongerThanALocalTransaction(t *testing.T) {
	ws, key := workspaceWithKey(t, waymark.NewWorkspaceOptions{})
	user := uniqueUser(t)
	ids := make([]string, 2*waymark.MaxGroupsPerUser)
	for i := range ids {
		ids[i] = uniqueGroup(t, fmt.Sprintf("swap%d", i))
	}
	named := func(ids []string) []any {
		out := []any{}
		for _, id := range ids {
			out = append(out, map[string]any{"id": id})
		}
		return out
	}
	first, second := ids[:waymark.MaxGroupsPerUser], ids[waymark.MaxGroupsPerUser:]
	for _, set := range [][]string{first, second} {
		identifyOK(t, mustJSON(map[string]any{"workspace": ws.Code, "user": map[string]any{"username": user, "groups": named(set)}}))
		for _, id := range ids {
			want := 0
			for _, in := range set {
				if in == id {
					want = 1
				}
			}
			n := 0
			if g := exportGroup(t, key, id); g.Body["found"] == true {
				n = int(g.Body["group"].(map[string]any)["members"].(float64))
			}
			if n != want {
				t.Fatalf("group %s has %d members, want %d", id, n, want)
			}
		}
		if got := strings.Count(exportedGroups(t, key, user), `"id"`); got != len(set) {
			t.Fatalf("the user's export lists %d groups, want %d", got, len(set))
		}
	}
}

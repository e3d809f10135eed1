package waymark

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

func TestOperationValidation(t *testing.T) {
	cases := []struct {
		name, props, field string
	}{
		{"add", `{"seats":{"$add":1}}`, ""},
		{"add negative float", `{"seats":{"$add":-2.5}}`, ""},
		{"add string", `{"seats":{"$add":"1"}}`, "user.props.seats"},
		{"add null", `{"seats":{"$add":null}}`, "user.props.seats"},
		{"add huge", `{"seats":{"$add":1e999}}`, "user.props.seats"},
		{"two keys", `{"seats":{"$add":1,"$set_once":2}}`, "user.props.seats"},
		{"op and plain key", `{"seats":{"$add":1,"x":2}}`, "user.props.seats"},
		{"unknown", `{"seats":{"$inc":1}}`, "user.props.seats"},
		{"set_once object", `{"first":{"$set_once":{"a":1}}}`, ""},
		{"set_once null", `{"first":{"$set_once":null}}`, "user.props.first"},
		{"set_once too long", `{"first":{"$set_once":"` + strings.Repeat("x", MaxStringValueBytes+1) + `"}}`, "user.props.first"},
		{"append", `{"tags":{"$append":["a",1,true]}}`, ""},
		{"append scalar", `{"tags":{"$append":"a"}}`, "user.props.tags"},
		{"append nested", `{"tags":{"$append":[["a"]]}}`, "user.props.tags[0]"},
		{"remove object", `{"tags":{"$remove":{"a":1}}}`, "user.props.tags"},
		{"op below the top", `{"a":{"b":{"$add":1}}}`, "user.props.a.b.$add"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var req IdentifyRequest
			decode(t, `{"workspace":"ws1","user":{"username":"u","props":`+tc.props+`}}`, &req)
			err := req.Validate()
			if tc.field == "" {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			wantInvalid(t, err, tc.field)
		})
	}
}

func mergeJSON(t *testing.T, stored, in string, allowed AllowList) (map[string]any, error) {
	t.Helper()
	var s, i map[string]any
	decode(t, stored, &s)
	decode(t, in, &i)
	return MergeProps("user.props", s, i, allowed)
}

func TestMergePropsOperations(t *testing.T) {
	cases := []struct {
		name, stored, in, want string
	}{
		{"add to missing", `{}`, `{"n":{"$add":2}}`, `{"n":2}`},
		{"add to int", `{"n":40}`, `{"n":{"$add":2}}`, `{"n":42}`},
		{"add float", `{"n":1}`, `{"n":{"$add":0.5}}`, `{"n":1.5}`},
		{"add to a string", `{"n":"x"}`, `{"n":{"$add":3}}`, `{"n":3}`},
		{"add past int64", `{"n":9223372036854775807}`, `{"n":{"$add":1}}`, `{"n":9.223372036854776e+18}`},
		{"set_once missing", `{}`, `{"f":{"$set_once":"a"}}`, `{"f":"a"}`},
		{"set_once kept", `{"f":"old"}`, `{"f":{"$set_once":"new"}}`, `{"f":"old"}`},
		{"append union", `{"t":["a","b"]}`, `{"t":{"$append":["b","c","c"]}}`, `{"t":["a","b","c"]}`},
		{"append number written twice", `{"t":[1]}`, `{"t":{"$append":[1.0,2]}}`, `{"t":[1,2]}`},
		{"append to scalar", `{"t":"a"}`, `{"t":{"$append":["b"]}}`, `{"t":["a","b"]}`},
		{"append to missing", `{}`, `{"t":{"$append":[true]}}`, `{"t":[true]}`},
		{"remove", `{"t":["a","b","a","c"]}`, `{"t":{"$remove":["a","z"]}}`, `{"t":["b","c"]}`},
		{"remove from missing", `{}`, `{"t":{"$remove":["a"]}}`, `{}`},
		{"remove the scalar", `{"t":"a"}`, `{"t":{"$remove":["a"]}}`, `{"t":[]}`},
		{"values and null beside", `{"a":1,"b":2}`, `{"a":null,"c":{"$add":1},"b":"x"}`, `{"b":"x","c":1}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := mergeJSON(t, tc.stored, tc.in, nil)
			if err != nil {
				t.Fatal(err)
			}
			var want map[string]any
			decode(t, tc.want, &want)
			if len(want) == 0 {
				want = nil
			}
			gotJSON, _ := json.Marshal(got)
			wantJSON, _ := json.Marshal(want)
			if string(gotJSON) != string(wantJSON) {
				t.Fatalf("got %s, want %s", gotJSON, wantJSON)
			}
		})
	}
}

func TestMergePropsLimits(t *testing.T) {
	items := make([]string, MaxArrayItems)
	for i := range items {
		items[i] = `"i` + itoa(i) + `"`
	}
	full := `{"t":[` + strings.Join(items, ",") + `]}`
	if _, err := mergeJSON(t, full, `{"t":{"$append":["i0"]}}`, nil); err != nil {
		t.Fatalf("appending a held item to a full array: %v", err)
	}
	_, err := mergeJSON(t, full, `{"t":{"$append":["new"]}}`, nil)
	wantInvalid(t, err, "user.props.t")
	_, err = mergeJSON(t, `{"n":1.7976931348623157e308}`, `{"n":{"$add":1.7976931348623157e308}}`, nil)
	wantInvalid(t, err, "user.props.n")
}

func TestMergePropsAllowList(t *testing.T) {
	allowed := AllowList{"plan", "seats"}
	got, err := mergeJSON(t, `{"plan":"free","legacy":"x"}`, `{"seats":{"$add":1},"company":"Acme","plan":null}`, allowed)
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]any{"seats": json.Number("1")}; !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v: keys outside the list neither applied nor kept", got, want)
	}
	in := map[string]any{"seats": 1, "company": "Acme", "b": nil}
	if got := IgnoredProps(in, allowed); !reflect.DeepEqual(got, []string{"b", "company"}) {
		t.Fatalf("ignored %v", got)
	}
	if got := IgnoredProps(in, nil); got != nil {
		t.Fatalf("an empty list ignored %v", got)
	}
}

func TestValidateAllowList(t *testing.T) {
	got, err := ValidateAllowList("allowedProps", []string{"seats", "plan"})
	if err != nil || !reflect.DeepEqual(got, AllowList{"plan", "seats"}) {
		t.Fatalf("got %v, %v", got, err)
	}
	_, err = ValidateAllowList("allowedProps", []string{"plan", "plan"})
	wantInvalid(t, err, "allowedProps")
	_, err = ValidateAllowList("allowedProps", []string{"$add"})
	wantInvalid(t, err, "allowedProps.$add")
}

func TestIdentifyDigestOfOperations(t *testing.T) {
	ws := &Workspace{UserKeySecret: []byte("k")}
	var in UserInput
	decode(t, `{"username":"u","props":{"seats":{"$add":1}}}`, &in)
	if d := ws.IdentifyDigest(in); d != "" {
		t.Fatalf("an input with an operation has digest %q: its repeat would be skipped", d)
	}
	decode(t, `{"username":"u","props":{"seats":1}}`, &in)
	before := ws.IdentifyDigest(in)
	ws.AllowedProps = AllowList{"plan"}
	if before == "" || before == ws.IdentifyDigest(in) {
		t.Fatal("a changed allow-list keeps the digest: the profile would not be brought within it")
	}
}

func TestUserInputEncodesBack(t *testing.T) {
	body := `{"username":"u","email":null,"role":"admin","props":{"n":{"$add":1.5},"gone":null}}`
	var in, again UserInput
	decode(t, body, &in)
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	decode(t, string(b), &again)
	if !reflect.DeepEqual(in, again) {
		t.Fatalf("encoded %s: decodes to %+v, want %+v", b, again, in)
	}
}

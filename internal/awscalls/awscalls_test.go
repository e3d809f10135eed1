package awscalls

import (
	"reflect"
	"testing"
)

func TestExpressionAttributes(t *testing.T) {
	names := map[string]string{"#s": "state", "#d": "data"}
	cases := []struct {
		expr string
		want []string
	}{
		{"SET expiresAt = :exp", []string{"expiresAt"}},
		{"REMOVE expiresAt", []string{"expiresAt"}},
		{"attribute_exists(pk) AND #s <> :s", []string{"pk", "state"}},
		{"SET #d.plan = :p, counts[0] = if_not_exists(counts[0], :zero) + :one", []string{"data", "counts", "counts"}},
		{"ADD seen :id", []string{"seen"}},
		{"NOT contains(seen, :id)", []string{"seen"}},
	}
	for _, c := range cases {
		if got := ExpressionAttributes(names, c.expr); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%q: %v, want %v", c.expr, got, c.want)
		}
	}
}

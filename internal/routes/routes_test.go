package routes

import (
	"testing"

	"github.com/waymarkhq/waymark/internal/schema"
)

func TestAllows(t *testing.T) {
	levels := []Access{Read, ReadPublishKey, ReadRefreshExpiry, ReadWrite}
	want := map[[2]Access]bool{
		{Read, Read}:           true,
		{ReadPublishKey, Read}: true, {ReadPublishKey, ReadPublishKey}: true,
		{ReadRefreshExpiry, Read}: true, {ReadRefreshExpiry, ReadRefreshExpiry}: true,
		{ReadWrite, Read}: true, {ReadWrite, ReadPublishKey}: true, {ReadWrite, ReadRefreshExpiry}: true, {ReadWrite, ReadWrite}: true,
	}
	for _, granted := range levels {
		for _, need := range levels {
			if got := granted.Allows(need); got != want[[2]Access{granted, need}] {
				t.Errorf("%q allows %q: %v", granted, need, got)
			}
		}
	}
}

func TestNarrowUpdateOf(t *testing.T) {
	cases := []struct {
		table schema.Table
		attrs []string
		want  Access
	}{
		{schema.Workspaces, []string{"code", schema.SealKeyAttribute, schema.SealKeyAtAttribute}, ReadPublishKey},
		{schema.Workspaces, []string{"code", schema.SealKeyAttribute, "origins"}, 0},
		{schema.ContentState, []string{"pk", "sk", schema.TTLAttribute}, ReadRefreshExpiry},
		{schema.ContentState, []string{"pk", "sk", schema.TTLAttribute, "state"}, 0},
		// The sealing key is a workspace's: on another table it is no
		// narrow write.
		{schema.Users, []string{"pk", schema.SealKeyAttribute}, 0},
	}
	for _, c := range cases {
		if got := NarrowUpdateOf(c.table, c.attrs); got != c.want {
			t.Errorf("%s %v: %q, want %q", c.table.Name, c.attrs, got, c.want)
		}
	}
}

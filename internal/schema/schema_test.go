package schema_test

import (
	"os"
	"strings"
	"testing"

	"github.com/waymarkhq/waymark/internal/schema"
)

// The data inventory lists every attribute of every table, in the table's
// own section.
func TestDataInventoryListsEveryAttribute(t *testing.T) {
	doc, err := os.ReadFile("../../docs/data-inventory.md")
	if err != nil {
		t.Fatal(err)
	}
	sections := map[string]string{}
	for _, part := range strings.Split(string(doc), "\n## ")[1:] {
		title, body, _ := strings.Cut(part, "\n")
		sections[strings.TrimSpace(title)] = body
	}
	for _, table := range schema.All() {
		body, ok := sections[table.Name]
		if !ok {
			t.Errorf("docs/data-inventory.md has no section %q", table.Name)
			continue
		}
		for _, a := range table.Attributes {
			row := "| `" + a.Name + "` |"
			if !strings.Contains(body, row) {
				t.Errorf("docs/data-inventory.md: %s.%s is not listed", table.Name, a.Name)
				continue
			}
			personal := "| no |"
			if a.Personal {
				personal = "| yes |"
			}
			line := body[strings.Index(body, row):]
			line, _, _ = strings.Cut(line, "\n")
			if !strings.Contains(line, personal) {
				t.Errorf("docs/data-inventory.md: %s.%s personal data should read %s", table.Name, a.Name, personal)
			}
		}
	}
}

// Keys, index keys and the TTL attribute are declared attributes too.
func TestKeysAreDeclared(t *testing.T) {
	for _, table := range schema.All() {
		declared := map[string]bool{}
		for _, a := range table.Attributes {
			if declared[a.Name] {
				t.Errorf("%s.%s declared twice", table.Name, a.Name)
			}
			declared[a.Name] = true
		}
		keys := []string{table.PartitionKey.Name, table.TTLAttribute}
		if table.SortKey != nil {
			keys = append(keys, table.SortKey.Name)
		}
		for _, ix := range table.GlobalIndexes {
			keys = append(keys, ix.PartitionKey.Name)
			if ix.SortKey != nil {
				keys = append(keys, ix.SortKey.Name)
			}
		}
		for _, k := range keys {
			if !declared[k] {
				t.Errorf("%s: key attribute %s is not declared", table.Name, k)
			}
		}
	}
}

package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const sampleResult = `{"elapsed_time": 61.4, "files": [
 {"file_name": "a.go", "mutations": [
  {"type": "CONDITIONALS_BOUNDARY", "status": "KILLED", "line": 3, "column": 7},
  {"type": "CONDITIONALS_BOUNDARY", "status": "LIVED", "line": 9, "column": 2},
  {"type": "ARITHMETIC_BASE", "status": "NOT COVERED", "line": 1, "column": 5},
  {"type": "ARITHMETIC_BASE", "status": "NOT VIABLE", "line": 4, "column": 1}]},
 {"file_name": "b.go", "mutations": [
  {"type": "CONDITIONALS_NEGATION", "status": "KILLED", "line": 2, "column": 1},
  {"type": "CONDITIONALS_NEGATION", "status": "KILLED", "line": 5, "column": 1},
  {"type": "CONDITIONALS_NEGATION", "status": "TIMED OUT", "line": 8, "column": 3}]}]}`

func TestReportCountsAsGremlinsDoes(t *testing.T) {
	dir := t.TempDir()
	result := filepath.Join(dir, "pkg.json")
	if err := os.WriteFile(result, []byte(sampleResult), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := read("internal/pkg", result)
	if err != nil {
		t.Fatal(err)
	}
	if f.killed != 3 || f.lived != 1 || f.notCovered != 1 || f.timedOut != 1 {
		t.Fatalf("counted %+v", f)
	}
	if e, c := f.efficacy(), f.coverage(); e != 75 || c != 80 {
		t.Fatalf("efficacy %v, coverage %v; want 75 and 80 (timed-out and not-viable mutants in neither)", e, c)
	}
	var out strings.Builder
	write(&out, []figures{f}, "internal/pkg", 0)
	text := out.String()
	for _, want := range []string{
		"| internal/pkg | 3 | 1 | 1 | 1 | 75.0 % | 80.0 % | 1m1s |",
		"- `internal/pkg/a.go:1:5` ARITHMETIC_BASE, not covered\n- `internal/pkg/a.go:9:2` CONDITIONALS_BOUNDARY, lived\n- `internal/pkg/b.go:8:3` CONDITIONALS_NEGATION, timed out",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("report lacks %q:\n%s", want, text)
		}
	}
}

func TestUpdateKeepsWhatIsOutsideTheMarkers(t *testing.T) {
	file := filepath.Join(t.TempDir(), "mutation.md")
	before := "# Title\n\n" + beginMarker + "\nold figures\n" + endMarker + "\n\n## Explained by hand\n"
	if err := os.WriteFile(file, []byte(before), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := update(file, "new figures\n"); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(file)
	want := "# Title\n\n" + beginMarker + "\nnew figures\n" + endMarker + "\n\n## Explained by hand\n"
	if string(got) != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	if err := os.WriteFile(file, []byte("no markers\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := update(file, "x\n"); err == nil {
		t.Fatal("a file without markers was overwritten")
	}
}

// Command mutationreport turns the JSON results of gremlins runs into the
// figures of bench/mutation.md (`make mutate`). It rewrites only the part of
// the file between its two markers, so the hand-written account of each
// surviving mutant below them is kept from run to run.
//
//	go run ./bench/mutationreport -out bench/mutation.md -wall 1234 \
//	    -ran "internal/waymark" internal/waymark=waymark.json internal/envelope=envelope.json ...
//
// Each package's row says when its result was written: a run of some
// packages reports the others from their last run.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"
	"time"
)

const (
	beginMarker = "<!-- mutate:begin (written by make mutate) -->"
	endMarker   = "<!-- mutate:end -->"
)

// result is the part of gremlins' --output file this report reads.
type result struct {
	ElapsedTime float64 `json:"elapsed_time"`
	Files       []struct {
		Filename  string `json:"file_name"`
		Mutations []struct {
			Type   string `json:"type"`
			Status string `json:"status"`
			Line   int    `json:"line"`
			Column int    `json:"column"`
		} `json:"mutations"`
	} `json:"files"`
}

// mutant is one mutation that no test killed.
type mutant struct {
	file         string
	line, column int
	kind, status string
}

// figures are one package's counts, as gremlins defines them: efficacy is
// killed over killed + lived, mutator coverage is killed + lived over
// killed + lived + not covered; timed-out mutants count in neither.
type figures struct {
	pkg                                 string
	killed, lived, notCovered, timedOut int
	duration                            time.Duration
	ranAt                               time.Time
	survivors                           []mutant
}

func (f figures) efficacy() float64 {
	return percent(f.killed, f.killed+f.lived)
}

func (f figures) coverage() float64 {
	return percent(f.killed+f.lived, f.killed+f.lived+f.notCovered)
}

func percent(n, of int) float64 {
	if of == 0 {
		return 0
	}
	return 100 * float64(n) / float64(of)
}

func main() {
	out := flag.String("out", "bench/mutation.md", "the Markdown file to update")
	wall := flag.Int("wall", 0, "wall time of the whole run, in seconds")
	ran := flag.String("ran", "", "the packages this run tested")
	flag.Parse()
	if flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: mutationreport [-out FILE] [-wall SECONDS] PKG=RESULT.json ...")
		os.Exit(2)
	}
	var all []figures
	for _, arg := range flag.Args() {
		pkg, file, ok := strings.Cut(arg, "=")
		if !ok {
			fmt.Fprintf(os.Stderr, "mutationreport: %q is not PKG=RESULT.json\n", arg)
			os.Exit(2)
		}
		f, err := read(pkg, file)
		if err != nil {
			fmt.Fprintln(os.Stderr, "mutationreport:", err)
			os.Exit(1)
		}
		all = append(all, f)
	}
	var section strings.Builder
	write(&section, all, *ran, time.Duration(*wall)*time.Second)
	if err := update(*out, section.String()); err != nil {
		fmt.Fprintln(os.Stderr, "mutationreport:", err)
		os.Exit(1)
	}
	fmt.Print(section.String())
}

func read(pkg, file string) (figures, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return figures{}, err
	}
	info, err := os.Stat(file)
	if err != nil {
		return figures{}, err
	}
	var r result
	if err := json.Unmarshal(data, &r); err != nil {
		return figures{}, fmt.Errorf("%s: %w", file, err)
	}
	f := figures{pkg: pkg, duration: time.Duration(r.ElapsedTime * float64(time.Second)).Round(time.Second), ranAt: info.ModTime().UTC()}
	for _, file := range r.Files {
		for _, m := range file.Mutations {
			switch m.Status {
			case "KILLED":
				f.killed++
				continue
			case "LIVED":
				f.lived++
			case "NOT COVERED":
				f.notCovered++
			case "TIMED OUT":
				f.timedOut++
			default: // NOT VIABLE (does not compile), SKIPPED
				continue
			}
			f.survivors = append(f.survivors, mutant{
				file: path.Join(pkg, file.Filename), line: m.Line, column: m.Column,
				kind: m.Type, status: m.Status,
			})
		}
	}
	sort.Slice(f.survivors, func(i, j int) bool {
		a, b := f.survivors[i], f.survivors[j]
		if a.file != b.file {
			return a.file < b.file
		}
		if a.line != b.line {
			return a.line < b.line
		}
		if a.column != b.column {
			return a.column < b.column
		}
		return a.kind < b.kind
	})
	return f, nil
}

func write(w io.Writer, all []figures, ran string, wall time.Duration) {
	fmt.Fprintln(w, "| package | killed | lived | not covered | timed out | efficacy | mutator coverage | duration | run at (UTC) |")
	fmt.Fprintln(w, "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
	for _, f := range all {
		fmt.Fprintf(w, "| %s | %d | %d | %d | %d | %.1f %% | %.1f %% | %s | %s |\n",
			f.pkg, f.killed, f.lived, f.notCovered, f.timedOut, f.efficacy(), f.coverage(), f.duration, f.ranAt.Format("2006-01-02 15:04"))
	}
	if wall > 0 {
		fmt.Fprintf(w, "\nWall time of the last `make mutate` (%s): %s.\n", ran, wall)
	}
	for _, f := range all {
		if len(f.survivors) == 0 {
			continue
		}
		fmt.Fprintf(w, "\nNot killed in %s:\n\n", f.pkg)
		for _, m := range f.survivors {
			fmt.Fprintf(w, "- `%s:%d:%d` %s, %s\n", m.file, m.line, m.column, m.kind, strings.ToLower(m.status))
		}
	}
}

// update replaces the marked section of the file, or writes a file holding
// only that section when there is none yet.
func update(file, section string) error {
	block := beginMarker + "\n" + section + endMarker + "\n"
	old, err := os.ReadFile(file)
	if os.IsNotExist(err) {
		return os.WriteFile(file, []byte(block), 0o644)
	}
	if err != nil {
		return err
	}
	text := string(old)
	begin := strings.Index(text, beginMarker)
	end := strings.Index(text, endMarker)
	if begin < 0 || end < begin {
		return fmt.Errorf("%s has no %q … %q section to update", file, beginMarker, endMarker)
	}
	text = text[:begin] + block + strings.TrimPrefix(text[end+len(endMarker):], "\n")
	return os.WriteFile(file, []byte(text), 0o644)
}

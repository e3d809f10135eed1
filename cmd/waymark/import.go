package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/waymarkhq/waymark/internal/apigw"
	"github.com/waymarkhq/waymark/internal/service"
	"github.com/waymarkhq/waymark/internal/waymark"
)

func init() {
	register("user import", "import users in bulk from an NDJSON or CSV FILE (--resume continues an interrupted import)", runUserImport)
}

// importBatchBytes bounds the user objects of one batch, as the route's
// body limit bounds a call, with room for the envelope around them.
const importBatchBytes = apigw.MaxImportBodyBytes - 1024

// importInFlight is how many batches are imported at once. One: a batch
// already keeps up to 16 batch calls in flight (dynamo.PutNewUsers), and a
// second batch's reads among the first one's writes made the import slower
// against DynamoDB Local, not faster (bench, measured with 1, 2 and 4).
const importInFlight = 1

// importAttempts bounds the tries of one batch that is throttled (429) or
// finds a dependency unavailable (503).
const importAttempts = 8

// progressSuffix names the progress file of an import: FILE + suffix, next
// to the input.
const progressSuffix = ".waymark-import.json"

// importProgress is what an import has had acknowledged, saved after every
// batch so that --resume sends none of it again and skips nothing else.
// Batches are cut from the input the same way on every run (by count and
// size, in order), so a batch is known by its number.
type importProgress struct {
	Workspace string `json:"workspace"`
	// Input is the SHA-256 of the input file: a changed file is not
	// resumed.
	Input string `json:"input"`
	// Batches are the first batches, all acknowledged; Beyond are batches
	// after them acknowledged out of order.
	Batches   int           `json:"batches"`
	Beyond    []int         `json:"beyond,omitempty"`
	Users     int           `json:"users"`
	Imported  int           `json:"imported"`
	Unchanged int           `json:"unchanged"`
	Failed    []importIssue `json:"failed"`
}

// importIssue is a user the import refused, by its line in the input.
type importIssue struct {
	Line    int    `json:"line"`
	Field   string `json:"field,omitempty"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (p *importProgress) acked(batch int) bool {
	if batch < p.Batches {
		return true
	}
	for _, b := range p.Beyond {
		if b == batch {
			return true
		}
	}
	return false
}

func (p *importProgress) ack(batch int) {
	p.Beyond = append(p.Beyond, batch)
	for {
		i := -1
		for j, b := range p.Beyond {
			if b == p.Batches {
				i = j
			}
		}
		if i < 0 {
			return
		}
		p.Beyond = append(p.Beyond[:i], p.Beyond[i+1:]...)
		p.Batches++
	}
}

// save writes the progress file whole, through a rename, so that a crash
// leaves the previous or the new one, never half of one.
func (p *importProgress) save(path string) error {
	b, err := json.Marshal(p)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// importEntry is one user of the input: its JSON object and its line.
type importEntry struct {
	line int
	raw  json.RawMessage
	// err is set when the line could not be read as a user at all (a CSV
	// cell that breaks the row); the user is reported failed.
	err error
}

type importBatch struct {
	number  int
	entries []importEntry
}

func runUserImport(ctx context.Context, g globals, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("user import", flag.ContinueOnError)
	code := fs.String("workspace", "", "workspace code (required)")
	format := fs.String("format", "", "ndjson or csv (default: from the file name, .csv is CSV, anything else NDJSON)")
	resume := fs.Bool("resume", false, "continue an interrupted import of the same FILE, from its progress file FILE"+progressSuffix)
	asJSON := fs.Bool("json", false, "print the summary as JSON")
	positional, help, err := parseArgs(fs, "FILE", args, stdout)
	if help || err != nil {
		return err
	}
	if *code == "" || len(positional) != 1 {
		return usageError("user import: give --workspace CODE and one FILE")
	}
	file := positional[0]
	if *format == "" {
		*format = "ndjson"
		if strings.EqualFold(filepath.Ext(file), ".csv") {
			*format = "csv"
		}
	}
	if *format != "ndjson" && *format != "csv" {
		return usageError("user import: --format is ndjson or csv")
	}

	// First pass: the file's digest and its number of users, so that the
	// progress shows a total and a resume knows the file is the same.
	digest, total, err := surveyImport(file, *format)
	if err != nil {
		return err
	}
	progressPath := file + progressSuffix
	progress := &importProgress{Workspace: *code, Input: digest, Failed: []importIssue{}}
	switch saved, err := os.ReadFile(progressPath); {
	case err == nil && !*resume:
		return usageError("user import: %s holds the progress of an earlier import of this file: pass --resume to continue it, or remove the file to start over", progressPath)
	case err == nil:
		if err := json.Unmarshal(saved, progress); err != nil {
			return fmt.Errorf("%s: %w", progressPath, err)
		}
		if progress.Workspace != *code || progress.Input != digest {
			return usageError("user import: %s is the progress of another workspace or of another version of the file: remove it to start over", progressPath)
		}
	case !errors.Is(err, os.ErrNotExist):
		return err
	}

	graph, ws, err := openWorkspace(ctx, g, *code)
	if err != nil {
		return err
	}
	show := newImportDisplay(stderr, total, progress.Users)
	var (
		mu       sync.Mutex
		firstErr error
		wg       sync.WaitGroup
		slots    = make(chan struct{}, importInFlight)
	)
	send := func(b importBatch) {
		defer func() { <-slots }()
		res, err := importBatchWithRetries(ctx, graph.Service, ws, b, stderr)
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			return
		}
		progress.Users += len(b.entries)
		progress.Imported += res.Imported
		progress.Unchanged += res.Unchanged
		for _, f := range res.Failed {
			issue := importIssue{Line: b.entries[f.Index].line, Code: f.Code, Field: strings.TrimPrefix(strings.TrimPrefix(f.Field, fmt.Sprintf("users[%d]", f.Index)), "."),
				Message: strings.TrimPrefix(f.Message, f.Field+": ")}
			progress.Failed = append(progress.Failed, issue)
			fmt.Fprintf(show.log(), "line %d: %s\n", issue.Line, issue.text())
		}
		progress.ack(b.number)
		if err := progress.save(progressPath); err != nil && firstErr == nil {
			firstErr = err
		}
		show.add(len(b.entries))
	}
	err = readImportBatches(file, *format, func(b importBatch) error {
		if progress.acked(b.number) {
			return nil
		}
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
		mu.Lock()
		failed := firstErr
		mu.Unlock()
		if failed != nil {
			<-slots
			return failed
		}
		wg.Go(func() { send(b) })
		return nil
	})
	wg.Wait()
	show.finish()
	if err == nil {
		err = firstErr
	}
	if err != nil {
		if errors.Is(err, context.Canceled) || ctx.Err() != nil {
			return fmt.Errorf("interrupted after %d of %d users: run the same command with --resume to continue", progress.Users, total)
		}
		return fmt.Errorf("%w (%d of %d users done: run the same command with --resume to continue)", appFailure(err), progress.Users, total)
	}
	if err := os.Remove(progressPath); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(map[string]any{"users": progress.Users, "imported": progress.Imported,
			"unchanged": progress.Unchanged, "failed": progress.Failed})
	}
	_, err = fmt.Fprintf(stdout, "%d users: %d imported, %d unchanged, %d failed\n", progress.Users, progress.Imported, progress.Unchanged, len(progress.Failed))
	return err
}

func (i importIssue) text() string {
	if i.Field == "" {
		return i.Message
	}
	return i.Field + ": " + i.Message
}

// importBatchWithRetries imports one batch, waiting and trying again while
// the store is throttled or unavailable (the import is idempotent: users a
// failed try wrote count as unchanged on the next).
func importBatchWithRetries(ctx context.Context, svc *service.Service, ws *waymark.Workspace, b importBatch, stderr io.Writer) (*service.ImportResult, error) {
	req := &service.ImportRequest{Users: make([]service.ImportEntry, len(b.entries))}
	for i, e := range b.entries {
		if e.err != nil {
			req.Users[i] = service.ImportEntry{DecodeErr: e.err}
			continue
		}
		req.Users[i] = apigw.DecodeImportUser(e.raw)
	}
	for attempt := 1; ; attempt++ {
		res, err := svc.ImportOf(ctx, service.Call{RequestID: waymark.NewID()}, ws, req)
		appErr := waymark.AsError(err)
		retryable := appErr.Code == waymark.EThrottled || appErr.Code == waymark.EUnavailable
		if err == nil || !retryable || attempt == importAttempts || ctx.Err() != nil {
			return res, err
		}
		wait := max(appErr.RetryAfter, time.Duration(attempt)*time.Second)
		fmt.Fprintf(stderr, "%s: trying again in %s\n", appErr.Code, wait)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		}
	}
}

// surveyImport reads the input once: its SHA-256 and how many users it
// holds.
func surveyImport(file, format string) (string, int, error) {
	f, err := os.Open(file)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	users := 0
	err = scanImport(io.TeeReader(f, h), format, func(importEntry) error {
		users++
		return nil
	})
	if err != nil {
		return "", 0, err
	}
	// The scan may stop before the end (trailing blank lines): the digest
	// covers every byte.
	if _, err := io.Copy(h, f); err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(h.Sum(nil)), users, nil
}

// readImportBatches cuts the input into batches of at most
// service.MaxImportUsers users and importBatchBytes bytes, in order.
func readImportBatches(file, format string, fn func(importBatch) error) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	b := importBatch{}
	size := 0
	flush := func() error {
		if len(b.entries) == 0 {
			return nil
		}
		err := fn(b)
		b = importBatch{number: b.number + 1}
		size = 0
		return err
	}
	err = scanImport(f, format, func(e importEntry) error {
		if len(b.entries) == service.MaxImportUsers || size+len(e.raw)+1 > importBatchBytes {
			if err := flush(); err != nil {
				return err
			}
		}
		b.entries = append(b.entries, e)
		size += len(e.raw) + 1
		return nil
	})
	if err != nil {
		return err
	}
	return flush()
}

// scanImport calls fn for each user of the input, in order.
func scanImport(r io.Reader, format string, fn func(importEntry) error) error {
	if format == "csv" {
		return scanCSV(r, fn)
	}
	sc := bufio.NewScanner(r)
	// A user object is at most a few hundred KiB (100 props of 1 KiB);
	// a longer line is refused whole rather than cut.
	sc.Buffer(make([]byte, 0, 64<<10), importBatchBytes)
	line := 0
	for sc.Scan() {
		line++
		text := bytes.TrimSpace(sc.Bytes())
		if len(text) == 0 {
			continue
		}
		if err := fn(importEntry{line: line, raw: bytes.Clone(text)}); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("line %d: %w", line+1, err)
	}
	return nil
}

// csvColumns are the CSV header's fixed columns; the others are props.<key>.
var csvColumns = map[string]bool{"username": true, "email": true, "firstname": true, "lastname": true, "role": true, "signUpAt": true}

// scanCSV reads CSV (RFC 4180, with a header row) with encoding/csv and
// turns each row into a user object: an empty cell leaves its field out;
// a props cell holding a JSON number, true or false is that value, any
// other cell a string.
func scanCSV(r io.Reader, fn func(importEntry) error) error {
	cr := csv.NewReader(r)
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("CSV header: %w", err)
	}
	seen := map[string]bool{}
	for i, name := range header {
		name = strings.TrimSpace(strings.TrimPrefix(name, "\ufeff"))
		header[i] = name
		if seen[name] {
			return usageError("CSV header: column %q appears twice", name)
		}
		seen[name] = true
		if !csvColumns[name] && !strings.HasPrefix(name, "props.") {
			return usageError("CSV header: unknown column %q (columns are username, email, firstname, lastname, role, signUpAt and props.<key>)", name)
		}
	}
	if !seen["username"] {
		return usageError("CSV header: no username column")
	}
	for {
		record, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		var parseErr *csv.ParseError
		if errors.As(err, &parseErr) && !errors.Is(parseErr.Err, csv.ErrQuote) && !errors.Is(parseErr.Err, csv.ErrBareQuote) {
			// A row with another number of cells: this user only.
			if err := fn(importEntry{line: parseErr.StartLine, err: &waymark.Error{Code: waymark.EInvalidArgument, Message: parseErr.Err.Error()}}); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("CSV: %w", err)
		}
		line, _ := cr.FieldPos(0)
		user := map[string]any{}
		props := map[string]any{}
		for i, cell := range record {
			if cell == "" {
				continue
			}
			if key, ok := strings.CutPrefix(header[i], "props."); ok {
				props[key] = csvValue(cell)
				continue
			}
			user[header[i]] = cell
		}
		if len(props) > 0 {
			user["props"] = props
		}
		raw, err := json.Marshal(user)
		if err != nil {
			return err
		}
		if err := fn(importEntry{line: line, raw: raw}); err != nil {
			return err
		}
	}
}

func csvValue(cell string) any {
	if cell == "true" || cell == "false" {
		return cell == "true"
	}
	var n json.Number
	if json.Unmarshal([]byte(cell), &n) == nil && !strings.HasPrefix(cell, "\"") {
		return n
	}
	return cell
}

// importDisplay shows the import's progress: a bar with done/total, rate and
// time left on a terminal, a plain line every few seconds otherwise (a log
// file or a pipe gets no control characters).
type importDisplay struct {
	out       io.Writer
	bar       *progressbar.ProgressBar
	total     int
	done      int
	began     time.Time
	startDone int
	lastLine  time.Time
}

func newImportDisplay(out io.Writer, total, done int) *importDisplay {
	d := &importDisplay{out: out, total: total, done: done, startDone: done, began: time.Now()}
	if f, ok := out.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		d.bar = progressbar.NewOptions(total,
			progressbar.OptionSetWriter(out),
			progressbar.OptionSetDescription("importing"),
			progressbar.OptionShowCount(),
			progressbar.OptionShowIts(),
			progressbar.OptionSetItsString("users"),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionOnCompletion(func() { fmt.Fprintln(out) }),
		)
		_ = d.bar.Set(done)
	}
	return d
}

// log is where a line goes without breaking the bar.
func (d *importDisplay) log() io.Writer {
	if d.bar != nil {
		_ = d.bar.Clear()
	}
	return d.out
}

func (d *importDisplay) add(n int) {
	d.done += n
	if d.bar != nil {
		_ = d.bar.Add(n)
		return
	}
	if time.Since(d.lastLine) >= 2*time.Second || d.done == d.total {
		d.lastLine = time.Now()
		fmt.Fprintln(d.out, d.line())
	}
}

// line is the plain progress line: done/total, rate and time left.
func (d *importDisplay) line() string {
	elapsed := time.Since(d.began).Seconds()
	rate := float64(d.done-d.startDone) / max(elapsed, 1e-3)
	eta := "?"
	if rate > 0 {
		eta = time.Duration(float64(d.total-d.done) / rate * float64(time.Second)).Round(time.Second).String()
	}
	return fmt.Sprintf("imported %d/%d users (%.0f users/s, %s left)", d.done, d.total, rate, eta)
}

func (d *importDisplay) finish() {
	if d.bar != nil {
		_ = d.bar.Exit()
	}
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/waymarkhq/waymark/internal/devstack"
	"github.com/waymarkhq/waymark/internal/schema"
	"github.com/waymarkhq/waymark/internal/wiring"
)

func createWorkspace(t *testing.T) string {
	t.Helper()
	out, err := cli(t, "--local", "workspace", "create", "--name", "import test", "--json")
	var created struct{ Code string }
	if err != nil || json.Unmarshal([]byte(out), &created) != nil {
		t.Fatalf("workspace create: %q %v", out, err)
	}
	return created.Code
}

// storedVersions reads the version of every stored user of the workspace
// among the usernames, by their keys.
func storedVersions(t *testing.T, dev *devstack.Dev, code string, usernames []string) map[int64]int {
	t.Helper()
	ctx := context.Background()
	graph, err := wiring.New(ctx, dev.State.Config(), wiring.Logger(io.Discard, "error"))
	if err != nil {
		t.Fatal(err)
	}
	ws, err := graph.Store.GetWorkspace(ctx, code)
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]bool{}
	for _, u := range usernames {
		keys[ws.UserKey(u)] = true
	}
	db, _, err := dev.State.Config().Clients(ctx)
	if err != nil {
		t.Fatal(err)
	}
	versions := map[int64]int{}
	pages := dynamodb.NewScanPaginator(db, &dynamodb.ScanInput{TableName: aws.String(dev.State.Tables[schema.UsersTable]),
		ProjectionExpression: aws.String("pk, v"), ConsistentRead: aws.Bool(true)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, item := range page.Items {
			pk, _ := item["pk"].(*types.AttributeValueMemberS)
			v, _ := item["v"].(*types.AttributeValueMemberN)
			if pk == nil || v == nil {
				t.Fatalf("user item without pk or v: %v", item)
			}
			version, err := strconv.ParseInt(v.Value, 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			if keys[pk.Value] {
				versions[version]++
			}
		}
	}
	return versions
}

// TestImportInterruptedAndResumed: an import of 10 000 users is cancelled
// halfway (as Ctrl-C cancels the CLI's context), then resumed: the resumed
// run sends only what was not acknowledged, and at the end every user is
// stored exactly once (version 1: written once) and the counts add up.
func TestImportInterruptedAndResumed(t *testing.T) {
	dev := startDev(t)
	code := createWorkspace(t)
	const users = 10000
	file := filepath.Join(t.TempDir(), "users.ndjson")
	var input bytes.Buffer
	usernames := make([]string, users)
	for i := range users {
		usernames[i] = fmt.Sprintf("bulk-%05d@example.com", i)
		fmt.Fprintf(&input, `{"username":%q,"firstname":"User %d","props":{"plan":"pro","seat":%d}}`+"\n", usernames[i], i, i)
	}
	if err := os.WriteFile(file, input.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	progressFile := file + progressSuffix

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stderr bytes.Buffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"--local", "user", "import", "--workspace", code, file}, io.Discard, &stderr)
	}()
	var acked importProgress
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the import never got halfway")
		}
		if b, err := os.ReadFile(progressFile); err == nil && json.Unmarshal(b, &acked) == nil && acked.Users >= users/2 {
			break
		}
	}
	cancel()
	err := <-done
	if err == nil || !strings.Contains(err.Error(), "--resume") {
		t.Fatalf("interrupted import: %v, want a message that says --resume", err)
	}
	b, err := os.ReadFile(progressFile)
	if err != nil || json.Unmarshal(b, &acked) != nil {
		t.Fatalf("progress file after the interruption: %v", err)
	}
	if acked.Users < users/2 || acked.Users >= users {
		t.Fatalf("interrupted after %d users acknowledged, want halfway", acked.Users)
	}
	t.Logf("interrupted with %d users acknowledged", acked.Users)

	// Without --resume the CLI refuses rather than starting over.
	if _, err := cli(t, "--local", "user", "import", "--workspace", code, file); err == nil || !strings.Contains(err.Error(), "--resume") {
		t.Fatalf("import over a progress file without --resume: %v", err)
	}

	stderr.Reset()
	var stdout bytes.Buffer
	if err := run(context.Background(), []string{"--local", "user", "import", "--workspace", code, "--resume", "--json", file}, &stdout, &stderr); err != nil {
		t.Fatalf("resume: %v\n%s", err, stderr.String())
	}
	var summary struct {
		Users, Imported, Unchanged int
		Failed                     []importIssue
	}
	if err := json.Unmarshal(stdout.Bytes(), &summary); err != nil {
		t.Fatal(err)
	}
	// users counts every user sent and acknowledged once: a resumed run
	// that sent an acknowledged batch again would count more.
	if summary.Users != users || summary.Imported+summary.Unchanged != users || len(summary.Failed) != 0 {
		t.Fatalf("summary %+v, want %d users, each imported or unchanged", summary, users)
	}
	// Only users written by the interrupted run but not acknowledged can be
	// unchanged: at most the batches that were in flight.
	if summary.Unchanged > importInFlight*1000 {
		t.Errorf("%d users unchanged, more than the batches in flight at the interruption", summary.Unchanged)
	}
	if !strings.Contains(stderr.String(), fmt.Sprintf("imported %d/%d users", users, users)) {
		t.Errorf("no plain progress line on a stderr that is not a terminal:\n%s", stderr.String())
	}
	if _, err := os.Stat(progressFile); !os.IsNotExist(err) {
		t.Errorf("progress file left after a complete import: %v", err)
	}
	if versions := storedVersions(t, dev, code, usernames); len(versions) != 1 || versions[1] != users {
		t.Errorf("stored users by version: %v, want all %d at version 1 (written once)", versions, users)
	}
}

// TestImportCSV: a CSV file with the documented header; props cells typed,
// empty cells left out, a bad row reported by its line, and a second run
// finds everything unchanged.
func TestImportCSV(t *testing.T) {
	startDev(t)
	code := createWorkspace(t)
	file := filepath.Join(t.TempDir(), "users.csv")
	csvText := "username,email,firstname,lastname,role,signUpAt,props.plan,props.seats,props.trial\n" +
		"csv-ada@example.com,ada@example.com,Ada,\"Lovelace, Countess\",admin,2025-01-02T03:04:05Z,pro,12,true\n" +
		"csv-bob@example.com,,,,,,,,\n" +
		"csv-bad@example.com,,,,,yesterday,,,\n" +
		"csv-short@example.com,too few cells\n"
	if err := os.WriteFile(file, []byte(csvText), 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), []string{"--local", "user", "import", "--workspace", code, file}, &stdout, &stderr); err != nil {
		t.Fatalf("import: %v\n%s", err, stderr.String())
	}
	if got := stdout.String(); got != "4 users: 2 imported, 0 unchanged, 2 failed\n" {
		t.Errorf("summary %q", got)
	}
	for _, want := range []string{"line 4: signUpAt: ", "line 5: "} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
		}
	}
	out, err := cli(t, "--local", "user", "export", "--workspace", code, "csv-ada@example.com")
	if err != nil {
		t.Fatal(err)
	}
	var export struct{ User map[string]any }
	if err := json.Unmarshal([]byte(out), &export); err != nil {
		t.Fatal(err)
	}
	if export.User["lastname"] != "Lovelace, Countess" || fmt.Sprint(export.User["props"]) != "map[plan:pro seats:12 trial:true]" || export.User["signUpAt"] != "2025-01-02T03:04:05Z" {
		t.Errorf("exported %v", export.User)
	}
	out, err = cli(t, "--local", "user", "import", "--workspace", code, file)
	if err != nil || out != "4 users: 0 imported, 2 unchanged, 2 failed\n" {
		t.Errorf("second import: %q %v", out, err)
	}
	bad := filepath.Join(t.TempDir(), "bad.csv")
	if err := os.WriteFile(bad, []byte("username,nickname\nx,y\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := cli(t, "--local", "user", "import", "--workspace", code, bad); err == nil || !strings.Contains(err.Error(), `unknown column "nickname"`) {
		t.Errorf("unknown column: %v", err)
	}
}

// TestImportProgressAck: batches acknowledged out of order are kept apart
// until the ones before them are in, then folded into the count of leading
// batches; none is forgotten and none is acknowledged twice.
func TestImportProgressAck(t *testing.T) {
	var p importProgress
	for _, b := range []int{1, 3, 0, 2, 5} {
		p.ack(b)
	}
	if p.Batches != 4 || fmt.Sprint(p.Beyond) != "[5]" {
		t.Fatalf("after 1, 3, 0, 2, 5: %d leading batches and %v beyond, want 4 and [5]", p.Batches, p.Beyond)
	}
	for b, want := range []bool{true, true, true, true, false, true, false} {
		if p.acked(b) != want {
			t.Errorf("acked(%d) = %v, want %v", b, !want, want)
		}
	}
}

// TestCSVValue: a props cell is a number or a boolean when it reads as one
// in JSON, and a string otherwise (leading zeros, quotes, words).
func TestCSVValue(t *testing.T) {
	for cell, want := range map[string]string{"12": "json.Number 12", "-1.5e3": "json.Number -1.5e3", "true": "bool true",
		"false": "bool false", "007": "string 007", `"12"`: `string "12"`, "pro": "string pro", "True": "string True", "1 2": "string 1 2"} {
		v := csvValue(cell)
		if got := fmt.Sprintf("%T %v", v, v); strings.TrimPrefix(got, "json.") != strings.TrimPrefix(want, "json.") {
			t.Errorf("csvValue(%q) = %s, want %s", cell, got, want)
		}
	}
}

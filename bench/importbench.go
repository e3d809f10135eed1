package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/waymarkhq/waymark/internal/config"
	"github.com/waymarkhq/waymark/internal/devstack"
	"github.com/waymarkhq/waymark/internal/schema"
	"github.com/waymarkhq/waymark/internal/waymark"
)

// importWorkspace is the workspace the import is measured on: a new one, so
// that the CLI's instance starts with no key a request of this run made.
const importWorkspace = "bench-import"

// importFloorInFlight is the most BatchWriteItem calls the CLI has in
// flight (one batch at a time, 16 calls): the floor's parallelism.
const importFloorInFlight = 16

// importResult is the bulk import's throughput against its floor.
type importResult struct {
	users       int
	elapsed     time.Duration // the CLI's run, process start to exit
	again       time.Duration // the same file again: nothing to write
	floor       time.Duration // the same items, BatchWriteItem alone: the mean of
	floorBefore time.Duration // the warm-up's items, right before the import
	floorAfter  time.Duration // the import's items, right after it
	conditional time.Duration // the same items, one conditional PutItem each
	kms         map[string]int
	summary     struct{ Users, Imported, Unchanged int }
	againSum    struct{ Users, Imported, Unchanged int }
}

func (r importResult) rate(d time.Duration) float64 { return float64(r.users) / d.Seconds() }

func (r importResult) kmsTotal() int {
	n := 0
	for _, c := range r.kms {
		n += c
	}
	return n
}

// importThroughput runs `waymark --local user import` (the binary, built
// here) on a file of n users against the bench's engines, the CLI's KMS
// calls counted by a proxy in front of local-kms; then writes the very items
// it stored again, under other keys, with BatchWriteItem alone (the floor)
// and with one conditional PutItem each (what closing the import's race
// with a concurrent identify of a new user would cost).
func importThroughput(ctx context.Context, cfg config.Config, g *graph, dir string, n int) (importResult, error) {
	res := importResult{users: n, kms: map[string]int{}}
	bin := filepath.Join(dir, "waymark-cli")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/waymark")
	if out, err := build.CombinedOutput(); err != nil {
		return res, fmt.Errorf("build the CLI: %w\n%s", err, out)
	}
	ws, _, err := waymark.NewWorkspace(waymark.NewWorkspaceOptions{Code: importWorkspace, Name: "Bench import"}, time.Now())
	if err != nil {
		return res, err
	}
	if err := g.store.PutWorkspace(ctx, ws); err != nil {
		return res, err
	}

	var mu sync.Mutex
	proxyURL, stopProxy, err := countingProxy(cfg.KMSEndpoint, func(op string) {
		mu.Lock()
		res.kms[op]++
		mu.Unlock()
	})
	if err != nil {
		return res, err
	}
	defer stopProxy()
	stateDir := filepath.Join(dir, "import-state")
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return res, err
	}
	state := devstack.State{DynamoDB: cfg.DynamoDBEndpoint, KMS: proxyURL, KMSKeyID: cfg.KMSKeyID, Tables: cfg.Tables}
	stateJSON, err := json.Marshal(state)
	if err != nil {
		return res, err
	}
	if err := os.WriteFile(filepath.Join(stateDir, devstack.StateFile), stateJSON, 0o600); err != nil {
		return res, err
	}

	runCLI := func(file string, into any) (time.Duration, error) {
		cmd := exec.CommandContext(ctx, bin, "--local", "user", "import", "--workspace", importWorkspace, "--json", file)
		cmd.Env = append(os.Environ(), "WAYMARK_STATE_DIR="+stateDir)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		start := time.Now()
		err := cmd.Run()
		elapsed := time.Since(start)
		if err != nil {
			return 0, fmt.Errorf("waymark user import: %w\n%s", err, stderr.Bytes())
		}
		return elapsed, json.Unmarshal(stdout.Bytes(), into)
	}
	table := aws.String(cfg.Tables[schema.UsersTable])
	floor := func(items []map[string]types.AttributeValue, prefix string) (time.Duration, error) {
		return timed(func() error {
			return forEach((len(items)+24)/25, importFloorInFlight, func(i int) error {
				var requests []types.WriteRequest
				for _, item := range items[i*25 : min(i*25+25, len(items))] {
					requests = append(requests, types.WriteRequest{PutRequest: &types.PutRequest{Item: rekeyed(item, prefix)}})
				}
				pending := map[string][]types.WriteRequest{*table: requests}
				for len(pending) > 0 {
					out, err := g.db.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: pending})
					if err != nil {
						return err
					}
					pending = out.UnprocessedItems
				}
				return nil
			})
		})
	}

	// A first import of as many other users warms the engine's batch paths;
	// its KMS calls are not counted. The floor runs right before and right
	// after the measured import, on the items each import stored: the
	// machine's load moves, and the mean of the two is the floor.
	warmFile, warmUsers, err := importFile(dir, "warm", n)
	if err != nil {
		return res, err
	}
	var warm struct{ Users int }
	if _, err := runCLI(warmFile, &warm); err != nil {
		return res, err
	}
	warmItems, err := importedItems(ctx, g.db, cfg.Tables[schema.UsersTable], ws, warmUsers)
	if err != nil {
		return res, err
	}
	if res.floorBefore, err = floor(warmItems, "flo1-"); err != nil {
		return res, err
	}
	mu.Lock()
	clear(res.kms)
	mu.Unlock()
	file, usernames, err := importFile(dir, "import", n)
	if err != nil {
		return res, err
	}
	if res.elapsed, err = runCLI(file, &res.summary); err != nil {
		return res, err
	}
	mu.Lock()
	first := maps.Clone(res.kms)
	mu.Unlock()
	items, err := importedItems(ctx, g.db, cfg.Tables[schema.UsersTable], ws, usernames)
	if err != nil {
		return res, err
	}
	if res.floorAfter, err = floor(items, "flo2-"); err != nil {
		return res, err
	}
	res.floor = (res.floorBefore + res.floorAfter) / 2
	if res.again, err = runCLI(file, &res.againSum); err != nil {
		return res, err
	}
	// The second run is another process with calls of its own: the figure
	// is the first run's.
	mu.Lock()
	res.kms = first
	mu.Unlock()

	if res.conditional, err = timed(func() error {
		return forEach(len(items), importFloorInFlight, func(i int) error {
			_, err := g.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: table, Item: rekeyed(items[i], "cond-"),
				ConditionExpression: aws.String("attribute_not_exists(pk)")})
			return err
		})
	}); err != nil {
		return res, err
	}
	return res, nil
}

// importFile writes an NDJSON file of n users named after prefix, each
// with a profile and a few props.
func importFile(dir, prefix string, n int) (string, []string, error) {
	file := filepath.Join(dir, prefix+".ndjson")
	var input bytes.Buffer
	usernames := make([]string, n)
	for i := range n {
		usernames[i] = fmt.Sprintf("%s-%05d@example.com", prefix, i)
		fmt.Fprintf(&input, `{"username":%q,"email":"person-%05d@example.com","firstname":"User %d","signUpAt":"2025-03-04T05:06:07Z","props":{"plan":"pro","seats":%d,"beta":true}}`+"\n",
			usernames[i], i, i, i%50)
	}
	return file, usernames, os.WriteFile(file, input.Bytes(), 0o600)
}

func timed(fn func() error) (time.Duration, error) {
	start := time.Now()
	err := fn()
	return time.Since(start), err
}

// rekeyed is a copy of an item under another key of the same length.
func rekeyed(item map[string]types.AttributeValue, prefix string) map[string]types.AttributeValue {
	out := make(map[string]types.AttributeValue, len(item))
	for k, v := range item {
		out[k] = v
	}
	pk := item["pk"].(*types.AttributeValueMemberS).Value
	out["pk"] = &types.AttributeValueMemberS{Value: prefix + pk[len(prefix):]}
	return out
}

// importedItems reads back the items the import wrote.
func importedItems(ctx context.Context, db *dynamodb.Client, table string, ws *waymark.Workspace, usernames []string) ([]map[string]types.AttributeValue, error) {
	keys := map[string]bool{}
	for _, u := range usernames {
		keys[ws.UserKey(u)] = true
	}
	var items []map[string]types.AttributeValue
	pages := dynamodb.NewScanPaginator(db, &dynamodb.ScanInput{TableName: aws.String(table)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		for _, item := range page.Items {
			if pk, ok := item["pk"].(*types.AttributeValueMemberS); ok && keys[pk.Value] {
				items = append(items, item)
			}
		}
	}
	if len(items) != len(usernames) {
		return nil, fmt.Errorf("the import stored %d of %d users", len(items), len(usernames))
	}
	return items, nil
}

// countingProxy forwards to a KMS endpoint, counting calls by operation
// (the X-Amz-Target header of the JSON protocol).
func countingProxy(target string, count func(op string)) (string, func(), error) {
	u, err := url.Parse(target)
	if err != nil {
		return "", nil, err
	}
	proxy := httputil.NewSingleHostReverseProxy(u)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		op := r.Header.Get("X-Amz-Target")
		count(op[strings.LastIndex(op, ".")+1:])
		proxy.ServeHTTP(w, r)
	})}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintln(os.Stderr, "bench: KMS proxy:", err)
		}
	}()
	return "http://" + ln.Addr().String(), func() { _ = srv.Close() }, nil
}

package localstack

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/url"
	"os"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/waymarkhq/waymark/internal/config"
	"github.com/waymarkhq/waymark/internal/schema"
)

// shared is the stack most tests use; TestMain stops it whatever happens to
// the tests, and the kernel kills its engines if the test binary dies.
var shared *Stack

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		os.Exit(m.Run())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	start := time.Now()
	s, err := Start(ctx, Options{TablePrefix: "test-"})
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "localstack: shared stack started in %v\n", time.Since(start).Round(time.Millisecond))
	shared = s
	code := m.Run()
	if err := s.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		code = max(code, 1)
	}
	os.Exit(code)
}

func sharedStack(t *testing.T) *Stack {
	t.Helper()
	if shared == nil {
		t.Skip("starts the local engines")
	}
	return shared
}

func clients(t *testing.T, s *Stack) (*dynamodb.Client, *kms.Client) {
	t.Helper()
	db, k, err := s.Config().Clients(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return db, k
}

func TestStackConfig(t *testing.T) {
	s := sharedStack(t)
	cfg := s.Config()
	if cfg.DynamoDBEndpoint != s.DynamoDBEndpoint || cfg.KMSEndpoint != s.KMSEndpoint || cfg.KMSKeyID != s.KMSKeyID {
		t.Errorf("Config() = %+v, stack %+v", cfg, s)
	}
	for _, ep := range []string{s.DynamoDBEndpoint, s.KMSEndpoint} {
		if !strings.HasPrefix(ep, "http://127.0.0.1:") {
			t.Errorf("endpoint %s is not on loopback", ep)
		}
	}
	for _, tbl := range schema.All() {
		if got := cfg.Tables[tbl.Name]; got != "test-"+tbl.Name {
			t.Errorf("table %s -> %q", tbl.Name, got)
		}
	}
	if s.Region != config.LocalRegion {
		t.Errorf("Region = %s", s.Region)
	}
}

func TestTablesMatchSchema(t *testing.T) {
	s := sharedStack(t)
	db, _ := clients(t, s)
	for _, tbl := range schema.All() {
		name := s.Tables[tbl.Name]
		out, err := db.DescribeTable(t.Context(), &dynamodb.DescribeTableInput{TableName: aws.String(name)})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		desc := out.Table
		if !sameKeys(desc.KeySchema, keySchema(tbl.PartitionKey, tbl.SortKey)) {
			t.Errorf("%s: keys %v", name, desc.KeySchema)
		}
		if bm := desc.BillingModeSummary; bm == nil || bm.BillingMode != ddbtypes.BillingModePayPerRequest {
			t.Errorf("%s: billing mode %+v", name, bm)
		}
		if len(desc.GlobalSecondaryIndexes) != len(tbl.GlobalIndexes) {
			t.Errorf("%s: %d indexes, want %d", name, len(desc.GlobalSecondaryIndexes), len(tbl.GlobalIndexes))
		}
		for i, ix := range tbl.GlobalIndexes {
			got := desc.GlobalSecondaryIndexes[i]
			if aws.ToString(got.IndexName) != ix.Name || !sameKeys(got.KeySchema, keySchema(ix.PartitionKey, ix.SortKey)) ||
				got.Projection == nil || got.Projection.ProjectionType != ddbtypes.ProjectionTypeAll {
				t.Errorf("%s: index %+v", name, got)
			}
		}
		ttl, err := db.DescribeTimeToLive(t.Context(), &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(name)})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if d := ttl.TimeToLiveDescription; aws.ToString(d.AttributeName) != schema.TTLAttribute || d.TimeToLiveStatus != ddbtypes.TimeToLiveStatusEnabled {
			t.Errorf("%s: time to live %+v", name, d)
		}
	}
}

func TestCreateTablesIsRepeatable(t *testing.T) {
	s := sharedStack(t)
	db, _ := clients(t, s)
	if err := CreateTables(t.Context(), db, s.Tables); err != nil {
		t.Fatal(err)
	}
}

func TestCreateTablesRefusesOtherKeys(t *testing.T) {
	s := sharedStack(t)
	db, _ := clients(t, s)
	tables := config.LocalTables("mismatch-")
	_, err := db.CreateTable(t.Context(), &dynamodb.CreateTableInput{
		TableName:            aws.String(tables[schema.WorkspacesTable]),
		BillingMode:          ddbtypes.BillingModePayPerRequest,
		KeySchema:            []ddbtypes.KeySchemaElement{{AttributeName: aws.String("id"), KeyType: ddbtypes.KeyTypeHash}},
		AttributeDefinitions: []ddbtypes.AttributeDefinition{{AttributeName: aws.String("id"), AttributeType: ddbtypes.ScalarAttributeTypeS}},
	})
	if err != nil {
		t.Fatal(err)
	}
	err = CreateTables(t.Context(), db, tables)
	if err == nil || !strings.Contains(err.Error(), "other keys") {
		t.Fatalf("err = %v, want a key mismatch", err)
	}
}

func TestItemRoundTrip(t *testing.T) {
	s := sharedStack(t)
	db, _ := clients(t, s)
	table := aws.String(s.Tables[schema.UsersTable])
	item := map[string]ddbtypes.AttributeValue{
		"pk":         &ddbtypes.AttributeValueMemberS{Value: "ws1#hash"},
		"lastSeenAt": &ddbtypes.AttributeValueMemberS{Value: "2026-01-02T03:04:05Z"},
	}
	if _, err := db.PutItem(t.Context(), &dynamodb.PutItemInput{TableName: table, Item: item}); err != nil {
		t.Fatal(err)
	}
	out, err := db.GetItem(t.Context(), &dynamodb.GetItemInput{
		TableName:      table,
		Key:            map[string]ddbtypes.AttributeValue{"pk": item["pk"]},
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := out.Item["lastSeenAt"].(*ddbtypes.AttributeValueMemberS); !ok || v.Value != "2026-01-02T03:04:05Z" {
		t.Errorf("item = %v", out.Item)
	}
}

func TestKMSKeyWrapsDataKeys(t *testing.T) {
	s := sharedStack(t)
	_, k := clients(t, s)
	if !strings.HasPrefix(s.KMSKeyID, "arn:aws:kms:"+config.LocalRegion+":"+LocalAccountID+":key/") {
		t.Errorf("KMSKeyID = %s", s.KMSKeyID)
	}
	ec := map[string]string{"table": "Users", "attr": "email"}
	dk, err := k.GenerateDataKey(t.Context(), &kms.GenerateDataKeyInput{
		KeyId: aws.String(s.KMSKeyID), KeySpec: kmstypes.DataKeySpecAes256, EncryptionContext: ec,
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(dk.Plaintext) != 32 {
		t.Fatalf("data key of %d bytes", len(dk.Plaintext))
	}
	dec, err := k.Decrypt(t.Context(), &kms.DecryptInput{CiphertextBlob: dk.CiphertextBlob, EncryptionContext: ec})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(dec.Plaintext, dk.Plaintext) || aws.ToString(dec.KeyId) != s.KMSKeyID {
		t.Errorf("Decrypt gave another key (%s)", aws.ToString(dec.KeyId))
	}
	_, err = k.Decrypt(t.Context(), &kms.DecryptInput{
		CiphertextBlob: dk.CiphertextBlob, EncryptionContext: map[string]string{"table": "Users", "attr": "role"},
	})
	if _, ok := errors.AsType[*kmstypes.InvalidCiphertextException](err); !ok {
		t.Errorf("Decrypt with another encryption context: %v, want InvalidCiphertextException", err)
	}
	byAlias, err := k.DescribeKey(t.Context(), &kms.DescribeKeyInput{KeyId: aws.String(KeyAlias)})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(byAlias.KeyMetadata.Arn) != s.KMSKeyID {
		t.Errorf("%s -> %s, want %s", KeyAlias, aws.ToString(byAlias.KeyMetadata.Arn), s.KMSKeyID)
	}
}

// TestDynamoDBListensOnLoopbackOnly binds 127.0.0.2 on DynamoDB Local's port:
// that works only if the engine holds 127.0.0.1 alone, not the wildcard
// address. No packet leaves the loopback interface.
func TestDynamoDBListensOnLoopbackOnly(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("127.0.0.2 is a loopback address without configuration on Linux only")
	}
	s := sharedStack(t)
	u, err := url.Parse(s.DynamoDBEndpoint)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp4", net.JoinHostPort("127.0.0.2", u.Port()))
	if err != nil {
		t.Fatalf("DynamoDB Local holds port %s beyond 127.0.0.1: %v", u.Port(), err)
	}
	l.Close()
}

func TestParallelStartsAndStop(t *testing.T) {
	sharedStack(t)
	t.Parallel()
	const n = 2
	stacks := make([]*Stack, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { stacks[i], errs[i] = Start(t.Context(), Options{TablePrefix: fmt.Sprintf("p%d-", i)}) })
	}
	wg.Wait()
	for i, s := range stacks {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		t.Cleanup(func() { s.Stop() })
	}
	a, b := stacks[0], stacks[1]
	if a.DynamoDBEndpoint == b.DynamoDBEndpoint || a.KMSEndpoint == b.KMSEndpoint {
		t.Errorf("stacks share endpoints: %s %s, %s %s", a.DynamoDBEndpoint, a.KMSEndpoint, b.DynamoDBEndpoint, b.KMSEndpoint)
	}

	for _, s := range stacks {
		pids := []int{s.dynamo.cmd.Process.Pid, s.kms.cmd.Process.Pid}
		if err := s.Stop(); err != nil {
			t.Fatal(err)
		}
		if err := s.Stop(); err != nil {
			t.Errorf("second Stop: %v", err)
		}
		for _, ep := range []string{s.DynamoDBEndpoint, s.KMSEndpoint} {
			if c, err := net.DialTimeout("tcp", strings.TrimPrefix(ep, "http://"), time.Second); err == nil {
				c.Close()
				t.Errorf("%s still listening after Stop", ep)
			}
		}
		for _, pid := range pids {
			// Stop reaped the process, so its pid is free: signal 0 finds
			// no such process (nor process group).
			if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
				t.Errorf("process %d still exists: %v", pid, err)
			}
			if err := syscall.Kill(-pid, 0); !errors.Is(err, syscall.ESRCH) {
				t.Errorf("process group %d still exists: %v", pid, err)
			}
		}
		if _, err := os.Stat(s.tempDir); !os.IsNotExist(err) {
			t.Errorf("temporary directory %s kept", s.tempDir)
		}
		select {
		case err := <-s.Died():
			t.Errorf("Stop reported as an engine dying: %v", err)
		default:
		}
	}
}

// An engine killed while the stack runs is reported on Died at once, by
// name; the other engine is not reported.
func TestDiedReportsAKilledEngine(t *testing.T) {
	sharedStack(t)
	t.Parallel()
	s, err := Start(t.Context(), Options{TablePrefix: "died-"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Stop() })
	if err := syscall.Kill(s.KMSPID(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-s.Died():
		if want := "localstack: local-kms exited on its own (signal: killed)"; !strings.HasPrefix(err.Error(), want) {
			t.Errorf("Died: %v, want %q", err, want)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no report 30 s after local-kms was killed")
	}
	if err := s.Stop(); err == nil || !strings.Contains(err.Error(), "local-kms had exited on its own") {
		t.Errorf("Stop after the death: %v", err)
	}
	select {
	case err := <-s.Died():
		t.Errorf("a second report: %v", err)
	default:
	}
}

func TestPersistDirKeepsDataAndKey(t *testing.T) {
	sharedStack(t)
	t.Parallel()
	dir := t.TempDir()
	key := map[string]ddbtypes.AttributeValue{"code": &ddbtypes.AttributeValueMemberS{Value: "ws-persist"}}

	first, err := Start(t.Context(), Options{PersistDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { first.Stop() })
	db, _ := clients(t, first)
	table := aws.String(first.Tables[schema.WorkspacesTable])
	if _, err := db.PutItem(t.Context(), &dynamodb.PutItemInput{TableName: table, Item: key}); err != nil {
		t.Fatal(err)
	}
	if err := first.Stop(); err != nil {
		t.Fatal(err)
	}

	second, err := Start(t.Context(), Options{PersistDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { second.Stop() })
	if second.KMSKeyID != first.KMSKeyID {
		t.Errorf("key %s after restart, was %s", second.KMSKeyID, first.KMSKeyID)
	}
	db, _ = clients(t, second)
	out, err := db.GetItem(t.Context(), &dynamodb.GetItemInput{TableName: table, Key: key})
	if err != nil {
		t.Fatal(err)
	}
	if out.Item == nil {
		t.Error("item lost across restart")
	}
}

func TestMissingToolsSayWhatToInstall(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, dynamoErr := StartDynamoDB(t.Context(), DynamoDBOptions{Dir: t.TempDir()})
	_, npmErr := packDynamoDBLocal(t.Context(), t.TempDir())
	_, goErr := ToolPath(t.Context(), LocalKMSTool)
	for name, c := range map[string]struct {
		err  error
		want string
	}{
		"java": {dynamoErr, "apt-get install -y openjdk-17-jre-headless"},
		"npm":  {npmErr, "apt-get install -y npm"},
		"go":   {goErr, "install Go"},
	} {
		if c.err == nil || !strings.Contains(c.err.Error(), c.want) || strings.Contains(c.err.Error(), "\n") {
			t.Errorf("without %s: %v", name, c.err)
		}
	}
}

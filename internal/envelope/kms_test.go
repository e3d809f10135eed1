package envelope_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/waymarkhq/waymark/internal/envelope"
	"github.com/waymarkhq/waymark/internal/localstack"
)

// Against local-kms: the data-key cache bounds KMS calls by time and use, and
// a wrapped key is bound to its workspace by the encryption context.
func TestEnvelopeWithLocalKMS(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	bin, err := localstack.ToolPath(ctx, localstack.LocalKMSTool)
	if err != nil {
		t.Fatal(err)
	}
	engine, err := localstack.StartKMS(ctx, localstack.KMSOptions{Binary: bin, DataPath: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer engine.Stop()
	stack := localstack.Stack{KMSEndpoint: engine.Endpoint, DynamoDBEndpoint: engine.Endpoint}
	_, kmsClient, err := stack.Config().Clients(ctx)
	if err != nil {
		t.Fatal(err)
	}
	keyID, err := localstack.EnsureKey(ctx, kmsClient, localstack.KeyAlias)
	if err != nil {
		t.Fatal(err)
	}

	now := time.Now()
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	env := envelope.New(kmsClient, keyID, envelope.Options{MaxAge: time.Minute, MaxUses: 100, Now: clock})

	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			if _, err := env.SealingKey(ctx, "ws-a"); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if calls := env.KMSCalls(); calls != 1 {
		t.Fatalf("50 concurrent first uses made %d KMS calls, want 1", calls)
	}
	key, _ := env.SealingKey(ctx, "ws-a")
	aad := envelope.AAD("Users", "ws-a#x", "", "email")
	sealed := key.Seal(aad, []byte("ada@example.com"))

	for range 49 {
		env.SealingKey(ctx, "ws-a")
	}
	if calls := env.KMSCalls(); calls != 1 {
		t.Fatalf("100 uses made %d KMS calls, want 1", calls)
	}
	env.SealingKey(ctx, "ws-a")
	if calls := env.KMSCalls(); calls != 2 {
		t.Fatalf("the 101st use made %d KMS calls in all, want 2 (a new key past MaxUses)", calls)
	}
	mu.Lock()
	now = now.Add(2 * time.Minute)
	mu.Unlock()
	env.SealingKey(ctx, "ws-a")
	if calls := env.KMSCalls(); calls != 3 {
		t.Fatalf("past MaxAge: %d KMS calls, want 3", calls)
	}

	// A fresh envelope (a cold function) unwraps the stored key once.
	cold := envelope.New(kmsClient, keyID, envelope.Options{})
	for range 3 {
		opening, err := cold.OpeningKey(ctx, "ws-a", key.Wrapped)
		if err != nil {
			t.Fatal(err)
		}
		if plain, err := opening.Open(aad, sealed); err != nil || string(plain) != "ada@example.com" {
			t.Fatalf("open: %q %v", plain, err)
		}
	}
	if calls := cold.KMSCalls(); calls != 1 {
		t.Fatalf("3 opens made %d KMS calls", calls)
	}
	// Another workspace cannot unwrap it.
	if _, err := cold.OpeningKey(ctx, "ws-b", key.Wrapped); !errors.Is(err, envelope.ErrOpen) {
		t.Fatalf("workspace b unwrapped workspace a's key: %v", err)
	}
}

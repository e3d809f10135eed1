package envelope_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/waymarkhq/waymark/internal/envelope"
	"github.com/waymarkhq/waymark/internal/fakeclock"
	"github.com/waymarkhq/waymark/internal/localstack"
)

// Against local-kms: the data-key cache bounds KMS calls by time and use, and
// a wrapped key is bound to its workspace by the encryption context.
func TestEnvelopeWithLocalKMS(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	kmsClient, keyID := startKMS(ctx, t)

	clock := fakeclock.New(time.Now())
	env := envelope.New(kmsClient, keyID, envelope.Options{MaxAge: time.Minute, MaxUses: 100, Now: clock.Now})

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
	clock.Advance(2 * time.Minute)
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

// memoryBoard is a KeyBoard in memory: the sharing logic is the envelope's,
// the board only stores (internal/dynamo's board is tested against
// DynamoDB Local by the integration suite).
type memoryBoard struct {
	mu      sync.Mutex
	wrapped []byte
	at      time.Time
	reads   int
}

func (b *memoryBoard) CurrentSealingKey(_ context.Context, _ string) ([]byte, time.Time, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.reads++
	return b.wrapped, b.at, nil
}

func (b *memoryBoard) PublishSealingKey(_ context.Context, _ string, next []byte, at time.Time, prev []byte) (bool, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if string(b.wrapped) != string(prev) {
		return false, nil
	}
	b.wrapped, b.at = next, at
	return true, nil
}

// Instances sharing a board seal with one key: a new instance unwraps it
// (one Decrypt) instead of generating its own, and after MaxAge the
// instances converge on the one key that replaced it.
func TestInstancesShareTheSealingKey(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	kmsClient, keyID := startKMS(ctx, t)

	clock := fakeclock.New(time.Now())
	board := &memoryBoard{}
	opts := envelope.Options{MaxAge: 10 * time.Minute, MaxUses: 1000, Board: board, Now: clock.Now}
	a, b := envelope.New(kmsClient, keyID, opts), envelope.New(kmsClient, keyID, opts)

	keyA, err := a.SealingKey(ctx, "ws-a")
	if err != nil {
		t.Fatal(err)
	}
	if string(board.wrapped) != string(keyA.Wrapped) || a.KMSCalls() != 1 {
		t.Fatalf("first instance: published %v, %d KMS calls; want its key published after 1 call", board.wrapped != nil, a.KMSCalls())
	}
	sealed := keyA.Seal([]byte("aad"), []byte("ada@example.com"))

	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			keyB, err := b.SealingKey(ctx, "ws-a")
			if err != nil || string(keyB.Wrapped) != string(keyA.Wrapped) {
				t.Errorf("second instance sealed with another key (%v)", err)
			}
		})
	}
	wg.Wait()
	if calls := b.KMSCalls(); calls != 1 {
		t.Fatalf("second instance: %d KMS calls, want 1 (unwrapping the shared key)", calls)
	}
	opened, err := b.OpeningKey(ctx, "ws-a", keyA.Wrapped)
	if err != nil {
		t.Fatal(err)
	}
	if plain, err := opened.Open([]byte("aad"), sealed); err != nil || string(plain) != "ada@example.com" || b.KMSCalls() != 1 {
		t.Fatalf("opening the first instance's value: %q %v, %d KMS calls", plain, err, b.KMSCalls())
	}

	// Past MaxAge both need a new key at once: one publishes, the other
	// adopts it.
	clock.Advance(11 * time.Minute)
	var next [2]*envelope.Key
	for i, env := range []*envelope.Envelope{a, b} {
		wg.Go(func() {
			k, err := env.SealingKey(ctx, "ws-a")
			if err != nil {
				t.Error(err)
			}
			next[i] = k
		})
	}
	wg.Wait()
	if next[0] == nil || next[1] == nil {
		t.FailNow()
	}
	if string(next[0].Wrapped) == string(keyA.Wrapped) || string(next[0].Wrapped) != string(board.wrapped) {
		t.Fatal("the instances did not move to the newly published key")
	}
	// The winner generated a key; the loser either unwrapped it, or lost a
	// race of two generations and unwrapped the winner's key after its own:
	// at most three calls beyond the two so far.
	if calls := a.KMSCalls() + b.KMSCalls(); calls < 4 || calls > 5 {
		t.Fatalf("rotation made %d KMS calls in all, want 4 or 5", calls)
	}
	if string(next[1].Wrapped) != string(next[0].Wrapped) {
		t.Fatal("after the rotation the instances seal with different keys")
	}

	// A key spent by uses is replaced even though it is young.
	spent := next[0].Wrapped
	for range 1000 {
		if _, err := a.SealingKey(ctx, "ws-a"); err != nil {
			t.Fatal(err)
		}
	}
	if string(board.wrapped) == string(spent) {
		t.Fatal("a key past MaxUses stayed published")
	}
}

// startKMS starts local-kms for one test and returns a client and the key.
func startKMS(ctx context.Context, t *testing.T) (envelope.KMS, string) {
	t.Helper()
	bin, err := localstack.ToolPath(ctx, localstack.LocalKMSTool)
	if err != nil {
		t.Fatal(err)
	}
	engine, err := localstack.StartKMS(ctx, localstack.KMSOptions{Binary: bin, DataPath: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { engine.Stop() })
	stack := localstack.Stack{KMSEndpoint: engine.Endpoint, DynamoDBEndpoint: engine.Endpoint}
	_, kmsClient, err := stack.Config().Clients(ctx)
	if err != nil {
		t.Fatal(err)
	}
	keyID, err := localstack.EnsureKey(ctx, kmsClient, localstack.KeyAlias)
	if err != nil {
		t.Fatal(err)
	}
	return kmsClient, keyID
}

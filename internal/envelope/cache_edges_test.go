package envelope_test

// The envelope's own logic at its edges: the defaults of Options, the bounds
// of both caches, offers, KMS failures and the sealed format. KMS here is an
// in-memory stand-in that wraps keys bound to their encryption context, as
// KMS does, and counts calls; the exchanges with a real KMS API are tested
// against local-kms in kms_test.go.

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/waymarkhq/waymark/internal/envelope"
	"github.com/waymarkhq/waymark/internal/fakeclock"
)

type wrappedKey struct {
	plaintext []byte
	context   map[string]string
}

// countingKMS generates and unwraps data keys in memory. A wrapped key
// unwraps only with the encryption context it was generated under, else
// InvalidCiphertextException, as with KMS. down makes every call fail as an
// unreachable KMS does.
type countingKMS struct {
	mu                  sync.Mutex
	keys                map[string]wrappedKey
	generates, decrypts int
	down                bool
}

var errKMSDown = errors.New("connection refused")

func newCountingKMS() *countingKMS { return &countingKMS{keys: map[string]wrappedKey{}} }

func (k *countingKMS) GenerateDataKey(_ context.Context, in *kms.GenerateDataKeyInput, _ ...func(*kms.Options)) (*kms.GenerateDataKeyOutput, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.generates++
	if k.down {
		return nil, errKMSDown
	}
	plain, blob := make([]byte, 32), make([]byte, 24)
	rand.Read(plain)
	rand.Read(blob)
	k.keys[string(blob)] = wrappedKey{plaintext: bytes.Clone(plain), context: in.EncryptionContext}
	return &kms.GenerateDataKeyOutput{Plaintext: plain, CiphertextBlob: blob}, nil
}

func (k *countingKMS) Decrypt(_ context.Context, in *kms.DecryptInput, _ ...func(*kms.Options)) (*kms.DecryptOutput, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.decrypts++
	if k.down {
		return nil, errKMSDown
	}
	w, ok := k.keys[string(in.CiphertextBlob)]
	if !ok || w.context[envelope.ContextWorkspaceKey] != in.EncryptionContext[envelope.ContextWorkspaceKey] {
		return nil, &types.InvalidCiphertextException{Message: aws.String("invalid ciphertext")}
	}
	return &kms.DecryptOutput{Plaintext: bytes.Clone(w.plaintext)}, nil
}

func (k *countingKMS) counts() (generates, decrypts int) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.generates, k.decrypts
}

// wrapFor generates a data key for the workspace outside any envelope, as
// another instance would.
func (k *countingKMS) wrapFor(t *testing.T, workspace string) []byte {
	t.Helper()
	out, err := k.GenerateDataKey(context.Background(), &kms.GenerateDataKeyInput{EncryptionContext: map[string]string{envelope.ContextWorkspaceKey: workspace}})
	if err != nil {
		t.Fatal(err)
	}
	k.mu.Lock()
	k.generates--
	k.mu.Unlock()
	return out.CiphertextBlob
}

// With Options left zero, a sealing key serves for ten minutes and an
// unwrapped key is kept for an hour.
func TestDefaultsKeepKeysForTheirDocumentedTime(t *testing.T) {
	ctx := context.Background()
	fake := newCountingKMS()
	clock := fakeclock.New(time.Date(2026, 3, 4, 5, 0, 0, 0, time.UTC))
	env := envelope.New(fake, "key", envelope.Options{Now: clock.Now})

	first, err := env.SealingKey(ctx, "ws1")
	if err != nil {
		t.Fatal(err)
	}
	clock.Advance(10*time.Minute - time.Second)
	if again, _ := env.SealingKey(ctx, "ws1"); again != first {
		t.Fatal("the sealing key was replaced before ten minutes")
	}
	clock.Advance(2 * time.Second)
	if next, _ := env.SealingKey(ctx, "ws1"); next == first {
		t.Fatal("the sealing key served past ten minutes")
	}
	if g, _ := fake.counts(); g != 2 {
		t.Fatalf("%d data keys generated, want 2", g)
	}

	wrapped := fake.wrapFor(t, "ws1")
	for range 3 {
		if _, err := env.OpeningKey(ctx, "ws1", wrapped); err != nil {
			t.Fatal(err)
		}
	}
	clock.Advance(time.Hour - time.Second)
	env.OpeningKey(ctx, "ws1", wrapped)
	if _, d := fake.counts(); d != 1 {
		t.Fatalf("%d Decrypt calls within the hour, want 1", d)
	}
	clock.Advance(2 * time.Second)
	env.OpeningKey(ctx, "ws1", wrapped)
	if _, d := fake.counts(); d != 2 {
		t.Fatalf("%d Decrypt calls once the hour passed, want 2", d)
	}

	// The default cache holds many keys: reading items sealed under
	// different keys in turn unwraps each once.
	others := [][]byte{fake.wrapFor(t, "ws1"), fake.wrapFor(t, "ws2"), fake.wrapFor(t, "ws3")}
	for range 3 {
		for i, w := range others {
			if _, err := env.OpeningKey(ctx, []string{"ws1", "ws2", "ws3"}[i], w); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, d := fake.counts(); d != 5 {
		t.Fatalf("%d Decrypt calls in all, want 5: each of three more keys unwrapped once", d)
	}
}

// The opening cache holds OpenCacheSize keys; past that the one that
// expires first goes.
func TestOpeningCacheKeepsAtMostItsSize(t *testing.T) {
	ctx := context.Background()
	fake := newCountingKMS()
	clock := fakeclock.New(time.Date(2026, 3, 4, 5, 0, 0, 0, time.UTC))
	env := envelope.New(fake, "key", envelope.Options{OpenCacheSize: 2, Now: clock.Now})
	a, b, c := fake.wrapFor(t, "ws1"), fake.wrapFor(t, "ws1"), fake.wrapFor(t, "ws1")
	for _, w := range [][]byte{a, b} {
		env.OpeningKey(ctx, "ws1", w)
		clock.Advance(time.Second)
	}
	env.OpeningKey(ctx, "ws1", b)
	if _, d := fake.counts(); d != 2 {
		t.Fatalf("%d Decrypt calls for two keys, want 2", d)
	}
	env.OpeningKey(ctx, "ws1", c) // evicts a, the first to expire
	env.OpeningKey(ctx, "ws1", b)
	env.OpeningKey(ctx, "ws1", c)
	if _, d := fake.counts(); d != 3 {
		t.Fatalf("%d Decrypt calls, want 3: b and c stay cached", d)
	}
	env.OpeningKey(ctx, "ws1", a)
	if _, d := fake.counts(); d != 4 {
		t.Fatalf("%d Decrypt calls, want 4: a was evicted", d)
	}
}

// Expired keys leave the opening cache before a live one is evicted.
func TestOpeningCacheDropsExpiredKeysFirst(t *testing.T) {
	ctx := context.Background()
	fake := newCountingKMS()
	clock := fakeclock.New(time.Date(2026, 3, 4, 5, 0, 0, 0, time.UTC))
	env := envelope.New(fake, "key", envelope.Options{OpenCacheSize: 2, OpenCacheTTL: time.Minute, Now: clock.Now})
	old, live, next := fake.wrapFor(t, "ws1"), fake.wrapFor(t, "ws1"), fake.wrapFor(t, "ws1")
	env.OpeningKey(ctx, "ws1", old)
	clock.Advance(50 * time.Second)
	env.OpeningKey(ctx, "ws1", live)
	clock.Advance(20 * time.Second) // old has expired, live has not
	env.OpeningKey(ctx, "ws1", next)
	env.OpeningKey(ctx, "ws1", live)
	if _, d := fake.counts(); d != 3 {
		t.Fatalf("%d Decrypt calls, want 3: the live key was evicted in place of the expired one", d)
	}
}

func TestKMSFailuresAreUnavailableAndForeignKeysDoNotOpen(t *testing.T) {
	ctx := context.Background()
	fake := newCountingKMS()
	env := envelope.New(fake, "key", envelope.Options{})
	other, own := fake.wrapFor(t, "ws-other"), fake.wrapFor(t, "ws1")
	if _, err := env.OpeningKey(ctx, "ws1", other); !errors.Is(err, envelope.ErrOpen) {
		t.Fatalf("another workspace's data key: %v, want ErrOpen", err)
	}
	fake.mu.Lock()
	fake.down = true
	fake.mu.Unlock()
	if _, err := env.SealingKey(ctx, "ws1"); !errors.Is(err, envelope.ErrUnavailable) {
		t.Fatalf("generate with KMS down: %v, want ErrUnavailable", err)
	}
	if _, err := env.OpeningKey(ctx, "ws1", own); err == nil {
		t.Fatal("a key unwrapped with KMS down")
	}
	if _, err := env.OpeningKey(ctx, "ws2", []byte("never-generated")); !errors.Is(err, envelope.ErrUnavailable) || errors.Is(err, envelope.ErrOpen) {
		t.Fatalf("decrypt with KMS down: %v, want ErrUnavailable only", err)
	}
}

// An offered key that is young is unwrapped at once and adopted by the next
// SealingKey; an empty or stale offer starts nothing.
func TestOffersOfYoungKeysAreUnwrappedAndAdopted(t *testing.T) {
	ctx := context.Background()
	fake := newCountingKMS()
	clock := fakeclock.New(time.Date(2026, 3, 4, 5, 0, 0, 0, time.UTC))
	board := &listBoard{}
	env := envelope.New(fake, "key", envelope.Options{MaxAge: 10 * time.Minute, Board: board, Now: clock.Now})

	env.Offer(ctx, "ws1", nil, clock.Now())
	env.Offer(ctx, "ws1", fake.wrapFor(t, "ws1"), clock.Now().Add(-11*time.Minute))
	time.Sleep(20 * time.Millisecond) // an unwrap, had one started, would have run
	if _, d := fake.counts(); d != 0 {
		t.Fatalf("empty or stale offers made %d Decrypt calls", d)
	}

	young := fake.wrapFor(t, "ws1")
	env.Offer(ctx, "ws1", young, clock.Now().Add(-time.Minute))
	waitFor(t, func() bool { _, d := fake.counts(); return d == 1 })
	key, err := env.SealingKey(ctx, "ws1")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(key.Wrapped, young) {
		t.Fatal("the young offered key was not adopted")
	}
	if g, d := fake.counts(); g != 0 || d != 1 || board.reads != 0 {
		t.Fatalf("adopting the offer: %d generated, %d Decrypt calls, %d board reads; want 0, 1, 0", g, d, board.reads)
	}
	// Adopted a minute after it was made, it retires nine minutes on.
	clock.Advance(9*time.Minute - time.Second)
	if again, _ := env.SealingKey(ctx, "ws1"); again != key {
		t.Fatal("the adopted key retired early")
	}
	clock.Advance(2 * time.Second)
	if next, _ := env.SealingKey(ctx, "ws1"); next == key {
		t.Fatal("the adopted key served past MaxAge from when it was made")
	}
}

// listBoard is a KeyBoard in memory that counts reads.
type listBoard struct {
	mu      sync.Mutex
	wrapped []byte
	at      time.Time
	reads   int
}

func (b *listBoard) CurrentSealingKey(context.Context, string) ([]byte, time.Time, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.reads++
	return b.wrapped, b.at, nil
}

func (b *listBoard) PublishSealingKey(_ context.Context, _ string, next []byte, at time.Time, prev []byte) (bool, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !bytes.Equal(b.wrapped, prev) {
		return false, nil
	}
	b.wrapped, b.at = next, at
	return true, nil
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for range 1000 {
		if cond() {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("condition not met within five seconds")
}

func TestSealedValuesOfEverySize(t *testing.T) {
	env := envelope.New(newCountingKMS(), "key", envelope.Options{})
	key, err := env.SealingKey(context.Background(), "ws1")
	if err != nil {
		t.Fatal(err)
	}
	aad := envelope.AAD("Feedback", "ws1#user", "2026-03-04#id", "text")
	for _, size := range []int{0, 1, 16, 17, 1000} {
		plain := bytes.Repeat([]byte("x"), size)
		sealed := key.Seal(aad, plain)
		if len(sealed) != size+envelope.Overhead {
			t.Fatalf("%d bytes sealed into %d", size, len(sealed))
		}
		if got, err := key.Open(aad, sealed); err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("%d bytes: opened %d bytes, %v", size, len(got), err)
		}
	}
	sealed := key.Seal(aad, []byte("ada@example.com"))
	for name, bad := range map[string][]byte{
		"another format":     append([]byte{0x02}, sealed[1:]...),
		"one byte too short": sealed[:envelope.Overhead-1],
		"empty":              nil,
		"only the version":   sealed[:1],
		"tag cut off by one": sealed[:len(sealed)-1],
	} {
		if _, err := key.Open(aad, bad); !errors.Is(err, envelope.ErrOpen) {
			t.Errorf("%s: %v, want ErrOpen", name, err)
		}
	}
}

// The additional data names all four parts, however long each is, and
// tells them apart.
func TestAADOfLongParts(t *testing.T) {
	long := strings.Repeat("p", 40)
	seen := map[string]string{}
	for name, parts := range map[string][4]string{
		"long table":     {long, "pk", "sk", "attr"},
		"long key":       {"Users", long, "sk", "attr"},
		"long sort key":  {"Users", "pk", long, "attr"},
		"long attribute": {"Users", "pk", "sk", long},
	} {
		aad := envelope.AAD(parts[0], parts[1], parts[2], parts[3])
		if !bytes.Contains(aad, []byte(long)) {
			t.Errorf("%s: the long part is missing", name)
		}
		if other, dup := seen[string(aad)]; dup {
			t.Errorf("%s and %s give the same additional data", name, other)
		}
		seen[string(aad)] = name
	}
}

// A published or offered key that does not unwrap for the workspace (not
// one Waymark made for it) is passed over: the envelope generates its own
// and publishes it in its place.
func TestForeignPublishedKeysArePassedOver(t *testing.T) {
	ctx := context.Background()
	fake := newCountingKMS()
	clock := fakeclock.New(time.Date(2026, 3, 4, 5, 0, 0, 0, time.UTC))
	foreign := fake.wrapFor(t, "ws-other")
	board := &listBoard{wrapped: foreign, at: clock.Now().Add(-time.Minute)}
	env := envelope.New(fake, "key", envelope.Options{Board: board, Now: clock.Now})
	env.Offer(ctx, "ws1", fake.wrapFor(t, "ws-other"), clock.Now().Add(-time.Minute))

	key, err := env.SealingKey(ctx, "ws1")
	if err != nil || key == nil {
		t.Fatalf("sealing key: %v, %v", key, err)
	}
	if bytes.Equal(key.Wrapped, foreign) || !bytes.Equal(board.wrapped, key.Wrapped) {
		t.Fatal("the foreign key was not replaced on the board by a key of the workspace")
	}
	if g, _ := fake.counts(); g != 1 {
		t.Fatalf("%d keys generated, want 1", g)
	}
	aad := envelope.AAD("Users", "ws1#u", "", "email")
	if plain, err := key.Open(aad, key.Seal(aad, []byte("ada@example.com"))); err != nil || string(plain) != "ada@example.com" {
		t.Fatalf("round trip: %q %v", plain, err)
	}
}

package envelope

import (
	"context"
	"crypto/rand"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kms"
)

// slowKMS answers Decrypt with one fixed data key, slowly enough that
// concurrent callers overlap, and counts the calls.
type slowKMS struct {
	plaintext []byte
	decrypts  atomic.Int64
}

func (k *slowKMS) GenerateDataKey(context.Context, *kms.GenerateDataKeyInput, ...func(*kms.Options)) (*kms.GenerateDataKeyOutput, error) {
	panic("not used")
}

func (k *slowKMS) Decrypt(context.Context, *kms.DecryptInput, ...func(*kms.Options)) (*kms.DecryptOutput, error) {
	k.decrypts.Add(1)
	time.Sleep(20 * time.Millisecond)
	return &kms.DecryptOutput{Plaintext: append([]byte(nil), k.plaintext...)}, nil
}

// Requests that meet the same data key at once share one Decrypt.
func TestConcurrentOpeningSharesOneDecrypt(t *testing.T) {
	fake := &slowKMS{plaintext: make([]byte, 32)}
	rand.Read(fake.plaintext)
	env := New(fake, "key", Options{})
	sealed := testKey(t)
	var wg sync.WaitGroup
	keys := make([]*Key, 16)
	for i := range keys {
		wg.Go(func() {
			k, err := env.OpeningKey(context.Background(), "ws", sealed.Wrapped)
			if err != nil {
				t.Error(err)
			}
			keys[i] = k
		})
	}
	wg.Wait()
	if n := fake.decrypts.Load(); n != 1 {
		t.Fatalf("%d Decrypt calls for one data key met by 16 requests at once", n)
	}
	for _, k := range keys {
		if k != keys[0] {
			t.Fatal("callers got different keys")
		}
	}
	if _, err := env.OpeningKey(context.Background(), "ws", sealed.Wrapped); err != nil || fake.decrypts.Load() != 1 {
		t.Fatalf("cached key: %v, %d calls", err, fake.decrypts.Load())
	}
}

package envelope

import (
	"bytes"
	"crypto/rand"
	"errors"
	"testing"
)

func testKey(t *testing.T) *Key {
	t.Helper()
	plain := make([]byte, 32)
	rand.Read(plain)
	k, err := newKey(plain, []byte("wrapped"))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestSealedFormat(t *testing.T) {
	k := testKey(t)
	aad := AAD("Users", "ws#abc", "", "email")
	msg := []byte("ada@example.com")
	sealed := k.Seal(aad, msg)
	if len(sealed) != len(msg)+Overhead || sealed[0] != formatVersion {
		t.Fatalf("sealed value is %d bytes with version %d", len(sealed), sealed[0])
	}
	if bytes.Contains(sealed, msg) {
		t.Fatal("plaintext visible in the sealed value")
	}
	if again := k.Seal(aad, msg); bytes.Equal(again[1:13], sealed[1:13]) {
		t.Fatal("nonce reused")
	}
	got, err := k.Open(aad, sealed)
	if err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("open: %q, %v", got, err)
	}
}

func TestSealedValueIsBoundToItsPlace(t *testing.T) {
	k := testKey(t)
	sealed := k.Seal(AAD("Users", "ws#abc", "", "email"), []byte("ada@example.com"))
	for name, aad := range map[string][]byte{
		"other attribute": AAD("Users", "ws#abc", "", "firstname"),
		"other item":      AAD("Users", "ws#xyz", "", "email"),
		"other table":     AAD("Feedback", "ws#abc", "", "email"),
		"shifted parts":   AAD("Users", "ws#ab", "c", "email"),
	} {
		if _, err := k.Open(aad, sealed); !errors.Is(err, ErrOpen) {
			t.Errorf("%s: opened (%v)", name, err)
		}
	}
	tampered := append([]byte(nil), sealed...)
	tampered[len(tampered)-1] ^= 1
	if _, err := k.Open(AAD("Users", "ws#abc", "", "email"), tampered); !errors.Is(err, ErrOpen) {
		t.Error("tampered value opened")
	}
	if _, err := testKey(t).Open(AAD("Users", "ws#abc", "", "email"), sealed); !errors.Is(err, ErrOpen) {
		t.Error("opened under another data key")
	}
}

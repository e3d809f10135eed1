package envelope

import (
	"bytes"
	"encoding/hex"
	"testing"
)

// fuzzKey is a fixed data key, so that the sealed value below, made with
// it once, opens in every run.
var fuzzKeyBytes = bytes.Repeat([]byte{0x5a}, 32)

var (
	fuzzAAD = AAD("Users", "ws#abc", "", "email")
	// fuzzGenuine is fuzzKeyBytes's seal of "ada@example.com" under
	// fuzzAAD: the one (value, aad) pair that may open.
	fuzzGenuine, _ = hex.DecodeString("0133928f6259c1813c3ffcc17c6dcc3f385d0ad98533977359b70cb11666a4a51aa57f6301bda61d03d3afb1")
)

// FuzzOpen: opening arbitrary bytes under arbitrary additional data never
// panics, and never succeeds except for the one genuine sealed value in its
// place: a changed byte, a truncation or another place is refused.
func FuzzOpen(f *testing.F) {
	k, err := newKey(fuzzKeyBytes, []byte("wrapped"))
	if err != nil {
		f.Fatal(err)
	}
	if plain, err := k.Open(fuzzAAD, fuzzGenuine); err != nil || string(plain) != "ada@example.com" {
		f.Fatalf("the genuine value does not open: %q %v", plain, err)
	}
	f.Add(fuzzGenuine, fuzzAAD)
	f.Add(fuzzGenuine[:len(fuzzGenuine)-1], fuzzAAD)
	f.Add(fuzzGenuine, AAD("Users", "ws#abd", "", "email"))
	f.Add([]byte{formatVersion}, []byte{})
	f.Add([]byte{}, []byte{})
	f.Fuzz(func(t *testing.T, sealed, aad []byte) {
		plain, err := k.Open(aad, sealed)
		if err == nil && !(bytes.Equal(sealed, fuzzGenuine) && bytes.Equal(aad, fuzzAAD)) {
			t.Fatalf("a forgery opened: %x under %q gave %q", sealed, aad, plain)
		}
	})
}

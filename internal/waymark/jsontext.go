package waymark

import (
	"bytes"
	"strconv"
	"unicode/utf8"
)

// CheckJSONText refuses a JSON text that encoding/json would silently alter:
// it replaces invalid UTF-8 and unpaired surrogate escapes ("\ud800") by
// U+FFFD, so "bob\xff" and "bob\udbff" would both arrive as "bob\ufffd", one
// user for two names. The decoder offers no strict mode, hence this scan of
// the raw text before decoding. It assumes nothing else about the text: one
// that is not JSON at all is left to the decoder to refuse.
func CheckJSONText(text []byte) error {
	if !utf8.Valid(text) {
		return Errorf(EInvalidJSON, "request body is not valid UTF-8")
	}
	// A backslash only appears in valid JSON inside a string, where it
	// starts an escape; each escape is consumed whole, so "\\ud800" (an
	// escaped backslash, then text) is not taken for a surrogate.
	for i := 0; i < len(text); {
		j := bytes.IndexByte(text[i:], '\\')
		if j < 0 {
			return nil
		}
		i += j
		if i+1 >= len(text) || text[i+1] != 'u' {
			i += 2
			continue
		}
		// An if chain rather than a switch: mutation testing cannot see a
		// switch's case expressions as covered (make mutate).
		r, ok := hexRune(text, i)
		if !ok {
			// Not four hex digits: invalid JSON, the decoder says so.
			i += 2
			continue
		}
		if isLowSurrogate(r) {
			return Errorf(EInvalidJSON, "request body has an unpaired UTF-16 surrogate escape")
		}
		if !isHighSurrogate(r) {
			i += 6
			continue
		}
		if low, ok := hexRune(text, i+6); !ok || !isLowSurrogate(low) {
			return Errorf(EInvalidJSON, "request body has an unpaired UTF-16 surrogate escape")
		}
		i += 12
	}
	return nil
}

// hexRune reads the escape at text[i:] if it is one: a backslash, 'u' and
// four hex digits.
func hexRune(text []byte, i int) (rune, bool) {
	if i+6 > len(text) || text[i] != '\\' || text[i+1] != 'u' {
		return 0, false
	}
	// Exactly four hex digits: ParseUint takes no sign or prefix in base 16.
	v, err := strconv.ParseUint(string(text[i+2:i+6]), 16, 16)
	return rune(v), err == nil
}

func isHighSurrogate(r rune) bool { return 0xD800 <= r && r <= 0xDBFF }
func isLowSurrogate(r rune) bool  { return 0xDC00 <= r && r <= 0xDFFF }

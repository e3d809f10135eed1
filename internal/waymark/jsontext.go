package waymark

import (
	"bytes"
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
		r, ok := hexRune(text, i)
		switch {
		case !ok:
			// Not four hex digits: invalid JSON, the decoder says so.
			i += 2
		case r >= 0xD800 && r <= 0xDBFF:
			low, ok := hexRune(text, i+6)
			if !ok || low < 0xDC00 || low > 0xDFFF {
				return Errorf(EInvalidJSON, "request body has an unpaired UTF-16 surrogate escape")
			}
			i += 12
		case r >= 0xDC00 && r <= 0xDFFF:
			return Errorf(EInvalidJSON, "request body has an unpaired UTF-16 surrogate escape")
		default:
			i += 6
		}
	}
	return nil
}

// hexRune reads the escape \uXXXX at text[i:], if there is one.
func hexRune(text []byte, i int) (rune, bool) {
	if i+6 > len(text) || text[i] != '\\' || text[i+1] != 'u' {
		return 0, false
	}
	var r rune
	for _, c := range text[i+2 : i+6] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}

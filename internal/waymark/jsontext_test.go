package waymark

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestCheckJSONText(t *testing.T) {
	for _, c := range []struct {
		name, text string
		ok         bool
	}{
		{"ascii", `{"username":"bob"}`, true},
		{"utf-8", `{"username":"zoë 🧭"}`, true},
		{"escaped BMP", `{"username":"zo\u00eb"}`, true},
		{"escaped pair", `{"username":"\ud83e\udded"}`, true},
		{"escaped pair, upper case", `{"username":"\uD83E\uDDED"}`, true},
		{"escaped U+FFFD itself", `{"username":"bob\ufffd"}`, true},
		{"escaped backslash before u", `{"username":"a\\ud800"}`, true},
		{"escaped backslash, then an escape", `{"username":"a\\\u00eb"}`, true},
		{"other escapes", `{"username":"a\"\n\t\/\\"}`, true},
		{"a backslash last (found by FuzzRequestBodies)", `0\`, true},
		{"invalid byte", "{\"username\":\"bob\xff\"}", false},
		{"truncated sequence", "{\"username\":\"bob\xc3\"}", false},
		{"encoded surrogate", "{\"username\":\"bob\xed\xa0\x80\"}", false},
		{"lone high surrogate", `{"username":"bob\udbff"}`, false},
		{"lone high surrogate at the end", `{"username":"bob\ud800`, false},
		{"high surrogate then a BMP escape", `{"username":"\ud800\u0041"}`, false},
		{"high surrogate twice", `{"username":"\ud800\ud800"}`, false},
		{"lone low surrogate", `{"username":"bob\udc00"}`, false},
		{"lone last low surrogate", `{"username":"bob\udfff"}`, false},
		{"last code point before the surrogates", `{"username":"\ud7ff"}`, true},
		{"first code point after them", `{"username":"\ue000"}`, true},
		{"high surrogate then the code point before the low ones", `{"username":"\udbff\udbff"}`, false},
		{"high surrogate then the code point after them", `{"username":"\ud800\ue000"}`, false},
		{"last pair", `{"username":"\udbff\udfff"}`, true},
		{"lone surrogate right after another escape", `{"username":"\n\ud800"}`, false},
		{"lone surrogate right after a pair", `{"username":"\ud83e\udded\udc00"}`, false},
		{"hex digits at their edges", `{"username":"\u0009\u00aF\u00Af"}`, true},
		{"not hex: letters just past f and F", `{"username":"\u00g0\u00G0"}`, true},
		{"not hex: characters around the digits", `{"username":"\u/000\u:000\u@000\u` + "`" + `000"}`, true},
		{"a signed escape", `{"username":"\u+d80"}`, true},
		{"low then high", `{"username":"\udc00\ud800"}`, false},
		{"in a key", `{"props":{"a\ud800":1}}`, false},
		{"in a nested value", `{"props":{"a":{"b":["x","\udfff"]}}}`, false},
	} {
		err := CheckJSONText([]byte(c.text))
		if c.ok != (err == nil) || !c.ok && ErrorCode(err) != EInvalidJSON {
			t.Errorf("%s: %v", c.name, err)
		}
	}
}

// What the check lets through, encoding/json decodes without replacing
// anything: re-encoding a decoded string gives back its text.
func TestCheckJSONTextMatchesTheDecoder(t *testing.T) {
	for _, text := range []string{`"\ud83e\udded"`, `"a\\ud800"`, `"zoë"`, `"\u00eb\ufffd"`} {
		if err := CheckJSONText([]byte(text)); err != nil {
			t.Fatalf("%s: %v", text, err)
		}
		var s string
		if err := json.Unmarshal([]byte(text), &s); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(s, "\ufffd") && !strings.Contains(text, `\ufffd`) {
			t.Errorf("%s decoded with a replacement character", text)
		}
	}
}

// The check against the decoding it guards, on feedback bodies near the
// size limit: plain text, and text dense with non-ASCII and escapes (go test
// -run '^$' -bench CheckJSONText ./internal/waymark/).
func BenchmarkCheckJSONText(b *testing.B) {
	for name, chunk := range map[string]string{
		"plain":   `Where is the export button? I looked everywhere. `,
		"escapes": `zoë \u00eb \ud83e\udded plain text `,
	} {
		text := strings.Repeat(chunk, MaxFeedbackChars/len(chunk))
		body := []byte(`{"workspace":"demo","username":"ada","text":"` + text + `"}`)
		b.Run(name+"/check", func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if err := CheckJSONText(body); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"/decode", func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				var req FeedbackRequest
				if err := json.Unmarshal(body, &req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

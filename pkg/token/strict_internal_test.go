package token

import (
	"errors"
	"strings"
	"testing"
)

// TestParseObjectEndOfInput feeds the strict parser every way a token's JSON
// can stop short, each at the very end of the input: a bounds check that
// reads one byte too far panics on these (before any signature is
// checked), and one that stops one byte early rejects valid input or names
// the wrong failure. Each case pins the failure and its offset.
func TestParseObjectEndOfInput(t *testing.T) {
	cases := []struct {
		in   string
		what string
		off  int
	}{
		{`{`, "expected a member name", 1},
		{`{"a"`, "expected ':'", 4},
		{`{"a":`, "unexpected end", 5},
		{`{"a":1`, "unexpected end", 6},
		{`{"a":[`, "unexpected end", 6},
		{`{"a":[1`, "unexpected end", 7},
		{`{"a":t`, "bad literal", 5},
		{`{"a":tru`, "bad literal", 5},
		{`{"a":true`, "unexpected end", 9},
		{`{"a":fals`, "bad literal", 5},
		{`{"a":false`, "unexpected end", 10},
		{`{"a":nul`, "bad literal", 5},
		{`{"a":null`, "unexpected end", 9},
		{`{"a":[tru`, "bad literal", 6},
		{`{"a":[true`, "unexpected end", 10},
		{`{"a":-`, "bad number", 6},
		{`{"a":1.`, "bad number", 7},
		{`{"a":1e`, "bad number", 7},
		{`{"a":1e+`, "bad number", 8},
		{`{"a":"`, "unterminated string", 6},
		{`{"a":"x`, "unterminated string", 7},
		{`{"a":"é`, "unterminated string", 8},
		{`{"a":"\`, "unterminated escape", 6},
		{`{"a":"\u`, "bad \\u escape", 8},
		{`{"a":"\u0`, "bad \\u escape", 8},
		{`{"a":"\u004`, "bad \\u escape", 8},
		{`{"a":"\u0041`, "unterminated string", 12},
		{`{"a":"\ud83d`, "unpaired surrogate", 12},
		{`{"a":"\ud83d\`, "unpaired surrogate", 12},
		{`{"a":"\ud83d\u`, "bad \\u escape", 14},
		{`{"a":"\ud83d\ude0`, "bad \\u escape", 14},
		{`{"a":"\ud83d\ude00`, "unterminated string", 18},
		{`{"a":"\ud83d\u0041"}`, "unpaired surrogate", 18},
		{`{"a":"\udc00\udc00"}`, "unpaired surrogate", 12},
		{`{"a":"\ud83d\ud83d"}`, "unpaired surrogate", 18},
		{`{"a":"\ud83d\n"}`, "unpaired surrogate", 12},
		{`{"a":"x\`, "unterminated escape", 7},
		{`{"a":"\z"}`, "bad escape", 6},
		{`{"a":"\uD83D\uDE00"}`, "", 0},
		{`{"a":"\uFFFF"}`, "", 0},
		{`{"a":"\u007f\u001F"}`, "", 0},
		{`{"a":"` + "\x1f" + `"}`, "control character in string", 6},
		{`{"a":"x` + "\x1f" + `"}`, "control character in string", 7},
		{`{"a":"é` + "\x00" + `"}`, "control character in string", 8},
		{`{"a":"` + "\x20\x7f" + `"}`, "", 0},
		{`{"a":"é` + "\x20" + `"}`, "", 0},
		{`{"a":"` + "\x80" + `"}`, "invalid UTF-8", 6},
		{`{"a":"é` + "\x80" + `"}`, "invalid UTF-8", 8},
		{`{"a":"\u0a9A\u00Af\u00F0"}`, "", 0},
		{`{"a":"\u0/00"}`, "bad \\u escape", 8},
		{`{"a":"\u0:00"}`, "bad \\u escape", 8},
		{`{"a":"\u0` + "`" + `00"}`, "bad \\u escape", 8},
		{`{"a":"\u0@00"}`, "bad \\u escape", 8},
		{`{"a":"\u0G00"}`, "bad \\u escape", 8},
		{`{"a":9,"b":-9,"c":1}`, "", 0},
		{`{"a":/}`, "unexpected character", 5},
		{`{"a"::1}`, "unexpected character", 5},
		{`{"a":-/}`, "bad number", 6},
		{`{"a":-:}`, "bad number", 6},
		{`{} `, "", 0},
		{` {}`, "", 0},
		{`{}x`, "data after the object", 2},
		{`{"a":1}]`, "data after the object", 7},
	}
	// Closing a container must give its depth back: siblings never add up
	// to the nesting limit, on the empty and the non-empty path alike.
	for _, sib := range []string{`[]`, `[1]`, `{}`, `{"k":1}`} {
		many := `{"a":[` + strings.Repeat(sib+",", 2*maxJSONDepth) + `1]}`
		cases = append(cases, struct {
			in   string
			what string
			off  int
		}{many, "", 0})
	}
	for _, tc := range cases {
		name := tc.in
		if len(name) > 40 {
			name = name[:40]
		}
		t.Run(name, func(t *testing.T) {
			// Capacity equal to length: a read past the end panics
			// instead of finding spare bytes of the allocation.
			in := []byte(tc.in)
			_, err := parseObject(in[:len(in):len(in)])
			if tc.what == "" {
				if err != nil {
					t.Fatalf("parseObject(%q) = %v, want success", tc.in, err)
				}
				return
			}
			var je *jsonError
			if !errors.As(err, &je) {
				t.Fatalf("parseObject(%q) = %v, want %q at %d", tc.in, err, tc.what, tc.off)
			}
			if je.what != tc.what || je.off != tc.off {
				t.Fatalf("parseObject(%q) = %q at %d, want %q at %d", tc.in, je.what, je.off, tc.what, tc.off)
			}
		})
	}
}

// TestParseObjectHexDigits decodes every hex digit, in both cases, to the
// value encoding/json gives it.
func TestParseObjectHexDigits(t *testing.T) {
	for _, in := range []string{
		`{"a":"\u0123\u4567\u89ab\ucdef"}`,
		`{"a":"\u89AB\uCDEF\uABCD"}`,
		`{"a":"\uD83D\uDE00\uFFFD\u00e9"}`,
	} {
		got, err := parseObject([]byte(in))
		if err != nil {
			t.Fatalf("parseObject(%q): %v", in, err)
		}
		want, err := stdDecode([]byte(in))
		if err != nil {
			t.Fatal(err)
		}
		if got["a"] != want.(map[string]any)["a"] {
			t.Fatalf("parseObject(%q) = %+q, encoding/json %+q", in, got["a"], want.(map[string]any)["a"])
		}
	}
}

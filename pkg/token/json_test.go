package token

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestParseObject(t *testing.T) {
	cases := []struct {
		name string
		in   string
		want map[string]any // nil: an error is expected
	}{
		{"empty object", `{}`, map[string]any{}},
		{"whitespace", " \t\r\n{ \"a\" : 1 }\n", map[string]any{"a": json.Number("1")}},
		{"all types", `{"s":"x","n":-1.5e3,"t":true,"f":false,"z":null,"a":[1,"b",[]],"o":{"k":{}}}`, map[string]any{
			"s": "x", "n": json.Number("-1.5e3"), "t": true, "f": false, "z": nil,
			"a": []any{json.Number("1"), "b", []any{}}, "o": map[string]any{"k": map[string]any{}},
		}},
		{"escapes", `{"e":"\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00"}`, map[string]any{"e": "\"\\/\b\f\n\r\té😀"}},
		{"escaped name", `{"\u0061lg":"x"}`, map[string]any{"alg": "x"}},
		{"NUL escape", `{"k":"\u0000"}`, map[string]any{"k": "\x00"}},
		{"raw UTF-8", `{"k":"café ☃ 😀"}`, map[string]any{"k": "café ☃ 😀"}},
		{"numbers", `{"a":0,"b":-0,"c":0.5,"d":1E+2,"e":1e-2,"f":123456789012345678901234567890}`, map[string]any{
			"a": json.Number("0"), "b": json.Number("-0"), "c": json.Number("0.5"), "d": json.Number("1E+2"),
			"e": json.Number("1e-2"), "f": json.Number("123456789012345678901234567890"),
		}},
		{"duplicate name", `{"a":1,"a":2}`, nil},
		{"duplicate name after escape", `{"alg":"RS256","\u0061lg":"none"}`, nil},
		{"duplicate name, nested", `{"o":{"a":1,"b":{"c":1,"c":1}}}`, nil},
		{"duplicate name inside an array", `{"a":[{"x":1,"x":2}]}`, nil},
		{"same name in sibling objects is fine", `{"a":{"x":1},"b":{"x":1}}`, map[string]any{"a": map[string]any{"x": json.Number("1")}, "b": map[string]any{"x": json.Number("1")}}},
		{"array at top level", `[]`, nil},
		{"string at top level", `"x"`, nil},
		{"empty input", ``, nil},
		{"trailing data", `{}{}`, nil},
		{"trailing garbage", `{} x`, nil},
		{"trailing comma in object", `{"a":1,}`, nil},
		{"trailing comma in array", `{"a":[1,]}`, nil},
		{"missing colon", `{"a" 1}`, nil},
		{"unquoted name", `{a:1}`, nil},
		{"single quotes", `{'a':1}`, nil},
		{"unterminated string", `{"a":"x}`, nil},
		{"unterminated object", `{"a":1`, nil},
		{"raw control character", "{\"a\":\"x\ny\"}", nil},
		{"invalid UTF-8", "{\"a\":\"\xff\"}", nil},
		{"truncated UTF-8", "{\"a\":\"\xe2\x98\"}", nil},
		{"overlong UTF-8", "{\"a\":\"\xc0\xaf\"}", nil},
		{"UTF-8 surrogate", "{\"a\":\"\xed\xa0\x80\"}", nil},
		{"lone high surrogate", `{"a":"\ud800"}`, nil},
		{"lone low surrogate", `{"a":"\udc00"}`, nil},
		{"high surrogate then non-surrogate", `{"a":"\ud800\u0041"}`, nil},
		{"high surrogate then text", `{"a":"\ud800x"}`, nil},
		{"bad escape", `{"a":"\x"}`, nil},
		{"short unicode escape", `{"a":"\u12"}`, nil},
		{"bad hex", `{"a":"\u12g4"}`, nil},
		{"leading zero", `{"a":01}`, nil},
		{"leading plus", `{"a":+1}`, nil},
		{"bare dot", `{"a":1.}`, nil},
		{"bare exponent", `{"a":1e}`, nil},
		{"NaN", `{"a":NaN}`, nil},
		{"Infinity", `{"a":Infinity}`, nil},
		{"hex number", `{"a":0x10}`, nil},
		{"bad literal", `{"a":tru}`, nil},
		{"upper-case literal", `{"a":True}`, nil},
		{"comment", `{"a":1 /* c */}`, nil},
		{"BOM", "\xef\xbb\xbf{}", nil},
		{"depth at the limit", `{"a":` + strings.Repeat("[", maxJSONDepth-1) + strings.Repeat("]", maxJSONDepth-1) + `}`, map[string]any{"a": nest(maxJSONDepth - 1)}},
		{"depth over the limit", `{"a":` + strings.Repeat("[", maxJSONDepth) + strings.Repeat("]", maxJSONDepth) + `}`, nil},
		{"depth 100k", strings.Repeat(`{"a":`, 100000), nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseObject([]byte(tc.in))
			if tc.want == nil {
				if err == nil {
					t.Fatalf("parseObject accepted %q: %#v", tc.in, got)
				}
				var je *jsonError
				if !errors.As(err, &je) {
					t.Fatalf("error %v is not a *jsonError", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseObject: %v", err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("parseObject = %#v, want %#v", got, tc.want)
			}
			// What the strict parser accepts, encoding/json decodes the same.
			if std, err := stdDecode([]byte(tc.in)); err != nil || !reflect.DeepEqual(std, any(got)) {
				t.Fatalf("encoding/json disagrees: %#v, %v", std, err)
			}
		})
	}
}

func nest(n int) any {
	var v any = []any{}
	for i := 1; i < n; i++ {
		v = []any{v}
	}
	return v
}

func stdDecode(b []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	if rest := bytes.TrimLeft(b[d.InputOffset():], " \t\r\n"); len(rest) > 0 {
		return nil, errors.New("trailing data")
	}
	return v, nil
}

// FuzzParseObject holds the strict parser to encoding/json: whatever it
// accepts, encoding/json decodes to the same value; whatever encoding/json
// accepts as an object of valid UTF-8, the strict parser accepts too unless
// it holds a duplicate name, an unpaired surrogate escape or deep nesting.
func FuzzParseObject(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":1}`, `{"a":1,"a":2}`, `{"\u0061":1,"a":2}`, `{"a":"\ud83d\ude00"}`, `{"a":[1,{"b":null}]}`, `{"a":"\ud800"}`, `{"a":1e5,"b":-0.0}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := parseObject(data)
		// The no-copy variant Verify uses gives the same result, on a
		// buffer of its own as Verify's is.
		owned, ownedErr := parseOwnedObject(bytes.Clone(data))
		if !reflect.DeepEqual(got, owned) || fmt.Sprint(err) != fmt.Sprint(ownedErr) {
			t.Fatalf("parseOwnedObject differs: %#v, %v against %#v, %v", owned, ownedErr, got, err)
		}
		std, stdErr := stdDecode(data)
		if err == nil {
			if stdErr != nil {
				t.Fatalf("strict parser accepted what encoding/json rejects (%v): %q", stdErr, data)
			}
			if !reflect.DeepEqual(any(got), std) {
				t.Fatalf("values differ:\nstrict %#v\nstd    %#v", got, std)
			}
			return
		}
		var je *jsonError
		if !errors.As(err, &je) {
			t.Fatalf("error %v is not a *jsonError", err)
		}
		if _, isObject := std.(map[string]any); stdErr != nil || !isObject || !utf8.Valid(data) {
			return
		}
		switch je.what {
		case "duplicate member name", "unpaired surrogate", "nested too deeply":
		default:
			t.Fatalf("strict parser rejected a valid object (%v): %q", err, data)
		}
	})
}

func BenchmarkParseObject(b *testing.B) {
	payload := []byte(`{"sub":"aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee","cognito:groups":["admins","users"],"iss":"https://cognito-idp.us-east-1.amazonaws.com/us-east-1_AAAAAAAAA","version":2,"client_id":"4tq0example","origin_jti":"0b8c8f6e-1111-2222-3333-444444444444","event_id":"0b8c8f6e-1111-2222-3333-555555555555","token_use":"access","scope":"pets/read pets/write","auth_time":1800000000,"exp":1800003600,"iat":1800000000,"jti":"0b8c8f6e-1111-2222-3333-666666666666","username":"alice"}`)
	b.Run("strict", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(payload)))
		for b.Loop() {
			if _, err := parseObject(payload); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(payload)))
		for b.Loop() {
			if _, err := stdDecode(payload); err != nil {
				b.Fatal(err)
			}
		}
	})
}

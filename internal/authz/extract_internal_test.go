package authz

import (
	"slices"
	"testing"

	"github.com/cognito-extauthz/cognito-extauthz/pkg/reason"
)

type fixedHeaders map[string][]string

func (h fixedHeaders) Get(name string) (string, int) {
	v := h[name]
	if len(v) == 0 {
		return "", 0
	}
	return v[0], len(v)
}

func (h fixedHeaders) All(name string) []string { return h[name] }

// TestBearer pins the scheme boundaries: the scheme is a whole word followed
// by a space, in any case; anything else is taken as the token itself.
func TestBearer(t *testing.T) {
	for _, tc := range []struct {
		in, tok string
		code    reason.Code
	}{
		{"Bearer abc", "abc", ""},
		{"bearer abc", "abc", ""},
		{"BEARER   abc", "abc", ""},
		{" \tBearer abc\t ", "abc", ""},
		{"abc", "abc", ""},
		{"Bearer", "", reason.TokenMissing},
		{"Bearer ", "", reason.TokenMissing},
		{"bearer", "", reason.TokenMissing},
		{"Bearerabc", "Bearerabc", ""},
		{"Bearer\tabc", "Bearer\tabc", ""},
		{"Beare", "Beare", ""},
		{"", "", reason.TokenMissing},
		{"Bearer a,b", "", reason.TokenAmbiguous},
		{"a,", "", reason.TokenAmbiguous},
		{",a", "", reason.TokenAmbiguous},
	} {
		tok, code := bearer(tc.in)
		if tok != tc.tok || code != tc.code {
			t.Errorf("bearer(%q) = %q %q, want %q %q", tc.in, tok, code, tc.tok, tc.code)
		}
	}
}

func TestFromHeaderCounts(t *testing.T) {
	h := fixedHeaders{"one": {"Bearer t"}, "two": {"Bearer t", "Bearer u"}}
	for _, tc := range []struct {
		name, tok string
		code      reason.Code
	}{
		{"one", "t", ""},
		{"two", "", reason.TokenAmbiguous},
		{"none", "", reason.TokenMissing},
	} {
		tok, code := fromHeader(h, tc.name)
		if tok != tc.tok || code != tc.code {
			t.Errorf("fromHeader(%q) = %q %q, want %q %q", tc.name, tok, code, tc.tok, tc.code)
		}
	}
}

func TestFromQuery(t *testing.T) {
	for _, tc := range []struct {
		path, tok string
		code      reason.Code
	}{
		{"/p?access_token=abc", "abc", ""},
		{"/p?x=1&access_token=abc&y=2", "abc", ""},
		{"/p?access%5Ftoken=abc", "abc", ""},
		{"/p?access_token=a%2Eb", "a.b", ""},
		{"/p?access_token=abc#frag", "abc", ""},
		{"/p?x=1#access_token=abc", "", reason.TokenMissing},
		{"/p", "", reason.TokenMissing},
		{"/p?", "", reason.TokenMissing},
		{"/p?access_token=", "", reason.TokenMissing},
		{"/p?access_token", "", reason.TokenMissing},
		{"/p?access_token=a&access_token=b", "", reason.TokenAmbiguous},
		{"/p?access_token=&access_token=", "", reason.TokenAmbiguous},
		{"/p?access_token=%zz", "", reason.TokenMalformed},
		{"/p?%zz=1&access_token=abc", "abc", ""},
		{"?access_token=abc", "abc", ""},
		{"/p?#x&access_token=abc", "", reason.TokenMissing},
	} {
		tok, code := fromQuery(tc.path, "access_token")
		if tok != tc.tok || code != tc.code {
			t.Errorf("fromQuery(%q) = %q %q, want %q %q", tc.path, tok, code, tc.tok, tc.code)
		}
	}
}

func TestFromCookie(t *testing.T) {
	for _, tc := range []struct {
		headers []string
		tok     string
		code    reason.Code
	}{
		{[]string{"id_token=abc"}, "abc", ""},
		{[]string{"a=1; id_token=abc; b=2"}, "abc", ""},
		{[]string{"a=1,id_token=abc"}, "abc", ""},
		{[]string{" id_token = \"abc\" "}, "abc", ""},
		{[]string{`id_token=""`}, "", reason.TokenMissing},
		{[]string{`id_token="`}, `"`, ""},
		{[]string{`id_token="a`}, `"a`, ""},
		{[]string{"a=1", "id_token=abc"}, "abc", ""},
		{[]string{";;id_token=abc;;"}, "abc", ""},
		{[]string{"id_token=a", "id_token=b"}, "", reason.TokenAmbiguous},
		{[]string{"id_tokens=a"}, "", reason.TokenMissing},
		{nil, "", reason.TokenMissing},
	} {
		tok, code := fromCookie(tc.headers, "id_token")
		if tok != tc.tok || code != tc.code {
			t.Errorf("fromCookie(%q) = %q %q, want %q %q", tc.headers, tok, code, tc.tok, tc.code)
		}
	}
}

func TestCookieHeaderWithout(t *testing.T) {
	for _, tc := range []struct {
		headers []string
		want    string
		ok      bool
	}{
		{[]string{"a=1; id_token=x; b=2"}, "a=1; b=2", true},
		{[]string{"id_token=x"}, "", false},
		{[]string{"id_token=x", "c=3"}, "c=3", true},
		{[]string{`a="q"`}, "a=q", true},
		{nil, "", false},
	} {
		got, ok := cookieHeaderWithout(tc.headers, "id_token")
		if got != tc.want || ok != tc.ok {
			t.Errorf("cookieHeaderWithout(%q) = %q %v, want %q %v", tc.headers, got, ok, tc.want, tc.ok)
		}
	}
}

func TestSingle(t *testing.T) {
	for _, tc := range []struct {
		value string
		count int
		tok   string
		code  reason.Code
	}{
		{"", 0, "", reason.TokenMissing},
		{"x", 0, "", reason.TokenMissing},
		{"", 1, "", reason.TokenMissing},
		{"x", 1, "x", ""},
		{"x", 2, "", reason.TokenAmbiguous},
		{"", 2, "", reason.TokenAmbiguous},
	} {
		tok, code := single(tc.value, tc.count)
		if tok != tc.tok || code != tc.code {
			t.Errorf("single(%q, %d) = %q %q, want %q %q", tc.value, tc.count, tok, code, tc.tok, tc.code)
		}
	}
}

// TestValidHeaderValue pins the filter that keeps a claim out of a header
// it would split or that Envoy would reject.
func TestValidHeaderValue(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want bool
	}{
		{"", true},
		{"a b", true},
		{"a\tb", true},
		{"!~", true},
		{"caf\u00e9", true},
		{"a\x1fb", false},
		{"a\x00", false},
		{"a\x08b", false},
		{"a\nb", false},
		{"a\x7fb", false},
		{" a", false},
		{"a ", false},
		{"\ta", false},
	} {
		if got := validHeaderValue(tc.in); got != tc.want {
			t.Errorf("validHeaderValue(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestIsSet(t *testing.T) {
	set := []Header{{Name: "x-a", Value: "1"}, {Name: "x-b", Value: ""}}
	for _, tc := range []struct {
		name string
		want bool
	}{{"x-a", true}, {"x-b", true}, {"x-c", false}, {"X-A", false}} {
		if got := isSet(set, tc.name); got != tc.want {
			t.Errorf("isSet(%q) = %v, want %v", tc.name, got, tc.want)
		}
	}
	if isSet(nil, "x-a") {
		t.Error("isSet(nil) = true")
	}
}

// TestQueryValues: every decoded value of each parameter an upstream could
// read as _method, in order; other parameters, undecodable values and the
// fragment are skipped.
func TestQueryValues(t *testing.T) {
	tests := []struct {
		query string
		want  []string
	}{
		{"_method=DELETE", []string{"DELETE"}},
		{"a=1&_method=PUT&b=2&_method=PATCH", []string{"PUT", "PATCH"}},
		{"%5Fmethod=D%45LETE", []string{"DELETE"}},
		{"_method=%zz&_method=POST", []string{"POST"}},
		{"other=DELETE", nil},
		{"_method=GET#_method=DELETE", []string{"GET"}},
		// The fragment is never read, even when it is all there is.
		{"#&_method=DELETE", nil},
		{"#;_method=DELETE", nil},
		{"", nil},
		// Encoded keys, as Node's querystring and PHP decode them.
		{"%5fmethod=GET", []string{"GET"}},
		{"_%6Dethod=GET", []string{"GET"}},
		{"%5F%6D%65%74%68%6F%64=GET", []string{"GET"}},
		{"x=1&%5Fmethod=GET", []string{"GET"}},
		// Case: ASP.NET reads query keys without case.
		{"_METHOD=GET", []string{"GET"}},
		{"_Method=GET", []string{"GET"}},
		// PHP: '.', ' ' and an unclosed '[' become '_'; "_method[x]" is an
		// element of _method.
		{".method=GET", []string{"GET"}},
		{"+method=GET", []string{"GET"}},
		{"%20method=GET", []string{"GET"}},
		{"[method=GET", []string{"GET"}},
		{"_method[]=GET", []string{"GET"}},
		{"_method[0]=GET&_method[1]=DELETE", []string{"GET", "DELETE"}},
		// ';' separates pairs for Rack before 3 and older Python.
		{"a=1;_method=GET", []string{"GET"}},
		// Decoded twice.
		{"%255Fmethod=GET", []string{"GET"}},
		// Not the override: a longer or shorter key, or an undecodable one.
		{"_methods=GET", nil},
		{"method=GET", nil},
		{"x_method=GET", nil},
		{"_method%=GET", nil},
		{"_method[=GET", nil},
	}
	for _, tt := range tests {
		if got := queryValues(tt.query); !slices.Equal(got, tt.want) {
			t.Errorf("queryValues(%q) = %q, want %q", tt.query, got, tt.want)
		}
	}
}

// TestMayOverride: the fast test never hides a key queryValues would read.
func TestMayOverride(t *testing.T) {
	for _, tt := range []struct {
		query string
		want  bool
	}{
		{"", false},
		{"a=1&b=2", false},
		{"page=3&sort=name", false},
		{"m", false},
		{"_method=GET", true},
		{"_METHOD=GET", true},
		{"x=1&.MeThOd=GET", true},
		{"mmmethod=1", true},
		// An 'm' before the key that spells method.
		{"name=a&_method=GET", true},
		{"sm=1&ym=2&_method=GET", true},
		{"%5Fmethod=GET", true},
		{"_%6Dethod=GET", true},
		// A '%' at the very start, and no "method" spelled out.
		{"%5F%6D%65%74%68%6F%64=GET", true},
		{"%5f%6dethod=GET", true},
		{"a=%20", true},
		{"methoX=1", false},
		{"metho", false},
	} {
		if got := mayOverride(tt.query); got != tt.want {
			t.Errorf("mayOverride(%q) = %v, want %v", tt.query, got, tt.want)
		}
		if !tt.want && queryValues(tt.query) != nil {
			t.Errorf("mayOverride(%q) = false, but queryValues reads an override in it", tt.query)
		}
	}
}

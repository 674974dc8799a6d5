package grpcauthz

import (
	"slices"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"

	"github.com/cognito-extauthz/cognito-extauthz/internal/check"
)

// TestLowerTokens: the one-lookup fast path is taken only when every key
// is of visible ASCII without upper case or '_' (each bound taken exactly)
// and no header_map is sent; exceeded finds it out on its walk.
func TestLowerTokens(t *testing.T) {
	tests := []struct {
		key  string
		want bool
	}{
		{"authorization", true},
		{"x-api-key", true},
		{"!", true},              // 0x21, the first visible byte
		{"~", true},              // 0x7e, the last
		{"x_user_sub", false},    // a CGI spelling: Underscored must be filled
		{"@", true}, {"[", true}, // either side of A-Z
		{"", true},
		{" ", false},
		{"x api", false},
		{"\x1f", false},
		{"\x7f", false},
		{"\x80", false},
		{"x-api-\u212aey", false}, // KELVIN SIGN folds to k
		{"A", false}, {"Z", false}, {"Authorization", false},
	}
	l := check.Limits{}.WithDefaults()
	for _, tt := range tests {
		if got := lowerToken(tt.key); got != tt.want {
			t.Errorf("lowerToken(%q) = %v, want %v", tt.key, got, tt.want)
		}
		req := limitRequest("GET", "h", "/", map[string]string{"x-ok": "", tt.key: ""})
		if _, got := exceeded(l, req); got != tt.want {
			t.Errorf("exceeded: lower = %v for key %q, want %v", got, tt.key, tt.want)
		}
		withRaw := limitRequest("GET", "h", "/", map[string]string{"x-ok": "", tt.key: ""}, [3]string{"x", "v", ""})
		if _, got := exceeded(l, withRaw); got {
			t.Errorf("exceeded: lower with a header_map for key %q", tt.key)
		}
	}
}

// TestHeaderValueForms: a header_map entry is read from raw_value when it
// has one and from value otherwise (Envoy fills one or the other).
func TestHeaderValueForms(t *testing.T) {
	tests := []struct {
		name      string
		hv        *corev3.HeaderValue
		want      string
		wantCount int
	}{
		{"value only", &corev3.HeaderValue{Key: "authorization", Value: "Bearer v"}, "Bearer v", 1},
		{"raw_value only", &corev3.HeaderValue{Key: "authorization", RawValue: []byte("Bearer r")}, "Bearer r", 1},
		{"both: raw_value wins", &corev3.HeaderValue{Key: "authorization", Value: "Bearer v", RawValue: []byte("Bearer r")}, "Bearer r", 1},
		{"other key", &corev3.HeaderValue{Key: "x-other", Value: "v"}, "", 0},
	}
	for _, tt := range tests {
		hs := &requestHeaders{raw: []*corev3.HeaderValue{tt.hv}}
		if got, n := hs.Get("authorization"); got != tt.want || n != tt.wantCount {
			t.Errorf("%s: Get = %q, %d; want %q, %d", tt.name, got, n, tt.want, tt.wantCount)
		}
		if all := hs.All("authorization"); len(all) != tt.wantCount || (tt.wantCount > 0 && all[0] != tt.want) {
			t.Errorf("%s: All = %q, want %d of %q", tt.name, all, tt.wantCount, tt.want)
		}
	}
}

// TestUnderscored: every header name with a '_' anywhere, the first byte
// included ("_user-sub" is a CGI twin of "-user-sub"), from the headers map
// and header_map alike, lower case; nil when there is none.
func TestUnderscored(t *testing.T) {
	tests := []struct {
		name string
		hs   requestHeaders
		want []string
	}{
		{"none", requestHeaders{m: map[string]string{"x-user-sub": "", "authorization": ""}}, nil},
		{"map", requestHeaders{m: map[string]string{"x_user_sub": "", "_user-sub": "", "X-User_Sub": "", "x-ok": ""}},
			[]string{"_user-sub", "x-user_sub", "x_user_sub"}},
		{"header_map", requestHeaders{raw: []*corev3.HeaderValue{{Key: "_User-Sub"}, {Key: "x-ok"}, {Key: "X_Http_Method"}}},
			[]string{"_user-sub", "x_http_method"}},
	}
	for _, tt := range tests {
		got := tt.hs.underscored()
		slices.Sort(got)
		if !slices.Equal(got, tt.want) || (tt.want == nil) != (got == nil) {
			t.Errorf("%s: underscored() = %q, want %q", tt.name, got, tt.want)
		}
	}
}

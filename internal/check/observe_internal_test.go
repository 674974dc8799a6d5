package check

import (
	"strings"
	"testing"
)

// TestLogPath: the logged path never carries the query or fragment (an
// identitySource of query:access_token puts the token there), even when
// the path is nothing but a query, and is bounded.
func TestLogPath(t *testing.T) {
	tests := []struct{ in, want string }{
		{"/pets", "/pets"},
		{"/pets?access_token=x", "/pets"},
		{"/pets#frag", "/pets"},
		{"?access_token=x", ""},
		{"#access_token=x", ""},
		{strings.Repeat("a", 256), strings.Repeat("a", 256)},
		{strings.Repeat("a", 300) + "?x", strings.Repeat("a", 256)},
	}
	for _, tt := range tests {
		if got := logPath(tt.in); got != tt.want {
			t.Errorf("logPath(%.20q) = %.20q, want %.20q", tt.in, got, tt.want)
		}
	}
}

// TestQuoteEscape: a scope in the WWW-Authenticate quoted-string has its
// quotes and backslashes escaped, nothing else.
func TestQuoteEscape(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"pets/read pets/write", "pets/read pets/write"},
		{`a"b`, `a\"b`},
		{`a\b`, `a\\b`},
		{`"\`, `\"\\`},
		{`x"`, `x\"`},
	}
	for _, tt := range tests {
		if got := quoteEscape(tt.in); got != tt.want {
			t.Errorf("quoteEscape(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

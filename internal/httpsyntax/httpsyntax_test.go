package httpsyntax

import "testing"

// TestIsToken: every byte of the RFC 9110 tchar set, and the bytes either
// side of each range, taken exactly.
func TestIsToken(t *testing.T) {
	for c := 0; c < 256; c++ {
		want := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
		for _, tc := range "!#$%&'*+-.^_`|~" {
			want = want || c == int(tc)
		}
		if got := IsToken(string([]byte{byte(c)})); got != want {
			t.Errorf("IsToken(%#x) = %v, want %v", c, got, want)
		}
	}
	for s, want := range map[string]bool{"": false, "x-user-sub": true, "bad header": false, "x:y": false, "GET": true} {
		if got := IsToken(s); got != want {
			t.Errorf("IsToken(%q) = %v, want %v", s, got, want)
		}
	}
}

// TestFieldValueAndControl: a field value may hold a tab but no other
// control character; HasControl counts the tab too.
func TestFieldValueAndControl(t *testing.T) {
	for _, tt := range []struct {
		s           string
		valid, ctrl bool
	}{
		{"", true, false},
		{"plain value", true, false},
		{"a\tb", true, true},
		{"a\nb", false, true},
		{"a\rb", false, true},
		{"\x00", false, true},
		{"\x1f", false, true},
		{"\x08", false, true}, // the byte before tab
		{"\x0a", false, true}, // the byte after tab
		{"a\x00", false, true},
		{"\r\nx-evil: 1", false, true},
		{" ", true, false},
		{"~", true, false},
		{"\x7f", false, true},
		{"\x80é", true, false},
	} {
		if got := ValidFieldValue(tt.s); got != tt.valid {
			t.Errorf("ValidFieldValue(%q) = %v, want %v", tt.s, got, tt.valid)
		}
		if got := HasControl(tt.s); got != tt.ctrl {
			t.Errorf("HasControl(%q) = %v, want %v", tt.s, got, tt.ctrl)
		}
	}
}

func TestUpstreamReadings(t *testing.T) {
	for name, want := range map[string]bool{"x-http-method-override": true, "x-http-method": true, "x-method-override": true,
		"x-http-method-overrides": false, "x_http_method_override": false, "": false} {
		if got := IsOverrideHeader(name); got != want {
			t.Errorf("IsOverrideHeader(%q) = %v, want %v", name, got, want)
		}
	}
	for name, want := range map[string]bool{"X-Forwarded-Uri": true, "x-original-uri": true, "X-ORIGINAL-HOST": true,
		"x-forwarded-": true, "x-forwarded": false, "forwarded": false, "x-originals": false, "": false} {
		if got := IsForwarding(name); got != want {
			t.Errorf("IsForwarding(%q) = %v, want %v", name, got, want)
		}
	}
	for in, want := range map[string]string{"x_user_sub": "x-user-sub", "x-user_sub": "x-user-sub", "x-user-sub": "x-user-sub", "_": "-", "": ""} {
		if got := CGIName(in); got != want {
			t.Errorf("CGIName(%q) = %q, want %q", in, got, want)
		}
	}
}

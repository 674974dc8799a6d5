package extauthz

import "testing"

// TestAllLowerTokens: the one-lookup fast path is taken only for keys of
// visible ASCII without upper case, each bound taken exactly.
func TestAllLowerTokens(t *testing.T) {
	tests := []struct {
		key  string
		want bool
	}{
		{"authorization", true},
		{"x-api-key", true},
		{"!", true},              // 0x21, the first visible byte
		{"~", true},              // 0x7e, the last
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
	for _, tt := range tests {
		if got := allLowerTokens(map[string]string{"x-ok": "", tt.key: ""}); got != tt.want {
			t.Errorf("allLowerTokens(%q) = %v, want %v", tt.key, got, tt.want)
		}
	}
}

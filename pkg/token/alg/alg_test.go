package alg

import (
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	tests := []struct {
		name, want string // want: "" = accepted, else a fragment of the error
	}{
		{"RS256", ""}, {"RS384", ""}, {"RS512", ""}, {"PS256", ""}, {"PS384", ""}, {"PS512", ""},
		{"none", "unsigned"}, {"NONE", "unsigned"},
		{"HS256", "HMAC"}, {"hs512", "HMAC"},
		{"ES256", "RSA keys only"}, {"EdDSA", "RSA keys only"},
		{"rs256", "write it upper case, RS256"},
		{"RSA1_5", "unknown algorithm"}, {"", "unknown algorithm"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Check(tt.name)
			if tt.want == "" {
				if err != nil || !IsRSA(tt.name) {
					t.Fatalf("Check(%q) = %v, IsRSA = %v; want accepted", tt.name, err, IsRSA(tt.name))
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) || IsRSA(tt.name) {
				t.Fatalf("Check(%q) = %v, want an error containing %q", tt.name, err, tt.want)
			}
		})
	}
}

func TestDefaultIsAccepted(t *testing.T) {
	if !IsRSA(Default) {
		t.Fatalf("Default %q is not in RSA()", Default)
	}
	l := RSA()
	l[0] = "HS256"
	if IsRSA("HS256") {
		t.Fatal("RSA() shares its backing array: a caller could widen the list")
	}
}

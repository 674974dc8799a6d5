package policy

import (
	"fmt"
	"strings"
	"testing"
)

// TestIsQueryName: a query parameter name is unreserved characters only
// (RFC 3986 section 2.3), each range taken to its ends and no further.
func TestIsQueryName(t *testing.T) {
	tests := []struct {
		name string
		want bool
	}{
		{"", false},
		{"access_token", true},
		{"azAZ09-._~", true},
		{"a", true}, {"z", true}, {"A", true}, {"Z", true}, {"0", true}, {"9", true},
		{"`", false}, {"{", false}, {"@", false}, {"[", false}, {"/", false}, {":", false},
		{"a b", false}, {"a%20", false}, {"a+b", false}, {"a=b", false}, {"a&b", false}, {"é", false},
	}
	for _, tt := range tests {
		if got := isQueryName(tt.name); got != tt.want {
			t.Errorf("isQueryName(%q) = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestIsHex: the hex digits of a percent-escape, each range to its ends,
// and their values.
func TestIsHex(t *testing.T) {
	const digits = "0123456789abcdefABCDEF"
	for i := range 256 {
		c := byte(i)
		want := strings.IndexByte(digits, c) >= 0
		if got := isHex(c); got != want {
			t.Errorf("isHex(%q) = %v, want %v", c, got, want)
		}
	}
	for i, c := range []byte(digits) {
		want := byte(i)
		if i >= 16 {
			want = byte(i - 6)
		}
		if got := unhex(c); got != want {
			t.Errorf("unhex(%q) = %d, want %d", c, got, want)
		}
	}
}

// TestParsePoolIDLength: a pool id of exactly Cognito's 55 characters is
// accepted, one more is not.
func TestParsePoolIDLength(t *testing.T) {
	id55 := "us-east-1_" + strings.Repeat("A", 45)
	if _, err := parsePoolID(id55); err != nil {
		t.Errorf("a 55-character pool id: %v", err)
	}
	if _, err := parsePoolID(id55 + "A"); err == nil || !strings.Contains(err.Error(), "longer than 55") {
		t.Errorf("a 56-character pool id: err = %v, want longer than 55", err)
	}
}

// TestValidParamName: a {param} name is letters, digits and '_', each
// range to its ends and no further.
func TestValidParamName(t *testing.T) {
	tests := []struct {
		name string
		want bool
	}{
		{"", false},
		{"petId", true},
		{"pet_id", true},
		{"azAZ09_", true},
		{"a", true}, {"z", true}, {"A", true}, {"Z", true}, {"0", true}, {"9", true},
		{"`", false}, {"{", false}, {"@", false}, {"[", false}, {"/", false}, {":", false},
		{"pet-id", false}, {"pet.id", false}, {"pet id", false}, {"proxy+", false}, {"é", false},
	}
	for _, tt := range tests {
		if got := validParamName(tt.name); got != tt.want {
			t.Errorf("validParamName(%q) = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestPolicyBounds: names of exactly maxNameLen and status codes of exactly
// 400 and 599 are accepted; one past either is a problem.
func TestPolicyBounds(t *testing.T) {
	policy := func(azName, routeName string, status int) string {
		return fmt.Sprintf(`apiVersion: cognito-extauthz/v1
authorizers:
  %s:
    userPools: [{userPoolId: us-east-1_AAAAAAAAA}]
routes:
  - { name: %s, match: { path: /p }, authorizer: %s }
gatewayResponses:
  ACCESS_DENIED: { statusCode: %d }
`, azName, routeName, azName, status)
	}
	long := strings.Repeat("n", maxNameLen)
	tests := []struct {
		name    string
		doc     string
		problem string // "" when valid
	}{
		{"names of maxNameLen, status 400", policy(long, long, 400), ""},
		{"status 599", policy("a", "r", 599), ""},
		{"status 399", policy("a", "r", 399), "outside 400-599"},
		{"status 600", policy("a", "r", 600), "outside 400-599"},
		{"authorizer name one too long", policy(long+"n", "r", 403), "authorizer name"},
		{"route name one too long", policy("a", long+"n", 403), "route name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.doc), "p.yaml", Options{})
			if tt.problem == "" {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.problem) {
				t.Fatalf("Parse err = %v, want a problem containing %q", err, tt.problem)
			}
		})
	}
}

// TestIsPchar: the characters a template literal may hold unencoded, each
// range to its ends and no further.
func TestIsPchar(t *testing.T) {
	const allowed = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&'()*+,=:@"
	for i := range 256 {
		c := byte(i)
		if got, want := isPchar(c), strings.IndexByte(allowed, c) >= 0; got != want {
			t.Errorf("isPchar(%q) = %v, want %v", c, got, want)
		}
	}
}

// TestCheckExported: the single-value checks programs that write policies
// call take the validator's bounds exactly.
func TestCheckExported(t *testing.T) {
	long := strings.Repeat("n", maxNameLen)
	for _, tt := range []struct {
		name string
		err  error
		ok   bool
	}{
		{"name", CheckName("pets-users_v1.2"), true},
		{"name of maxNameLen", CheckName(long), true},
		{"name one too long", CheckName(long + "n"), false},
		{"empty name", CheckName(""), false},
		{"name with a space", CheckName("a b"), false},
		{"word", CheckWord("pets/read"), true},
		{"empty word", CheckWord(""), false},
		{"word with a space", CheckWord("pets read"), false},
		{"word with a control character", CheckWord("pets\x00"), false},
		{"template", CheckTemplate("/pets/{petId}"), true},
		{"template ending in '/'", CheckTemplate("/pets/"), false},
		{"identity source", CheckIdentitySource("cookie:id_token"), true},
		{"identity source without a kind", CheckIdentitySource("id_token"), false},
		{"pool id", CheckPoolID("us-east-1_AbCdEfGhI"), true},
		{"pool id without a region", CheckPoolID("AbCdEfGhI"), false},
		{"response header", CheckResponseHeader("X-Request-Id", "v"), true},
		{"response header set by the service", CheckResponseHeader("X-Extauthz-Reason", "v"), false},
		{"response header of the connection", CheckResponseHeader("Connection", "close"), false},
	} {
		if (tt.err == nil) != tt.ok {
			t.Errorf("%s: err = %v, want ok %v", tt.name, tt.err, tt.ok)
		}
	}
}

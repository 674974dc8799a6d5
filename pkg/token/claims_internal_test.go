package token

import (
	"fmt"
	"testing"
	"time"
)

func TestHasAnyScopeInAnyGroup(t *testing.T) {
	c := newClaims(map[string]any{"scope": "openid pets/read"}, "access", "c", &Pool{ID: "p"}, time.Time{}, []string{"users", "admins"})
	tests := []struct {
		name string
		got  bool
		want bool
	}{
		{"scope one of", c.HasAnyScope([]string{"pets/admin", "pets/read"}), true},
		{"scope none", c.HasAnyScope([]string{"pets/admin"}), false},
		{"scope prefix is not a match", c.HasAnyScope([]string{"pets"}), false},
		{"scope empty want", c.HasAnyScope(nil), false},
		{"group one of", c.InAnyGroup([]string{"owners", "admins"}), true},
		{"group none", c.InAnyGroup([]string{"owners"}), false},
		{"group case matters", c.InAnyGroup([]string{"Admins"}), false},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s: got %v, want %v", tt.name, tt.got, tt.want)
		}
	}
}

// TestIssuerBeyondTheIndex: a Claims stores its issuer as an index below
// 255 into the pool's issuers; a pool with 255 or more, or an iss that is
// none of them, reads as "" rather than indexing past the list.
func TestIssuerBeyondTheIndex(t *testing.T) {
	issuers := make([]string, 256)
	for i := range issuers {
		issuers[i] = fmt.Sprintf("https://issuer-%d", i)
	}
	for _, tc := range []struct {
		name    string
		issuers []string
		iss     string
		want    string
	}{
		{"first", issuers[:255], issuers[0], issuers[0]},
		{"last that fits the index", issuers[:255], issuers[254], issuers[254]},
		{"not among 255", issuers[:255], "https://other", ""},
		{"256th of 256", issuers, issuers[255], ""},
	} {
		pool := &Pool{ID: "p", Issuers: tc.issuers}
		c := newClaims(map[string]any{"iss": tc.iss}, "access", "c", pool, time.Time{}, nil)
		if got := c.Issuer(); got != tc.want {
			t.Errorf("%s: Issuer() = %q, want %q", tc.name, got, tc.want)
		}
	}
}

// TestScopeByIndex: NumScopes and Scope read the scopes the response
// metadata lists without copying them; an index outside the scopes panics
// rather than reading a neighbouring string (a group, the client id).
func TestScopeByIndex(t *testing.T) {
	full := newClaims(map[string]any{"sub": "s", "scope": "openid pets/read pets/write"}, "access", "c",
		&Pool{ID: "p"}, time.Time{}, []string{"users", "admins"})
	for _, c := range []*Claims{full, full.Compact(nil, true)} {
		want := []string{"openid", "pets/read", "pets/write"}
		if c.NumScopes() != len(want) {
			t.Fatalf("NumScopes() = %d, want %d", c.NumScopes(), len(want))
		}
		for i, w := range want {
			if got := c.Scope(i); got != w {
				t.Errorf("Scope(%d) = %q, want %q", i, got, w)
			}
		}
		for _, i := range []int{-1, len(want), len(want) + 1} {
			func() {
				defer func() {
					if p := recover(); p != "token: scope index out of range" {
						t.Errorf("Scope(%d) panicked with %v, want the out-of-range panic", i, p)
					}
				}()
				got := c.Scope(i)
				t.Errorf("Scope(%d) = %q, want a panic", i, got)
			}()
		}
	}
}

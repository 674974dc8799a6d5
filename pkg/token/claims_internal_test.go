package token

import (
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

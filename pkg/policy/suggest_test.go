package policy

import (
	"strings"
	"testing"
)

func TestSuggest(t *testing.T) {
	authorizers := []string{"admins", "pets-users", "users"}
	tests := []struct {
		name  string
		known []string
		want  string
	}{
		{"pet-users", authorizers, "pets-users"},                         // one letter missing
		{"pets-user", authorizers, "pets-users"},                         // one letter missing at the end
		{"pets-usres", authorizers, "pets-users"},                        // one swap
		{"Pets-Users", authorizers, "pets-users"},                        // case only
		{"pts-usrs", authorizers, "pets-users"},                          // two edits in 8
		{"pt-usr", authorizers, ""},                                      // three edits in 6
		{"user", authorizers, "users"},                                   // one letter missing
		{"usr", authorizers, ""},                                         // a short name is allowed one edit; this needs two
		{"billing", authorizers, ""},                                     // nothing near
		{"userpools", []string{"userPools", "userPool"}, "userPools"},    // the same name in another case wins
		{"userPool", []string{"userPools", "appClientIds"}, "userPools"}, // fields too
		{"UNAUTHORISED", responseTypes, "UNAUTHORIZED"},
		{"default_5xx", responseTypes, "DEFAULT_5XX"},
		{"", authorizers, ""},
		{"ab", []string{"ba", "xy"}, "ba"},
		{"a", []string{"b"}, "b"},                                                      // at least one edit, however short
		{strings.Repeat("users", 20), []string{strings.Repeat("users", 20) + "x"}, ""}, // too long to compare
		// maxSuggestLen taken exactly, for the name and for a known name.
		{strings.Repeat("u", 64), []string{strings.Repeat("u", 63) + "x"}, strings.Repeat("u", 63) + "x"},
		{strings.Repeat("u", 65), []string{strings.Repeat("u", 64) + "x"}, ""},
		{strings.Repeat("u", 63), []string{strings.Repeat("u", 64)}, strings.Repeat("u", 64)},
		{strings.Repeat("u", 64), []string{strings.Repeat("u", 65)}, ""},
		// A tie goes to the first in known.
		{"abd", []string{"abc", "abe"}, "abc"},
		{"abd", []string{"abe", "abc"}, "abe"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := suggest(tt.name, tt.known); got != tt.want {
				t.Fatalf("suggest(%q) = %q, want %q", tt.name, got, tt.want)
			}
		})
	}
}

func TestEditDistance(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"", "", 0},
		{"", "abc", 3},
		{"abc", "", 3},
		{"abc", "abc", 0},
		{"abc", "abd", 1},
		{"abc", "acb", 1}, // a swap is one edit
		{"ca", "abc", 3},  // no rune edited twice
		{"kitten", "sitting", 3},
		{"pet-users", "pets-users", 1},
		{"héllo", "hello", 1}, // runes, not bytes
	}
	for _, tt := range tests {
		if got := editDistance([]rune(tt.a), []rune(tt.b)); got != tt.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
		if got := editDistance([]rune(tt.b), []rune(tt.a)); got != tt.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d (not symmetric)", tt.b, tt.a, got, tt.want)
		}
	}
}

package authz_test

import (
	"slices"
	"testing"

	"github.com/cognito-extauthz/cognito-extauthz/internal/authz"
	"github.com/cognito-extauthz/cognito-extauthz/internal/issuer"
	"github.com/cognito-extauthz/cognito-extauthz/internal/testenv"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/reason"
)

// TestDryRunDecision: a dry-run route's would-be denial is allowed with
// its reason, marked for the upstream, and gets the claim headers when the
// token verified; the claim headers it does not set, and a client's own
// dry-run header, are removed either way.
func TestDryRunDecision(t *testing.T) {
	f := newFixture(t, testenv.DryRunPolicy, authz.Options{})
	member := f.env.ID(t, issuer.TokenOptions{Subject: "sub-a", Groups: []string{"auditors"}})
	outsider := f.env.ID(t, issuer.TokenOptions{Subject: "sub-b", Groups: []string{"finance"}})
	tests := []struct {
		name, tok  string
		reason     reason.Code
		dryRun     bool
		set        []authz.Header
		wantRemove []string
	}{
		{"would-be group_missing", outsider, reason.GroupMissing, true,
			[]authz.Header{{Name: "x-user-sub", Value: "sub-b"}, {Name: authz.DryRunHeader, Value: "group_missing"}},
			[]string{"x-user-email"}},
		{"would-be token_missing", "", reason.TokenMissing, true,
			[]authz.Header{{Name: authz.DryRunHeader, Value: "token_missing"}},
			[]string{"x-user-email", "x-user-sub"}},
		{"real allow", member, reason.Allowed, false,
			[]authz.Header{{Name: "x-user-sub", Value: "sub-a"}},
			[]string{"x-user-email", authz.DryRunHeader}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := headers{}
			if tt.tok != "" {
				h = bearer(tt.tok)
			}
			d := f.decide(t, "GET", "/reports", h)
			if !d.Allowed || d.DryRun != tt.dryRun || d.Reason != tt.reason || d.RouteName() != "reports" {
				t.Fatalf("allowed %v, dry run %v, reason %s, route %q; want allowed, dry run %v, %s",
					d.Allowed, d.DryRun, d.Reason, d.RouteName(), tt.dryRun, tt.reason)
			}
			if !slices.Equal(d.SetHeaders, tt.set) {
				t.Errorf("sets %v, want %v", d.SetHeaders, tt.set)
			}
			for _, name := range tt.wantRemove {
				if !slices.Contains(d.RemoveHeaders, name) {
					t.Errorf("%s not removed (removes %v)", name, d.RemoveHeaders)
				}
			}
		})
	}
	if d := f.decide(t, "GET", "/ledger", bearer(outsider)); d.Allowed || d.Reason != reason.GroupMissing {
		t.Fatalf("the enforcing route: allowed %v, %s", d.Allowed, d.Reason)
	}
}

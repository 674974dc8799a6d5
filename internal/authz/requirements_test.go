package authz_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/cognito-extauthz/cognito-extauthz/internal/authz"
	"github.com/cognito-extauthz/cognito-extauthz/internal/issuer"
	"github.com/cognito-extauthz/cognito-extauthz/internal/testenv"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/reason"
)

// TestRequirementsListed: explain's list of a route's requirements, each
// with what the request had, for each kind of requirement met and not met,
// and without a verified token. The first one not OK is the one the
// decision denied for.
func TestRequirementsListed(t *testing.T) {
	f := newFixture(t, testenv.Policy, authz.Options{})
	verified := "verified (pool " + testenv.PoolID + ")"
	usersToken := "a valid token in header:authorization from a pool of authorizer users"
	const notVerified = "(not checked: no verified token)"
	token := func(o issuer.TokenOptions) string { return f.env.ID(t, o) }
	tests := []struct {
		name, path, tok string
		want            []authz.Requirement
	}{
		{"identity route, all met", "/pets", token(issuer.TokenOptions{}), []authz.Requirement{
			{Name: "token", Want: usersToken, Got: verified, OK: true},
			{Name: "token_use", Want: "id", Got: "id", OK: true},
			{Name: "app_client", Want: "one of client-a", Got: "client-a", OK: true},
		}},
		{"no token: the denial's detail, nothing else checked", "/pets", "", []authz.Requirement{
			{Name: "token", Want: usersToken, Got: "identity source header:authorization"},
			{Name: "token_use", Want: "id", Got: notVerified},
			{Name: "app_client", Want: "one of client-a", Got: notVerified},
		}},
		{"another app client", "/pets", token(issuer.TokenOptions{ClientID: "client-b"}), []authz.Requirement{
			{Name: "token", Want: usersToken, Got: "client_not_allowed: claim aud is not one of the allowed app clients (pool " + testenv.PoolID + ")"},
			{Name: "token_use", Want: "id", Got: notVerified},
			{Name: "app_client", Want: "one of client-a", Got: notVerified},
		}},
		{"authorizer without app clients lists none", "/strip", token(issuer.TokenOptions{}), []authz.Requirement{
			{Name: "token", Want: "a valid token in header:authorization from a pool of authorizer strip", Got: verified, OK: true},
			{Name: "token_use", Want: "id", Got: "id", OK: true},
		}},
		{"groups, one held", "/admin/x", token(issuer.TokenOptions{Groups: []string{"users", "owners"}}), []authz.Requirement{
			{Name: "token", Want: usersToken, Got: verified, OK: true},
			{Name: "token_use", Want: "id", Got: "id", OK: true},
			{Name: "app_client", Want: "one of client-a", Got: "client-a", OK: true},
			{Name: "groups", Want: "any of admins, owners", Got: "users, owners", OK: true},
		}},
		{"groups, none held", "/admin/x", token(issuer.TokenOptions{Groups: []string{"users"}}), []authz.Requirement{
			{Name: "token", Want: usersToken, Got: verified, OK: true},
			{Name: "token_use", Want: "id", Got: "id", OK: true},
			{Name: "app_client", Want: "one of client-a", Got: "client-a", OK: true},
			{Name: "groups", Want: "any of admins, owners", Got: "users"},
		}},
		{"claim, required value", "/tenant", token(issuer.TokenOptions{Claims: map[string]any{"custom:tenant": "acme"}}), []authz.Requirement{
			{Name: "token", Want: usersToken, Got: verified, OK: true},
			{Name: "token_use", Want: "id", Got: "id", OK: true},
			{Name: "app_client", Want: "one of client-a", Got: "client-a", OK: true},
			{Name: "claim custom:tenant", Want: "acme", Got: "acme", OK: true},
		}},
		{"claim, other value", "/tenant", token(issuer.TokenOptions{Claims: map[string]any{"custom:tenant": "acme-evil"}}), []authz.Requirement{
			{Name: "token", Want: usersToken, Got: verified, OK: true},
			{Name: "token_use", Want: "id", Got: "id", OK: true},
			{Name: "app_client", Want: "one of client-a", Got: "client-a", OK: true},
			{Name: "claim custom:tenant", Want: "acme", Got: "acme-evil"},
		}},
		{"claim absent", "/tenant", token(issuer.TokenOptions{}), []authz.Requirement{
			{Name: "token", Want: usersToken, Got: verified, OK: true},
			{Name: "token_use", Want: "id", Got: "id", OK: true},
			{Name: "app_client", Want: "one of client-a", Got: "client-a", OK: true},
			{Name: "claim custom:tenant", Want: "acme", Got: "(absent)"},
		}},
		// A list is never the required scalar, even when it renders as it.
		{"claim, a list rendering as the value", "/tenant", token(issuer.TokenOptions{Claims: map[string]any{"custom:tenant": []any{"acme"}}}), []authz.Requirement{
			{Name: "token", Want: usersToken, Got: verified, OK: true},
			{Name: "token_use", Want: "id", Got: "id", OK: true},
			{Name: "app_client", Want: "one of client-a", Got: "client-a", OK: true},
			{Name: "claim custom:tenant", Want: "acme", Got: "acme (not a single value)"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := headers{}
			if tt.tok != "" {
				h = bearer(tt.tok)
			}
			d := f.decide(t, "GET", tt.path, h)
			got := authz.Requirements(d)
			if !slices.Equal(got, tt.want) {
				t.Fatalf("Requirements (decision %s):\n got %+v\nwant %+v", d.Reason, got, tt.want)
			}
			if i := slices.IndexFunc(got, func(r authz.Requirement) bool { return !r.OK }); d.Allowed != (i < 0) {
				t.Fatalf("decision %s, but the first requirement not OK is at %d", d.Reason, i)
			}
		})
	}
}

// TestRequirementsRevocation: the revocation check is listed right after
// the token, with the list's entry when the token is listed.
func TestRequirementsRevocation(t *testing.T) {
	f := newFixture(t, testenv.Policy, authz.Options{})
	listed := f.env.ID(t, issuer.TokenOptions{})
	other := f.env.ID(t, issuer.TokenOptions{})
	jti := payload(t, listed)["jti"].(string)
	l, _ := fileList(t, "jti "+jti)
	f.az.SetRevocations(l)
	for _, tc := range []struct {
		name, raw string
		want      authz.Requirement
	}{
		{"not listed", other, authz.Requirement{Name: "not_revoked", Want: "not on the revocation list", Got: authz.RevocationNotListed, OK: true}},
		{"listed", listed, authz.Requirement{Name: "not_revoked", Want: "not on the revocation list", Got: "revoked by jti " + jti}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := f.decide(t, "GET", "/pets", bearer(tc.raw))
			got := authz.Requirements(d)
			if !tc.want.OK {
				// The entry as the list reports it: its id, time and source.
				if !strings.HasPrefix(d.Detail, tc.want.Got+" ") {
					t.Fatalf("detail %q does not name the entry", d.Detail)
				}
				tc.want.Got = d.Detail
			}
			if len(got) < 2 || got[0].Name != "token" || !got[0].OK || got[1] != tc.want {
				t.Fatalf("Requirements (decision %s, %s):\n got %+v\nwant %+v second", d.Reason, d.Detail, got, tc.want)
			}
		})
	}
	// A stale list, as the decision reports it: its detail is what the
	// request had.
	d := f.decide(t, "GET", "/pets", bearer(other))
	d.Revocation, d.Detail = authz.RevocationStale, "the revocation list is stale"
	if got := authz.Requirements(d)[1]; got.OK || got.Got != d.Detail {
		t.Fatalf("stale list: %+v", got)
	}
	d.Detail = ""
	if got := authz.Requirements(d)[1]; got.OK || got.Got != authz.RevocationStale {
		t.Fatalf("stale list without a detail: %+v", got)
	}
	if d.Reason != reason.Allowed {
		t.Fatalf("the request was %s", d.Reason)
	}
}

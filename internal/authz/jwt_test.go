package authz_test

import (
	"testing"

	"github.com/cognito-extauthz/cognito-extauthz/internal/authz"
	"github.com/cognito-extauthz/cognito-extauthz/internal/testenv"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/reason"
)

// TestJWTMode decides the jwt-mode table (both token types, aud and
// client_id, right and wrong), twice: the second time every token comes
// from the verified-token cache, which must keep both readings of
// appClientIds.
func TestJWTMode(t *testing.T) {
	f := newFixture(t, testenv.JWTPolicy, authz.Options{CacheSize: 100})
	cases := f.env.JWTCases(t)
	for _, pass := range []string{"verified", "cached"} {
		for _, tc := range cases {
			t.Run(pass+"/"+tc.Name, func(t *testing.T) {
				h := headers{}
				if tc.Token != "" {
					h = bearer(tc.Token)
				}
				d := f.decide(t, "GET", tc.Path, h)
				if string(d.Reason) != tc.Want || d.Allowed != (tc.Want == string(reason.Allowed)) {
					t.Fatalf("%s: allowed %v, reason %s (%s); want %s", tc.Path, d.Allowed, d.Reason, d.Detail, tc.Want)
				}
				// Every token that verified is cached by the first pass.
				if pass == "cached" && d.Claims != nil && !d.CacheHit {
					t.Fatal("a verified token missed the cache on the second pass")
				}
			})
		}
	}
}

// TestJWTModeExplain lists a jwt route's requirements: either token_use,
// the app client as aud-else-client_id, then the scopes; an access-scopes
// route of the same authorizer reads the app client by token_use. The
// first requirement not met is the denial's.
func TestJWTModeExplain(t *testing.T) {
	f := newFixture(t, testenv.JWTPolicy, authz.Options{})
	for _, tc := range f.env.JWTCases(t) {
		if tc.Token == "" {
			continue
		}
		t.Run(tc.Name, func(t *testing.T) {
			d := f.decide(t, "GET", tc.Path, bearer(tc.Token))
			reqs := authz.Requirements(d)
			var names []string
			failed := ""
			for _, r := range reqs {
				names = append(names, r.Name)
				if !r.OK && failed == "" {
					failed = r.Name
				}
			}
			if len(names) < 3 || names[0] != "token" || names[1] != "token_use" || names[2] != "app_client" {
				t.Fatalf("requirements %v", names)
			}
			jwt := tc.Path != "/access"
			if (reqs[1].Want == "id or access") != jwt || (reqs[2].Want == "one of client-a (aud, else client_id)") != jwt {
				t.Errorf("requirements of %s: %+v", tc.Path, reqs)
			}
			want := map[string]string{"allowed": "", "scope_missing": "scopes", "token_use_mismatch": "token_use",
				"client_not_allowed": "app_client", "token_expired": "token"}[tc.Want]
			if d.Claims == nil {
				want = "token" // refused by verification: no reading of appClientIds held
			}
			if failed != want {
				t.Errorf("first failed requirement %q, want %q (%+v)", failed, want, reqs)
			}
		})
	}
}

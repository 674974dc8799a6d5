package httpauthz_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/cognito-extauthz/cognito-extauthz/internal/issuer"
	"github.com/cognito-extauthz/cognito-extauthz/internal/routecases"
)

// TestRouteConfusionAttacks sends the route-confusion attacks (encoded
// method-override keys, a trailing slash under a protected {proxy+}
// subtree, underscored override headers, case, dots, escapes, HEAD)
// through each endpoint without a token: none may be allowed, and each is
// denied for its own reason, as through the gRPC edge. The attacks on
// malformed hosts and Envoy-named routes are gRPC-only and skipped here.
func TestRouteConfusionAttacks(t *testing.T) {
	f := newFixture(t, fixtureOptions{policy: routecases.Policy})
	n := 0
	for _, a := range routecases.Attacks {
		if a.Route != "" || a.Host != "" {
			continue
		}
		for _, ep := range endpoints {
			t.Run(ep.name+"/"+a.Name, func(t *testing.T) {
				var hs [][2]string
				for k, v := range a.Headers {
					hs = append(hs, [2]string{k, v})
				}
				r := ep.build(a.Method, a.Path, hs)
				r.host = a.Authority()
				got := f.do(t, r)
				if got.status == http.StatusOK {
					t.Fatalf("allowed; want %s", a.Want)
				}
				if reason := got.header.Get("X-Extauthz-Reason"); reason != string(a.Want) {
					t.Fatalf("reason %q, want %q", reason, a.Want)
				}
			})
			n++
		}
	}
	if n < 90 {
		t.Fatalf("only %d attack requests: the table lost its HTTP cases", n)
	}
}

// TestUnderscoreTwins: the underscore spelling of every claim header name
// is in x-envoy-auth-headers-to-remove on every allow, set or not, and so
// is any other underscored spelling the client sent (x-user_sub), since a
// CGI-style upstream reads them all as X-User-Sub.
func TestUnderscoreTwins(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	id := f.env.ID(t, issuer.TokenOptions{Subject: "real-sub"})
	forged := h("X_User_Sub", "victim", "X-User_Sub", "victim", "X_Unrelated", "kept")
	for _, ep := range endpoints {
		for _, c := range []struct {
			name, uri string
			headers   [][2]string
		}{
			{"token route", "/pets", append(bearer(id), forged...)},
			{"none route", "/health", forged},
		} {
			t.Run(ep.name+"/"+c.name, func(t *testing.T) {
				a := f.do(t, ep.build("GET", c.uri, c.headers))
				if a.status != http.StatusOK {
					t.Fatalf("status %d (%s)", a.status, a.header.Get("X-Extauthz-Reason"))
				}
				remove := strings.Split(a.header.Get("X-Envoy-Auth-Headers-To-Remove"), ",")
				for _, n := range []string{"x_user_sub", "x-user_sub", "x_user_email", "x_user_groups", "x_client_id", "x_user_verified"} {
					if !slices.Contains(remove, n) {
						t.Errorf("%s not removed: %v", n, remove)
					}
				}
				if slices.Contains(remove, "x_unrelated") {
					t.Errorf("x_unrelated is no claim header, but removed: %v", remove)
				}
			})
		}
	}
}

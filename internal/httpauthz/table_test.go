package httpauthz_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cognito-extauthz/cognito-extauthz/internal/issuer"
	"github.com/cognito-extauthz/cognito-extauthz/internal/testenv"
)

// endpoints are the three ways to ask about the same original request.
var endpoints = []struct {
	name  string
	build func(method, uri string, hs [][2]string) req
}{
	{"envoy", func(m, uri string, hs [][2]string) req {
		return req{method: m, path: "/envoy" + uri, headers: hs}
	}},
	{"auth", func(m, uri string, hs [][2]string) req {
		return req{path: "/auth", headers: append(h("X-Forwarded-Method", m, "X-Forwarded-Uri", uri), hs...)}
	}},
	{"nginx", func(m, uri string, hs [][2]string) req {
		return req{path: "/nginx", headers: append(h("X-Original-Method", m, "X-Original-URI", uri), hs...)}
	}},
}

func bearer(tok string) [][2]string { return h("Authorization", "Bearer "+tok) }

// deny is a denial as the client must see it.
type deny struct {
	status  int
	body    string
	wwwAuth string // "" means the header must be absent
	reason  string
}

var (
	denyMissing   = deny{401, `{"message":"Unauthorized"}`, `Bearer`, "token_missing"}
	denyExpired   = deny{401, `{"message":"The incoming token has expired"}`, `Bearer error="invalid_token", error_description="token expired"`, "token_expired"}
	denyNoRoute   = deny{403, `{"message":"Missing Authentication Token"}`, "", "route_not_found"}
	denyUnavail   = deny{503, `{"message":"Service Unavailable"}`, "", "jwks_unavailable"}
	denyBadReq    = deny{400, `{"message":"Bad Request"}`, "", "request_invalid"}
	denyForbidden = func(reason, wwwAuth string) deny {
		return deny{403, `{"message":"Forbidden"}`, wwwAuth, reason}
	}
	denyInvalid = func(reason string) deny {
		return deny{401, `{"message":"Unauthorized"}`, `Bearer error="invalid_token"`, reason}
	}
)

func wantDeny(t testing.TB, a answer, want deny) {
	t.Helper()
	if a.status != want.status || a.body != want.body {
		t.Errorf("answer %d %s, want %d %s", a.status, a.body, want.status, want.body)
	}
	if got := a.values("x-extauthz-reason"); !slices.Equal(got, []string{want.reason}) {
		t.Errorf("x-extauthz-reason = %q, want %q", got, want.reason)
	}
	if got := a.values("Content-Type"); !slices.Equal(got, []string{"application/json"}) {
		t.Errorf("Content-Type = %q", got)
	}
	got := a.values("WWW-Authenticate")
	switch {
	case want.wwwAuth == "" && len(got) > 0:
		t.Errorf("WWW-Authenticate = %q, want none", got)
	case want.wwwAuth != "" && !slices.Equal(got, []string{want.wwwAuth}):
		t.Errorf("WWW-Authenticate = %q, want %q", got, want.wwwAuth)
	}
	for _, name := range []string{"x-extauthz-route", "x-user-sub", "x-envoy-auth-headers-to-remove"} {
		if a.has(name) {
			t.Errorf("a denial carries %s", name)
		}
	}
}

// allow is an allow as the proxy must see it: set claim headers, the
// claim headers sent empty, the route, and the names to remove.
type allow struct {
	route  string
	set    map[string]string
	empty  []string
	remove []string
}

func wantAllow(t testing.TB, a answer, want allow) {
	t.Helper()
	if a.status != http.StatusOK || a.body != "" {
		t.Fatalf("answer %d %q (reason %q), want 200 with an empty body", a.status, a.body, a.values("x-extauthz-reason"))
	}
	if got := a.header.Get("x-extauthz-route"); got != want.route {
		t.Errorf("x-extauthz-route = %q, want %q", got, want.route)
	}
	for k, v := range want.set {
		if got := a.values(k); !slices.Equal(got, []string{v}) {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	for _, k := range want.empty {
		if got := a.values(k); !slices.Equal(got, []string{""}) {
			t.Errorf("%s = %q, want one empty value (overwrites a forged one)", k, got)
		}
	}
	// The underscore twins of the claim header names are removed on
	// every allow (TestUnderscoreTwins); the rows list the others.
	var remove []string
	if v := a.header.Get("x-envoy-auth-headers-to-remove"); v != "" {
		remove = slices.DeleteFunc(strings.Split(v, ","), func(n string) bool { return strings.HasPrefix(n, "x_") })
	}
	slices.Sort(remove)
	w := slices.Clone(want.remove)
	slices.Sort(w)
	if !slices.Equal(remove, w) {
		t.Errorf("x-envoy-auth-headers-to-remove = %q, want %q", remove, w)
	}
	if a.has("x-extauthz-reason") {
		t.Errorf("an allow carries x-extauthz-reason")
	}
}

// TestSection7Table runs every row of the response table through each of
// the three endpoints: same decision, same answer.
func TestSection7Table(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	const sub = "0b9d4a2e-7f3c-4c1e-9a51-1d2f3e4a5b6c"
	id := f.env.ID(t, issuer.TokenOptions{Subject: sub, Email: "a@example.com"})
	access := f.env.Access(t, issuer.TokenOptions{Subject: sub, Scopes: []string{"pets/read"}})
	noScope := f.env.Access(t, issuer.TokenOptions{Scopes: []string{"other/x"}})
	expired := f.env.ID(t, issuer.TokenOptions{TTL: -time.Hour})
	otherClient := f.env.ID(t, issuer.TokenOptions{ClientID: "client-z"})
	sig := []byte(id)
	// Another base64url letter in the signature: still the strict shape,
	// no longer the signature. (Flipping a bit could leave the alphabet.)
	if sig[len(sig)-5] == 'A' {
		sig[len(sig)-5] = 'B'
	} else {
		sig[len(sig)-5] = 'A'
	}
	allClaims := []string{"x-client-id", "x-user-email", "x-user-groups", "x-user-sub", "x-user-verified"}

	tests := []struct {
		name    string
		method  string
		uri     string
		headers [][2]string
		allow   *allow
		deny    deny
	}{
		{name: "allowed id token", uri: "/pets", headers: bearer(id), allow: &allow{
			route: "list-pets",
			set:   map[string]string{"x-user-sub": sub, "x-user-email": "a@example.com", "x-user-verified": "true"},
			empty: []string{"x-user-groups", "x-client-id"}, remove: []string{"x-user-groups", "x-client-id"},
		}},
		{name: "allowed access token", method: "DELETE", uri: "/pets/7", headers: bearer(access), allow: &allow{
			route:  "pet",
			set:    map[string]string{"x-user-sub": sub, "x-client-id": testenv.ClientID},
			empty:  []string{"x-user-email", "x-user-groups", "x-user-verified"},
			remove: []string{"x-user-email", "x-user-groups", "x-user-verified"},
		}},
		{name: "none route", uri: "/health", allow: &allow{route: "health", empty: allClaims, remove: allClaims}},
		{name: "strip token", uri: "/strip", headers: bearer(id), allow: &allow{
			route: "strip", empty: allClaims, remove: append(slices.Clone(allClaims), "authorization"),
		}},
		{name: "query token from the original uri", uri: "/q?access_token=" + access, allow: &allow{route: "by-query", empty: allClaims, remove: allClaims}},
		{name: "cookie token", uri: "/c", headers: h("Cookie", "a=b; id_token="+id), allow: &allow{
			route: "by-cookie", set: map[string]string{"cookie": "a=b"}, empty: allClaims, remove: allClaims,
		}},
		{name: "no token", uri: "/pets", deny: denyMissing},
		{name: "two authorization headers", uri: "/pets", headers: append(bearer(id), bearer(id)...), deny: denyInvalid("token_ambiguous")},
		{name: "not a jwt", uri: "/pets", headers: bearer("not-a-jwt"), deny: denyInvalid("token_malformed")},
		{name: "bad signature", uri: "/pets", headers: bearer(string(sig)), deny: denyInvalid("signature_invalid")},
		{name: "wrong token_use", uri: "/pets/7", headers: bearer(id), deny: denyInvalid("token_use_mismatch")},
		{name: "wrong client", uri: "/pets", headers: bearer(otherClient), deny: denyInvalid("client_not_allowed")},
		{name: "expired", uri: "/pets", headers: bearer(expired), deny: denyExpired},
		{name: "scope missing", uri: "/pets/7", headers: bearer(noScope),
			deny: denyForbidden("scope_missing", `Bearer error="insufficient_scope", scope="pets/read pets/admin"`)},
		{name: "group missing", uri: "/admin/users", headers: bearer(id), deny: denyForbidden("group_missing", `Bearer error="insufficient_scope"`)},
		{name: "claim mismatch", uri: "/tenant", headers: bearer(id), deny: denyForbidden("claim_mismatch", `Bearer error="insufficient_scope"`)},
		{name: "no route", uri: "/nowhere", headers: bearer(id), deny: denyNoRoute},
		{name: "method not in route", method: "POST", uri: "/pets", headers: bearer(id), deny: denyNoRoute},
	}
	for _, ep := range endpoints {
		for _, tt := range tests {
			t.Run(ep.name+"/"+tt.name, func(t *testing.T) {
				m := tt.method
				if m == "" {
					m = http.MethodGet
				}
				a := f.do(t, ep.build(m, tt.uri, tt.headers))
				if tt.allow != nil {
					wantAllow(t, a, *tt.allow)
				} else {
					wantDeny(t, a, tt.deny)
				}
			})
		}
	}
}

// Keys that cannot be had fail closed with 503 on every endpoint.
func TestJWKSUnavailable(t *testing.T) {
	env := testenv.New(t)
	env.SetMode(testenv.Down)
	f := newFixture(t, fixtureOptions{env: env, noWait: true})
	id := env.ID(t, issuer.TokenOptions{})
	for _, ep := range endpoints {
		t.Run(ep.name, func(t *testing.T) {
			wantDeny(t, f.do(t, ep.build("GET", "/pets", bearer(id))), denyUnavail)
		})
	}
}

// gatewayResponses restyle HTTP denials exactly as they do gRPC ones.
func TestGatewayResponses(t *testing.T) {
	f := newFixture(t, fixtureOptions{policy: readTestdata(t, "gateway-responses.yaml")})
	for _, ep := range endpoints {
		t.Run(ep.name, func(t *testing.T) {
			a := f.do(t, ep.build("GET", "/pets", nil))
			wantDeny(t, a, deny{419, `{"message":"Unauthorized"}`, "Bearer", "token_missing"})
			if got := a.header.Get("Access-Control-Allow-Origin"); got != "*" {
				t.Errorf("Access-Control-Allow-Origin = %q", got)
			}
			a = f.do(t, ep.build("GET", "/nowhere", nil))
			if got := a.header.Get("Content-Type"); a.status != 403 || got != "application/problem+json" {
				t.Errorf("no route: %d, Content-Type %q", a.status, got)
			}
		})
	}
}

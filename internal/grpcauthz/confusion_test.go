package grpcauthz_test

import (
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc/codes"

	"github.com/cognito-extauthz/cognito-extauthz/internal/issuer"
	"github.com/cognito-extauthz/cognito-extauthz/internal/routecases"
	"github.com/cognito-extauthz/cognito-extauthz/internal/testenv"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/policy"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/reason"
)

// request is the CheckRequest Envoy would send for a, with tok as bearer.
func request(a routecases.Attack, tok string) *authv3.CheckRequest {
	h := map[string]string{}
	for k, v := range a.Headers {
		h[k] = v
	}
	if tok != "" {
		h["authorization"] = "Bearer " + tok
	}
	req := call{method: a.Method, path: a.Path, headers: h, route: a.Route}.request()
	req.Attributes.Request.Http.Host = a.Authority()
	return req
}

// TestRouteConfusionAttacks sends each route-confusion attack through the real
// gRPC edge without a token: none may be allowed, and each is denied for
// its own reason.
func TestRouteConfusionAttacks(t *testing.T) {
	f := newFixture(t, fixtureOptions{policy: routecases.Policy})
	for _, a := range routecases.Attacks {
		t.Run(a.Name, func(t *testing.T) {
			resp := f.check(t, request(a, ""))
			if codes.Code(resp.GetStatus().GetCode()) == codes.OK {
				t.Fatalf("allowed; want %s", a.Want)
			}
			got := headerOptions(t, resp.GetDeniedResponse().GetHeaders())["x-extauthz-reason"]
			if got != string(a.Want) {
				t.Fatalf("reason = %s, want %s", got, a.Want)
			}
		})
	}
}

// TestRouteConfusionControls: the requests next to the attacks still work,
// so the refusals above are about ambiguity, not a broken matcher.
func TestRouteConfusionControls(t *testing.T) {
	f := newFixture(t, fixtureOptions{policy: routecases.Policy})
	user := f.env.ID(t, issuer.TokenOptions{})
	admin := f.env.ID(t, issuer.TokenOptions{Groups: []string{"admins"}})
	override := map[string]string{"x-http-method-override": "GET"}
	tests := []struct {
		a     routecases.Attack
		tok   string
		route string
	}{
		{routecases.Attack{Method: "GET", Path: "/public/page"}, "", "public"},
		{routecases.Attack{Method: "GET", Path: "/admin"}, admin, "admin"},
		{routecases.Attack{Method: "GET", Path: "/admin/users/"}, admin, "admin-any"},
		{routecases.Attack{Method: "GET", Path: "/admin//users"}, admin, "admin-any"},
		{routecases.Attack{Method: "HEAD", Path: "/users/1"}, user, "users-get"},
		{routecases.Attack{Method: "POST", Path: "/users/1", Headers: override}, user, "users-get"},
		{routecases.Attack{Method: "GET", Path: "/users/AbC"}, user, "users-get"},
		{routecases.Attack{Method: "GET", Path: "/files/my%20doc.txt"}, user, "file"},
		{routecases.Attack{Method: "GET", Path: "/files/%E2%84%AAey"}, user, "file"}, // Kelvin sign: a param either way
		{routecases.Attack{Method: "GET", Path: "/files/a;v=2"}, user, "file"},
		{routecases.Attack{Method: "GET", Path: "/files/readme?x=/admin"}, "", "readme"},
		{routecases.Attack{Method: "GET", Host: "API.example.com.:8443", Path: "/pets/7"}, admin, "pet-api"},
		// A valid other host is judged by the hostless route: Envoy's
		// virtual host must name the API's domains (validate warns).
		{routecases.Attack{Method: "GET", Host: "10.0.0.5", Path: "/pets/7"}, user, "pets-any"},
		{routecases.Attack{Method: "GET", Path: "/users/1", Route: "users-get"}, user, "users-get"},
		{routecases.Attack{Method: "HEAD", Path: "/users/1", Route: "users-get"}, user, "users-get"},
	}
	for _, tt := range tests {
		t.Run(tt.a.Method+" "+tt.a.Host+tt.a.Path, func(t *testing.T) {
			resp := f.check(t, request(tt.a, tt.tok))
			wantAllowed(t, resp)
			if got := resp.GetDynamicMetadata().GetFields()["route"].GetStringValue(); got != tt.route {
				t.Fatalf("route = %q, want %q", got, tt.route)
			}
		})
	}
}

// TestRouteAgreementWithGoMux is the promise in one table: for every
// request, with no token and with a non-admin user's token, whatever the
// service allows, a real Go net/http upstream serves from a handler no more
// protected than the route the service judged. (e2e runs the same table
// against a real Express.)
func TestRouteAgreementWithGoMux(t *testing.T) {
	f := newFixture(t, fixtureOptions{policy: routecases.Policy})
	srv := httptest.NewServer(routecases.GoMux())
	t.Cleanup(srv.Close)
	user := f.env.ID(t, issuer.TokenOptions{})
	checked := 0
	for _, a := range routecases.Requests() {
		for _, tok := range []string{"", user} {
			resp := f.check(t, request(a, tok))
			if codes.Code(resp.GetStatus().GetCode()) != codes.OK {
				continue
			}
			judged := resp.GetDynamicMetadata().GetFields()["route"].GetStringValue()
			served, err := routecases.Served(srv.Listener.Addr().String(), a, nil)
			if err != nil {
				t.Fatal(err)
			}
			if served == "" {
				continue
			}
			checked++
			if routecases.Level[served] > routecases.Level[judged] {
				t.Errorf("%s %s (host %q, token %v): service judged route %q (level %d), Go mux ran %q (level %d)",
					a.Method, a.Path, a.Host, tok != "", judged, routecases.Level[judged], served, routecases.Level[served])
			}
		}
	}
	if checked < 40 {
		t.Fatalf("only %d allowed requests reached a handler: the table tests too little", checked)
	}
}

// TestClaimHeaderListInjection: a group named
// "admins,root" must not reach an upstream that splits x-user-groups on
// commas as a group "root"; the header is removed instead, and the warning
// names the header, never the value.
func TestClaimHeaderListInjection(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	tok := f.env.ID(t, issuer.TokenOptions{Groups: []string{"users", "admins,root"}})
	req := call{path: "/pets", headers: map[string]string{"authorization": "Bearer " + tok, "x-user-groups": "root"}}.request()
	ok := wantAllowed(t, f.check(t, req))
	if h := headerOptions(t, ok.GetHeaders()); h["x-user-groups"] != "" {
		t.Fatalf("x-user-groups set to %q", h["x-user-groups"])
	}
	if !slices.Contains(ok.GetHeadersToRemove(), "x-user-groups") {
		t.Fatalf("forged x-user-groups not removed: %v", ok.GetHeadersToRemove())
	}
	logs := f.logs.String()
	if !strings.Contains(logs, "claim header not set") || !strings.Contains(logs, "x-user-groups") {
		t.Fatalf("no warning naming the header: %s", logs)
	}
	if strings.Contains(logs, "admins,root") {
		t.Fatal("the claim value was logged")
	}
}

// TestClaimConditionTypeConfusion: a list claim never
// meets a scalar condition, though it renders the same.
func TestClaimConditionTypeConfusion(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	for _, tc := range []struct {
		name   string
		tenant any
		allow  bool
	}{
		{"string", "acme", true},
		{"list of the value", []any{"acme"}, false},
		{"object", map[string]any{"acme": true}, false},
		{"other", "evil", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok := f.env.ID(t, issuer.TokenOptions{Claims: map[string]any{"custom:tenant": tc.tenant}})
			resp := f.check(t, call{path: "/tenant", headers: bearer(tok)}.request())
			if tc.allow {
				wantAllowed(t, resp)
				return
			}
			wantDenied(t, resp, denyForbidden(reason.ClaimMismatch, `Bearer error="insufficient_scope"`))
		})
	}
}

// TestReservedClaimHeaders: a policy cannot make a claim
// (often user-writable) into a header upstreams trust for routing or
// identity; such a policy never loads, so no Check can set one.
func TestReservedClaimHeaders(t *testing.T) {
	env := testenv.New(t)
	for _, h := range []string{"x-forwarded-for", "X-Forwarded-Host", "forwarded", "x-real-ip", "x-http-method-override",
		"x-method-override", "x-original-url", "x-rewrite-url", "content-type", "expect", "te", "x-request-id", "traceparent"} {
		t.Run(h, func(t *testing.T) {
			doc := strings.Replace(testenv.Policy, "x-user-verified: email_verified", h+": email", 1)
			_, err := policy.Parse([]byte(env.Expand(doc)), "p.yaml", policy.Options{})
			if err == nil || !strings.Contains(err.Error(), "reserved") {
				t.Fatalf("claimHeaders %s: err = %v, want a reserved-name problem", h, err)
			}
		})
	}
}

// TestUnderscoreTwins: a CGI-style upstream reads x_user_sub and
// x-user_sub as X-User-Sub, so an allowed Check removes the underscore
// spelling of every claim header name, set or not, and every other
// underscored spelling the request carries, from the headers map and from
// header_map (encode_raw_headers) alike; Decide (explain's path) as Check.
func TestUnderscoreTwins(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	id := f.env.ID(t, issuer.TokenOptions{Subject: "real-sub"})
	forged := map[string]string{"x_user_sub": "victim", "x-user_sub": "victim", "x_unrelated": "kept"}
	withToken := map[string]string{"authorization": "Bearer " + id}
	for k, v := range forged {
		withToken[k] = v
	}
	var raw [][2]string
	for k, v := range withToken {
		raw = append(raw, [2]string{strings.ToUpper(k[:1]) + k[1:], v})
	}
	for _, tc := range []struct {
		name string
		c    call
	}{
		{"token route", call{path: "/pets", headers: withToken}},
		{"none route", call{path: "/health", headers: forged}},
		{"header_map", call{path: "/pets", raw: raw}},
	} {
		_, decided := f.decide(t, tc.c.request())
		for _, p := range []struct {
			name string
			resp *authv3.CheckResponse
		}{{"Check", f.check(t, tc.c.request())}, {"Decide", decided}} {
			t.Run(tc.name+"/"+p.name, func(t *testing.T) {
				ok := wantAllowed(t, p.resp)
				remove := ok.GetHeadersToRemove()
				for _, n := range []string{"x_user_sub", "x-user_sub", "x_user_email", "x_client_id"} {
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

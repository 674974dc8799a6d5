package extauthz_test

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc/codes"

	"github.com/cognito-extauthz/cognito-extauthz/internal/issuer"
	"github.com/cognito-extauthz/cognito-extauthz/internal/testenv"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/policy"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/reason"
)

// confusionPolicy has the shapes route-confusion attacks need: a protected
// resource under a weaker fallback (a public catch-all, a hostless or
// greedy parent). Each route's protection level is in routeLevel.
const confusionPolicy = `
apiVersion: cognito-extauthz/v1
authorizers:
  users:
    userPools: [{userPoolId: ${POOL}, issuer: ${ISSUER}, jwksUri: ${JWKS}}]
routes:
  - { name: root,      match: { path: / },                              authorization: NONE }
  - { name: public,    match: { path: "/{proxy+}" },                    authorization: NONE }
  - { name: admin,     match: { path: /admin },                         authorizer: users, groups: [admins] }
  - { name: admin-any, match: { path: "/admin/{proxy+}" },              authorizer: users, groups: [admins] }
  - { name: users-get, match: { path: "/users/{id}", methods: [GET] },  authorizer: users, claimHeaders: { x-user-sub: sub } }
  - { name: pet-api,   match: { path: "/pets/{petId}", host: api.example.com }, authorizer: users, groups: [admins] }
  - { name: pets-any,  match: { path: "/pets/{proxy+}" },               authorizer: users }
  - { name: readme,    match: { path: /files/readme },                  authorization: NONE }
  - { name: file,      match: { path: "/files/{name}" },                authorizer: users }
defaultAction: deny
`

// Protection levels: 0 public, 1 any valid token, 2 the admins group.
var routeLevel = map[string]int{
	"root": 0, "public": 0, "readme": 0,
	"users-get": 1, "pets-any": 1, "file": 1,
	"admin": 2, "admin-any": 2, "pet-api": 2,
}

// attack is one request of the route-confusion class: sent with a valid
// token of a user outside the admins group (user) or with none.
type attack struct {
	name         string
	method, host string
	path         string
	headers      map[string]string
	route        string      // context_extensions route
	want         reason.Code // the service's verdict
}

func (a attack) request(tok string) *authv3.CheckRequest {
	h := map[string]string{}
	for k, v := range a.headers {
		h[k] = v
	}
	if tok != "" {
		h["authorization"] = "Bearer " + tok
	}
	req := call{method: a.method, host: a.host, path: a.path, headers: h, route: a.route}.request()
	if a.host == "-" {
		req.Attributes.Request.Http.Host = "" // no :authority at all
	}
	return req
}

// confusionAttacks are the ways through found by an attacker with real
// Express 4 and Go net/http upstreams behind the service (issue 11), and
// their neighbours. Every one must be denied, and each row says why.
var confusionAttacks = []attack{
	// 1. Case: Express routes /ADMIN to the admin router; the service must
	// not judge it by the public catch-all.
	{name: "case/upper", method: "GET", path: "/ADMIN", want: reason.PathInvalid},
	{name: "case/mixed deep", method: "GET", path: "/Admin/users", want: reason.PathInvalid},
	{name: "case/encoded", method: "GET", path: "/%41dmin", want: reason.PathInvalid},
	{name: "case/kelvin sign folds to k", method: "GET", path: "/files/%E2%84%AAey", want: ""}, // a param: same route either way
	{name: "case/dotless i folds to I", method: "GET", path: "/adm%C4%B1n", want: reason.PathInvalid},
	// 2. Dot segments, whatever Envoy's normalize_path does.
	{name: "dots/dot-dot out of admin", method: "GET", path: "/admin/../public", want: reason.PathInvalid},
	{name: "dots/semicolon dot-dot", method: "GET", path: "/admin/x;/../../public", want: reason.PathInvalid},
	{name: "dots/dot-dot into admin", method: "GET", path: "/public/../admin", want: reason.PathInvalid},
	{name: "dots/single dot", method: "GET", path: "/./admin", want: reason.PathInvalid},
	{name: "dots/encoded", method: "GET", path: "/public/%2e%2e/admin", want: reason.PathInvalid},
	// ';' and escapes that upstreams read differently.
	{name: "semicolon/matrix parameter on admin", method: "GET", path: "/admin;jsessionid=1", want: reason.PathInvalid},
	{name: "escape/raw reading is a protected param", method: "GET", path: "/files/%72eadme", want: reason.PathInvalid},
	// 3. Host: malformed hosts never skip a host-scoped route.
	{name: "host/empty", method: "GET", host: "-", path: "/pets/7", want: reason.HostInvalid},
	{name: "host/two ports", method: "GET", host: "api.example.com:443:443", path: "/pets/7", want: reason.HostInvalid},
	{name: "host/userinfo", method: "GET", host: "u@api.example.com", path: "/pets/7", want: reason.HostInvalid},
	{name: "host/trailing dots", method: "GET", host: "api.example.com..", path: "/pets/7", want: reason.HostInvalid},
	{name: "host/empty port", method: "GET", host: "api.example.com:", path: "/pets/7", want: reason.HostInvalid},
	{name: "host/bare ipv6", method: "GET", host: "::1", path: "/pets/7", want: reason.HostInvalid},
	{name: "host/one trailing dot is the host", method: "GET", host: "API.example.com.:443", path: "/pets/7", want: reason.GroupMissing},
	// 4. Methods: HEAD runs the GET handler; override headers tunnel GET.
	{name: "method/HEAD is judged as GET", method: "HEAD", path: "/users/1", want: reason.TokenMissing},
	{name: "method/X-HTTP-Method-Override", method: "POST", path: "/users/1", headers: map[string]string{"x-http-method-override": "GET"}, want: reason.TokenMissing},
	{name: "method/X-HTTP-Method", method: "POST", path: "/users/1", headers: map[string]string{"x-http-method": "get"}, want: reason.TokenMissing},
	{name: "method/X-Method-Override", method: "POST", path: "/users/1", headers: map[string]string{"x-method-override": "GET"}, want: reason.TokenMissing},
	{name: "method/override joined by Envoy", method: "POST", path: "/users/1", headers: map[string]string{"x-http-method-override": "PATCH, GET"}, want: reason.TokenMissing},
	{name: "method/_method query", method: "POST", path: "/users/1?_method=GET", want: reason.TokenMissing},
	{name: "method/override into admin", method: "POST", path: "/admin", headers: map[string]string{"x-http-method-override": "GET"}, want: reason.TokenMissing},
	// 6. A route named by Envoy keeps its own methods and host.
	{name: "named route/DELETE on a GET route", method: "DELETE", path: "/users/1", route: "users-get", want: reason.RouteNotFound},
	{name: "named route/other host", method: "GET", host: "other.example.com", path: "/pets/7", route: "pet-api", want: reason.RouteNotFound},
	{name: "named route/malformed host", method: "GET", host: "api.example.com:1:2", path: "/pets/7", route: "pet-api", want: reason.HostInvalid},
}

// TestRouteConfusionAttacks sends each attack through the real gRPC edge
// without a token: none may be allowed, and each is denied for its reason.
func TestRouteConfusionAttacks(t *testing.T) {
	f := newFixture(t, fixtureOptions{policy: confusionPolicy})
	user := f.env.ID(t, issuer.TokenOptions{})
	for _, a := range confusionAttacks {
		t.Run(a.name, func(t *testing.T) {
			tok := ""
			if a.want == reason.GroupMissing || a.want == "" {
				tok = user
			}
			resp := f.check(t, a.request(tok))
			if a.want == "" {
				wantAllowed(t, resp)
				return
			}
			if codes.Code(resp.GetStatus().GetCode()) == codes.OK {
				t.Fatalf("allowed; want %s", a.want)
			}
			got := headerOptions(t, resp.GetDeniedResponse().GetHeaders())["x-extauthz-reason"]
			if got != string(a.want) {
				t.Fatalf("reason = %s, want %s", got, a.want)
			}
		})
	}
}

// TestRouteConfusionControls: the requests next to the attacks still work,
// so the refusals above are about ambiguity, not a broken matcher.
func TestRouteConfusionControls(t *testing.T) {
	f := newFixture(t, fixtureOptions{policy: confusionPolicy})
	user := f.env.ID(t, issuer.TokenOptions{})
	admin := f.env.ID(t, issuer.TokenOptions{Groups: []string{"admins"}})
	tests := []struct {
		a     attack
		tok   string
		allow bool
		route string
	}{
		{attack{method: "GET", path: "/public/page"}, "", true, "public"},
		{attack{method: "GET", path: "/admin"}, admin, true, "admin"},
		{attack{method: "GET", path: "/admin/users/"}, admin, true, "admin-any"},
		{attack{method: "GET", path: "/admin//users"}, admin, true, "admin-any"},
		{attack{method: "HEAD", path: "/users/1"}, user, true, "users-get"},
		{attack{method: "POST", path: "/users/1", headers: map[string]string{"x-http-method-override": "GET"}}, user, true, "users-get"},
		{attack{method: "GET", path: "/files/my%20doc.txt"}, user, true, "file"},
		{attack{method: "GET", path: "/files/a;v=2"}, user, true, "file"},
		{attack{method: "GET", path: "/files/readme?x=/admin"}, "", true, "readme"},
		{attack{method: "GET", host: "api.example.com:8443", path: "/pets/7"}, admin, true, "pet-api"},
		{attack{method: "GET", host: "10.0.0.5", path: "/pets/7"}, user, true, "pets-any"}, // a valid other host: Envoy's domains must name the API's hosts
		{attack{method: "GET", path: "/users/1", route: "users-get"}, user, true, "users-get"},
		{attack{method: "HEAD", path: "/users/1", route: "users-get"}, user, true, "users-get"},
	}
	for _, tt := range tests {
		t.Run(tt.a.method+" "+tt.a.host+tt.a.path, func(t *testing.T) {
			resp := f.check(t, tt.a.request(tt.tok))
			if !tt.allow {
				if codes.Code(resp.GetStatus().GetCode()) == codes.OK {
					t.Fatal("allowed")
				}
				return
			}
			wantAllowed(t, resp)
			if got := resp.GetDynamicMetadata().GetFields()["route"].GetStringValue(); got != tt.route {
				t.Fatalf("route = %q, want %q", got, tt.route)
			}
		})
	}
}

// goMuxUpstream is a real net/http ServeMux with a handler per policy
// route, behind gorilla/handlers-style method override (POST with
// X-HTTP-Method-Override runs the named method), as Go services commonly
// run. Each handler answers with its name in X-Handler.
func goMuxUpstream(t *testing.T) string {
	t.Helper()
	mux := http.NewServeMux()
	handle := func(pattern, name string) {
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) { w.Header().Set("X-Handler", name) })
	}
	handle("/", "public")
	handle("/admin", "admin")
	handle("/admin/", "admin-any")
	handle("GET /users/{id}", "users-get")
	handle("api.example.com/pets/{petId}", "pet-api")
	handle("/pets/", "pets-any")
	handle("/files/readme", "readme")
	handle("/files/{name}", "file")
	override := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPost {
				if m := strings.ToUpper(r.Header.Get("X-HTTP-Method-Override")); m != "" {
					r.Method = m
				}
			}
			next.ServeHTTP(w, r)
		})
	}
	srv := httptest.NewServer(override(mux))
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

// rawHandler sends the request to the upstream byte for byte (no client
// library cleaning the path) and returns the handler that served it, or ""
// when none did (a 4xx, or a redirect to a cleaned path, which comes back
// through the service as a new request).
func rawHandler(t *testing.T, addr string, a attack) string {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial upstream: %v", err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\n", a.method, a.path)
	if a.host != "-" {
		host := a.host
		if host == "" {
			host = "api.example.com"
		}
		fmt.Fprintf(&b, "Host: %s\r\n", host)
	}
	for k, v := range a.headers {
		fmt.Fprintf(&b, "%s: %s\r\n", k, v)
	}
	b.WriteString("Content-Length: 0\r\nConnection: close\r\n\r\n")
	if _, err := conn.Write([]byte(b.String())); err != nil {
		t.Fatalf("write upstream: %v", err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: a.method})
	if err != nil {
		t.Fatalf("read upstream: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode >= 300 {
		return ""
	}
	return resp.Header.Get("X-Handler")
}

// TestRouteAgreementWithGoMux is the promise in one table: for every
// attack and control request, with no token and with a non-admin user's
// token, whatever the service allows, a real Go net/http upstream serves
// from a handler no more protected than the route the service judged.
func TestRouteAgreementWithGoMux(t *testing.T) {
	f := newFixture(t, fixtureOptions{policy: confusionPolicy})
	upstream := goMuxUpstream(t)
	user := f.env.ID(t, issuer.TokenOptions{})
	requests := append([]attack(nil), confusionAttacks...)
	for _, p := range []string{"/", "/public", "/admin", "/admin/x", "/users/1", "/pets/7", "/pets/7/toys", "/files/readme", "/files/x"} {
		for _, m := range []string{"GET", "HEAD", "POST", "DELETE"} {
			requests = append(requests, attack{name: m + " " + p, method: m, path: p})
		}
	}
	checked := 0
	for _, a := range requests {
		for _, tok := range []string{"", user} {
			resp := f.check(t, a.request(tok))
			if codes.Code(resp.GetStatus().GetCode()) != codes.OK {
				continue
			}
			judged := resp.GetDynamicMetadata().GetFields()["route"].GetStringValue()
			served := rawHandler(t, upstream, a)
			if served == "" {
				continue
			}
			checked++
			if routeLevel[served] > routeLevel[judged] {
				t.Errorf("%s %s (host %q, token %v): service judged route %q (level %d), Go mux ran %q (level %d)",
					a.method, a.path, a.host, tok != "", judged, routeLevel[judged], served, routeLevel[served])
			}
		}
	}
	if checked < 40 {
		t.Fatalf("only %d allowed requests reached a handler: the table tests too little", checked)
	}
}

// TestClaimHeaderListInjection (issue 11 item 8): a group named
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

// TestClaimConditionTypeConfusion (issue 11 item 8): a list claim never
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

// TestReservedClaimHeaders (issue 11 item 9): a policy cannot make a claim
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

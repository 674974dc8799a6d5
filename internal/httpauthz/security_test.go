package httpauthz_test

import (
	"fmt"
	"maps"
	"net/http"
	"strings"
	"testing"

	"github.com/cognito-extauthz/cognito-extauthz/internal/check"
	"github.com/cognito-extauthz/cognito-extauthz/internal/issuer"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/policy"
)

// TestOwnFamilyOnly: each endpoint reads only its own forwarding headers.
// A client can add X-Forwarded-Uri through nginx, or X-Original-URI through
// Traefik; neither may open /health for a protected route, nor stand in for
// a missing header of the right family.
func TestOwnFamilyOnly(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	tests := []struct {
		name string
		r    req
		want deny
	}{
		{"nginx ignores X-Forwarded-*", req{path: "/nginx", headers: h(
			"X-Original-Method", "GET", "X-Original-URI", "/pets",
			"X-Forwarded-Method", "GET", "X-Forwarded-Uri", "/health")}, denyMissing},
		{"nginx without its own headers", req{path: "/nginx", headers: h(
			"X-Forwarded-Method", "GET", "X-Forwarded-Uri", "/health")}, denyBadReq},
		{"auth ignores X-Original-*", req{path: "/auth", headers: h(
			"X-Forwarded-Method", "GET", "X-Forwarded-Uri", "/pets",
			"X-Original-Method", "GET", "X-Original-URI", "/health")}, denyMissing},
		{"auth without its own headers", req{path: "/auth", headers: h(
			"X-Original-Method", "GET", "X-Original-URI", "/health")}, denyBadReq},
		{"envoy ignores both", req{path: "/envoy/pets", headers: h(
			"X-Forwarded-Method", "GET", "X-Forwarded-Uri", "/health",
			"X-Original-Method", "GET", "X-Original-URI", "/health")}, denyMissing},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantDeny(t, f.do(t, tt.r), tt.want)
		})
	}
}

// TestRequestInvalid: a forward-auth request without a usable method or
// URI header is a 400, never an allow, even where any request would be
// allowed (defaultAction allow would otherwise answer 200).
func TestRequestInvalid(t *testing.T) {
	f := newFixture(t, fixtureOptions{policy: `
apiVersion: cognito-extauthz/v1
authorizers:
  users:
    userPools: [{userPoolId: ${POOL}, issuer: ${ISSUER}, jwksUri: ${JWKS}}]
routes:
  - name: health
    match: { path: /health }
    authorization: NONE
defaultAction: allow
`})
	families := []struct{ path, method, uri, host string }{
		{"/auth", "X-Forwarded-Method", "X-Forwarded-Uri", "X-Forwarded-Host"},
		{"/nginx", "X-Original-Method", "X-Original-URI", "X-Original-Host"},
	}
	for _, fam := range families {
		tests := []struct {
			name    string
			headers [][2]string
		}{
			{"no headers", nil},
			{"method missing", h(fam.uri, "/health")},
			{"uri missing", h(fam.method, "GET")},
			{"method empty", h(fam.method, "", fam.uri, "/health")},
			{"uri empty", h(fam.method, "GET", fam.uri, "")},
			{"uri repeated", h(fam.method, "GET", fam.uri, "/health", fam.uri, "/health")},
			{"uri repeated, other spelling", h(fam.method, "GET", fam.uri, "/health", strings.ToLower(fam.uri), "/health")},
			{"method repeated", h(fam.method, "GET", fam.method, "GET", fam.uri, "/health")},
			{"host repeated", h(fam.method, "GET", fam.uri, "/health", fam.host, "a", fam.host, "a")},
			{"host list", h(fam.method, "GET", fam.uri, "/health", fam.host, "a.example.com, b.example.com")},
			{"method not a token", h(fam.method, "GET /health", fam.uri, "/health")},
			{"uri absolute form", h(fam.method, "GET", fam.uri, "http://x.example.com/health")},
			{"uri asterisk", h(fam.method, "OPTIONS", fam.uri, "*")},
			{"uri with a space", h(fam.method, "GET", fam.uri, "/health /x")},
			{"uri with a tab", h(fam.method, "GET", fam.uri, "/health\t/x")},
		}
		for _, tt := range tests {
			t.Run(fam.path+"/"+tt.name, func(t *testing.T) {
				wantDeny(t, f.do(t, req{path: fam.path, headers: tt.headers}), denyBadReq)
			})
		}
		t.Run(fam.path+"/valid control", func(t *testing.T) {
			wantAllow(t, f.do(t, req{path: fam.path, headers: h(fam.method, "get", fam.uri, "/health")}), allow{route: "health"})
		})
	}
	// Control: the policy really is allow-by-default for a valid request.
	wantAllow(t, f.do(t, req{path: "/auth", headers: h("X-Forwarded-Method", "GET", "X-Forwarded-Uri", "/elsewhere")}), allow{})
}

// TestRouting: endpoints are routed on the raw request target; anything
// else is a 404 that decides nothing.
func TestRouting(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	for _, target := range []string{"/", "/authx", "/auth/", "/%61uth", "/envoy", "/envoyx/health", "/nginx/x", "/ENVOY/health", "//envoy/health"} {
		t.Run(target, func(t *testing.T) {
			a := f.raw(t, "GET "+target+" HTTP/1.1\r\nHost: x\r\nX-Forwarded-Method: GET\r\nX-Forwarded-Uri: /health\r\nConnection: close\r\n\r\n")
			if a.status != http.StatusNotFound || a.has("x-extauthz-route") {
				t.Fatalf("%s: %d route %q, want 404", target, a.status, a.header.Get("x-extauthz-route"))
			}
		})
	}
	// An absolute-form target for /envoy names no original path: refused.
	a := f.raw(t, "GET http://x/envoy/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	if a.status == http.StatusOK {
		t.Fatalf("absolute-form target allowed")
	}
	// The query of /auth's own target is not the original request's.
	wantAllow(t, f.do(t, req{path: "/auth?x=1", headers: h("X-Forwarded-Method", "GET", "X-Forwarded-Uri", "/health")}), allow{
		route: "health", empty: f.snap.ClaimHeaderNames(), remove: f.snap.ClaimHeaderNames(),
	})
	// /envoy/<path> keeps the path raw: an encoded slash is not a separator.
	wantDeny(t, f.do(t, req{path: "/envoy/pets%2F7"}), deny{403, `{"message":"Missing Authentication Token"}`, "", "path_invalid"})
}

// TestHostAndIdentitySources: host comes from the family's host header,
// else Host; forwarding headers never act as the token.
func TestHostAndIdentitySources(t *testing.T) {
	f := newFixture(t, fixtureOptions{policy: readTestdata(t, "hosts.yaml")})
	id := f.env.ID(t, issuer.TokenOptions{})
	internal := allow{route: "internal-health"}
	tests := []struct {
		name  string
		r     req
		allow bool
	}{
		{"auth X-Forwarded-Host", req{path: "/auth", headers: h("X-Forwarded-Method", "GET", "X-Forwarded-Uri", "/health", "X-Forwarded-Host", "internal.example.com")}, true},
		{"auth Host", req{path: "/auth", host: "internal.example.com", headers: h("X-Forwarded-Method", "GET", "X-Forwarded-Uri", "/health")}, true},
		{"auth empty X-Forwarded-Host falls back to Host", req{path: "/auth", host: "internal.example.com", headers: h("X-Forwarded-Method", "GET", "X-Forwarded-Uri", "/health", "X-Forwarded-Host", "")}, true},
		{"auth X-Forwarded-Host beats Host", req{path: "/auth", host: "internal.example.com", headers: h("X-Forwarded-Method", "GET", "X-Forwarded-Uri", "/health", "X-Forwarded-Host", "public.example.com")}, false},
		{"auth ignores X-Original-Host", req{path: "/auth", host: "public.example.com", headers: h("X-Forwarded-Method", "GET", "X-Forwarded-Uri", "/health", "X-Original-Host", "internal.example.com")}, false},
		{"nginx X-Original-Host", req{path: "/nginx", headers: h("X-Original-Method", "GET", "X-Original-URI", "/health", "X-Original-Host", "internal.example.com")}, true},
		{"nginx ignores X-Forwarded-Host", req{path: "/nginx", host: "public.example.com", headers: h("X-Original-Method", "GET", "X-Original-URI", "/health", "X-Forwarded-Host", "internal.example.com")}, false},
		{"envoy Host", req{path: "/envoy/health", host: "internal.example.com"}, true},
		{"envoy ignores X-Forwarded-Host", req{path: "/envoy/health", host: "public.example.com", headers: h("X-Forwarded-Host", "internal.example.com")}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := f.do(t, tt.r)
			if tt.allow {
				wantAllow(t, a, internal)
			} else {
				wantDeny(t, a, denyNoRoute)
			}
		})
	}
	// An identitySource naming a forwarding header finds no token there.
	for _, ep := range endpoints {
		t.Run(ep.name+"/token in X-Forwarded-Token", func(t *testing.T) {
			wantDeny(t, f.do(t, ep.build("GET", "/fwd", h("X-Forwarded-Token", id))), denyMissing)
		})
		t.Run(ep.name+"/token in X-Original-Token", func(t *testing.T) {
			wantDeny(t, f.do(t, ep.build("GET", "/orig", h("X-Original-Token", id))), denyMissing)
		})
	}
}

// TestForgedClaimHeaders: an allow names every claim header, so a proxy
// copying auth-response headers overwrites a client's forged value, and
// Envoy removes the unset ones.
func TestForgedClaimHeaders(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	names := f.snap.ClaimHeaderNames()
	forged := h("X-User-Sub", "admin", "X-User-Groups", "admins", "X-Client-Id", "trusted")
	id := f.env.ID(t, issuer.TokenOptions{Subject: "real-sub"}) // no groups, no email
	for _, ep := range endpoints {
		t.Run(ep.name+"/none route", func(t *testing.T) {
			wantAllow(t, f.do(t, ep.build("GET", "/health", forged)), allow{route: "health", empty: names, remove: names})
		})
		t.Run(ep.name+"/claim absent from token", func(t *testing.T) {
			wantAllow(t, f.do(t, ep.build("GET", "/pets", append(bearer(id), forged...))), allow{
				route:  "list-pets",
				set:    map[string]string{"x-user-sub": "real-sub", "x-user-verified": ""},
				empty:  []string{"x-user-groups", "x-client-id", "x-user-email", "x-user-verified"},
				remove: []string{"x-user-groups", "x-client-id", "x-user-email", "x-user-verified"},
			})
		})
	}
}

// TestLimits: bodies and headers beyond the caps are refused, never
// decided on.
func TestLimits(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	ask := h("X-Forwarded-Method", "POST", "X-Forwarded-Uri", "/health")
	t.Run("small body", func(t *testing.T) {
		wantAllow(t, f.do(t, req{method: "POST", path: "/auth", headers: ask, body: "x=1"}), allow{
			route: "health", empty: f.snap.ClaimHeaderNames(), remove: f.snap.ClaimHeaderNames(),
		})
	})
	t.Run("large body", func(t *testing.T) {
		wantDeny(t, f.do(t, req{method: "POST", path: "/auth", headers: ask, body: strings.Repeat("x", 65<<10)}), denyBadReq)
	})
	t.Run("large chunked body", func(t *testing.T) {
		chunk := strings.Repeat("y", 32<<10)
		body := ""
		for range 3 {
			body += fmt.Sprintf("%x\r\n%s\r\n", len(chunk), chunk)
		}
		a := f.raw(t, "POST /auth HTTP/1.1\r\nHost: x\r\nX-Forwarded-Method: POST\r\nX-Forwarded-Uri: /health\r\n"+
			"Transfer-Encoding: chunked\r\n\r\n"+body+"0\r\n\r\n")
		wantDeny(t, a, denyBadReq)
	})
	// Headers over the limits get the gRPC edge's 431 request_too_large
	// JSON answer, counted and logged; net/http itself refuses only what
	// is over twice the byte limit, with its own plain 431.
	small := newFixture(t, fixtureOptions{limits: check.Limits{MaxHeaders: 20, MaxHeaderBytes: 8 << 10}})
	tooLarge := deny{431, `{"message":"Request Header Fields Too Large"}`, "", "request_too_large"}
	pad := func(n int) string {
		return "GET /auth HTTP/1.1\r\nHost: x\r\nX-Forwarded-Method: GET\r\nX-Forwarded-Uri: /health\r\n" +
			"X-Pad: " + strings.Repeat("p", n) + "\r\nConnection: close\r\n\r\n"
	}
	t.Run("headers just within the byte limit", func(t *testing.T) {
		wantAllow(t, small.raw(t, pad(7<<10)), allow{route: "health", empty: small.snap.ClaimHeaderNames(), remove: small.snap.ClaimHeaderNames()})
	})
	t.Run("headers over the byte limit", func(t *testing.T) {
		wantDeny(t, small.raw(t, pad(9<<10)), tooLarge)
	})
	t.Run("too many headers", func(t *testing.T) {
		var b strings.Builder
		b.WriteString("GET /auth HTTP/1.1\r\nHost: x\r\nX-Forwarded-Method: GET\r\nX-Forwarded-Uri: /health\r\n")
		for i := range 20 {
			fmt.Fprintf(&b, "X-H%d: v\r\n", i)
		}
		b.WriteString("Connection: close\r\n\r\n")
		wantDeny(t, small.raw(t, b.String()), tooLarge)
	})
	t.Run("headers over twice the limit: net/http's own 431", func(t *testing.T) {
		if a := small.raw(t, pad(20<<10)); a.status != http.StatusRequestHeaderFieldsTooLarge {
			t.Fatalf("status %d, want 431", a.status)
		}
	})
	if got := series(t, small, "extauthz_checks_total")[`{decision="deny",edge="http",reason="request_too_large",route="none"}`]; got != 2 {
		t.Errorf("request_too_large counted %v times, want 2", got)
	}
	if !strings.Contains(small.logs.String(), `"reason":"request_too_large"`) {
		t.Errorf("request_too_large not in the decision log:\n%s", small.logs.String())
	}
}

// TestMetricsAndLogs: HTTP decisions land in the shared metrics (edge
// "http") and decision log, and no token appears in any log line.
func TestMetricsAndLogs(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	id := f.env.ID(t, issuer.TokenOptions{})
	f.do(t, req{path: "/envoy/pets?access_token=" + id, headers: append(bearer(id), h("X-Request-Id", "req-1")...)})
	f.do(t, req{path: "/auth", headers: h("X-Forwarded-Method", "GET", "X-Forwarded-Uri", "/pets")})
	f.do(t, req{path: "/nginx", headers: append(bearer(id), h("X-Original-Method", "GET")...)})
	f.do(t, req{path: "/nope"})
	// Every series of the closed label set exists from the start at 0;
	// the ones these requests moved are the ones that count.
	want := map[string]float64{
		`{decision="allow",edge="http",reason="allowed",route="list-pets"}`:      1,
		`{decision="deny",edge="http",reason="request_invalid",route="none"}`:    1,
		`{decision="deny",edge="http",reason="token_missing",route="list-pets"}`: 1,
	}
	got := series(t, f, "extauthz_checks_total")
	if !maps.Equal(got, want) {
		t.Errorf("non-zero extauthz_checks_total series = %v, want %v", got, want)
	}
	var sawAllow, sawInvalid bool
	for _, l := range f.logs.Lines(t) {
		if l["reason"] == "allowed" && l["path"] == "/pets" && l["request_id"] == "req-1" {
			sawAllow = true
		}
		if l["reason"] == "request_invalid" {
			sawInvalid = true
		}
	}
	if !sawAllow || !sawInvalid {
		t.Errorf("decision log lacks lines (allow %v, request_invalid %v):\n%s", sawAllow, sawInvalid, f.logs.String())
	}
	for _, part := range strings.Split(id, ".") {
		if strings.Contains(f.logs.String(), part) {
			t.Fatalf("a token part is in the logs:\n%s", f.logs.String())
		}
	}
}

// A panic anywhere in a decision is a 503, never an allow, and the server
// keeps answering.
func TestPanicFailsClosed(t *testing.T) {
	f := newFixture(t, fixtureOptions{snapshot: func() *policy.Snapshot { panic("boom") }})
	for _, ep := range endpoints {
		a := f.do(t, ep.build("GET", "/health", nil))
		wantDeny(t, a, deny{503, `{"message":"Service Unavailable"}`, "", "internal_error"})
	}
	if !strings.Contains(f.logs.String(), "check panicked") {
		t.Fatalf("panic not logged:\n%s", f.logs.String())
	}
}

// series returns the non-zero series of a counter, keyed by their labels.
func series(t *testing.T, f *fixture, name string) map[string]float64 {
	t.Helper()
	mfs, err := f.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if v := m.GetCounter().GetValue(); v != 0 {
				var b strings.Builder
				b.WriteString("{")
				for i, l := range m.GetLabel() {
					if i > 0 {
						b.WriteString(",")
					}
					fmt.Fprintf(&b, "%s=%q", l.GetName(), l.GetValue())
				}
				b.WriteString("}")
				got[b.String()] = v
			}
		}
	}
	return got
}

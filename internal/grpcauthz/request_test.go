package grpcauthz_test

import (
	"testing"

	"github.com/cognito-extauthz/cognito-extauthz/internal/issuer"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/reason"
)

// TestRequestTranslation pins how a CheckRequest's headers reach the
// decision: the headers map (lower-case keys, repeated headers
// comma-joined) and header_map (encode_raw_headers: raw_value bytes, one
// entry per line), and the identity source rules of the policy file.
func TestRequestTranslation(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	id := f.env.ID(t, issuer.TokenOptions{})
	other := f.env.ID(t, issuer.TokenOptions{})

	tests := []checkCase{
		{name: "header_map raw_value", call: call{path: "/pets", raw: [][2]string{
			{":method", "GET"}, {"authorization", "Bearer " + id}}}, allow: true},
		{name: "header_map mixed-case key", call: call{path: "/pets", raw: [][2]string{{"Authorization", "Bearer " + id}}}, allow: true},
		{name: "header_map two authorization lines", call: call{path: "/pets", raw: [][2]string{
			{"authorization", "Bearer " + id}, {"authorization", "Bearer " + other}}},
			want: denyInvalid(reason.TokenAmbiguous)},
		{name: "header_map same token twice", call: call{path: "/pets", raw: [][2]string{
			{"authorization", "Bearer " + id}, {"Authorization", "Bearer " + id}}},
			want: denyInvalid(reason.TokenAmbiguous)},
		{name: "header_map without authorization", call: call{path: "/pets", raw: [][2]string{{"x-other", "1"}}},
			want: denyMissing(reason.TokenMissing)},
		{name: "header_map wins over headers", call: call{path: "/pets", headers: bearer(id), raw: [][2]string{{"x-other", "1"}}},
			want: denyMissing(reason.TokenMissing)},
		{name: "headers comma-joined", call: call{path: "/pets", headers: map[string]string{
			"authorization": "Bearer " + id + ", Bearer " + other}},
			want: denyInvalid(reason.TokenAmbiguous)},
		{name: "Bearer lower case", call: call{path: "/pets", headers: map[string]string{"authorization": "bearer " + id}}, allow: true},
		{name: "Bearer upper case", call: call{path: "/pets", headers: map[string]string{"authorization": "BEARER " + id}}, allow: true},
		{name: "Bearer mixed case", call: call{path: "/pets", headers: map[string]string{"authorization": "bEaReR " + id}}, allow: true},
		{name: "Bearer many spaces", call: call{path: "/pets", headers: map[string]string{"authorization": "Bearer     " + id}}, allow: true},
		{name: "bare token", call: call{path: "/pets", headers: map[string]string{"authorization": id}}, allow: true},
		{name: "Bearer tab", call: call{path: "/pets", headers: map[string]string{"authorization": "Bearer\t" + id}},
			want: denyInvalid(reason.TokenMalformed)},
		{name: "Basic scheme", call: call{path: "/pets", headers: map[string]string{"authorization": "Basic " + id}},
			want: denyInvalid(reason.TokenMalformed)},
		{name: "Bearer without space", call: call{path: "/pets", headers: map[string]string{"authorization": "Bearer" + id}},
			want: denyInvalid(reason.TokenMalformed)},
		{name: "headers upper-case key", call: call{path: "/pets", headers: map[string]string{"Authorization": "Bearer " + id}}, allow: true},
		{name: "headers two spellings", call: call{path: "/pets", headers: map[string]string{
			"Authorization": "Bearer " + id, "AUTHORIZATION": "Bearer " + other}},
			want: denyInvalid(reason.TokenAmbiguous)},
		{name: "headers lower and upper spellings", call: call{path: "/pets", headers: map[string]string{
			"authorization": "Bearer " + id, "Authorization": "Bearer " + other}},
			want: denyInvalid(reason.TokenAmbiguous)},
		{name: "method lower case", call: call{method: "get", path: "/pets", headers: bearer(id)}, allow: true},
		{name: "custom identity header", call: call{path: "/x", headers: map[string]string{"x-token": id}}, allow: true},
		{name: "custom identity header twice", call: call{path: "/x", raw: [][2]string{{"x-token", id}, {"X-Token", other}}},
			want: denyInvalid(reason.TokenAmbiguous)},
		{name: "query token", call: call{path: "/q?access_token=" + f.env.Access(t, issuer.TokenOptions{})}, allow: true},
		{name: "query token twice", call: call{path: "/q?access_token=a.b.c&access_token=d.e.f"},
			want: denyInvalid(reason.TokenAmbiguous)},
		{name: "query token absent", call: call{path: "/q?other=1", headers: bearer(id)},
			want: denyMissing(reason.TokenMissing)},
		{name: "cookie token", call: call{path: "/c", headers: map[string]string{"cookie": "a=1; id_token=" + id}}, allow: true},
		{name: "cookie token twice", call: call{path: "/c", raw: [][2]string{{"cookie", "id_token=" + id}, {"cookie", "id_token=" + other}}},
			want: denyInvalid(reason.TokenAmbiguous)},
	}
	runCheckCases(t, f, tests)
}

// TestRequestPseudoHeaderFallback: with the attribute fields empty, the
// method, host and path come from the pseudo-headers.
func TestRequestPseudoHeaderFallback(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	id := f.env.ID(t, issuer.TokenOptions{})
	req := call{headers: map[string]string{
		":method": "GET", ":path": "/pets", ":authority": "api.example.com", "authorization": "Bearer " + id,
	}}.request()
	req.Attributes.Request.Http.Method = ""
	req.Attributes.Request.Http.Host = ""
	wantAllowed(t, f.check(t, req))

	// An empty CheckRequest is a request for nothing: denied.
	resp := f.check(t, nil)
	if resp.GetOkResponse() != nil || resp.GetStatus().GetCode() == 0 {
		t.Fatalf("empty CheckRequest allowed: %v", resp)
	}
}

// TestContextExtensionsRoute: Envoy's context_extensions route names the
// route and path matching is skipped; the named route's requirements
// apply whatever the path.
func TestContextExtensionsRoute(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	id := f.env.ID(t, issuer.TokenOptions{})
	access := f.env.Access(t, issuer.TokenOptions{Scopes: []string{"pets/read"}})

	tests := []struct {
		name      string
		call      call
		allow     bool
		wantRoute string
		want      denial
	}{
		{name: "path matches nothing", call: call{path: "/nowhere", route: "list-pets", headers: bearer(id)}, allow: true, wantRoute: "list-pets"},
		{name: "method the route lacks", call: call{method: "PATCH", path: "/nowhere", route: "list-pets", headers: bearer(id)},
			want: denyNoRoute, wantRoute: "list-pets"},
		{name: "HEAD on a GET route", call: call{method: "HEAD", path: "/nowhere", route: "list-pets", headers: bearer(id)}, allow: true, wantRoute: "list-pets"},
		{name: "path of another route", call: call{path: "/health", route: "pet", headers: bearer(id)},
			want: denyInvalid(reason.TokenUseMismatch), wantRoute: "pet"},
		{name: "named route needs a token", call: call{path: "/health", route: "pet"},
			want: denyMissing(reason.TokenMissing), wantRoute: "pet"},
		{name: "named NONE route", call: call{path: "/pets/7", route: "health"}, allow: true, wantRoute: "health"},
		{name: "named access route", call: call{path: "/", route: "pet", headers: bearer(access)}, allow: true, wantRoute: "pet"},
		{name: "unknown name", call: call{path: "/health", route: "healthz"}, want: denyNoRoute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, _ := f.decide(t, tt.call.request())
			if d.RouteName() != tt.wantRoute {
				t.Errorf("route = %q, want %q", d.RouteName(), tt.wantRoute)
			}
			resp := f.check(t, tt.call.request())
			if tt.allow {
				wantAllowed(t, resp)
				if got := resp.GetDynamicMetadata().AsMap()["route"]; got != tt.wantRoute {
					t.Errorf("metadata route = %v", got)
				}
				return
			}
			wantDenied(t, resp, tt.want)
		})
	}
}

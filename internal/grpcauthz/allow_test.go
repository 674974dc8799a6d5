package grpcauthz_test

import (
	"slices"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/cognito-extauthz/cognito-extauthz/internal/issuer"
	"github.com/cognito-extauthz/cognito-extauthz/internal/testenv"
)

// TestAllowClaimHeaderFormats pins the documented claimHeaders formatting
// on the wire: strings as they are, numbers in decimal, booleans, arrays
// comma-joined, objects as compact JSON; an absent claim sets nothing and
// its header is removed instead.
func TestAllowClaimHeaderFormats(t *testing.T) {
	f := newFixture(t, fixtureOptions{policy: readTestdata(t, "claims-policy.yaml")})
	tok := f.env.ID(t, issuer.TokenOptions{
		Subject: "7f3c-sub",
		Email:   "alice@example.com",
		Groups:  []string{"admins", "pet-owners"},
		Claims: map[string]any{
			"custom:level": 42,
			"custom:ratio": 1.5,
			"address":      map[string]any{"zip": "02110", "street": "1 Main St"},
		},
	})
	ok := wantAllowed(t, f.check(t, call{path: "/profile", headers: bearer(tok)}.request()))
	got := headerOptions(t, ok.GetHeaders())
	want := map[string]string{
		"x-user-sub":      "7f3c-sub",
		"x-user-email":    "alice@example.com",
		"x-user-verified": "true",
		"x-user-groups":   "admins,pet-owners",
		"x-user-level":    "42",
		"x-user-ratio":    "1.5",
		"x-user-address":  `{"street":"1 Main St","zip":"02110"}`,
	}
	if len(got) != len(want) {
		t.Errorf("set headers = %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	rm := ok.GetHeadersToRemove()
	for _, name := range []string{"x-user-absent", "x-client-id"} {
		if !slices.Contains(rm, name) {
			t.Errorf("headers_to_remove %v lacks %s (not set by this decision)", rm, name)
		}
	}
	for name := range got {
		if slices.Contains(rm, name) {
			t.Errorf("%s is both set and removed", name)
		}
	}
	if slices.Contains(rm, "authorization") {
		t.Errorf("authorization removed without stripToken")
	}
}

// TestAllowRemovesForgedClaimHeaders: on every kind of allow (token routes
// of every identity source, NONE, default allow), every claim header name
// of the policy that the decision does not set is removed, so a forged
// value never reaches the upstream; the ones it sets overwrite.
func TestAllowRemovesForgedClaimHeaders(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	e := f.env
	id := e.ID(t, issuer.TokenOptions{Email: "real@example.com", Groups: []string{"admins"}, Claims: map[string]any{"custom:tenant": "acme"}})
	access := e.Access(t, issuer.TokenOptions{Scopes: []string{"pets/read"}})
	names := f.snap.ClaimHeaderNames()
	if len(names) < 4 {
		t.Fatalf("test policy has too few claim headers: %v", names)
	}

	forged := func(h map[string]string) map[string]string {
		out := map[string]string{}
		for k, v := range h {
			out[k] = v
		}
		for _, n := range names {
			out[n] = "forged"
		}
		return out
	}
	tests := []struct {
		name string
		call call
	}{
		{"identity route", call{path: "/pets", headers: bearer(id)}},
		{"access route", call{path: "/pets/7", headers: bearer(access)}},
		{"access route without scopes", call{path: "/any-access", headers: bearer(access)}},
		{"groups route", call{path: "/admin/users", headers: bearer(id)}},
		{"claims route", call{path: "/tenant", headers: bearer(id)}},
		{"strip route", call{path: "/strip", headers: bearer(id)}},
		{"query source", call{path: "/q?access_token=" + access}},
		{"cookie source", call{path: "/c", headers: map[string]string{"cookie": "id_token=" + id}}},
		{"header source", call{path: "/x", headers: map[string]string{"x-token": id}}},
		{"uncached route", call{path: "/nocache", headers: bearer(id)}},
		{"context route", call{path: "/nowhere", route: "list-pets", headers: bearer(id)}},
		{"NONE route", call{path: "/health"}},
	}
	for _, tt := range tests {
		for _, raw := range []bool{false, true} {
			name := tt.name
			c := tt.call
			c.headers = forged(c.headers)
			if raw {
				name += "/header_map"
				for k, v := range c.headers {
					c.raw = append(c.raw, [2]string{k, v})
				}
				c.headers = nil
			}
			t.Run(name, func(t *testing.T) {
				ok := wantAllowed(t, f.check(t, c.request()))
				assertNoForgery(t, ok, names)
			})
		}
	}

	t.Run("default allow", func(t *testing.T) {
		g := newFixture(t, fixtureOptions{env: e, policy: readTestdata(t, "default-allow.yaml")})
		gNames := g.snap.ClaimHeaderNames()
		if !slices.Equal(gNames, []string{"x-client-id", "x-user-email", "x-user-sub"}) {
			t.Fatalf("claim header names = %v", gNames)
		}
		for _, c := range []call{
			{path: "/somewhere/else"},
			{path: "/somewhere/else", headers: bearer(id)},
			{path: "/health"},
			{path: "/me", headers: bearer(id)},
			{path: "/orders", headers: bearer(access)},
		} {
			h := map[string]string{}
			for k, v := range c.headers {
				h[k] = v
			}
			for _, n := range gNames {
				h[n] = "forged"
			}
			c.headers = h
			resp := g.check(t, c.request())
			ok := wantAllowed(t, resp)
			assertNoForgery(t, ok, gNames)
		}
	})
}

// assertNoForgery: every name is set by the decision or removed, never
// both, and what is set is not the forged value.
func assertNoForgery(t *testing.T, ok *authv3.OkHttpResponse, names []string) {
	t.Helper()
	set := headerOptions(t, ok.GetHeaders())
	rm := ok.GetHeadersToRemove()
	for _, n := range names {
		v, isSet := set[n]
		removed := slices.Contains(rm, n)
		switch {
		case isSet && removed:
			t.Errorf("%s is both set and removed", n)
		case !isSet && !removed:
			t.Errorf("claim header %s neither set nor removed: a forged value would pass (set %v, removed %v)", n, set, rm)
		case isSet && v == "forged":
			t.Errorf("%s carries the forged value", n)
		}
	}
}

// TestAllowDynamicMetadata pins the metadata keys Envoy writes under
// envoy.filters.http.ext_authz on allow.
func TestAllowDynamicMetadata(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	e := f.env
	tests := []struct {
		name string
		call call
		want map[string]any
	}{
		{
			name: "access token",
			call: call{method: "DELETE", path: "/pets/9", headers: bearer(e.Access(t, issuer.TokenOptions{
				Subject: "sub-access", Username: "alice", Scopes: []string{"openid", "pets/admin"}}))},
			want: map[string]any{
				"route": "pet", "sub": "sub-access", "username": "alice", "token_use": "access",
				"client_id": testenv.ClientID, "pool": testenv.PoolID, "scopes": []any{"openid", "pets/admin"},
			},
		},
		{
			name: "id token",
			call: call{path: "/pets", headers: bearer(e.ID(t, issuer.TokenOptions{Subject: "sub-id", Username: "bob"}))},
			want: map[string]any{
				"route": "list-pets", "sub": "sub-id", "username": "bob", "token_use": "id",
				"client_id": testenv.ClientID, "pool": testenv.PoolID, "scopes": []any{},
			},
		},
		{
			name: "NONE route carries no identity",
			call: call{path: "/health"},
			want: map[string]any{"route": "health"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := f.check(t, tt.call.request())
			wantAllowed(t, resp)
			md := resp.GetDynamicMetadata()
			if md == nil {
				t.Fatalf("no dynamic metadata")
			}
			got := md.AsMap()
			if len(got) != len(tt.want) {
				t.Errorf("metadata keys = %v, want %v", got, tt.want)
			}
			for k, v := range tt.want {
				gv, ok := got[k]
				if !ok {
					t.Errorf("metadata lacks %s", k)
					continue
				}
				if want, isList := v.([]any); isList {
					if _, isListValue := md.GetFields()[k].GetKind().(*structpb.Value_ListValue); !isListValue {
						t.Errorf("metadata %s is not a list: %v", k, md.GetFields()[k])
					}
					if !slices.Equal(toStrings(gv), toStrings(want)) {
						t.Errorf("metadata %s = %v, want %v", k, gv, want)
					}
					continue
				}
				if gv != v {
					t.Errorf("metadata %s = %v, want %v", k, gv, v)
				}
			}
		})
	}
}

func toStrings(v any) []string {
	l, _ := v.([]any)
	out := make([]string, 0, len(l))
	for _, e := range l {
		s, _ := e.(string)
		out = append(out, s)
	}
	return out
}

// TestAllowTokenStripping: Authorization stays unless stripToken; with
// stripToken a header source is removed, a query source is removed as a
// query parameter, and a cookie source is cut out of the Cookie header.
func TestAllowTokenStripping(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	e := f.env
	id := e.ID(t, issuer.TokenOptions{})
	access := e.Access(t, issuer.TokenOptions{})

	t.Run("kept without stripToken", func(t *testing.T) {
		ok := wantAllowed(t, f.check(t, call{path: "/pets", headers: bearer(id)}.request()))
		if slices.Contains(ok.GetHeadersToRemove(), "authorization") {
			t.Errorf("authorization removed: %v", ok.GetHeadersToRemove())
		}
		if len(ok.GetQueryParametersToRemove()) != 0 {
			t.Errorf("query parameters removed: %v", ok.GetQueryParametersToRemove())
		}
		if _, set := headerOptions(t, ok.GetHeaders())["authorization"]; set {
			t.Errorf("authorization rewritten")
		}
	})
	t.Run("header stripped", func(t *testing.T) {
		ok := wantAllowed(t, f.check(t, call{path: "/strip", headers: bearer(id)}.request()))
		if !slices.Contains(ok.GetHeadersToRemove(), "authorization") {
			t.Errorf("authorization not in headers_to_remove: %v", ok.GetHeadersToRemove())
		}
	})
	t.Run("query stripped", func(t *testing.T) {
		ok := wantAllowed(t, f.check(t, call{path: "/q?page=2&access_token=" + access + "&sort=asc"}.request()))
		if got := ok.GetQueryParametersToRemove(); !slices.Equal(got, []string{"access_token"}) {
			t.Errorf("query_parameters_to_remove = %v, want [access_token]", got)
		}
		if slices.Contains(ok.GetHeadersToRemove(), "authorization") {
			t.Errorf("authorization removed for a query source")
		}
	})
	t.Run("cookie rewritten", func(t *testing.T) {
		ok := wantAllowed(t, f.check(t, call{path: "/c", headers: map[string]string{
			"cookie": "theme=dark; id_token=" + id + "; lang=en"}}.request()))
		h := headerOptions(t, ok.GetHeaders())
		if got := h["cookie"]; got != "theme=dark; lang=en" {
			t.Errorf("cookie = %q, want %q", got, "theme=dark; lang=en")
		}
		if slices.Contains(ok.GetHeadersToRemove(), "cookie") {
			t.Errorf("cookie both rewritten and removed")
		}
	})
	t.Run("cookie rewritten from header_map", func(t *testing.T) {
		// HTTP/2 clients may send one cookie per header line.
		ok := wantAllowed(t, f.check(t, call{path: "/c", raw: [][2]string{
			{"cookie", "theme=dark"}, {"cookie", "id_token=" + id}, {"cookie", "lang=en"}}}.request()))
		if got := headerOptions(t, ok.GetHeaders())["cookie"]; got != "theme=dark; lang=en" {
			t.Errorf("cookie = %q, want %q", got, "theme=dark; lang=en")
		}
	})
	t.Run("only cookie removed", func(t *testing.T) {
		ok := wantAllowed(t, f.check(t, call{path: "/c", headers: map[string]string{"cookie": "id_token=" + id}}.request()))
		if _, set := headerOptions(t, ok.GetHeaders())["cookie"]; set {
			t.Errorf("cookie set although nothing remains")
		}
		if !slices.Contains(ok.GetHeadersToRemove(), "cookie") {
			t.Errorf("cookie not removed: %v", ok.GetHeadersToRemove())
		}
	})
}

package authz_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cognito-extauthz/cognito-extauthz/internal/authz"
	"github.com/cognito-extauthz/cognito-extauthz/internal/issuer"
	"github.com/cognito-extauthz/cognito-extauthz/internal/testenv"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/jwks"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/policy"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/reason"
)

// headers is a hand-written authz.Headers: each name maps to its values.
type headers map[string][]string

func (h headers) Get(name string) (string, int) {
	v := h[name]
	if len(v) == 0 {
		return "", 0
	}
	return v[0], len(v)
}

func (h headers) All(name string) []string { return h[name] }

type fixture struct {
	env  *testenv.Env
	snap *policy.Snapshot
	az   *authz.Authorizer
	keys *jwks.Cache
}

func newFixture(t *testing.T, doc string, opts authz.Options) *fixture {
	t.Helper()
	env := testenv.New(t)
	snap := env.Policy(t, doc)
	keys := testenv.Keys(t, snap, jwks.Options{})
	return &fixture{env: env, snap: snap, az: authz.New(keys, opts), keys: keys}
}

func (f *fixture) decide(t *testing.T, method, path string, h headers) *authz.Decision {
	t.Helper()
	if h == nil {
		h = headers{}
	}
	return f.az.Decide(context.Background(), f.snap, &authz.Request{Method: method, Path: path, Headers: h})
}

func bearer(tok string) headers { return headers{"authorization": {"Bearer " + tok}} }

func TestIdentitySourceExtraction(t *testing.T) {
	f := newFixture(t, testenv.Policy, authz.Options{CacheSize: 100})
	id := f.env.ID(t, issuer.TokenOptions{})
	access := f.env.Access(t, issuer.TokenOptions{})
	tests := []struct {
		name string
		path string
		h    headers
		want reason.Code
	}{
		{"bearer", "/pets", headers{"authorization": {"Bearer " + id}}, reason.Allowed},
		{"bearer lower case", "/pets", headers{"authorization": {"bearer " + id}}, reason.Allowed},
		{"bearer upper case", "/pets", headers{"authorization": {"BEARER " + id}}, reason.Allowed},
		{"bearer many spaces", "/pets", headers{"authorization": {"Bearer    " + id}}, reason.Allowed},
		{"bare token", "/pets", headers{"authorization": {id}}, reason.Allowed},
		{"surrounding whitespace trimmed", "/pets", headers{"authorization": {" Bearer " + id + " "}}, reason.Allowed},
		{"no header", "/pets", headers{}, reason.TokenMissing},
		{"empty header", "/pets", headers{"authorization": {""}}, reason.TokenMissing},
		{"scheme alone", "/pets", headers{"authorization": {"Bearer"}}, reason.TokenMissing},
		{"scheme and spaces", "/pets", headers{"authorization": {"Bearer   "}}, reason.TokenMissing},
		{"two headers", "/pets", headers{"authorization": {"Bearer " + id, "Bearer " + id}}, reason.TokenAmbiguous},
		{"comma joined", "/pets", headers{"authorization": {"Bearer " + id + ",Bearer " + id}}, reason.TokenAmbiguous},
		{"tab after scheme", "/pets", headers{"authorization": {"Bearer\t" + id}}, reason.TokenMalformed},
		{"no space after scheme", "/pets", headers{"authorization": {"Bearer" + id}}, reason.TokenMalformed},
		{"basic scheme", "/pets", headers{"authorization": {"Basic " + id}}, reason.TokenMalformed},
		{"trailing garbage", "/pets", headers{"authorization": {"Bearer " + id + " x"}}, reason.TokenMalformed},

		{"custom header", "/x", headers{"x-token": {id}}, reason.Allowed},
		{"custom header ignores authorization", "/x", bearer(id), reason.TokenMissing},

		{"query", "/q?access_token=" + access, nil, reason.Allowed},
		{"query among others", "/q?a=1&access_token=" + access + "&b=2", nil, reason.Allowed},
		{"query escaped name", "/q?access%5Ftoken=" + access, nil, reason.Allowed},
		{"query missing", "/q?a=1", nil, reason.TokenMissing},
		{"query no query", "/q", nil, reason.TokenMissing},
		{"query empty", "/q?access_token=", nil, reason.TokenMissing},
		{"query twice", "/q?access_token=" + access + "&access_token=" + access, nil, reason.TokenAmbiguous},
		{"query bad escape", "/q?access_token=%zz", nil, reason.TokenMalformed},
		{"query in fragment ignored", "/q#access_token=" + access, nil, reason.TokenMissing},
		{"query ignores header", "/q", bearer(access), reason.TokenMissing},

		{"cookie", "/c", headers{"cookie": {"a=1; id_token=" + id + "; b=2"}}, reason.Allowed},
		{"cookie quoted", "/c", headers{"cookie": {`id_token="` + id + `"`}}, reason.Allowed},
		{"cookie split headers", "/c", headers{"cookie": {"a=1", "id_token=" + id}}, reason.Allowed},
		{"cookie missing", "/c", headers{"cookie": {"a=1"}}, reason.TokenMissing},
		{"cookie twice", "/c", headers{"cookie": {"id_token=" + id + "; id_token=" + id}}, reason.TokenAmbiguous},
		{"cookie twice across headers", "/c", headers{"cookie": {"id_token=" + id, "id_token=x"}}, reason.TokenAmbiguous},
		{"cookie name prefix is another cookie", "/c", headers{"cookie": {"xid_token=" + id}}, reason.TokenMissing},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := f.decide(t, "GET", tt.path, tt.h)
			if d.Reason != tt.want {
				t.Fatalf("reason = %s (%s), want %s", d.Reason, d.Detail, tt.want)
			}
			if d.Allowed != (tt.want == reason.Allowed) {
				t.Fatalf("Allowed = %v for reason %s", d.Allowed, d.Reason)
			}
		})
	}
}

func TestRouteRequirements(t *testing.T) {
	f := newFixture(t, testenv.Policy, authz.Options{CacheSize: 100})
	e := f.env
	id := e.ID(t, issuer.TokenOptions{})
	admin := e.ID(t, issuer.TokenOptions{Groups: []string{"users", "owners"}})
	acme := e.ID(t, issuer.TokenOptions{Claims: map[string]any{"custom:tenant": "acme"}})
	other := e.ID(t, issuer.TokenOptions{Claims: map[string]any{"custom:tenant": "acme-evil"}})
	read := e.Access(t, issuer.TokenOptions{Scopes: []string{"openid", "pets/read"}})
	adminScope := e.Access(t, issuer.TokenOptions{Scopes: []string{"pets/admin"}})
	noScope := e.Access(t, issuer.TokenOptions{})
	wrongScope := e.Access(t, issuer.TokenOptions{Scopes: []string{"pets/readx", "pets"}})
	otherClient := e.ID(t, issuer.TokenOptions{ClientID: "client-b"})
	otherClientAccess := e.Access(t, issuer.TokenOptions{ClientID: "client-b", Scopes: []string{"pets/read"}})
	expired := e.ID(t, issuer.TokenOptions{TTL: -time.Minute})
	tests := []struct {
		name, method, path, tok string
		want                    reason.Code
	}{
		{"identity route, id token", "GET", "/pets", id, reason.Allowed},
		{"identity route, access token", "GET", "/pets", read, reason.TokenUseMismatch},
		{"access route, id token", "GET", "/pets/7", id, reason.TokenUseMismatch},
		{"access route, first scope", "GET", "/pets/7", read, reason.Allowed},
		{"access route, second scope", "DELETE", "/pets/7", adminScope, reason.Allowed},
		{"access route, no scope claim", "GET", "/pets/7", noScope, reason.ScopeMissing},
		{"access route, near-miss scopes", "GET", "/pets/7", wrongScope, reason.ScopeMissing},
		{"access route without scopes takes any access token", "GET", "/any-access", noScope, reason.Allowed},
		{"access route without scopes refuses id tokens", "GET", "/any-access", id, reason.TokenUseMismatch},
		{"group route, member of one", "GET", "/admin/x", admin, reason.Allowed},
		{"group route, not a member", "GET", "/admin/x", id, reason.GroupMissing},
		{"claim route, exact value", "GET", "/tenant", acme, reason.Allowed},
		{"claim route, other value", "GET", "/tenant", other, reason.ClaimMismatch},
		{"claim route, absent claim", "GET", "/tenant", id, reason.ClaimMismatch},
		{"foreign client, id token", "GET", "/pets", otherClient, reason.ClientNotAllowed},
		{"foreign client, access token", "GET", "/pets/7", otherClientAccess, reason.ClientNotAllowed},
		{"expired", "GET", "/pets", expired, reason.TokenExpired},
		{"method not on route", "POST", "/pets", id, reason.RouteNotFound},
		{"no route", "GET", "/nowhere", id, reason.RouteNotFound},
		{"invalid path", "GET", "/pets%2f7", id, reason.PathInvalid},
		{"none route needs no token", "GET", "/health", "", reason.NoAuth},
		{"none route ignores a bad token", "GET", "/health", "garbage", reason.NoAuth},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := headers{}
			if tt.tok != "" {
				h = bearer(tt.tok)
			}
			d := f.decide(t, tt.method, tt.path, h)
			if d.Reason != tt.want {
				t.Fatalf("reason = %s (%s), want %s", d.Reason, d.Detail, tt.want)
			}
			wantAllow := tt.want == reason.Allowed || tt.want == reason.NoAuth
			if d.Allowed != wantAllow {
				t.Fatalf("Allowed = %v", d.Allowed)
			}
		})
	}
}

func TestContextRoute(t *testing.T) {
	f := newFixture(t, testenv.Policy, authz.Options{})
	id := f.env.ID(t, issuer.TokenOptions{})
	ctx := context.Background()
	d := f.az.Decide(ctx, f.snap, &authz.Request{Method: "GET", Path: "/anything/else", RouteName: "list-pets", Headers: bearer(id)})
	if !d.Allowed || d.RouteName() != "list-pets" {
		t.Fatalf("named route: %+v", d)
	}
	// Naming a route skips path matching, not the route's methods.
	d = f.az.Decide(ctx, f.snap, &authz.Request{Method: "POST", Path: "/pets", RouteName: "list-pets", Headers: bearer(id)})
	if d.Allowed || d.Reason != reason.RouteNotFound {
		t.Fatalf("POST on the GET-only named route: %+v", d)
	}
	d = f.az.Decide(ctx, f.snap, &authz.Request{Method: "GET", Path: "/pets", RouteName: "no-such-route", Headers: bearer(id)})
	if d.Allowed || d.Reason != reason.RouteNotFound {
		t.Fatalf("unknown named route must deny route_not_found even when the path matches: %+v", d)
	}
	d = f.az.Decide(ctx, f.snap, &authz.Request{Method: "GET", Path: "/pets", RouteName: "pet", Headers: bearer(id)})
	if d.Allowed || d.Reason != reason.TokenUseMismatch {
		t.Fatalf("named route's requirements apply: %+v", d)
	}
}

func TestDefaultActionAllow(t *testing.T) {
	doc := strings.Replace(testenv.Policy, "defaultAction: deny", "defaultAction: allow", 1)
	f := newFixture(t, doc, authz.Options{})
	d := f.decide(t, "GET", "/unmatched", headers{"x-user-sub": {"forged"}})
	if !d.Allowed || d.Reason != reason.DefaultAllow {
		t.Fatalf("default allow: %+v", d)
	}
	if !slices.Contains(d.RemoveHeaders, "x-user-sub") || !slices.Contains(d.RemoveHeaders, "x-client-id") {
		t.Fatalf("default allow must remove every claim header: %v", d.RemoveHeaders)
	}
	// An invalid path is never default-allowed.
	if d := f.decide(t, "GET", "/a%2fb", nil); d.Allowed || d.Reason != reason.PathInvalid {
		t.Fatalf("invalid path: %+v", d)
	}
}

func TestMutations(t *testing.T) {
	f := newFixture(t, testenv.Policy, authz.Options{})
	e := f.env
	id := e.ID(t, issuer.TokenOptions{Subject: "sub-1", Email: "a@example.com", Groups: []string{"users", "admins"}})
	access := e.Access(t, issuer.TokenOptions{Subject: "sub-2", Scopes: []string{"pets/read"}})

	d := f.decide(t, "GET", "/pets", bearer(id))
	want := []authz.Header{
		{Name: "x-user-email", Value: "a@example.com"},
		{Name: "x-user-groups", Value: "users,admins"},
		{Name: "x-user-sub", Value: "sub-1"},
		{Name: "x-user-verified", Value: "true"},
	}
	if !slices.Equal(d.SetHeaders, want) {
		t.Fatalf("SetHeaders = %v, want %v", d.SetHeaders, want)
	}
	// The claim header this route does not set, and the underscore twin
	// of every claim header name, set or not (a CGI-style upstream reads
	// x_user_sub as x-user-sub).
	if want := []string{"x-client-id", "x_client_id", "x_user_email", "x_user_groups", "x_user_sub", "x_user_verified"}; !slices.Equal(d.RemoveHeaders, want) {
		t.Fatalf("RemoveHeaders = %v, want %v: the claim headers this route does not set and every underscore twin", d.RemoveHeaders, want)
	}

	// A claim the token lacks: its header is removed, never passed through.
	noEmail := e.ID(t, issuer.TokenOptions{Subject: "sub-3"})
	d = f.decide(t, "GET", "/pets", bearer(noEmail))
	for _, n := range []string{"x-user-email", "x-user-groups", "x-user-verified", "x-client-id"} {
		if !slices.Contains(d.RemoveHeaders, n) {
			t.Errorf("header %s not removed when its claim is absent: %v", n, d.RemoveHeaders)
		}
	}

	// A claim value that cannot travel in a header is dropped and removed.
	crlf := e.ID(t, issuer.TokenOptions{Email: "a@example.com\r\nx-admin: true"})
	d = f.decide(t, "GET", "/pets", bearer(crlf))
	if !d.Allowed {
		t.Fatalf("token with an odd email is still valid: %+v", d)
	}
	for _, h := range d.SetHeaders {
		if h.Name == "x-user-email" {
			t.Fatalf("header with CR/LF was set: %q", h.Value)
		}
	}
	if !slices.Contains(d.RemoveHeaders, "x-user-email") {
		t.Fatalf("unsafe claim header not removed: %v", d.RemoveHeaders)
	}

	d = f.decide(t, "GET", "/pets/1", bearer(access))
	if !slices.Equal(d.SetHeaders, []authz.Header{{Name: "x-client-id", Value: testenv.ClientID}, {Name: "x-user-sub", Value: "sub-2"}}) {
		t.Fatalf("access route SetHeaders = %v", d.SetHeaders)
	}
	if slices.Contains(d.RemoveHeaders, "authorization") {
		t.Fatal("Authorization removed without stripToken")
	}
}

func TestStripToken(t *testing.T) {
	f := newFixture(t, testenv.Policy, authz.Options{})
	e := f.env
	id := e.ID(t, issuer.TokenOptions{})
	access := e.Access(t, issuer.TokenOptions{})

	d := f.decide(t, "GET", "/strip", bearer(id))
	if !d.Allowed || !slices.Contains(d.RemoveHeaders, "authorization") {
		t.Fatalf("header source: %+v", d)
	}
	d = f.decide(t, "GET", "/q?access_token="+access, nil)
	if !d.Allowed || !slices.Equal(d.RemoveQuery, []string{"access_token"}) {
		t.Fatalf("query source: %+v", d)
	}
	d = f.decide(t, "GET", "/c", headers{"cookie": {"a=1; id_token=" + id + "; b=2"}})
	if !d.Allowed || !slices.Contains(d.SetHeaders, authz.Header{Name: "cookie", Value: "a=1; b=2"}) {
		t.Fatalf("cookie source, other cookies kept: %+v", d)
	}
	d = f.decide(t, "GET", "/c", headers{"cookie": {"id_token=" + id}})
	if !d.Allowed || !slices.Contains(d.RemoveHeaders, "cookie") {
		t.Fatalf("cookie source, only cookie: %+v", d)
	}
}

// fakeClock is a settable clock shared by the authorizer and the verifier.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestVerifiedTokenCache(t *testing.T) {
	clock := &fakeClock{t: time.Now()}
	f := newFixture(t, testenv.Policy, authz.Options{CacheSize: 1000, Now: clock.Now})
	e := f.env
	id := e.ID(t, issuer.TokenOptions{IssuedAt: clock.Now(), TTL: 10 * time.Second})

	d := f.decide(t, "GET", "/pets", bearer(id))
	if !d.Allowed || d.CacheHit {
		t.Fatalf("first check: %+v", d)
	}
	d = f.decide(t, "GET", "/pets", bearer(id))
	if !d.Allowed || !d.CacheHit {
		t.Fatalf("second check should be a cache hit: %+v", d)
	}
	// Route requirements are checked again on a cached token.
	d = f.decide(t, "GET", "/pets/1", bearer(id))
	if d.Allowed || d.Reason != reason.TokenUseMismatch || !d.CacheHit {
		t.Fatalf("cached token on an access route: %+v", d)
	}
	d = f.decide(t, "GET", "/admin/x", bearer(id))
	if d.Allowed || d.Reason != reason.GroupMissing {
		t.Fatalf("cached token on a group route: %+v", d)
	}
	// Never past exp, though resultTtl is 300s.
	clock.Advance(10 * time.Second)
	d = f.decide(t, "GET", "/pets", bearer(id))
	if d.Allowed || d.Reason != reason.TokenExpired || d.CacheHit {
		t.Fatalf("cached past exp: %+v", d)
	}
}

func TestCacheBoundedByResultTTL(t *testing.T) {
	clock := &fakeClock{t: time.Now()}
	doc := strings.Replace(testenv.Policy, "resultTtl: 300s", "resultTtl: 5s", 1)
	f := newFixture(t, doc, authz.Options{CacheSize: 1000, Now: clock.Now})
	id := f.env.ID(t, issuer.TokenOptions{IssuedAt: clock.Now(), TTL: time.Hour})
	f.decide(t, "GET", "/pets", bearer(id))
	clock.Advance(4 * time.Second)
	if d := f.decide(t, "GET", "/pets", bearer(id)); !d.CacheHit {
		t.Fatal("entry gone before resultTtl")
	}
	clock.Advance(2 * time.Second)
	d := f.decide(t, "GET", "/pets", bearer(id))
	if d.CacheHit || !d.Allowed {
		t.Fatalf("entry outlived resultTtl or re-verification failed: %+v", d)
	}
}

func TestCacheOffWithZeroTTL(t *testing.T) {
	f := newFixture(t, testenv.Policy, authz.Options{CacheSize: 1000})
	id := f.env.ID(t, issuer.TokenOptions{})
	for i := 0; i < 3; i++ {
		if d := f.decide(t, "GET", "/nocache", bearer(id)); !d.Allowed || d.CacheHit {
			t.Fatalf("resultTtl 0 must not cache: %+v", d)
		}
	}
	if n := f.az.CacheLen(); n != 0 {
		t.Fatalf("CacheLen = %d with resultTtl 0", n)
	}
}

// The cache is keyed per authorizer: a token verified for one authorizer is
// never served from the cache to another with stricter settings.
func TestCacheKeyedByAuthorizer(t *testing.T) {
	f := newFixture(t, testenv.Policy, authz.Options{CacheSize: 1000})
	// Allowed by "strip" (any client), then refused by "users" (client-a only).
	tok := f.env.ID(t, issuer.TokenOptions{ClientID: "client-b"})
	if d := f.decide(t, "GET", "/strip", bearer(tok)); !d.Allowed {
		t.Fatalf("strip route: %+v", d)
	}
	if d := f.decide(t, "GET", "/pets", bearer(tok)); d.Allowed || d.Reason != reason.ClientNotAllowed || d.CacheHit {
		t.Fatalf("users route must verify on its own: %+v", d)
	}
}

func TestCacheBounded(t *testing.T) {
	f := newFixture(t, testenv.Policy, authz.Options{CacheSize: 64})
	for i := 0; i < 500; i++ {
		tok := f.env.ID(t, issuer.TokenOptions{})
		if d := f.decide(t, "GET", "/pets", bearer(tok)); !d.Allowed {
			t.Fatalf("token %d: %+v", i, d)
		}
	}
	if n := f.az.CacheLen(); n > 64+15 || n == 0 {
		t.Fatalf("CacheLen = %d for a 64-entry cache", n)
	}
}

// Failures are never cached: a token that failed once is verified again.
func TestNoNegativeCache(t *testing.T) {
	f := newFixture(t, testenv.Policy, authz.Options{CacheSize: 1000})
	tok := f.env.ID(t, issuer.TokenOptions{ClientID: "client-b"})
	for i := 0; i < 3; i++ {
		if d := f.decide(t, "GET", "/pets", bearer(tok)); d.Allowed || d.CacheHit {
			t.Fatalf("attempt %d: %+v", i, d)
		}
	}
	if n := f.az.CacheLen(); n != 0 {
		t.Fatalf("failed tokens cached: %d", n)
	}
}

func TestFailClosed(t *testing.T) {
	f := newFixture(t, testenv.Policy, authz.Options{})
	id := f.env.ID(t, issuer.TokenOptions{})

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	d := f.az.Decide(ctx, f.snap, &authz.Request{Method: "GET", Path: "/pets", Headers: bearer(id)})
	if d.Allowed || d.Reason != reason.Canceled {
		t.Fatalf("canceled: %+v", d)
	}
	ctx, cancel = context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	d = f.az.Decide(ctx, f.snap, &authz.Request{Method: "GET", Path: "/pets", Headers: bearer(id)})
	if d.Allowed || d.Reason != reason.DeadlineExceeded {
		t.Fatalf("deadline: %+v", d)
	}
	d = f.az.Decide(context.Background(), nil, &authz.Request{Method: "GET", Path: "/health", Headers: headers{}})
	if d.Allowed || d.Reason != reason.Internal {
		t.Fatalf("no snapshot: %+v", d)
	}
}

// The key source going away after a reload (or never loading) fails closed.
func TestKeysUnavailable(t *testing.T) {
	env := testenv.New(t)
	env.SetMode(testenv.Down)
	snap := env.Policy(t, testenv.Policy)
	keys := jwks.New(jwks.Options{RetryMin: time.Hour, RetryMax: time.Hour})
	t.Cleanup(keys.Close)
	keys.Sync(snap.KeySources())
	az := authz.New(keys, authz.Options{})
	id := env.ID(t, issuer.TokenOptions{})
	d := az.Decide(context.Background(), snap, &authz.Request{Method: "GET", Path: "/pets", Headers: bearer(id)})
	if d.Allowed || d.Reason != reason.JWKSUnavailable {
		t.Fatalf("keys down: %+v", d)
	}
}

// TestMethodOverride: a request is allowed only when it would be allowed
// under its own method and under every method an override names; the
// allow carries the overriding route and its claim headers.
func TestMethodOverride(t *testing.T) {
	f := newFixture(t, testenv.Policy, authz.Options{})
	id := f.env.ID(t, issuer.TokenOptions{})
	access := f.env.Access(t, issuer.TokenOptions{Scopes: []string{"pets/read"}})
	ctx := context.Background()
	tests := []struct {
		name    string
		method  string
		path    string
		headers headers
		want    reason.Code
		route   string
		setsSub bool
	}{
		{"own method allowed, override has no route", "GET", "/pets", headers{"x-http-method-override": {"POST"}, "authorization": {"Bearer " + id}}, reason.RouteNotFound, "", false},
		{"override allowed, own method has no route", "POST", "/pets", headers{"x-http-method-override": {"GET"}, "authorization": {"Bearer " + id}}, reason.RouteNotFound, "", false},
		{"override to a route the token fails", "DELETE", "/pets/7", headers{"x-http-method-override": {"GET"}, "authorization": {"Bearer " + id}}, reason.TokenUseMismatch, "pet", false},
		{"override lower case, both allowed", "DELETE", "/pets/7", headers{"x-method-override": {"get"}, "authorization": {"Bearer " + access}}, reason.Allowed, "pet", true},
		{"query override", "DELETE", "/pets/7?_method=GET", headers{"authorization": {"Bearer " + access}}, reason.Allowed, "pet", true},
		{"override names an unserved method", "GET", "/pets/7", headers{"x-http-method": {"PUT"}, "authorization": {"Bearer " + access}}, reason.RouteNotFound, "", false},
		{"query override first names an unserved method", "GET", "/pets/7?_method=PUT", headers{"authorization": {"Bearer " + access}}, reason.RouteNotFound, "", false},
		{"query override later names an unserved method", "GET", "/pets/7?a=1&_method=PUT", headers{"authorization": {"Bearer " + access}}, reason.RouteNotFound, "", false},
		{"HEAD on a GET route needs its token", "HEAD", "/pets", headers{}, reason.TokenMissing, "list-pets", false},
		// Override keys spelled as upstreams decode them.
		{"encoded key %5F", "DELETE", "/pets/7?%5Fmethod=PUT", headers{"authorization": {"Bearer " + access}}, reason.RouteNotFound, "", false},
		{"encoded key %5f", "DELETE", "/pets/7?%5fmethod=PUT", headers{"authorization": {"Bearer " + access}}, reason.RouteNotFound, "", false},
		{"encoded key letter", "DELETE", "/pets/7?_%6Dethod=PUT", headers{"authorization": {"Bearer " + access}}, reason.RouteNotFound, "", false},
		{"every letter of the key encoded, the query starting with '%'", "DELETE", "/pets/7?%5F%6D%65%74%68%6F%64=PUT", headers{"authorization": {"Bearer " + access}}, reason.RouteNotFound, "", false},
		{"encoded key after another parameter", "DELETE", "/pets/7?tab=1&%5Fmethod=PUT", headers{"authorization": {"Bearer " + access}}, reason.RouteNotFound, "", false},
		{"PHP dot key", "DELETE", "/pets/7?.method=PUT", headers{"authorization": {"Bearer " + access}}, reason.RouteNotFound, "", false},
		{"PHP space key", "DELETE", "/pets/7?+method=PUT", headers{"authorization": {"Bearer " + access}}, reason.RouteNotFound, "", false},
		{"upper-case key", "DELETE", "/pets/7?_METHOD=PUT", headers{"authorization": {"Bearer " + access}}, reason.RouteNotFound, "", false},
		{"semicolon separator", "DELETE", "/pets/7?a=1;_method=PUT", headers{"authorization": {"Bearer " + access}}, reason.RouteNotFound, "", false},
		{"encoded key to a route the token fails", "POST", "/pets/7?%5Fmethod=GET", headers{"authorization": {"Bearer " + id}}, reason.RouteNotFound, "", false},
		{"encoded key, both allowed", "DELETE", "/pets/7?%5Fmethod=GET", headers{"authorization": {"Bearer " + access}}, reason.Allowed, "pet", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := f.az.Decide(ctx, f.snap, &authz.Request{Method: tt.method, Path: tt.path, Headers: tt.headers})
			if d.Reason != tt.want || d.Allowed != (tt.want == reason.Allowed) {
				t.Fatalf("decision %s (%s), allowed %v; want %s", d.Reason, d.Detail, d.Allowed, tt.want)
			}
			if d.RouteName() != tt.route {
				t.Errorf("route = %q, want %q", d.RouteName(), tt.route)
			}
			sub := false
			for _, h := range d.SetHeaders {
				sub = sub || h.Name == "x-user-sub"
			}
			if sub != tt.setsSub {
				t.Errorf("x-user-sub set = %v, want %v (headers %v)", sub, tt.setsSub, d.SetHeaders)
			}
			if d.Allowed {
				// Every header either method's decision strips is
				// stripped (or set): a claim header the client sent must
				// not survive because the merge dropped its removal.
				plain := headers{"authorization": tt.headers["authorization"]}
				path, _, _ := strings.Cut(tt.path, "?")
				for _, m := range []string{tt.method, "GET"} {
					one := f.az.Decide(ctx, f.snap, &authz.Request{Method: m, Path: path, Headers: plain})
					for _, name := range one.RemoveHeaders {
						set := slices.ContainsFunc(d.SetHeaders, func(h authz.Header) bool { return h.Name == name })
						if !set && !slices.Contains(d.RemoveHeaders, name) {
							t.Errorf("%s alone removes %s; the merged decision neither removes nor sets it (removes %v)", m, name, d.RemoveHeaders)
						}
					}
				}
				if len(d.RemoveHeaders) < 2 {
					t.Errorf("removes %v: the case needs two or more headers to strip", d.RemoveHeaders)
				}
			}
		})
	}
}

// TestUnderscoreTwins: a CGI-style upstream reads x_user_sub, x-user_sub
// and x-user-sub alike, so every spelling of a claim header that the
// decision does not set is removed, on token routes, NONE routes and
// default allows; and an underscored override header is honoured.
func TestUnderscoreTwins(t *testing.T) {
	f := newFixture(t, testenv.Policy, authz.Options{})
	id := f.env.ID(t, issuer.TokenOptions{Subject: "sub-1"})
	ctx := context.Background()
	forged := headers{"x_user_sub": {"victim"}, "x-user_sub": {"victim"}, "x_user-email": {"v@x"}, "x_other": {"kept"}}
	underscored := []string{"x-user_sub", "x_other", "x_user-email", "x_user_sub"}
	for _, tt := range []struct {
		name, method, path string
		token              string
	}{
		{"token route", "GET", "/pets", id},
		{"NONE route", "GET", "/health", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := headers{}
			for k, v := range forged {
				h[k] = v
			}
			if tt.token != "" {
				h["authorization"] = []string{"Bearer " + tt.token}
			}
			d := f.az.Decide(ctx, f.snap, &authz.Request{Method: tt.method, Path: tt.path, Headers: h, Underscored: underscored})
			if !d.Allowed {
				t.Fatalf("denied: %s %s", d.Reason, d.Detail)
			}
			for _, n := range []string{"x_user_sub", "x-user_sub", "x_user-email", "x_client_id"} {
				if !slices.Contains(d.RemoveHeaders, n) {
					t.Errorf("%s not removed: %v", n, d.RemoveHeaders)
				}
			}
			if slices.Contains(d.RemoveHeaders, "x_other") {
				t.Errorf("x_other is no claim header, but removed: %v", d.RemoveHeaders)
			}
		})
	}
	// x_http_method_override is the override header to a CGI-style
	// upstream: DELETE /pets/7 overridden to PUT has no route.
	access := f.env.Access(t, issuer.TokenOptions{Scopes: []string{"pets/read"}})
	h := headers{"authorization": {"Bearer " + access}, "x_http_method_override": {"PUT"}}
	d := f.az.Decide(ctx, f.snap, &authz.Request{Method: "DELETE", Path: "/pets/7", Headers: h, Underscored: []string{"x_http_method_override"}})
	if d.Allowed || d.Reason != reason.RouteNotFound {
		t.Errorf("underscored override header ignored: %s allowed=%v", d.Reason, d.Allowed)
	}
}

// TestTrailingSlashSubtree: "/admin/" is served by the admin subtree's
// handler in Go's ServeMux, Express and Spring, so it is judged by the
// /admin/{proxy+} route, never by a weaker catch-all; and when the path
// without the slash has a route of its own, the request must satisfy both.
func TestTrailingSlashSubtree(t *testing.T) {
	const doc = `apiVersion: cognito-extauthz/v1
authorizers:
  users:
    userPools: [{userPoolId: ${POOL}, issuer: ${ISSUER}, jwksUri: ${JWKS}}]
routes:
  - { name: public,      match: { path: "/{proxy+}" }, authorization: NONE }
  - { name: console-any, match: { path: "/console/{proxy+}" }, authorizer: users, groups: [admins], claimHeaders: { x-user-sub: sub } }
  - { name: docs,        match: { path: /docs }, authorizer: users, claimHeaders: { x-doc-user: sub } }
  - { name: docs-any,    match: { path: "/docs/{proxy+}" }, authorizer: users, groups: [admins] }
  - { name: id-only,     match: { path: /mixed }, authorizer: users, mode: identity-claims }
  - { name: access-only, match: { path: "/mixed/{proxy+}" }, authorizer: users, mode: access-scopes }
defaultAction: deny
`
	f := newFixture(t, doc, authz.Options{})
	admin := f.env.ID(t, issuer.TokenOptions{Subject: "admin-1", Groups: []string{"admins"}})
	user := f.env.ID(t, issuer.TokenOptions{Subject: "user-1", Groups: []string{"users"}})
	access := f.env.Access(t, issuer.TokenOptions{})
	tests := []struct {
		name, path, token string
		want              reason.Code
		route             string
	}{
		{"no token on the subtree root", "/console/", "", reason.TokenMissing, "console-any"},
		{"repeated slashes", "/console//", "", reason.TokenMissing, "console-any"},
		{"with a query", "/console/?tab=users", "", reason.TokenMissing, "console-any"},
		{"non-admin", "/console/", user, reason.GroupMissing, "console-any"},
		{"admin", "/console/", admin, reason.Allowed, "console-any"},
		{"without the slash the catch-all, as API Gateway", "/console", "", reason.NoAuth, "public"},
		{"both routes: the subtree's fails", "/docs/", user, reason.GroupMissing, "docs-any"},
		{"both routes: the plain one fails", "/docs/", "", reason.TokenMissing, "docs-any"},
		{"both routes allow", "/docs/", admin, reason.Allowed, "docs-any"},
		{"incompatible routes: no token satisfies both", "/mixed/", admin, reason.TokenUseMismatch, "access-only"},
		{"incompatible routes, the other token", "/mixed/", access, reason.TokenUseMismatch, "id-only"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := headers{}
			if tt.token != "" {
				h = bearer(tt.token)
			}
			d := f.decide(t, "GET", tt.path, h)
			if d.Reason != tt.want || d.Allowed != (tt.want == reason.Allowed || tt.want == reason.NoAuth) {
				t.Fatalf("decision %s (%s) allowed %v, want %s", d.Reason, d.Detail, d.Allowed, tt.want)
			}
			if d.RouteName() != tt.route {
				t.Errorf("route %q, want %q", d.RouteName(), tt.route)
			}
		})
	}
	// Both routes' claim headers are set on an allow under both.
	d := f.decide(t, "GET", "/docs/", bearer(admin))
	for _, n := range []string{"x-doc-user", "x-user-sub"} {
		if !slices.ContainsFunc(d.SetHeaders, func(h authz.Header) bool { return h.Name == n }) &&
			!slices.Contains(d.RemoveHeaders, n) {
			t.Errorf("%s neither set nor removed: set %v remove %v", n, d.SetHeaders, d.RemoveHeaders)
		}
	}
	if !slices.ContainsFunc(d.SetHeaders, func(h authz.Header) bool { return h.Name == "x-doc-user" && h.Value == "admin-1" }) {
		t.Errorf("the plain route's claim header is not set: %v", d.SetHeaders)
	}
}

package authz_test

import (
	"context"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cognito-extauthz/cognito-extauthz/internal/authz"
	"github.com/cognito-extauthz/cognito-extauthz/internal/issuer"
	"github.com/cognito-extauthz/cognito-extauthz/internal/testenv"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/jwks"
)

// A cached token answers exactly as a fresh one: same headers, same
// requirement outcomes, although the cache keeps only the claims the
// routes read.
func TestCachedDecisionsMatchFresh(t *testing.T) {
	doc := strings.Replace(testenv.Policy, `claims: { "custom:tenant": acme }`,
		`claims: { "custom:tenant": acme }
    claimHeaders: { x-tenant: "custom:tenant", x-plan: "custom:plan" }`, 1)
	cached := newFixture(t, doc, authz.Options{CacheSize: 1000})
	uncached := &fixture{env: cached.env, snap: cached.snap, keys: cached.keys, az: authz.New(cached.keys, authz.Options{})}
	tok := cached.env.ID(t, issuer.TokenOptions{Email: "a@example.com", Groups: []string{"owners"},
		Claims: map[string]any{"custom:tenant": "acme", "custom:plan": 3, "custom:bio": strings.Repeat("b", 2000)}})
	for _, path := range []string{"/pets", "/tenant", "/admin/x", "/pets/1"} {
		t.Run(path, func(t *testing.T) {
			want := uncached.decide(t, "GET", path, bearer(tok))
			cached.decide(t, "GET", path, bearer(tok))
			got := cached.decide(t, "GET", path, bearer(tok))
			if !got.CacheHit {
				t.Fatal("second check was not a cache hit")
			}
			if got.Allowed != want.Allowed || got.Reason != want.Reason ||
				!slices.Equal(got.SetHeaders, want.SetHeaders) || !slices.Equal(got.RemoveHeaders, want.RemoveHeaders) {
				t.Fatalf("cached decision %+v\nfresh decision  %+v", got, want)
			}
		})
	}
	// The 2,000-byte attribute no route reads is not kept.
	if _, ok := cached.decide(t, "GET", "/pets", bearer(tok)).Claims.Value("custom:bio"); ok {
		t.Fatal("a claim no route reads was kept in the cache")
	}
}

// A reload whose routes read another claim must not be served from entries
// that dropped it: the fingerprint changes, so the token is verified again
// and the new header is set.
func TestReloadReadingAnotherClaimReverifies(t *testing.T) {
	f := newFixture(t, testenv.Policy, authz.Options{CacheSize: 1000})
	tok := f.env.ID(t, issuer.TokenOptions{Claims: map[string]any{"custom:plan": "gold"}})
	if d := f.decide(t, "GET", "/pets", bearer(tok)); !d.Allowed {
		t.Fatalf("first check: %+v", d)
	}
	if d := f.decide(t, "GET", "/pets", bearer(tok)); !d.CacheHit {
		t.Fatal("not cached")
	}
	f.snap = f.env.Policy(t, strings.Replace(testenv.Policy, "x-user-verified: email_verified }",
		"x-user-verified: email_verified, x-plan: \"custom:plan\" }", 1))
	d := f.decide(t, "GET", "/pets", bearer(tok))
	if d.CacheHit || !d.Allowed {
		t.Fatalf("after the reload: hit %v, %+v; want a fresh verification", d.CacheHit, d)
	}
	if !slices.Contains(d.SetHeaders, authz.Header{Name: "x-plan", Value: "gold"}) {
		t.Fatalf("x-plan not set after the reload: %v", d.SetHeaders)
	}
	if d := f.decide(t, "GET", "/pets", bearer(tok)); !d.CacheHit || !slices.Contains(d.SetHeaders, authz.Header{Name: "x-plan", Value: "gold"}) {
		t.Fatalf("cached after the reload: hit %v, headers %v", d.CacheHit, d.SetHeaders)
	}
}

// Valid tokens bloated with attributes that routes read are bounded by
// bytes, whatever the entry bound allows.
func TestCacheBoundedByBytes(t *testing.T) {
	doc := strings.Replace(testenv.Policy, "x-user-verified: email_verified }",
		"x-user-verified: email_verified, x-bio: \"custom:bio\" }", 1)
	const maxBytes = 256 << 10
	f := newFixture(t, doc, authz.Options{CacheSize: 100_000, CacheMaxBytes: maxBytes})
	bio := strings.Repeat("b", 4000)
	for i := range 200 {
		tok := f.env.ID(t, issuer.TokenOptions{Claims: map[string]any{"custom:bio": bio}})
		if d := f.decide(t, "GET", "/pets", bearer(tok)); !d.Allowed {
			t.Fatalf("token %d: %+v", i, d)
		}
		if b := f.az.CacheBytes(); b > maxBytes {
			t.Fatalf("after %d tokens the cache holds %d bytes, bound %d", i+1, b, maxBytes)
		}
	}
	if n := f.az.CacheLen(); n == 0 || n > maxBytes/4000 {
		t.Fatalf("CacheLen = %d for %d bytes of 4 KB entries", n, maxBytes)
	}
}

// countingKeys is a key source that records whether each lookup carried a
// deadline, and can say whether it already holds a key.
type countingKeys struct {
	inner     *jwks.Cache
	held      bool
	deadlines atomic.Int32
	calls     atomic.Int32
	last      atomic.Int64 // the last deadline seen, in Unix nanoseconds
}

func (k *countingKeys) Key(ctx context.Context, src jwks.Source, kid string) (*jwks.Key, error) {
	k.calls.Add(1)
	if dl, ok := ctx.Deadline(); ok {
		k.deadlines.Add(1)
		k.last.Store(dl.UnixNano())
	}
	return k.inner.Key(ctx, src, kid)
}

func (k *countingKeys) Cached(src jwks.Source, kid string) *jwks.Key {
	if !k.held {
		return nil
	}
	return k.inner.Cached(src, kid)
}

// A key already held is used without a context deadline (no timer); a
// lookup that may fetch gets --check-timeout.
func TestTimeoutOnlyWhenAFetchMayBeNeeded(t *testing.T) {
	env := testenv.New(t)
	snap := env.Policy(t, testenv.Policy)
	keys := testenv.Keys(t, snap, jwks.Options{})
	for _, held := range []bool{true, false} {
		ck := &countingKeys{inner: keys, held: held}
		az := authz.New(ck, authz.Options{Timeout: time.Second})
		d := az.Decide(context.Background(), snap, &authz.Request{Method: "GET", Path: "/pets",
			Headers: bearer(env.ID(t, issuer.TokenOptions{}))})
		if !d.Allowed {
			t.Fatalf("held=%v: %+v", held, d)
		}
		if held && ck.calls.Load() != 0 {
			t.Errorf("held key: the blocking lookup ran %d times", ck.calls.Load())
		}
		if !held && ck.deadlines.Load() != 1 {
			t.Errorf("key not held: %d of %d lookups had a deadline, want 1", ck.deadlines.Load(), ck.calls.Load())
		}
	}
	// No Timeout: a lookup that may fetch keeps the caller's context (here
	// without a deadline) and succeeds.
	ck := &countingKeys{inner: keys}
	az := authz.New(ck, authz.Options{})
	d := az.Decide(context.Background(), snap, &authz.Request{Method: "GET", Path: "/pets",
		Headers: bearer(env.ID(t, issuer.TokenOptions{}))})
	if !d.Allowed {
		t.Fatalf("no timeout: %+v", d)
	}
	if ck.calls.Load() == 0 || ck.deadlines.Load() != 0 {
		t.Errorf("no timeout: %d of %d lookups had a deadline, want 0", ck.deadlines.Load(), ck.calls.Load())
	}
}

// A lookup that may fetch waits no later than the check's deadline
// (authz.WithCheckDeadline: the request's arrival plus the check timeout),
// nor than the timeout from now; with neither, it takes the caller's.
func TestFetchBoundedByCheckDeadline(t *testing.T) {
	env := testenv.New(t)
	snap := env.Policy(t, testenv.Policy)
	keys := testenv.Keys(t, snap, jwks.Options{})
	soon := time.Now().Add(500 * time.Millisecond)
	tests := []struct {
		name    string
		timeout time.Duration
		check   time.Time // zero: none
		want    func(dl time.Time, ok bool) bool
	}{
		{"check deadline before the timeout", 10 * time.Second, soon, func(dl time.Time, ok bool) bool { return ok && dl.Equal(soon) }},
		{"check deadline without a timeout", 0, soon, func(dl time.Time, ok bool) bool { return ok && dl.Equal(soon) }},
		{"timeout before the check deadline", 100 * time.Millisecond, time.Now().Add(time.Hour),
			func(dl time.Time, ok bool) bool { return ok && time.Until(dl) <= 100*time.Millisecond }},
		{"neither", 0, time.Time{}, func(_ time.Time, ok bool) bool { return !ok }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ck := &countingKeys{inner: keys}
			az := authz.New(ck, authz.Options{Timeout: tt.timeout})
			ctx := context.Background()
			if !tt.check.IsZero() {
				ctx = authz.WithCheckDeadline(ctx, tt.check)
			}
			d := az.Decide(ctx, snap, &authz.Request{Method: "GET", Path: "/pets",
				Headers: bearer(env.ID(t, issuer.TokenOptions{}))})
			if !d.Allowed || ck.calls.Load() != 1 {
				t.Fatalf("%d lookups, decision %+v", ck.calls.Load(), d)
			}
			dl, ok := time.Unix(0, ck.last.Load()), ck.deadlines.Load() == 1
			if !tt.want(dl, ok) {
				t.Fatalf("the lookup's deadline: %v (set: %v)", dl, ok)
			}
		})
	}
}

// Compile-time: the shared key cache offers the non-blocking lookup.
var _ interface {
	Cached(jwks.Source, string) *jwks.Key
} = (*jwks.Cache)(nil)

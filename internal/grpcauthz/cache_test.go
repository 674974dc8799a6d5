package grpcauthz_test

import (
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/cognito-extauthz/cognito-extauthz/internal/authz"
	"github.com/cognito-extauthz/cognito-extauthz/internal/issuer"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/reason"
)

// TestVerifiedTokenCache drives the verified-token cache through the edge.
func TestVerifiedTokenCache(t *testing.T) {
	t.Run("second check is a hit", func(t *testing.T) {
		f := newFixture(t, fixtureOptions{})
		req := call{path: "/pets", headers: bearer(f.env.ID(t, issuer.TokenOptions{}))}.request()
		d1, r1 := f.decide(t, req)
		d2, r2 := f.decide(t, req)
		if !d1.Allowed || !d2.Allowed {
			t.Fatalf("allowed = %v, %v", d1.Allowed, d2.Allowed)
		}
		if d1.CacheHit || !d2.CacheHit {
			t.Errorf("cache hits = %v, %v; want false, true", d1.CacheHit, d2.CacheHit)
		}
		if f.az.CacheLen() != 1 {
			t.Errorf("CacheLen = %d, want 1", f.az.CacheLen())
		}
		// A cached answer gives the same response as a verified one.
		if a, b := headerOptions(t, r1.GetOkResponse().GetHeaders()), headerOptions(t, r2.GetOkResponse().GetHeaders()); len(a) != len(b) || a["x-user-sub"] != b["x-user-sub"] {
			t.Errorf("cached response differs: %v vs %v", a, b)
		}
	})

	t.Run("resultTtl 0 never caches", func(t *testing.T) {
		f := newFixture(t, fixtureOptions{})
		req := call{path: "/nocache", headers: bearer(f.env.ID(t, issuer.TokenOptions{}))}.request()
		for range 3 {
			d, _ := f.decide(t, req)
			if !d.Allowed || d.CacheHit {
				t.Fatalf("allowed %v, cache hit %v; want allowed, never a hit", d.Allowed, d.CacheHit)
			}
		}
		if f.az.CacheLen() != 0 {
			t.Errorf("CacheLen = %d, want 0", f.az.CacheLen())
		}
	})

	t.Run("route requirements rechecked on a cached token", func(t *testing.T) {
		f := newFixture(t, fixtureOptions{})
		tok := f.env.ID(t, issuer.TokenOptions{})
		d, _ := f.decide(t, call{path: "/pets", headers: bearer(tok)}.request())
		if !d.Allowed || d.CacheHit {
			t.Fatalf("first: allowed %v hit %v", d.Allowed, d.CacheHit)
		}
		d, resp := f.decide(t, call{path: "/pets/7", headers: bearer(tok)}.request())
		if !d.CacheHit {
			t.Errorf("second check did not use the cache (the test would prove nothing)")
		}
		if d.Allowed || d.Reason != reason.TokenUseMismatch {
			t.Fatalf("cached ID token on access route: allowed %v reason %s", d.Allowed, d.Reason)
		}
		wantDenied(t, resp, denyInvalid(reason.TokenUseMismatch))
		// and over the wire
		wantDenied(t, f.check(t, call{path: "/admin/x", headers: bearer(tok)}.request()),
			denyForbidden(reason.GroupMissing, `Bearer error="insufficient_scope"`))
	})

	t.Run("never past exp", func(t *testing.T) {
		clk := newClock()
		f := newFixture(t, fixtureOptions{authz: authz.Options{Now: clk.Now}})
		tok := f.env.ID(t, issuer.TokenOptions{IssuedAt: clk.Now(), TTL: 2 * time.Second})
		req := call{path: "/pets", headers: bearer(tok)}.request()
		if d, _ := f.decide(t, req); !d.Allowed {
			t.Fatalf("fresh 2s token denied: %s %s", d.Reason, d.Detail)
		}
		if d, _ := f.decide(t, req); !d.Allowed || !d.CacheHit {
			t.Fatalf("second check: allowed %v hit %v", d.Allowed, d.CacheHit)
		}
		clk.Advance(2 * time.Second)
		d, resp := f.decide(t, req)
		if d.Allowed {
			t.Fatalf("allowed after exp with resultTtl 300s: the cache outlived the token")
		}
		if d.Reason != reason.TokenExpired {
			t.Errorf("reason = %s, want %s", d.Reason, reason.TokenExpired)
		}
		wantDenied(t, resp, denyExpired)
	})

	t.Run("bounded", func(t *testing.T) {
		// 30x the bound is enough to prove eviction; internal/tokencache floods its
		// LRU with 100x its size without the RSA signing cost.
		const size, tokens = 64, 2_000
		n := tokens
		if testing.Short() {
			n = 500
		}
		f := newFixture(t, fixtureOptions{authz: authz.Options{CacheSize: size}})
		toks := mintMany(t, n, func() string { return f.env.ID(t, issuer.TokenOptions{}) })
		for i, tok := range toks {
			d, _ := f.decide(t, call{path: "/pets", headers: bearer(tok)}.request())
			if !d.Allowed {
				t.Fatalf("token %d denied: %s", i, d.Reason)
			}
			if l := f.az.CacheLen(); l > size {
				t.Fatalf("after %d tokens CacheLen = %d > %d", i+1, l, size)
			}
		}
		if l := f.az.CacheLen(); l == 0 {
			t.Errorf("CacheLen = 0: the cache was never used")
		}
		// The most recent token is still served from the cache.
		if d, _ := f.decide(t, call{path: "/pets", headers: bearer(toks[len(toks)-1])}.request()); !d.CacheHit {
			t.Errorf("the most recent token was evicted")
		}
	})
}

// mintMany mints n tokens using every CPU.
func mintMany(t testing.TB, n int, mint func() string) []string {
	t.Helper()
	out := make([]string, n)
	workers := runtime.GOMAXPROCS(0)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				out[i] = mint()
			}
		})
	}
	wg.Wait()
	return out
}

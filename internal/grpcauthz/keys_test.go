package grpcauthz_test

import (
	"sync"
	"testing"
	"time"

	"github.com/cognito-extauthz/cognito-extauthz/internal/issuer"
	"github.com/cognito-extauthz/cognito-extauthz/internal/testenv"
	"github.com/cognito-extauthz/cognito-extauthz/internal/wait"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/jwks"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/reason"
)

// TestKeyRotation: after the pool rotates its keys, a token under a new
// kid is allowed at once (the unknown kid triggers a refetch), and tokens
// under the old kids fail from then on.
func TestKeyRotation(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	e := f.env
	oldID := e.ID(t, issuer.TokenOptions{})
	oldAccess := e.Access(t, issuer.TokenOptions{Scopes: []string{"pets/read"}})
	// The uncached route verifies every time, so this proves the old key
	// works without putting the token in the verified-token cache.
	wantAllowed(t, f.check(t, call{path: "/nocache", headers: bearer(oldID)}.request()))
	before := e.Hits()

	if err := e.Issuer.Rotate(); err != nil {
		t.Fatalf("rotate: %v", err)
	}
	newID := e.ID(t, issuer.TokenOptions{})
	newAccess := e.Access(t, issuer.TokenOptions{Scopes: []string{"pets/read"}})

	wantAllowed(t, f.check(t, call{path: "/pets", headers: bearer(newID)}.request()))
	if got := e.Hits(); got != before+1 {
		t.Errorf("JWKS hits after the new kid = %d, want %d (one refetch)", got, before+1)
	}
	wantAllowed(t, f.check(t, call{path: "/pets/7", headers: bearer(newAccess)}.request()))
	wantDenied(t, f.check(t, call{path: "/nocache", headers: bearer(oldID)}.request()), denyInvalid(reason.KidUnknown))
	wantDenied(t, f.check(t, call{path: "/pets/7", headers: bearer(oldAccess)}.request()), denyInvalid(reason.KidUnknown))
	if got := e.Hits(); got != before+1 {
		t.Errorf("JWKS hits = %d, want %d: old kids inside the refetch window must not fetch", got, before+1)
	}
}

// TestKidMissRateLimit counts at the JWKS server: a flood of concurrent
// checks naming unknown kids costs the IdP exactly one fetch per window,
// and none more inside it.
func TestKidMissRateLimit(t *testing.T) {
	clk := newClock()
	const n = 100
	// Every flooding check may wait for the refetch: this counts fetches,
	// not the bounds on waiting.
	f := newFixture(t, fixtureOptions{jwks: jwks.Options{Now: clk.Now, MinRefetchInterval: 10 * time.Second, MissWait: time.Minute, MaxMissWaiters: n}})
	e := f.env
	mint := func() []string {
		toks := make([]string, n)
		for i := range toks {
			toks[i] = e.Access(t, issuer.TokenOptions{Scopes: []string{"pets/read"}, Header: map[string]any{"kid": "forged-" + randomHex(12)}})
		}
		return toks
	}
	flood := func(toks []string) {
		t.Helper()
		var wg sync.WaitGroup
		errs := make(chan string, len(toks))
		for _, tok := range toks {
			wg.Go(func() {
				resp, err := f.client.Check(t.Context(), call{path: "/pets/7", headers: bearer(tok)}.request())
				switch {
				case err != nil:
					errs <- "rpc error: " + err.Error()
				case resp.GetDeniedResponse() == nil || resp.GetStatus().GetCode() == 0:
					errs <- "not denied"
				case resp.GetStatus().GetMessage() != string(reason.KidUnknown):
					errs <- "reason " + resp.GetStatus().GetMessage()
				}
			})
		}
		wg.Wait()
		close(errs)
		for msg := range errs {
			t.Errorf("forged kid check: %s", msg)
		}
	}

	base := e.Hits()
	if base != 1 {
		t.Fatalf("hits after start-up = %d, want 1", base)
	}
	flood(mint())
	if got := e.Hits(); got != base+1 {
		t.Fatalf("hits after %d concurrent unknown kids = %d, want %d", n, got, base+1)
	}
	flood(mint())
	if got := e.Hits(); got != base+1 {
		t.Fatalf("hits after a second flood inside the window = %d, want %d", got, base+1)
	}
	clk.Advance(11 * time.Second)
	flood(mint())
	if got := e.Hits(); got != base+2 {
		t.Fatalf("hits after the window = %d, want %d", got, base+2)
	}
	// A genuine token still verifies throughout.
	wantAllowed(t, f.check(t, call{path: "/pets/7", headers: bearer(e.Access(t, issuer.TokenOptions{Scopes: []string{"pets/read"}}))}.request()))
}

// TestStaleKeysSurviveOutage: when the JWKS server goes down after keys
// were loaded, failed refreshes keep the old keys: genuine tokens are still
// verified (stale keys beat no keys), and an unknown kid is a 503 (a key
// published during the outage cannot be told from a forged kid), never an
// allow.
func TestStaleKeysSurviveOutage(t *testing.T) {
	f := newFixture(t, fixtureOptions{jwks: jwks.Options{
		RefreshInterval:    50 * time.Millisecond,
		RetryMin:           20 * time.Millisecond,
		RetryMax:           50 * time.Millisecond,
		MinRefetchInterval: 20 * time.Millisecond,
	}})
	e := f.env
	e.SetMode(testenv.Down)
	h := e.Hits()
	wait.For(t, wait.Patient, "background refreshes to fail", func() bool { return e.Hits() >= h+3 })

	tok := e.ID(t, issuer.TokenOptions{})
	// The uncached route verifies with the key cache on every check.
	for range 3 {
		wantAllowed(t, f.check(t, call{path: "/nocache", headers: bearer(tok)}.request()))
	}
	unknown := e.ID(t, issuer.TokenOptions{Header: map[string]any{"kid": "new-" + randomHex(6)}})
	wantDenied(t, f.check(t, call{path: "/nocache", headers: bearer(unknown)}.request()), denyUnavail(reason.JWKSUnavailable))
	for _, st := range f.keys.Status() {
		if !st.Loaded || st.Keys != 2 || st.LastError == "" {
			t.Errorf("source status %+v: want loaded, 2 keys kept, last error set", st)
		}
	}
}

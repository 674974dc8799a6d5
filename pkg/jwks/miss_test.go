package jwks

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/cognito-extauthz/cognito-extauthz/internal/wait"
)

// heldJWKS serves a set at once until hold; from then on every request is
// kept unanswered until release, which answers it (and later ones) with
// the set current then. It stands for an IdP that hangs.
type heldJWKS struct {
	*jwksServer
	body atomic.Pointer[[]byte]
	gate atomic.Pointer[chan struct{}] // nil: answer at once
}

func newHeldJWKS(t testing.TB, body []byte) *heldJWKS {
	t.Helper()
	h := &heldJWKS{jwksServer: newJWKSServer(t, nil)}
	h.body.Store(&body)
	h.handle(func(w http.ResponseWriter, r *http.Request) {
		if g := h.gate.Load(); g != nil {
			select {
			case <-*g:
			case <-r.Context().Done():
				return
			}
		}
		_, _ = w.Write(*h.body.Load())
	})
	t.Cleanup(func() { h.release(nil) }) // never leave a request hanging
	return h
}

func (h *heldJWKS) hold() {
	g := make(chan struct{})
	h.gate.Store(&g)
}

// release answers the held requests with body (nil: the current set).
func (h *heldJWKS) release(body []byte) {
	if body != nil {
		h.body.Store(&body)
	}
	if g := h.gate.Swap(nil); g != nil {
		close(*g)
	}
}

// heldCache is a loaded cache whose source's next fetch hangs.
type heldCache struct {
	*testCache
	srv *heldJWKS
	src Source
}

// newHeldCache loads kid A, then holds the server: the next lookup of an
// unknown kid starts a refetch that stays unanswered until srv.release.
func newHeldCache(t testing.TB, opts Options) *heldCache {
	t.Helper()
	srv := newHeldJWKS(t, setJSON(t, key(t, kidA)))
	opts.FetchTimeout = time.Minute
	opts.RetryMin = time.Hour
	tc := newTestCache(t, opts)
	src := srv.source()
	tc.Sync([]Source{src})
	waitLoaded(t, tc.Cache, src)
	srv.hold()
	return &heldCache{testCache: tc, srv: srv, src: src}
}

func (hc *heldCache) fetching() bool { return hc.lookup(hc.src).inflight.Load() != nil }

// rotateIn answers the held refetch with kids A and B, as an IdP that
// rotated in B, and waits for the fetch to be published.
func (hc *heldCache) rotateIn(t testing.TB) {
	t.Helper()
	hc.srv.release(setJSON(t, key(t, kidA), key(t, kidB)))
	wait.For(t, wait.Patient, "the held refetch to complete", func() bool { return !hc.fetching() })
}

// TestMissWaitBudget: a lookup that must wait for a hanging refetch waits
// MissWait at most (or less, when its context ends first), then gets
// ErrUnavailable; the refetch goes on, and once it answers, lookups are
// answered from the new set without another fetch.
func TestMissWaitBudget(t *testing.T) {
	tests := []struct {
		name     string
		missWait time.Duration
		ctxLimit time.Duration // 0: no deadline
		want     error
		outcome  string
	}{
		{"budget ends the wait", 30 * time.Millisecond, 0, errMissBudgetSpent, missBudgetSpent},
		{"budget ends the wait before the caller's deadline", 30 * time.Millisecond, time.Minute, errMissBudgetSpent, missBudgetSpent},
		{"the caller's earlier deadline ends it", time.Minute, 30 * time.Millisecond, context.DeadlineExceeded, missRefetched},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hc := newHeldCache(t, Options{MissWait: tt.missWait})
			ctx := context.Background()
			if tt.ctxLimit > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.ctxLimit)
				defer cancel()
			}
			start := time.Now()
			_, err := hc.Key(ctx, hc.src, kidB)
			took := time.Since(start)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Key during a hanging refetch: err = %v, want %v", err, tt.want)
			}
			if errors.Is(tt.want, ErrUnavailable) != errors.Is(err, ErrUnavailable) {
				t.Errorf("err = %v: ErrUnavailable-ness differs from %v", err, tt.want)
			}
			limit := tt.missWait
			if tt.ctxLimit > 0 {
				limit = min(limit, tt.ctxLimit)
			}
			if took < limit {
				t.Errorf("Key returned after %v, before its limit %v", took, limit)
			}
			if got := hc.misses(t, hc.src, tt.outcome); got != 1 {
				t.Errorf("kid misses{outcome=%s} = %v, want 1", tt.outcome, got)
			}
			logged := hc.logs.FilterMessage(msgMissBounded).FilterField(zap.String("outcome", missBudgetSpent)).Len()
			if want := boolInt(tt.outcome == missBudgetSpent); logged != want {
				t.Errorf("%d budget_spent log lines, want %d", logged, want)
			}
			if !hc.fetching() || hc.srv.hits.Load() != 2 {
				t.Fatalf("fetching=%v hits=%d: the refetch must go on after the lookup gave up", hc.fetching(), hc.srv.hits.Load())
			}
			if hc.waiting(hc.src) != 0 {
				t.Errorf("waiting = %d after the lookup returned", hc.waiting(hc.src))
			}

			hc.rotateIn(t)
			if k := mustKey(t, hc.Cache, hc.src, kidB); k.Kid != kidB {
				t.Errorf("key = %q", k.Kid)
			}
			if _, err := hc.Key(context.Background(), hc.src, "made-up"); !errors.Is(err, ErrKidUnknown) {
				t.Errorf("made-up kid after the refetch: err = %v, want ErrKidUnknown", err)
			}
			if got := hc.srv.hits.Load(); got != 2 {
				t.Errorf("server hits = %d, want 2 (load + the one refetch)", got)
			}
		})
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestMissWaitersCap: with MaxMissWaiters lookups waiting for a hanging
// refetch, every further miss of the source is answered at once with
// ErrUnavailable, while cached kids are served as ever. The refetch is
// still one; when it answers, the waiters get the new key.
func TestMissWaitersCap(t *testing.T) {
	const limit = 4
	hc := newHeldCache(t, Options{MissWait: time.Minute, MaxMissWaiters: limit})
	type result struct {
		k   *Key
		err error
	}
	waiters := make(chan result, limit)
	for range limit {
		go func() {
			k, err := hc.Key(context.Background(), hc.src, kidB)
			waiters <- result{k, err}
		}()
	}
	wait.For(t, wait.Patient, "the waiters to fill the cap", func() bool { return hc.waiting(hc.src) == limit })

	tests := []struct {
		name, kid string
		want      error // nil: the cached key
	}{
		{"the rotated kid", kidB, errMissWaitersFull},
		{"a made-up kid", "made-up", errMissWaitersFull},
		{"an empty kid", "", errMissWaitersFull},
		{"a long made-up kid", strings.Repeat("x", 4096), errMissWaitersFull},
		{"a cached kid", kidA, nil},
	}
	turnedAway := 0
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for range 4 {
				k, err := hc.Key(context.Background(), hc.src, tt.kid)
				if tt.want == nil {
					if err != nil || k == nil || k.Kid != tt.kid {
						t.Fatalf("Key(%q) = %v, %v; want the cached key", tt.kid, k, err)
					}
					continue
				}
				turnedAway++
				if !errors.Is(err, tt.want) || !errors.Is(err, ErrUnavailable) {
					t.Fatalf("Key over the cap: err = %v, want %v (ErrUnavailable)", err, tt.want)
				}
			}
		})
	}
	// They were answered while the refetch hung: none of them waited.
	if !hc.fetching() {
		t.Fatal("the refetch finished early; the test proves nothing")
	}
	if got := hc.misses(t, hc.src, missWaitersFull); got != float64(turnedAway) {
		t.Errorf("kid misses{waiters_full} = %v, want %d", got, turnedAway)
	}
	if got := hc.waiting(hc.src); got != limit {
		t.Errorf("waiting = %d, want %d (turned-away lookups take no slot)", got, limit)
	}

	hc.rotateIn(t)
	for range limit {
		if r := <-waiters; r.err != nil || r.k.Kid != kidB {
			t.Errorf("waiter: %v, %v; want kid B from the refetch", r.k, r.err)
		}
	}
	if got := hc.waiting(hc.src); got != 0 {
		t.Errorf("waiting = %d after the refetch, want 0", got)
	}
	if got := hc.srv.hits.Load(); got != 2 {
		t.Errorf("server hits = %d, want 2 (load + one refetch)", got)
	}
}

// TestMissWaiterSlotsReturned: a lookup gives its waiting slot back
// however its wait ends (its caller gives up, the budget is spent, the
// fetch answers), so round after round the full cap is admitted again.
func TestMissWaiterSlotsReturned(t *testing.T) {
	const limit, rounds = 8, 100
	tests := []struct {
		name     string
		missWait time.Duration
		cancel   bool // the callers give up; else the budget ends each wait
		want     error
	}{
		{"callers give up", time.Minute, true, context.Canceled},
		{"budget spent", time.Millisecond, false, errMissBudgetSpent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hc := newHeldCache(t, Options{MissWait: tt.missWait, MaxMissWaiters: limit})
			for round := range rounds {
				ctx, cancel := context.WithCancel(context.Background())
				errs := make(chan error, limit)
				var wg sync.WaitGroup
				for i := range limit {
					wg.Go(func() {
						_, err := hc.Key(ctx, hc.src, fmt.Sprintf("made-up-%d-%d", round, i))
						errs <- err
					})
				}
				if tt.cancel {
					wait.For(t, wait.Patient, "a full cap of waiters", func() bool { return hc.waiting(hc.src) == limit })
					if _, err := hc.Key(context.Background(), hc.src, "one-too-many"); !errors.Is(err, errMissWaitersFull) {
						t.Fatalf("round %d: lookup over a full cap: err = %v", round, err)
					}
					cancel()
				}
				wg.Wait()
				cancel()
				close(errs)
				for err := range errs {
					if !errors.Is(err, tt.want) {
						t.Fatalf("round %d: err = %v, want %v (a slot leaked if it is waiters_full)", round, err, tt.want)
					}
				}
				if got := hc.waiting(hc.src); got != 0 {
					t.Fatalf("round %d: waiting = %d after every lookup returned", round, got)
				}
			}
			if !hc.fetching() || hc.srv.hits.Load() != 2 {
				t.Fatalf("fetching=%v hits=%d: every round must have joined the one held refetch", hc.fetching(), hc.srv.hits.Load())
			}
			// And the ones that wait to the end give theirs back too.
			results := make(chan error, limit)
			for range limit {
				go func() {
					_, err := hc.Key(context.Background(), hc.src, kidB)
					results <- err
				}()
			}
			if tt.cancel {
				wait.For(t, wait.Patient, "a full cap of waiters", func() bool { return hc.waiting(hc.src) == limit })
			}
			hc.rotateIn(t)
			for range limit {
				if err := <-results; err != nil && !errors.Is(err, errMissBudgetSpent) {
					t.Errorf("last round: err = %v", err)
				}
			}
			if got := hc.waiting(hc.src); got != 0 {
				t.Errorf("waiting = %d at the end, want 0", got)
			}
		})
	}
}

// TestMissBoundLogged: lookups turned away are logged, sampled (a spray is
// a few lines a second, not one per check), with the kid quoted and cut.
func TestMissBoundLogged(t *testing.T) {
	hc := newHeldCache(t, Options{MissWait: time.Minute, MaxMissWaiters: 1})
	done := make(chan error, 1)
	go func() {
		_, err := hc.Key(context.Background(), hc.src, kidB)
		done <- err
	}()
	wait.For(t, wait.Patient, "the one waiter", func() bool { return hc.waiting(hc.src) == 1 })
	long := strings.Repeat("k", 10*maxLoggedKid)
	const spray = 200
	start := time.Now()
	for i := range spray {
		if _, err := hc.Key(context.Background(), hc.src, fmt.Sprintf("%s-%d", long, i)); !errors.Is(err, errMissWaitersFull) {
			t.Fatalf("err = %v", err)
		}
	}
	secs := int(time.Since(start)/time.Second) + 1
	lines := hc.logs.FilterMessage(msgMissBounded).All()
	if len(lines) == 0 || len(lines) > missLogFirst*(secs+1) {
		t.Fatalf("%d log lines for %d turned-away lookups in %ds, want 1..%d", len(lines), spray, secs, missLogFirst*(secs+1))
	}
	for _, l := range lines {
		f := l.ContextMap()
		kid, _ := f["kid"].(string)
		if l.Level != zapcore.WarnLevel || f["source"] != hc.src.String() || f["outcome"] != missWaitersFull ||
			!strings.HasPrefix(kid, `"`+long[:maxLoggedKid]+`"...`) || len(kid) > maxLoggedKid+8 {
			t.Errorf("log line = %v %v", l.Level, f)
		}
	}
	if got := hc.misses(t, hc.src, missWaitersFull); got != spray {
		t.Errorf("kid misses{waiters_full} = %v, want %d: every one is counted", got, spray)
	}
	hc.rotateIn(t)
	if err := <-done; err != nil {
		t.Errorf("waiter: %v", err)
	}
}

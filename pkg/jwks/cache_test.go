package jwks

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/cognito-extauthz/cognito-extauthz/internal/wait"
)

func waitLoaded(t testing.TB, c *Cache, srcs ...Source) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := c.Wait(ctx, srcs); err != nil {
		t.Fatalf("Wait: %v", err)
	}
}

func mustKey(t testing.TB, c *Cache, src Source, kid string) *Key {
	t.Helper()
	k, err := c.Key(context.Background(), src, kid)
	if err != nil {
		t.Fatalf("Key(%q): %v", kid, err)
	}
	return k
}

func TestLoad(t *testing.T) {
	a, b := key(t, kidA), key(t, kidB)
	srv := newJWKSServer(t, setJSON(t, a, b))
	tc := newTestCache(t, Options{})
	src := srv.source()

	tc.Sync([]Source{src})
	waitLoaded(t, tc.Cache, src)

	if !tc.Ready() {
		t.Error("Ready = false after Wait")
	}
	k := mustKey(t, tc.Cache, src, kidA)
	if k.Kid != kidA || k.Alg != "RS256" || k.Public.N.Cmp(modulus(t, a)) != 0 || k.Public.E != 65537 {
		t.Errorf("key = %+v, not the served JWK", k)
	}
	if mustKey(t, tc.Cache, src, kidB).Public.N.Cmp(modulus(t, b)) != 0 {
		t.Error("second key differs from the served JWK")
	}
	if got := srv.hits.Load(); got != 1 {
		t.Errorf("server hits = %d, want 1 (hits need no I/O)", got)
	}

	st := tc.status(t, src)
	if !st.Loaded || st.Keys != 2 || st.LastError != "" || !st.LastSuccess.Equal(tc.clock.Now()) {
		t.Errorf("status = %+v", st)
	}
	if got := tc.fetches(t, src, resultOK); got != 1 {
		t.Errorf("fetches{ok} = %v, want 1", got)
	}
	if got, _ := tc.metric(t, "extauthz_jwks_keys", map[string]string{"source": src.URL}); got != 2 {
		t.Errorf("keys gauge = %v, want 2", got)
	}
	if got, _ := tc.metric(t, "extauthz_jwks_last_success_timestamp_seconds", map[string]string{"source": src.URL}); int64(got) != tc.clock.Now().Unix() {
		t.Errorf("last success gauge = %v, want %d", got, tc.clock.Now().Unix())
	}
	loadLogs := tc.logs.FilterMessage("key set loaded").All()
	if len(loadLogs) != 1 {
		t.Fatalf("%d load log lines, want 1", len(loadLogs))
	}
	fields := loadLogs[0].ContextMap()
	for _, f := range []string{"source", "result", "duration", "keys"} {
		if _, ok := fields[f]; !ok {
			t.Errorf("load log lacks field %q: %v", f, fields)
		}
	}

	// A source that was never synced is never fetched, whatever it names.
	other := Source{URL: srv.URL + "/other.json"}
	if _, err := tc.Key(context.Background(), other, kidA); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Key on an unsynced source: err = %v, want ErrUnavailable", err)
	}
	if got := srv.hits.Load(); got != 1 {
		t.Errorf("server hits = %d after an unsynced lookup, want 1", got)
	}
}

func TestWaitAndReady(t *testing.T) {
	release := make(chan struct{})
	srv := newJWKSServer(t, nil)
	srv.handle(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
			_, _ = w.Write(setJSON(t, key(t, kidA)))
		case <-r.Context().Done():
		}
	})
	tc := newTestCache(t, Options{FetchTimeout: time.Minute})
	src := srv.source()
	tc.Sync([]Source{src})

	if tc.Ready() {
		t.Error("Ready = true before any load")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	err := tc.Wait(ctx, []Source{src})
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), src.URL) {
		t.Errorf("Wait before load: err = %v, want a deadline naming %s", err, src.URL)
	}
	if err := tc.Wait(context.Background(), []Source{{URL: "https://not.synced/jwks.json"}}); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Wait on an unsynced source: err = %v, want ErrUnavailable", err)
	}

	close(release)
	waitLoaded(t, tc.Cache, src)
	if !tc.Ready() {
		t.Error("Ready = false after load")
	}
	if err := tc.Wait(context.Background(), nil); err != nil {
		t.Errorf("Wait on nothing: %v", err)
	}
}

func TestRecoversAfterDown(t *testing.T) {
	body := setJSON(t, key(t, kidA))
	tests := []struct {
		name   string
		result string
		start  func(t *testing.T) (url string, recover func())
	}{
		{
			name:   "connection refused",
			result: resultNetwork,
			start: func(t *testing.T) (string, func()) {
				l, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				addr := l.Addr().String()
				l.Close()
				return "http://" + addr + "/jwks.json", func() {
					l, err := net.Listen("tcp", addr)
					if err != nil {
						t.Fatalf("listen again on %s: %v", addr, err)
					}
					srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
						_, _ = w.Write(body)
					}))
					srv.Listener.Close()
					srv.Listener = l
					srv.Start()
					t.Cleanup(srv.Close)
				}
			},
		},
		{
			name:   "503 then 200",
			result: resultHTTPStatus,
			start: func(t *testing.T) (string, func()) {
				srv := newJWKSServer(t, nil)
				srv.handle(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) })
				return srv.url(), func() { srv.serve(body) }
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url, recover := tt.start(t)
			tc := newTestCache(t, Options{RetryMin: 5 * time.Millisecond, RetryMax: 20 * time.Millisecond})
			src := Source{URL: url}
			tc.Sync([]Source{src})

			wait.For(t, wait.Patient, "several failed attempts", func() bool { return tc.fetches(t, src, tt.result) >= 3 })
			if tc.Ready() {
				t.Error("Ready = true while the source is down")
			}
			if st := tc.status(t, src); st.Loaded || st.LastError == "" {
				t.Errorf("status while down = %+v", st)
			}
			if _, err := tc.Key(context.Background(), src, kidA); !errors.Is(err, ErrUnavailable) {
				t.Errorf("Key while down: err = %v, want ErrUnavailable", err)
			}

			recover()
			waitLoaded(t, tc.Cache, src)
			if !tc.Ready() {
				t.Error("Ready = false after recovery")
			}
			mustKey(t, tc.Cache, src, kidA)
			if st := tc.status(t, src); st.LastError != "" {
				t.Errorf("LastError after recovery = %q", st.LastError)
			}
		})
	}
}

func TestFailedRefreshKeepsKeys(t *testing.T) {
	good := setJSON(t, key(t, kidA), key(t, kidB))
	body := func(s string) http.HandlerFunc {
		return func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(s)) }
	}
	elsewhere := newJWKSServer(t, good)
	tests := []struct {
		name    string
		handler http.HandlerFunc
		result  string
	}{
		{"500", func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "boom", http.StatusInternalServerError) }, resultHTTPStatus},
		{"404", http.NotFound, resultHTTPStatus},
		{"html", body("<html><body>maintenance</body></html>"), resultParse},
		{"truncated json", body(string(good[:len(good)/2])), resultParse},
		{"empty body", body(""), resultParse},
		{"no admissible keys", body(`{"keys":[{"kty":"oct","kid":"x","k":"AA"}]}`), resultNoKeys},
		{"over the cap", body(`{"keys":[]}` + strings.Repeat(" ", 4096)), resultTooLarge},
		{"redirect to another host", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, elsewhere.url(), http.StatusFound)
		}, resultRedirect},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newJWKSServer(t, good)
			tc := newTestCache(t, Options{
				RefreshInterval: 10 * time.Millisecond,
				RetryMin:        5 * time.Millisecond,
				RetryMax:        10 * time.Millisecond,
				MaxBodyBytes:    int64(len(good)) + 100,
			})
			src := srv.source()
			tc.Sync([]Source{src})
			waitLoaded(t, tc.Cache, src)

			srv.handle(tt.handler)
			wait.For(t, wait.Patient, "failed refreshes", func() bool { return tc.fetches(t, src, tt.result) >= 2 })
			if k := mustKey(t, tc.Cache, src, kidA); k.Kid != kidA {
				t.Fatalf("key = %+v", k)
			}
			st := tc.status(t, src)
			if !st.Loaded || st.Keys != 2 || st.LastError == "" {
				t.Errorf("status after failed refresh = %+v", st)
			}
			if !tc.Ready() {
				t.Error("Ready = false with stale keys")
			}
			if got, _ := tc.metric(t, "extauthz_jwks_keys", map[string]string{"source": src.URL}); got != 2 {
				t.Errorf("keys gauge = %v, want 2 (stale set)", got)
			}
			fails := tc.logs.FilterMessage("key set load failed").FilterField(zap.String("result", tt.result)).All()
			if len(fails) == 0 {
				t.Fatal("no failure log line")
			}
			for _, f := range []string{"source", "result", "duration", "keys", "error"} {
				if _, ok := fails[0].ContextMap()[f]; !ok {
					t.Errorf("failure log lacks field %q", f)
				}
			}
			if got := elsewhere.hits.Load(); got != 0 {
				t.Errorf("the other host got %d requests", got)
			}

			srv.serve(good)
			wait.For(t, wait.Patient, "recovery", func() bool { return tc.status(t, src).LastError == "" })
		})
	}
}

func TestSlowServer(t *testing.T) {
	// The caller's deadline ends its wait, not the shared fetch: released
	// later, the same fetch completes and loads the set.
	t.Run("lookup gives up, fetch goes on", func(t *testing.T) {
		release := make(chan struct{})
		started := make(chan struct{}, 1)
		srv := newJWKSServer(t, nil)
		body := setJSON(t, key(t, kidA))
		srv.handle(func(w http.ResponseWriter, r *http.Request) {
			started <- struct{}{}
			select {
			case <-release:
				_, _ = w.Write(body)
			case <-r.Context().Done():
			}
		})
		tc := newTestCache(t, Options{FetchTimeout: time.Minute, RetryMin: time.Hour})
		src := srv.source()
		tc.Sync([]Source{src})
		<-started

		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		_, err := tc.Key(ctx, src, kidA)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Key with a short ctx: err = %v, want DeadlineExceeded", err)
		}
		close(release)
		waitLoaded(t, tc.Cache, src)
		mustKey(t, tc.Cache, src, kidA)
		if ok, timeouts := tc.fetches(t, src, resultOK), tc.fetches(t, src, resultTimeout); ok != 1 || timeouts != 0 {
			t.Errorf("fetches ok=%v timeout=%v, want the one fetch to succeed", ok, timeouts)
		}
		if got := srv.hits.Load(); got != 1 {
			t.Errorf("server hits = %d, want 1 (the lookup joined the fetch)", got)
		}
	})

	// A server that never finishes costs one FetchTimeout, not more.
	tests := []struct {
		name  string
		stall func(w http.ResponseWriter)
	}{
		{"no headers", func(http.ResponseWriter) {}},
		{"headers then part of the body", func(w http.ResponseWriter) {
			w.Header().Set("Content-Length", "1000")
			_, _ = w.Write([]byte(`{"keys":[`))
			w.(http.Flusher).Flush()
		}},
	}
	for _, tt := range tests {
		t.Run("bounded: "+tt.name, func(t *testing.T) {
			var abandoned atomic.Int64
			srv := newJWKSServer(t, nil)
			srv.handle(func(w http.ResponseWriter, r *http.Request) {
				tt.stall(w)
				<-r.Context().Done() // never answers; ends when the client gives up
				abandoned.Add(1)
			})
			tc := newTestCache(t, Options{FetchTimeout: 200 * time.Millisecond, RetryMin: time.Hour})
			src := srv.source()
			tc.Sync([]Source{src})

			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Millisecond)
			_, err := tc.Key(ctx, src, kidA)
			cancel()
			if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, ErrUnavailable) {
				t.Fatalf("Key with a short ctx: err = %v", err)
			}
			wait.For(t, wait.Patient, "the fetch to time out", func() bool { return tc.fetches(t, src, resultTimeout) >= 1 })
			wait.For(t, wait.Patient, "the server to see the request abandoned", func() bool { return abandoned.Load() >= 1 })
			if st := tc.status(t, src); st.Loaded || st.LastError == "" {
				t.Errorf("status = %+v", st)
			}
		})
	}
}

func TestBodyCap(t *testing.T) {
	body := setJSON(t, key(t, kidA))
	size := int64(len(body))
	tests := []struct {
		name    string
		cap     int64
		chunked bool
		result  string
	}{
		{"exactly the cap", size, false, resultOK},
		{"one byte over", size - 1, false, resultTooLarge},
		{"exactly the cap, chunked", size, true, resultOK},
		{"one byte over, chunked", size - 1, true, resultTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newJWKSServer(t, nil)
			srv.handle(func(w http.ResponseWriter, _ *http.Request) {
				if tt.chunked {
					w.(http.Flusher).Flush() // no Content-Length: the cap must hold while reading
				}
				_, _ = w.Write(body)
			})
			tc := newTestCache(t, Options{MaxBodyBytes: tt.cap, RetryMin: time.Hour})
			src := srv.source()
			tc.Sync([]Source{src})
			wait.For(t, wait.Patient, "the first load", func() bool { return tc.fetches(t, src, tt.result) == 1 })
			loaded := tc.status(t, src).Loaded
			if loaded != (tt.result == resultOK) {
				t.Errorf("loaded = %v", loaded)
			}
		})
	}
}

func TestRedirects(t *testing.T) {
	body := setJSON(t, key(t, kidA))
	hop := func(w http.ResponseWriter, r *http.Request, to string) {
		http.Redirect(w, r, to, http.StatusFound)
	}
	// chain redirects /jwks.json -> /1 -> ... -> /n, then serves the set.
	chain := func(n int) func(_, _ *jwksServer) http.HandlerFunc {
		return func(_, _ *jwksServer) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) {
				step := 0
				if r.URL.Path != "/jwks.json" {
					step, _ = strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/"))
				}
				if step < n {
					hop(w, r, "/"+strconv.Itoa(step+1))
					return
				}
				_, _ = w.Write(body)
			}
		}
	}
	tests := []struct {
		name      string
		tls       bool
		handler   func(self, other *jwksServer) http.HandlerFunc
		otherTLS  bool
		result    string
		otherHits int64
	}{
		{
			name: "same host followed",
			handler: func(_, _ *jwksServer) http.HandlerFunc {
				return func(w http.ResponseWriter, r *http.Request) {
					if r.URL.Path == "/jwks.json" {
						hop(w, r, "/v2/jwks.json")
						return
					}
					_, _ = w.Write(body)
				}
			},
			result: resultOK,
		},
		{
			name:    "three hops followed",
			handler: chain(3),
			result:  resultOK,
		},
		{
			name:    "four hops refused",
			handler: chain(4),
			result:  resultRedirect,
		},
		{
			name: "another host refused",
			handler: func(_, other *jwksServer) http.HandlerFunc {
				return func(w http.ResponseWriter, r *http.Request) { hop(w, r, other.url()) }
			},
			result: resultRedirect,
		},
		{
			name: "same IP, another name refused",
			handler: func(self, _ *jwksServer) http.HandlerFunc {
				return func(w http.ResponseWriter, r *http.Request) {
					hop(w, r, strings.Replace(self.url(), "127.0.0.1", "localhost", 1))
				}
			},
			result: resultRedirect,
		},
		{
			name: "https to http refused",
			tls:  true,
			handler: func(_, other *jwksServer) http.HandlerFunc {
				return func(w http.ResponseWriter, r *http.Request) { hop(w, r, other.url()) }
			},
			result: resultRedirect,
		},
		{
			name: "https to https on the same host followed",
			tls:  true,
			handler: func(_, _ *jwksServer) http.HandlerFunc {
				return func(w http.ResponseWriter, r *http.Request) {
					if r.URL.Path == "/jwks.json" {
						hop(w, r, "/v2/jwks.json")
						return
					}
					_, _ = w.Write(body)
				}
			},
			result: resultOK,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			other := newJWKSServer(t, body)
			var self *jwksServer
			if tt.tls {
				self = newTLSJWKSServer(t, nil)
			} else {
				self = newJWKSServer(t, nil)
			}
			self.handle(tt.handler(self, other))
			tc := newTestCache(t, Options{RetryMin: time.Hour})
			if tt.tls {
				trust(t, tc.Cache, self.Server)
			}
			src := self.source()
			tc.Sync([]Source{src})
			wait.For(t, wait.Patient, "the first load", func() bool { return tc.fetches(t, src, tt.result) == 1 })
			if got := other.hits.Load(); got != 0 {
				t.Errorf("the redirect target on another origin got %d requests", got)
			}
			if loaded := tc.status(t, src).Loaded; loaded != (tt.result == resultOK) {
				t.Errorf("loaded = %v", loaded)
			}
		})
	}
}

func TestRotation(t *testing.T) {
	a, b := key(t, kidA), key(t, kidB)
	srv := newJWKSServer(t, setJSON(t, a))
	tc := newTestCache(t, Options{})
	src := srv.source()
	tc.Sync([]Source{src})
	waitLoaded(t, tc.Cache, src)
	mustKey(t, tc.Cache, src, kidA)

	// The IdP rotates: b in, a out. A token with b must verify at once.
	srv.serve(setJSON(t, b))
	if k := mustKey(t, tc.Cache, src, kidB); k.Public.N.Cmp(modulus(t, b)) != 0 {
		t.Fatal("new kid resolved to the wrong key")
	}
	if got := srv.hits.Load(); got != 2 {
		t.Errorf("server hits = %d, want 2 (load + one kid-miss refetch)", got)
	}
	if _, err := tc.Key(context.Background(), src, kidA); !errors.Is(err, ErrKidUnknown) {
		t.Errorf("rotated-out kid: err = %v, want ErrKidUnknown", err)
	}
	if got := srv.hits.Load(); got != 2 {
		t.Errorf("server hits = %d, want 2 (inside the refetch window)", got)
	}
	if st := tc.status(t, src); st.Keys != 1 {
		t.Errorf("keys = %d, want 1", st.Keys)
	}
}

// During an IdP outage the cached keys keep verifying, but a kid the cache
// lacks cannot be told from a key published since: the answer is
// ErrUnavailable (503, try again), not ErrKidUnknown (401, bad token).
// Once a load succeeds again, a missing kid is unknown again.
func TestMissDuringOutageIsUnavailable(t *testing.T) {
	a := key(t, kidA)
	srv := newJWKSServer(t, setJSON(t, a))
	tc := newTestCache(t, Options{MinRefetchInterval: time.Second})
	src := srv.source()
	tc.Sync([]Source{src})
	waitLoaded(t, tc.Cache, src)

	srv.handle(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "down", http.StatusServiceUnavailable)
	})
	if _, err := tc.Key(context.Background(), src, kidB); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("unknown kid while the refetch fails: err = %v, want ErrUnavailable", err)
	}
	// Inside the window too, without another fetch.
	hits := srv.hits.Load()
	if _, err := tc.Key(context.Background(), src, kidB); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("unknown kid inside the window: err = %v, want ErrUnavailable", err)
	}
	if srv.hits.Load() != hits {
		t.Fatal("a lookup inside the window fetched")
	}
	mustKey(t, tc.Cache, src, kidA) // stale keys still verify

	srv.serve(setJSON(t, a))
	tc.clock.Advance(2 * time.Second)
	if _, err := tc.Key(context.Background(), src, kidB); !errors.Is(err, ErrKidUnknown) {
		t.Fatalf("unknown kid after recovery: err = %v, want ErrKidUnknown", err)
	}
}

func TestRotationByBackgroundRefresh(t *testing.T) {
	a, b := key(t, kidA), key(t, kidB)
	srv := newJWKSServer(t, setJSON(t, a))
	tc := newTestCache(t, Options{RefreshInterval: 10 * time.Millisecond})
	src := srv.source()
	tc.Sync([]Source{src})
	waitLoaded(t, tc.Cache, src)

	srv.serve(setJSON(t, b))
	wait.For(t, wait.Patient, "the refresh to replace the set", func() bool {
		s := tc.lookup(src).set.Load()
		return s.keys[kidA] == nil && s.keys[kidB] != nil
	})
}

func TestKidMissRateLimit(t *testing.T) {
	gate := make(chan struct{})
	var gated atomic.Bool
	gated.Store(true)
	body := setJSON(t, key(t, kidA))
	srv := newJWKSServer(t, nil)
	srv.handle(func(w http.ResponseWriter, r *http.Request) {
		if gated.Load() {
			select {
			case <-gate:
			case <-r.Context().Done():
				return
			}
		}
		_, _ = w.Write(body)
	})
	const askers = 200
	// Every asker may wait, as long as it takes: what is tested here is
	// that they share one fetch, not the bounds on waiting.
	tc := newTestCache(t, Options{MissWait: time.Minute, MaxMissWaiters: askers})
	src := srv.source()
	tc.Sync([]Source{src})
	gated.Store(false)
	close(gate)
	waitLoaded(t, tc.Cache, src)
	if got := srv.hits.Load(); got != 1 {
		t.Fatalf("hits after load = %d", got)
	}

	// Hold the refetch at the server so all askers pile onto it.
	gate = make(chan struct{})
	gated.Store(true)
	var wg sync.WaitGroup
	errs := make(chan error, askers)
	for range askers {
		wg.Go(func() {
			_, err := tc.Key(context.Background(), src, fmt.Sprintf("forged-%d", rand.Uint64()))
			errs <- err
		})
	}
	wait.For(t, wait.Patient, "every asker to wait for the shared fetch", func() bool { return tc.waiting(src) == askers })
	gated.Store(false)
	close(gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		if !errors.Is(err, ErrKidUnknown) {
			t.Fatalf("err = %v, want ErrKidUnknown", err)
		}
	}
	if got := srv.hits.Load(); got != 2 {
		t.Fatalf("server hits = %d after %d concurrent misses, want 2 (load + 1 refetch)", got, askers)
	}

	// Inside the window: answered at once, no I/O.
	limitedBefore := tc.misses(t, src, missRateLimited)
	for i := range 50 {
		if _, err := tc.Key(context.Background(), src, fmt.Sprintf("again-%d", i)); !errors.Is(err, ErrKidUnknown) {
			t.Fatalf("err = %v, want ErrKidUnknown", err)
		}
	}
	if got := srv.hits.Load(); got != 2 {
		t.Fatalf("server hits = %d inside the window, want 2", got)
	}
	if got := tc.misses(t, src, missRateLimited) - limitedBefore; got != 50 {
		t.Errorf("rate_limited misses = %v, want 50", got)
	}
	mustKey(t, tc.Cache, src, kidA) // hits still served

	// After the window: exactly one more fetch, then limited again.
	tc.clock.Advance(defaultMinRefetchInterval)
	for i := range 20 {
		if _, err := tc.Key(context.Background(), src, fmt.Sprintf("later-%d", i)); !errors.Is(err, ErrKidUnknown) {
			t.Fatalf("err = %v, want ErrKidUnknown", err)
		}
	}
	if got := srv.hits.Load(); got != 3 {
		t.Fatalf("server hits = %d after the window, want 3", got)
	}
	tc.clock.Advance(defaultMinRefetchInterval - time.Nanosecond)
	if _, err := tc.Key(context.Background(), src, "still-limited"); !errors.Is(err, ErrKidUnknown) {
		t.Fatalf("err = %v", err)
	}
	if got := srv.hits.Load(); got != 3 {
		t.Fatalf("server hits = %d just inside the next window, want 3", got)
	}
}

// A lookup that joins a refresh begun before its kid was published gets
// one more round (window permitting) instead of a wrong kid_unknown.
func TestMissAfterJoiningStaleRefresh(t *testing.T) {
	bodyA, bodyB := setJSON(t, key(t, kidA)), setJSON(t, key(t, kidA), key(t, kidB))
	var current atomic.Pointer[[]byte]
	current.Store(&bodyA)
	release := make(chan struct{})
	var requests atomic.Int64
	srv := newJWKSServer(t, nil)
	srv.handle(func(w http.ResponseWriter, r *http.Request) {
		body := *current.Load() // the set as of the request's arrival
		if requests.Add(1) == 2 {
			select {
			case <-release:
			case <-r.Context().Done():
				return
			}
		}
		_, _ = w.Write(body)
	})
	tc := newTestCache(t, Options{RefreshInterval: 20 * time.Millisecond, MissWait: time.Minute})
	src := srv.source()
	tc.Sync([]Source{src})
	waitLoaded(t, tc.Cache, src)
	wait.For(t, wait.Patient, "the refresh to reach the server", func() bool { return requests.Load() >= 2 })

	current.Store(&bodyB) // the IdP publishes kid B while the refresh hangs
	got := make(chan error, 1)
	go func() {
		_, err := tc.Key(context.Background(), src, kidB)
		got <- err
	}()
	wait.For(t, wait.Patient, "the lookup to join the refresh", func() bool { return tc.waiting(src) == 1 })
	close(release)
	if err := <-got; err != nil {
		t.Fatalf("Key after joining a stale refresh: %v", err)
	}
}

func TestMissOnUnloadedSource(t *testing.T) {
	srv := newJWKSServer(t, nil)
	srv.handle(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusBadGateway) })
	tc := newTestCache(t, Options{RetryMin: time.Hour})
	src := srv.source()
	tc.Sync([]Source{src})
	wait.For(t, wait.Patient, "the failed first load", func() bool { return tc.fetches(t, src, resultHTTPStatus) == 1 })

	if _, err := tc.Key(context.Background(), src, kidA); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
	if got := srv.hits.Load(); got != 2 {
		t.Fatalf("hits = %d, want 2 (a lookup on an unloaded source refetches)", got)
	}
	for range 10 {
		if _, err := tc.Key(context.Background(), src, kidA); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("err = %v, want ErrUnavailable", err)
		}
	}
	if got := srv.hits.Load(); got != 2 {
		t.Fatalf("hits = %d, want 2 inside the window", got)
	}

	srv.serve(setJSON(t, key(t, kidA)))
	tc.clock.Advance(defaultMinRefetchInterval)
	mustKey(t, tc.Cache, src, kidA)
	if !tc.Ready() {
		t.Error("a lookup's fetch loaded the set but Ready = false")
	}
}

func TestFileSource(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "jwks.json")
	write := func(data []byte) {
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	}
	write(setJSON(t, key(t, kidA)))
	tc := newTestCache(t, Options{MaxBodyBytes: 8 << 10})
	src := Source{File: path}
	tc.Sync([]Source{src})
	waitLoaded(t, tc.Cache, src)
	mustKey(t, tc.Cache, src, kidA)

	write(setJSON(t, key(t, kidB)))
	mustKey(t, tc.Cache, src, kidB) // kid miss re-reads the file
	if _, err := tc.Key(context.Background(), src, kidA); !errors.Is(err, ErrKidUnknown) {
		t.Errorf("rotated-out kid: err = %v, want ErrKidUnknown", err)
	}
	if got := tc.fetches(t, src, resultOK); got != 2 {
		t.Errorf("fetches{ok} = %v, want 2", got)
	}

	t.Run("bad files", func(t *testing.T) {
		big := filepath.Join(dir, "big.json")
		if err := os.WriteFile(big, append(setJSON(t, key(t, kidA)), make([]byte, 8<<10)...), 0o600); err != nil {
			t.Fatal(err)
		}
		tests := []struct {
			name, path, result string
		}{
			{"missing", filepath.Join(dir, "absent.json"), resultFile},
			{"directory", dir, resultFile},
			{"over the cap", big, resultTooLarge},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				tc := newTestCache(t, Options{MaxBodyBytes: 8 << 10, RetryMin: time.Hour})
				src := Source{File: tt.path}
				tc.Sync([]Source{src})
				wait.For(t, wait.Patient, "the failed load", func() bool { return tc.fetches(t, src, tt.result) == 1 })
				if _, err := tc.Key(context.Background(), src, kidA); !errors.Is(err, ErrUnavailable) {
					t.Errorf("err = %v, want ErrUnavailable", err)
				}
			})
		}
	})
}

func TestDroppedKeyIsLogged(t *testing.T) {
	enc := key(t, kidB)
	enc["use"] = "enc"
	path := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(path, setJSON(t, key(t, kidA), enc), 0o600); err != nil {
		t.Fatal(err)
	}
	tc := newTestCache(t, Options{})
	src := Source{File: path}
	tc.Sync([]Source{src})
	waitLoaded(t, tc.Cache, src)

	// The log line follows the load's publication; poll for it.
	wait.For(t, wait.Patient, "the key-dropped line", func() bool { return tc.logs.FilterMessage("key dropped").Len() > 0 })
	logs := tc.logs.FilterMessage("key dropped").All()
	if len(logs) != 1 {
		t.Fatalf("%d key-dropped lines, want 1", len(logs))
	}
	f := logs[0].ContextMap()
	if logs[0].Level != zapcore.WarnLevel || f["kid"] != `"`+kidB+`"` || f["rule"] != ruleUse || f["source"] != src.String() {
		t.Errorf("log = %v %v", logs[0].Level, f)
	}
	if _, err := tc.Key(context.Background(), src, kidB); !errors.Is(err, ErrKidUnknown) {
		t.Errorf("dropped key served: err = %v", err)
	}
}

func TestSyncRemovesSource(t *testing.T) {
	a := newJWKSServer(t, setJSON(t, key(t, kidA)))
	b := newJWKSServer(t, setJSON(t, key(t, kidB)))
	tc := newTestCache(t, Options{RefreshInterval: 5 * time.Millisecond})
	srcA, srcB := a.source(), b.source()
	tc.Sync([]Source{srcA, srcB, srcA})
	waitLoaded(t, tc.Cache, srcA, srcB)
	entryA, entryB := tc.lookup(srcA), tc.lookup(srcB)

	tc.Sync([]Source{srcA})
	tc.Sync([]Source{srcA}) // idempotent
	if tc.lookup(srcA) != entryA {
		t.Fatal("a kept source was restarted")
	}
	if _, err := tc.Key(context.Background(), srcB, kidB); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Key on a dropped source: err = %v, want ErrUnavailable", err)
	}
	if st := tc.Status(); len(st) != 1 || st[0].Source != srcA {
		t.Errorf("Status = %+v, want only %s", st, srcA)
	}
	if tc.hasSeries(t, srcB.URL) {
		t.Error("the dropped source still has metric series")
	}
	if !tc.hasSeries(t, srcA.URL) {
		t.Error("the kept source lost its metric series")
	}

	// b's loop has stopped: a keeps refreshing, b is never asked again.
	// A fetch of b in flight at the drop is cancelled; let it finish first.
	wait.For(t, wait.Patient, "b's last fetch to end", func() bool { return entryB.inflight.Load() == nil })
	hitsA := a.hits.Load()
	wait.For(t, wait.Patient, "a few refreshes of a", func() bool { return a.hits.Load() >= hitsA+3 })
	hitsB := b.hits.Load()
	hitsA = a.hits.Load()
	wait.For(t, wait.Patient, "more refreshes of a", func() bool { return a.hits.Load() >= hitsA+5 })
	if got := b.hits.Load(); got != hitsB {
		t.Errorf("dropped source fetched %d more times", got-hitsB)
	}
	if tc.hasSeries(t, srcB.URL) {
		t.Error("a late fetch recreated the dropped source's series")
	}

	// Listing it again starts it afresh.
	tc.Sync([]Source{srcA, srcB})
	waitLoaded(t, tc.Cache, srcB)
	mustKey(t, tc.Cache, srcB, kidB)
}

func TestWaitOnDroppedSource(t *testing.T) {
	srv := newJWKSServer(t, nil)
	srv.handle(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	tc := newTestCache(t, Options{FetchTimeout: time.Minute})
	src := srv.source()
	tc.Sync([]Source{src})
	done := make(chan error, 1)
	go func() { done <- tc.Wait(context.Background(), []Source{src}) }()
	tc.Sync(nil)
	if err := <-done; !errors.Is(err, ErrUnavailable) {
		t.Errorf("Wait on a dropped source: err = %v, want ErrUnavailable", err)
	}
	if !tc.Ready() {
		t.Error("Ready = false with no sources kept")
	}
}

func TestClose(t *testing.T) {
	good := newJWKSServer(t, setJSON(t, key(t, kidA)))
	hang := newJWKSServer(t, nil)
	var abandoned atomic.Int64
	hang.handle(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
		abandoned.Add(1)
	})
	tc := newTestCache(t, Options{FetchTimeout: time.Minute, RefreshInterval: 5 * time.Millisecond, MissWait: time.Minute})
	srcGood, srcHang := good.source(), hang.source()
	tc.Sync([]Source{srcGood, srcHang})
	waitLoaded(t, tc.Cache, srcGood)
	wait.For(t, wait.Patient, "the hanging fetch to start", func() bool { return hang.hits.Load() == 1 })

	waiter := make(chan error, 1)
	go func() {
		_, err := tc.Key(context.Background(), srcHang, kidA)
		waiter <- err
	}()
	wait.For(t, wait.Patient, "the lookup to join the hanging fetch", func() bool { return tc.waiting(srcHang) == 1 })

	tc.Close() // must not wait for the minute-long fetch timeout
	wait.For(t, wait.Patient, "the server to see the hanging request abandoned", func() bool { return abandoned.Load() == 1 })
	if err := <-waiter; !errors.Is(err, ErrUnavailable) {
		t.Errorf("lookup waiting across Close: err = %v, want ErrUnavailable", err)
	}
	if _, err := tc.Key(context.Background(), srcGood, kidA); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Key after Close: err = %v, want ErrUnavailable", err)
	}
	if tc.Ready() {
		t.Error("Ready = true after Close")
	}
	if st := tc.Status(); len(st) != 0 {
		t.Errorf("Status after Close = %+v", st)
	}
	hits := good.hits.Load()
	tc.Sync([]Source{srcGood})
	tc.Close()
	if tc.lookup(srcGood) != nil || good.hits.Load() != hits {
		t.Error("Sync after Close started work")
	}
}

func TestSharedRegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	path := filepath.Join("testdata", "keys.json")
	c1 := New(Options{Registerer: reg})
	defer c1.Close()
	c2 := New(Options{Registerer: reg}) // e.g. a second cache in one process: adopts the collectors
	defer c2.Close()
	c2.Sync([]Source{{File: path}})
	waitLoaded(t, c2, Source{File: path})
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, f := range families {
		found = found || f.GetName() == "extauthz_jwks_fetches_total"
	}
	if !found {
		t.Error("the second cache's metrics are not exported")
	}
}

func TestConcurrentUse(t *testing.T) {
	srvA := newJWKSServer(t, setJSON(t, key(t, kidA)))
	srvB := newJWKSServer(t, setJSON(t, key(t, kidB)))
	tc := newTestCache(t, Options{RefreshInterval: 2 * time.Millisecond, MinRefetchInterval: time.Millisecond, Now: time.Now})
	a, b := srvA.source(), srvB.source()
	tc.Sync([]Source{a, b})
	waitLoaded(t, tc.Cache, a, b)

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for ctx.Err() == nil {
				k, err := tc.Key(ctx, a, kidA)
				if err == nil && k.Kid != kidA {
					t.Errorf("wrong key %q", k.Kid)
				}
				_, _ = tc.Key(ctx, b, fmt.Sprintf("miss-%d", i))
				_ = tc.Status()
				_ = tc.Ready()
			}
		})
	}
	for i := range 50 {
		if i%2 == 0 {
			tc.Sync([]Source{a})
		} else {
			tc.Sync([]Source{a, b})
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	wg.Wait()
}

package jwks

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// Kids of testdata/keys.json.
const (
	kidA    = "Hk2pLmN0qRsTuVwXyZ0123456789abcdEfGhIjKlMnO="
	kidB    = "b7ZqT2v8xWk1yR0sN5uPq3mL9cD4eF6gH8iJ0kA2bC4="
	kid3072 = "key-3072"
)

type jwk = map[string]any

// fixtureKeys returns the JWKs of a testdata file by kid.
func fixtureKeys(t testing.TB, name string) map[string]jwk {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatalf("read fixture: %v", err)
	}
	var doc struct {
		Keys []jwk `json:"keys"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatalf("decode fixture %s: %v", name, err)
	}
	out := make(map[string]jwk, len(doc.Keys))
	for _, k := range doc.Keys {
		out[k["kid"].(string)] = k
	}
	return out
}

func key(t testing.TB, kid string) jwk {
	t.Helper()
	k, ok := fixtureKeys(t, "keys.json")[kid]
	if !ok {
		t.Fatalf("no fixture key %q", kid)
	}
	return clone(k)
}

func clone(k jwk) jwk {
	out := make(jwk, len(k))
	for n, v := range k {
		out[n] = v
	}
	return out
}

// setJSON builds a {"keys":[...]} body.
func setJSON(t testing.TB, keys ...any) []byte {
	t.Helper()
	if keys == nil {
		keys = []any{}
	}
	b, err := json.Marshal(map[string]any{"keys": keys})
	if err != nil {
		t.Fatalf("marshal set: %v", err)
	}
	return b
}

// modulus decodes a JWK's n independently of the code under test.
func modulus(t testing.TB, k jwk) *big.Int {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(k["n"].(string))
	if err != nil {
		t.Fatalf("decode n: %v", err)
	}
	return new(big.Int).SetBytes(b)
}

// jwksServer is a real HTTP server whose behaviour a test can switch while
// it runs. It counts every request it receives.
type jwksServer struct {
	*httptest.Server
	hits    atomic.Int64
	handler atomic.Pointer[http.HandlerFunc]
}

func newJWKSServer(t testing.TB, body []byte) *jwksServer {
	t.Helper()
	s := &jwksServer{}
	s.serve(body)
	s.Server = httptest.NewServer(http.HandlerFunc(s.dispatch))
	t.Cleanup(s.Close)
	return s
}

func newTLSJWKSServer(t testing.TB, body []byte) *jwksServer {
	t.Helper()
	s := &jwksServer{}
	s.serve(body)
	s.Server = httptest.NewTLSServer(http.HandlerFunc(s.dispatch))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) dispatch(w http.ResponseWriter, r *http.Request) {
	s.hits.Add(1)
	(*s.handler.Load())(w, r)
}

func (s *jwksServer) handle(h http.HandlerFunc) { s.handler.Store(&h) }

func (s *jwksServer) serve(body []byte) {
	s.handle(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	})
}

func (s *jwksServer) url() string { return s.URL + "/jwks.json" }

func (s *jwksServer) source() Source { return Source{URL: s.url()} }

// trust makes c's hardened client trust srv's test certificate.
func trust(t testing.TB, c *Cache, srv *httptest.Server) {
	t.Helper()
	tr, ok := c.client.Transport.(*http.Transport)
	if !ok {
		t.Fatalf("client transport is %T", c.client.Transport)
	}
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	tr.TLSClientConfig.RootCAs = pool
}

// fakeClock drives the refetch window.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC).UnixNano())
	return c
}

func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

type testCache struct {
	*Cache
	reg   *prometheus.Registry
	logs  *observer.ObservedLogs
	clock *fakeClock
}

// newTestCache builds a Cache with a private registry, an observed logger
// and a fake clock; it is closed when the test ends.
func newTestCache(t testing.TB, opts Options) *testCache {
	t.Helper()
	core, logs := observer.New(zap.DebugLevel)
	tc := &testCache{reg: prometheus.NewRegistry(), logs: logs, clock: newFakeClock()}
	if opts.Logger == nil {
		opts.Logger = zap.New(core)
	}
	opts.Registerer = tc.reg
	if opts.Now == nil {
		opts.Now = tc.clock.Now
	}
	if opts.RefreshInterval == 0 {
		opts.RefreshInterval = time.Hour // tests opt in to background refresh
	}
	tc.Cache = New(opts)
	t.Cleanup(tc.Close)
	return tc
}

// metric returns the value of the series of name with exactly labels, and
// whether it exists.
func (tc *testCache) metric(t testing.TB, name string, labels map[string]string) (float64, bool) {
	t.Helper()
	families, err := tc.reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	series:
		for _, m := range f.GetMetric() {
			if len(m.GetLabel()) != len(labels) {
				continue
			}
			for _, lp := range m.GetLabel() {
				if labels[lp.GetName()] != lp.GetValue() {
					continue series
				}
			}
			switch {
			case m.GetCounter() != nil:
				return m.GetCounter().GetValue(), true
			case m.GetGauge() != nil:
				return m.GetGauge().GetValue(), true
			}
		}
	}
	return 0, false
}

func (tc *testCache) fetches(t testing.TB, src Source, result string) float64 {
	t.Helper()
	v, _ := tc.metric(t, "extauthz_jwks_fetches_total", map[string]string{"source": sourceLabel(src), "result": result})
	return v
}

func (tc *testCache) misses(t testing.TB, src Source, outcome string) float64 {
	t.Helper()
	v, _ := tc.metric(t, "extauthz_jwks_kid_miss_total", map[string]string{"source": sourceLabel(src), "outcome": outcome})
	return v
}

// waiting is how many lookups of src wait for its fetch now.
func (tc *testCache) waiting(src Source) int {
	if e := tc.lookup(src); e != nil {
		return int(e.waiters.Load())
	}
	return 0
}

// hasSeries reports whether any series carries source=label.
func (tc *testCache) hasSeries(t testing.TB, label string) bool {
	t.Helper()
	families, err := tc.reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "source" && lp.GetValue() == label {
					return true
				}
			}
		}
	}
	return false
}

func (tc *testCache) status(t testing.TB, src Source) SourceStatus {
	t.Helper()
	for _, st := range tc.Status() {
		if st.Source == src {
			return st
		}
	}
	t.Fatalf("no status for %s", src)
	return SourceStatus{}
}

package httpauthz_test

import (
	"bufio"
	"go.opentelemetry.io/otel/trace"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cognito-extauthz/cognito-extauthz/internal/authz"
	"github.com/cognito-extauthz/cognito-extauthz/internal/check"
	"github.com/cognito-extauthz/cognito-extauthz/internal/httpauthz"
	"github.com/cognito-extauthz/cognito-extauthz/internal/testenv"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/jwks"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/policy"
)

// fixture is the HTTP edge on real parts: a testenv issuer and JWKS
// server, a real key cache and authorizer, the gRPC edge's Server as the
// observer (metrics into reg, logs into logs), and the handler served by a
// real HTTP server built by httpauthz.NewServer (its limits included).
type fixture struct {
	env  *testenv.Env
	snap *policy.Snapshot
	reg  *prometheus.Registry
	logs *logBuffer
	url  string // base URL of the HTTP edge
	addr string
}

type fixtureOptions struct {
	env      *testenv.Env
	policy   string // "" is testenv.Policy
	noWait   bool   // do not wait for the keys (JWKS down)
	snapshot func() *policy.Snapshot
	tracer   trace.Tracer // nil: tracing off
	limits   check.Limits
	timeout  time.Duration
}

func newFixture(t testing.TB, o fixtureOptions) *fixture {
	t.Helper()
	f := &fixture{env: o.env, reg: prometheus.NewRegistry(), logs: &logBuffer{}}
	if f.env == nil {
		f.env = testenv.New(t)
	}
	doc := o.policy
	if doc == "" {
		doc = testenv.Policy
	}
	f.snap = f.env.Policy(t, doc)
	var keys *jwks.Cache
	if o.noWait {
		keys = jwks.New(jwks.Options{FetchTimeout: 200 * time.Millisecond, RetryMin: 50 * time.Millisecond, RetryMax: 100 * time.Millisecond})
		t.Cleanup(keys.Close)
		keys.Sync(f.snap.KeySources())
	} else {
		keys = testenv.Keys(t, f.snap, jwks.Options{})
	}
	az := authz.New(keys, authz.Options{CacheSize: 1000, Timeout: time.Second})
	snapFn := func() *policy.Snapshot { return f.snap }
	if o.snapshot != nil {
		snapFn = o.snapshot
	}
	log := f.logs.Logger()
	obs := check.NewObserver(check.ObserverOptions{Logger: log.Named("check"), Metrics: check.NewMetrics(f.reg), Tracer: o.tracer})
	h := httpauthz.New(httpauthz.Options{Snapshot: snapFn, Authorizer: az, Observer: obs, Logger: log.Named("http_authz"),
		Limits: o.limits, Timeout: o.timeout})
	srv := httptest.NewUnstartedServer(nil)
	srv.Config = httpauthz.NewServer(h, log)
	srv.Start()
	t.Cleanup(srv.Close)
	f.url, f.addr = srv.URL, srv.Listener.Addr().String()
	return f
}

// req is one authorization request; header values are added in order, so
// a name given twice is sent twice.
type req struct {
	method  string // "" is GET
	path    string // request target on the edge, e.g. /auth
	host    string
	headers [][2]string
	body    string
}

func h(kv ...string) [][2]string {
	var out [][2]string
	for i := 0; i+1 < len(kv); i += 2 {
		out = append(out, [2]string{kv[i], kv[i+1]})
	}
	return out
}

// answer is what the edge sent back.
type answer struct {
	status int
	header http.Header
	body   string
}

func (f *fixture) do(t testing.TB, r req) answer {
	t.Helper()
	m := r.method
	if m == "" {
		m = http.MethodGet
	}
	var body io.Reader
	if r.body != "" {
		body = strings.NewReader(r.body)
	}
	hr, err := http.NewRequest(m, f.url+r.path, body)
	if err != nil {
		t.Fatal(err)
	}
	if r.host != "" {
		hr.Host = r.host
	}
	for _, kv := range r.headers {
		hr.Header[kv[0]] = append(hr.Header[kv[0]], kv[1]) // as given, no canonicalisation
	}
	resp, err := http.DefaultClient.Do(hr)
	if err != nil {
		t.Fatalf("%s %s: %v", m, r.path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answer{resp.StatusCode, resp.Header, string(b)}
}

// raw sends request bytes as they are and returns the parsed response.
func (f *fixture) raw(t testing.TB, request string) answer {
	t.Helper()
	c, err := net.DialTimeout("tcp", f.addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, request); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, resp.Header, string(b)}
}

// values returns every value of a header, present-but-empty included.
func (a answer) values(name string) []string { return a.header[http.CanonicalHeaderKey(name)] }

func (a answer) has(name string) bool { return len(a.values(name)) > 0 }

// logBuffer is the shared test log buffer.
type logBuffer = testenv.LogBuffer

func readTestdata(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

package grpcauthz_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/cognito-extauthz/cognito-extauthz/internal/authz"
	"github.com/cognito-extauthz/cognito-extauthz/internal/check"
	"github.com/cognito-extauthz/cognito-extauthz/internal/grpcauthz"
	"github.com/cognito-extauthz/cognito-extauthz/internal/testenv"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/jwks"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/policy"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/reason"
)

// fixture is the whole edge on real parts: a testenv issuer and JWKS
// server, a real jwks.Cache, an authz.Authorizer, an grpcauthz.Server served
// over gRPC on loopback, a client, a JSON log buffer and a registry.
type fixture struct {
	env    *testenv.Env
	snap   *policy.Snapshot
	keys   *jwks.Cache
	az     *authz.Authorizer
	srv    *grpcauthz.Server
	client authv3.AuthorizationClient
	logs   *logBuffer
	reg    *prometheus.Registry
}

type fixtureOptions struct {
	env    *testenv.Env // nil: a new one
	policy string       // "" : testenv.Policy
	jwks   jwks.Options
	authz  authz.Options
	// timeout is authz.Options.Timeout.
	timeout time.Duration
	// noWait skips waiting for the first key load (for JWKS servers that
	// are down or hang at start-up).
	noWait bool
	// snapshot replaces the Snapshot func (panic tests).
	snapshot func() *policy.Snapshot
	// nilAuthorizer builds the server without an Authorizer.
	nilAuthorizer bool
	// logs, when set, receives the logs (shared between fixtures).
	logs *logBuffer
	// tracer traces checks; omitAllows is Options.OmitAllows.
	tracer     trace.Tracer
	omitAllows bool
}

func newFixture(t testing.TB, o fixtureOptions) *fixture {
	t.Helper()
	f := &fixture{env: o.env, logs: o.logs, reg: prometheus.NewRegistry()}
	if f.logs == nil {
		f.logs = newLogBuffer()
	}
	if f.env == nil {
		f.env = testenv.New(t)
	}
	doc := o.policy
	if doc == "" {
		doc = testenv.Policy
	}
	f.snap = f.env.Policy(t, doc)
	jo := o.jwks
	if jo.Logger == nil {
		jo.Logger = f.logs.Logger().Named("jwks")
	}
	if o.noWait {
		f.keys = jwks.New(jo)
		t.Cleanup(f.keys.Close)
		f.keys.Sync(f.snap.KeySources())
	} else {
		f.keys = testenv.Keys(t, f.snap, jo)
	}
	ao := o.authz
	if ao.CacheSize == 0 {
		ao.CacheSize = authz.DefaultCacheSize
	}
	if o.timeout != 0 {
		ao.Timeout = o.timeout
	}
	f.az = authz.New(f.keys, ao)
	snapFn := func() *policy.Snapshot { return f.snap }
	if o.snapshot != nil {
		snapFn = o.snapshot
	}
	opts := grpcauthz.Options{
		Snapshot:   snapFn,
		Authorizer: f.az,
		Logger:     f.logs.Logger().Named("check"),
		Observer: check.NewObserver(check.ObserverOptions{
			Logger:         f.logs.Logger().Named("check"),
			DecisionLogger: f.logs.Logger().Named("decision"),
			OmitAllows:     o.omitAllows,
			Metrics:        check.NewMetrics(f.reg),
			Tracer:         o.tracer,
		}),
	}
	if o.nilAuthorizer {
		opts.Authorizer = nil
	}
	f.srv = grpcauthz.NewServer(opts)
	f.client = serve(t, f.srv)
	return f
}

// serve runs srv on a real loopback listener and returns a client of it.
func serve(t testing.TB, srv *grpcauthz.Server) authv3.AuthorizationClient {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	g := grpc.NewServer()
	srv.Register(g)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = g.Serve(lis)
	}()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		g.Stop()
		t.Fatalf("grpc client: %v", err)
	}
	t.Cleanup(func() {
		_ = conn.Close()
		g.Stop()
		<-done
	})
	return authv3.NewAuthorizationClient(conn)
}

// check sends req over gRPC with a generous deadline; the RPC itself must
// succeed, whatever the verdict.
func (f *fixture) check(t testing.TB, req *authv3.CheckRequest) *authv3.CheckResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	resp, err := f.client.Check(ctx, req)
	if err != nil {
		t.Fatalf("Check RPC error (must always be a CheckResponse): %v", err)
	}
	return resp
}

// decide runs req through grpcauthz.Decide with the fixture's parts.
func (f *fixture) decide(t testing.TB, req *authv3.CheckRequest) (*authz.Decision, *authv3.CheckResponse) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return grpcauthz.Decide(ctx, f.snap, f.az, req)
}

// call describes one HTTP request as Envoy would send it.
type call struct {
	method, host, path string
	headers            map[string]string // the headers map (lower-case keys as Envoy sends)
	raw                [][2]string       // header_map entries (encode_raw_headers), raw_value bytes
	route              string            // context_extensions "route"
}

func (c call) request() *authv3.CheckRequest {
	method := c.method
	if method == "" {
		method = "GET"
	}
	host := c.host
	if host == "" {
		host = "api.example.com"
	}
	httpReq := &authv3.AttributeContext_HttpRequest{
		Method:   method,
		Host:     host,
		Path:     c.path,
		Scheme:   "https",
		Protocol: "HTTP/2",
		Headers:  c.headers,
	}
	if len(c.raw) > 0 {
		hm := &corev3.HeaderMap{}
		for _, kv := range c.raw {
			hm.Headers = append(hm.Headers, &corev3.HeaderValue{Key: kv[0], RawValue: []byte(kv[1])})
		}
		httpReq.HeaderMap = hm
	}
	attrs := &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{Http: httpReq}}
	if c.route != "" {
		attrs.ContextExtensions = map[string]string{"route": c.route}
	}
	return &authv3.CheckRequest{Attributes: attrs}
}

// bearer is the usual Authorization header map.
func bearer(tok string) map[string]string {
	return map[string]string{"authorization": "Bearer " + tok}
}

// headerOptions checks the documented rules for HeaderValueOptions (append
// explicitly false, one entry per name whatever its case) and returns them
// as a map keyed by lower-case name.
func headerOptions(t testing.TB, opts []*corev3.HeaderValueOption) map[string]string {
	t.Helper()
	out := make(map[string]string, len(opts))
	for _, o := range opts {
		name := o.GetHeader().GetKey()
		//lint:ignore SA1019 the test checks the deprecated append field because the service sets it explicitly
		appendOpt := o.GetAppend()
		if appendOpt == nil {
			t.Errorf("header %q: append is unset (must be explicitly false)", name)
		} else if appendOpt.GetValue() {
			t.Errorf("header %q: append is true (must be false)", name)
		}
		if o.GetAppendAction() != corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD {
			t.Errorf("header %q: append_action %v set alongside append", name, o.GetAppendAction())
		}
		if len(o.GetHeader().GetRawValue()) > 0 {
			t.Errorf("header %q: raw_value set; Envoy's ext_authz reads value", name)
		}
		name = strings.ToLower(name)
		if _, dup := out[name]; dup {
			t.Errorf("header %q appears twice", name)
		}
		out[name] = o.GetHeader().GetValue()
	}
	return out
}

// checkCase is one row of a table of checks: allowed, or denied as want.
type checkCase struct {
	name  string
	call  call
	allow bool
	want  denial
}

// runCheckCases sends each case's request through the fixture's server and
// asserts its verdict in full.
func runCheckCases(t *testing.T, f *fixture, tests []checkCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := f.check(t, tt.call.request())
			if tt.allow {
				wantAllowed(t, resp)
				return
			}
			wantDenied(t, resp, tt.want)
		})
	}
}

// denial is the expected shape of one denied CheckResponse.
type denial struct {
	grpc    codes.Code
	status  int
	body    string
	wwwAuth string // "" means the header must be absent
	reason  reason.Code
}

var (
	denyMissing = func(code reason.Code) denial {
		return denial{codes.Unauthenticated, 401, `{"message":"Unauthorized"}`, `Bearer`, code}
	}
	denyInvalid = func(code reason.Code) denial {
		return denial{codes.Unauthenticated, 401, `{"message":"Unauthorized"}`, `Bearer error="invalid_token"`, code}
	}
	denyExpired = denial{codes.Unauthenticated, 401, `{"message":"The incoming token has expired"}`,
		`Bearer error="invalid_token", error_description="token expired"`, reason.TokenExpired}
	denyForbidden = func(code reason.Code, wwwAuth string) denial {
		return denial{codes.PermissionDenied, 403, `{"message":"Forbidden"}`, wwwAuth, code}
	}
	denyNoRoute = denial{codes.PermissionDenied, 403, `{"message":"Missing Authentication Token"}`, "", reason.RouteNotFound}
	denyUnavail = func(code reason.Code) denial {
		return denial{codes.Unavailable, 503, `{"message":"Service Unavailable"}`, "", code}
	}
)

// wantDenied asserts every observable part of a denial.
func wantDenied(t testing.TB, resp *authv3.CheckResponse, want denial) {
	t.Helper()
	if got := codes.Code(resp.GetStatus().GetCode()); got != want.grpc {
		t.Errorf("grpc status code = %v, want %v", got, want.grpc)
	}
	if resp.GetOkResponse() != nil {
		t.Errorf("denial carries an ok_response")
	}
	dr := resp.GetDeniedResponse()
	if dr == nil {
		t.Fatalf("no denied_response in %v", resp)
	}
	if got := int(dr.GetStatus().GetCode()); got != want.status {
		t.Errorf("http status = %d, want %d", got, want.status)
	}
	if dr.GetBody() != want.body {
		t.Errorf("body = %s, want %s", dr.GetBody(), want.body)
	}
	if !json.Valid([]byte(dr.GetBody())) {
		t.Errorf("body %q is not JSON", dr.GetBody())
	}
	h := headerOptions(t, dr.GetHeaders())
	if got, ok := h["www-authenticate"]; want.wwwAuth == "" && ok {
		t.Errorf("www-authenticate = %q, want none", got)
	} else if want.wwwAuth != "" && got != want.wwwAuth {
		t.Errorf("www-authenticate = %q, want %q", got, want.wwwAuth)
	}
	if got := h["x-extauthz-reason"]; got != string(want.reason) {
		t.Errorf("x-extauthz-reason = %q, want %q", got, want.reason)
	}
	if got := h["content-type"]; got != "application/json" {
		t.Errorf("content-type = %q, want application/json", got)
	}
}

// wantAllowed asserts an allow and returns its ok_response.
func wantAllowed(t testing.TB, resp *authv3.CheckResponse) *authv3.OkHttpResponse {
	t.Helper()
	if c := codes.Code(resp.GetStatus().GetCode()); c != codes.OK {
		t.Fatalf("status = %v (%s), want OK; denied_response %v", c, resp.GetStatus().GetMessage(), resp.GetDeniedResponse())
	}
	if resp.GetDeniedResponse() != nil {
		t.Errorf("allow carries a denied_response")
	}
	ok := resp.GetOkResponse()
	if ok == nil {
		t.Fatalf("allow without ok_response")
	}
	headerOptions(t, ok.GetHeaders())
	return ok
}

// logBuffer is the shared test log buffer.
type logBuffer = testenv.LogBuffer

func newLogBuffer() *logBuffer { return testenv.NewLogBuffer() }

// readTestdata reads a file of testdata/.
func readTestdata(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatalf("read testdata: %v", err)
	}
	return string(b)
}

// flipSignature changes one character in the middle of the signature
// segment, keeping it canonical base64url, so the token passes the shape
// gate and fails only at the signature.
func flipSignature(t testing.TB, tok string) string {
	t.Helper()
	i := strings.LastIndexByte(tok, '.')
	if i < 0 || len(tok)-i < 20 {
		t.Fatalf("not a token")
	}
	pos := i + 10
	c := byte('A')
	if tok[pos] == 'A' {
		c = 'B'
	}
	return tok[:pos] + string(c) + tok[pos+1:]
}

// clock is a settable clock for authz and jwks.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Now()} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// randomHex returns n random bytes in hex.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

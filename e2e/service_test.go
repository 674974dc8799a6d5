package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"text/template"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/cognito-extauthz/cognito-extauthz/internal/wait"
)

// authService is the service name Envoy's gRPC health check asks about.
const authService = "envoy.service.auth.v3.Authorization"

// service is a running `extauthz serve` and a gRPC connection to it.
type service struct {
	proc      *proc
	grpcAddr  string
	adminAddr string
	conn      *grpc.ClientConn
	authz     authv3.AuthorizationClient
	health    healthpb.HealthClient
}

// serveOptions adjust startService.
type serveOptions struct {
	args     []string // extra flags
	env      []string // extra environment
	notReady bool     // wait only for the admin server, not for readiness
}

// startService runs `extauthz serve --config config` on free loopback ports
// and waits until /readyz is 200 (or, with notReady, until it answers). It
// stops the process when the test ends.
func startService(t *testing.T, config string, o serveOptions) *service {
	t.Helper()
	bin := binary(t)
	dir := t.TempDir()
	for attempt := 1; ; attempt++ {
		gp, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		ap, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		s := &service{grpcAddr: "127.0.0.1:" + strconv.Itoa(gp), adminAddr: "127.0.0.1:" + strconv.Itoa(ap)}
		args := append([]string{"serve",
			"--config", config,
			"--grpc-addr", s.grpcAddr,
			"--admin-addr", s.adminAddr,
			"--log-level", "debug",
		}, o.args...)
		logPath := filepath.Join(dir, fmt.Sprintf("extauthz-%d.log", attempt))
		p, err := startProc("extauthz serve", dir, logPath, childEnv(o.env...), bin, args...)
		if err != nil {
			t.Fatal(err)
		}
		s.proc = p
		err = wait.Until(60*time.Second, func() (bool, error) {
			if p.exited() {
				return false, fmt.Errorf("%w: extauthz exited with %d", wait.ErrGiveUp, p.exitCode())
			}
			// Only the status decides: the body is for operators and
			// checked where a test needs it.
			code, _, err := s.readyz()
			if code == 0 {
				return false, err
			}
			return code == http.StatusOK || o.notReady, fmt.Errorf("/readyz %d", code)
		})
		if err != nil {
			p.stop(5 * time.Second)
			if attempt < 3 && strings.Contains(p.logs(), "address already in use") {
				continue // a free port was taken in between
			}
			t.Fatalf("extauthz serve did not become ready: %v\n%s", err, p.logTail(8<<10))
		}
		p.dumpOnFailure(t)
		t.Cleanup(func() { p.stop(20 * time.Second) })
		conn, err := grpc.NewClient(s.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		s.conn = conn
		s.authz = authv3.NewAuthorizationClient(conn)
		s.health = healthpb.NewHealthClient(conn)
		return s
	}
}

// readyzBody is the part of /readyz's JSON the tests read.
type readyzBody struct {
	Ready    bool   `json:"ready"`
	Draining bool   `json:"draining"`
	Digest   string `json:"policy_digest"`
	Routes   int    `json:"routes"`
	JWKS     []struct {
		Loaded    bool   `json:"loaded"`
		LastError string `json:"last_error"`
	} `json:"jwks"`
}

// readyz returns /readyz's status (0 when it did not answer) and body.
func (s *service) readyz() (int, readyzBody, error) {
	var body readyzBody
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + s.adminAddr + "/readyz")
	if err != nil {
		return 0, body, err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return resp.StatusCode, body, fmt.Errorf("/readyz body: %w", err)
	}
	return resp.StatusCode, body, nil
}

// metricsText is the body of /metrics.
func (s *service) metricsText(t *testing.T) string {
	t.Helper()
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + s.adminAddr + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s: %v", resp.Status, err)
	}
	return string(b)
}

// metric returns the value of one series of /metrics, written as it
// appears in the exposition format: `name{label="value"}`.
func (s *service) metric(t *testing.T, series string) float64 {
	t.Helper()
	v, ok := metricValue(s.metricsText(t), series)
	if !ok {
		t.Fatalf("/metrics has no series %s", series)
	}
	return v
}

func metricValue(text, series string) (float64, bool) {
	for line := range strings.Lines(text) {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), series+" ")
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(strings.Fields(rest)[0], 64)
		return v, err == nil
	}
	return 0, false
}

// healthStatus asks the gRPC health service about name.
func (s *service) healthStatus(name string) (healthpb.HealthCheckResponse_ServingStatus, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := s.health.Check(ctx, &healthpb.HealthCheckRequest{Service: name})
	if err != nil {
		return healthpb.HealthCheckResponse_UNKNOWN, err
	}
	return resp.GetStatus(), nil
}

// request is the HTTP request Envoy asks about.
type request struct {
	method, path, host string
	route              string // context_extensions route, as Envoy's per-route config sets it
	headers            map[string]string
}

func bearer(tok string) map[string]string { return map[string]string{"authorization": "Bearer " + tok} }

func (s *service) check(t *testing.T, r request) result {
	t.Helper()
	resp, err := s.checkErr(r)
	if err != nil {
		t.Fatalf("Check %s %s: %v", r.method, r.path, err)
	}
	return decode(t, resp)
}

func (s *service) checkErr(r request) (*authv3.CheckResponse, error) {
	method := r.method
	if method == "" {
		method = http.MethodGet
	}
	req := &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Id:       "e2e",
			Method:   method,
			Path:     r.path,
			Host:     r.host,
			Scheme:   "https",
			Protocol: "HTTP/1.1",
			Headers:  r.headers,
		}},
	}}
	if r.route != "" {
		req.Attributes.ContextExtensions = map[string]string{"route": r.route}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return s.authz.Check(ctx, req)
}

// result is a CheckResponse, flattened.
type result struct {
	code     codes.Code
	status   int               // HTTP status of a denial
	body     string            // body of a denial
	headers  map[string]string // headers set on the request (allowed) or the response (denied)
	remove   []string          // headers_to_remove
	metadata map[string]any
	reason   string // x-extauthz-reason
}

// decode flattens resp and checks what holds for every answer: each header
// option says append false explicitly (Envoy releases disagree on the
// default), and an allow carries no denied response and vice versa.
func decode(t *testing.T, resp *authv3.CheckResponse) result {
	t.Helper()
	r := result{code: codes.Code(resp.GetStatus().GetCode()), headers: map[string]string{}}
	if md := resp.GetDynamicMetadata(); md != nil {
		r.metadata = md.AsMap()
	}
	var opts []*corev3.HeaderValueOption
	if r.code == codes.OK {
		if resp.GetDeniedResponse() != nil {
			t.Errorf("allowed response carries a denied_response")
		}
		ok := resp.GetOkResponse()
		opts = ok.GetHeaders()
		r.remove = ok.GetHeadersToRemove()
	} else {
		if resp.GetOkResponse() != nil {
			t.Errorf("denied response (%v) carries an ok_response", r.code)
		}
		den := resp.GetDeniedResponse()
		if den == nil {
			t.Fatalf("denied response (%v) has no denied_response", r.code)
		}
		r.status = int(den.GetStatus().GetCode())
		r.body = den.GetBody()
		opts = den.GetHeaders()
	}
	for _, o := range opts {
		name := strings.ToLower(o.GetHeader().GetKey())
		//lint:ignore SA1019 the test checks the deprecated append field because the service sets it explicitly
		appendOpt := o.GetAppend()
		if appendOpt == nil || appendOpt.GetValue() {
			t.Errorf("header %q: append = %v, want explicitly false", name, appendOpt)
		}
		if _, dup := r.headers[name]; dup {
			t.Errorf("header %q set twice", name)
		}
		r.headers[name] = o.GetHeader().GetValue()
	}
	r.reason = r.headers["x-extauthz-reason"]
	return r
}

// policyData fills testdata/policy.yaml.tmpl.
type policyData struct {
	PoolID, Issuer, JWKSURI string
	Clients                 []string
	Scope                   string
	WithProfile             bool // the profile route; the reload test removes it
}

// policy renders the test policy for f.
func (f *fixture) policy(t *testing.T, jwksURI string, withProfile bool) []byte {
	t.Helper()
	tmpl, err := template.New("policy.yaml.tmpl").Funcs(template.FuncMap{
		// JSON strings are YAML double-quoted scalars.
		"q": func(s string) (string, error) {
			b, err := json.Marshal(s)
			return string(b), err
		},
	}).ParseFiles(filepath.Join("testdata", "policy.yaml.tmpl"))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	err = tmpl.Execute(&buf, policyData{
		PoolID: f.pool, Issuer: f.issuer, JWKSURI: jwksURI,
		Clients: []string{f.web, f.short}, Scope: f.scope, WithProfile: withProfile,
	})
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// writePolicy writes f's policy to a new file and returns its path.
func (f *fixture) writePolicy(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(path, f.policy(t, f.jwksURI, true), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// run runs the binary with args and returns its exit code, stdout and
// stderr.
func run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	bin := binary(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := execCommand(ctx, bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.Env = childEnv()
	err := cmd.Run()
	code := cmd.ProcessState.ExitCode()
	if err != nil && code < 0 {
		t.Fatalf("extauthz %s: %v", args[0], err)
	}
	return code, stdout.String(), stderr.String()
}

package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cognito-extauthz/cognito-extauthz/internal/issuer"
	"github.com/cognito-extauthz/cognito-extauthz/internal/testenv"
)

// TestMain lets the test binary stand in for the extauthz binary: with
// EXTAUTHZ_TEST_MAIN=1 it runs main, so process-level tests (signals, exit
// codes) need no separate build.
func TestMain(m *testing.M) {
	if os.Getenv("EXTAUTHZ_TEST_MAIN") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestUsageAndUnknownCommands(t *testing.T) {
	tests := []struct {
		args []string
		code int
		out  string // in stdout+stderr
	}{
		{nil, exitUsage, "Usage:"},
		{[]string{"help"}, exitOK, "extauthz serve"},
		{[]string{"--help"}, exitOK, "extauthz validate"},
		{[]string{"frobnicate"}, exitUsage, `unknown command "frobnicate"`},
		{[]string{"serve"}, exitUsage, "--config (or EXTAUTHZ_CONFIG) is required"},
		{[]string{"validate"}, exitUsage, "--config (or EXTAUTHZ_CONFIG) is required"},
		{[]string{"explain", "--config", "x.yaml"}, exitUsage, "--path and exactly one of --config or --addr are required"},
		{[]string{"serve", "--config", "x.yaml", "--no-such-flag"}, exitUsage, "no-such-flag"},
		{[]string{"validate", "--config", "x.yaml", "extra"}, exitUsage, `unexpected argument "extra"`},
		{[]string{"serve", "-h"}, exitOK, "EXTAUTHZ_GRPC_ADDR"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			code, out, errs := runCLI(t, tt.args...)
			if code != tt.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tt.code, out, errs)
			}
			if !strings.Contains(out+errs, tt.out) {
				t.Fatalf("output lacks %q\nstdout: %s\nstderr: %s", tt.out, out, errs)
			}
		})
	}
}

func TestVersion(t *testing.T) {
	code, out, _ := runCLI(t, "version")
	if code != exitOK || !strings.Contains(out, "extauthz ") || !strings.Contains(out, runtime.Version()) ||
		!strings.Contains(out, "commit ") {
		t.Fatalf("version: exit %d, %q", code, out)
	}
}

const validPolicy = `apiVersion: cognito-extauthz/v1
authorizers:
  users:
    userPools:
      - arn: arn:aws:cognito-idp:us-east-1:123456789012:userpool/us-east-1_AbCdEfGhI
routes:
  - name: list-pets
    match: { methods: [GET], path: /pets }
    authorizer: users
  - name: health
    match: { path: /health }
    authorization: NONE
`

const invalidPolicy = `apiVersion: cognito-extauthz/v1
authorizers:
  users:
    userPools:
      - arn: arn:aws:cognito-idp:us-east-1:12345:userpool/us-east-1_AbC
routes:
  - name: list-pets
    match: { path: /pets }
    authorizer: nobody
  - name: list-pets
    match: { path: /other }
    authorizer: users
    mode: identity-claims
    scopes: [pets/read]
    colour: blue
`

func TestValidate(t *testing.T) {
	good := writeFile(t, "good.yaml", validPolicy)
	bad := writeFile(t, "bad.yaml", invalidPolicy)

	code, out, _ := runCLI(t, "validate", "--config", good)
	if code != exitOK || !strings.Contains(out, "ok: 2 routes, 1 authorizer, 1 key source\n") || strings.Contains(out, "warning") {
		t.Fatalf("valid policy: exit %d, %q", code, out)
	}

	code, out, errs := runCLI(t, "validate", "--config", bad)
	if code != exitFail {
		t.Fatalf("invalid policy: exit %d, want 1", code)
	}
	// Every problem, each with its place in the file.
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`bad\.yaml:5:\d+: authorizers\.users\.userPools\[0\]\.arn: .*`),
		regexp.MustCompile(`bad\.yaml:9:\d+: routes\[0\]\.authorizer: .*nobody`),
		regexp.MustCompile(`bad\.yaml:10:\d+: routes\[1\]\.name: .*list-pets`),
		regexp.MustCompile(`bad\.yaml:14:\d+: routes\[1\]\.scopes: .*`),
		regexp.MustCompile(`bad\.yaml:15:\d+: routes\[1\]\.colour: .*`),
	} {
		if !want.MatchString(out) {
			t.Errorf("problems lack %s\ngot:\n%s", want, out)
		}
	}
	if !strings.Contains(errs, "bad.yaml: 5 problems") {
		t.Errorf("stderr summary missing: %q", errs)
	}

	code, _, errs = runCLI(t, "validate", "--config", filepath.Join(t.TempDir(), "missing.yaml"))
	if code != exitRuntime || !strings.Contains(errs, "missing.yaml") {
		t.Fatalf("missing file: exit %d, %q", code, errs)
	}
}

// TestValidateWarnings: warnings are printed with their place and do not
// fail validation; counts are in the right number.
func TestValidateWarnings(t *testing.T) {
	p := writeFile(t, "warn.yaml", `apiVersion: cognito-extauthz/v1
authorizers:
  spare:
    userPools: [{ userPoolId: us-east-1_abc }]
routes:
  - name: health
    match: { path: /health }
    authorization: none
`)
	code, out, _ := runCLI(t, "validate", "--config", p)
	want := "warning: " + p + `:3:3: authorizers.spare: no route uses authorizer "spare": it checks nothing and its keys are not fetched` + "\n" +
		p + ": ok: 1 route, 1 authorizer, 0 key sources\n"
	if code != exitOK || out != want {
		t.Fatalf("exit %d, output:\n%s\nwant:\n%s", code, out, want)
	}
}

// Flags, then environment, then defaults.
func TestFlagEnvPrecedence(t *testing.T) {
	good := writeFile(t, "good.yaml", validPolicy)
	bad := writeFile(t, "bad.yaml", invalidPolicy)

	t.Setenv("EXTAUTHZ_CONFIG", good)
	if code, out, _ := runCLI(t, "validate"); code != exitOK || !strings.Contains(out, "good.yaml") {
		t.Fatalf("env only: exit %d, %q", code, out)
	}
	if code, out, _ := runCLI(t, "validate", "--config", bad); code != exitFail || !strings.Contains(out, "bad.yaml") {
		t.Fatalf("flag over env: exit %d, %q", code, out)
	}
	t.Setenv("EXTAUTHZ_JWKS_ALLOW_HTTP", "maybe")
	if code, _, errs := runCLI(t, "validate"); code != exitUsage || !strings.Contains(errs, "EXTAUTHZ_JWKS_ALLOW_HTTP") {
		t.Fatalf("bad env value: exit %d, %q", code, errs)
	}
	t.Setenv("EXTAUTHZ_JWKS_ALLOW_HTTP", "")
	os.Unsetenv("EXTAUTHZ_JWKS_ALLOW_HTTP")

	// http JWKS to a remote host: an error unless allowed, by flag or env.
	remote := writeFile(t, "remote.yaml", strings.Replace(validPolicy,
		"      - arn: arn:aws:cognito-idp:us-east-1:123456789012:userpool/us-east-1_AbCdEfGhI",
		"      - arn: arn:aws:cognito-idp:us-east-1:123456789012:userpool/us-east-1_AbCdEfGhI\n        jwksUri: http://keys.example.com/jwks.json", 1))
	if code, _, _ := runCLI(t, "validate", "--config", remote); code != exitFail {
		t.Fatalf("http jwksUri accepted without --jwks-allow-http")
	}
	if code, _, _ := runCLI(t, "validate", "--config", remote, "--jwks-allow-http"); code != exitOK {
		t.Fatalf("http jwksUri refused with --jwks-allow-http")
	}
	t.Setenv("EXTAUTHZ_JWKS_ALLOW_HTTP", "true")
	if code, _, _ := runCLI(t, "validate", "--config", remote); code != exitOK {
		t.Fatalf("http jwksUri refused with EXTAUTHZ_JWKS_ALLOW_HTTP=true")
	}
	if code, _, _ := runCLI(t, "validate", "--config", remote, "--jwks-allow-http=false"); code != exitFail {
		t.Fatalf("flag false did not beat env true")
	}
}

func TestServeFlagValidation(t *testing.T) {
	good := writeFile(t, "good.yaml", validPolicy)
	for _, args := range [][]string{
		{"--jwks-fetch-timeout", "0s"},
		{"--jwks-miss-wait", "0s"},
		{"--token-cache-size", "-1"},
		{"--token-cache-max-bytes", "1000"},
		{"--token-cache-max-bytes", "-1"},
		{"--reload-interval", "1ms"},
		{"--reload-settle", "-1s"},
		{"--reload-settle", "2m"},
		{"--grpc-max-message-bytes", "100"},
		{"--max-request-headers", "0"},
		{"--max-request-header-bytes", "10"},
		{"--log-level", "loud"},
		{"--log-format", "xml"},
	} {
		code, _, errs := runCLI(t, append([]string{"serve", "--config", good}, args...)...)
		if code != exitUsage || errs == "" {
			t.Errorf("%v: exit %d, stderr %q", args, code, errs)
		}
	}
}

type explained struct {
	Allowed         bool              `json:"allowed"`
	Route           string            `json:"route"`
	Reason          string            `json:"reason"`
	Status          int               `json:"status"`
	Body            string            `json:"body"`
	Headers         map[string]string `json:"headers"`
	HeadersToRemove []string          `json:"headers_to_remove"`
	Claims          map[string]any    `json:"claims"`
	Metadata        struct {
		Route    string   `json:"route"`
		Sub      string   `json:"sub"`
		TokenUse string   `json:"token_use"`
		Scopes   []string `json:"scopes"`
		Reason   string   `json:"reason"`
	} `json:"metadata"`
	JWKS []struct {
		Source string `json:"source"`
		Loaded bool   `json:"loaded"`
		Keys   int    `json:"keys"`
	} `json:"jwks"`
}

func TestExplain(t *testing.T) {
	env := testenv.New(t)
	path := writeFile(t, "policy.yaml", env.Expand(testenv.Policy))
	id := env.ID(t, issuer.TokenOptions{Subject: "sub-7", Email: "e@example.com", Groups: []string{"a", "b"}})

	explain := func(t *testing.T, args ...string) explained {
		t.Helper()
		code, out, errs := runCLI(t, append([]string{"explain", "--config", path}, args...)...)
		var e explained
		if err := json.Unmarshal([]byte(out), &e); err != nil {
			t.Fatalf("explain %v: exit %d, output is not JSON: %v\n%s\n%s", args, code, err, out, errs)
		}
		if want := map[bool]int{true: exitOK, false: exitFail}[e.Allowed]; code != want {
			t.Fatalf("explain %v: exit %d with allowed=%v, want %d", args, code, e.Allowed, want)
		}
		if strings.Contains(errs, id) {
			t.Fatal("explain logged the token")
		}
		return e
	}

	e := explain(t, "--method", "GET", "--path", "/pets", "--token", id)
	if !e.Allowed || e.Route != "list-pets" || e.Reason != "allowed" {
		t.Fatalf("allowed case: %+v", e)
	}
	if e.Claims["sub"] != "sub-7" || e.Headers["x-user-sub"] != "sub-7" || e.Headers["x-user-groups"] != "a,b" {
		t.Fatalf("claims/headers: %+v", e)
	}
	if exp, ok := e.Claims["exp"].(float64); !ok || exp < float64(time.Now().Unix()) {
		t.Fatalf("claims.exp = %v, want the NumericDate as a number", e.Claims["exp"])
	}
	if e.Metadata.Route != "list-pets" || e.Metadata.Sub != "sub-7" || e.Metadata.TokenUse != "id" {
		t.Fatalf("metadata: %+v", e.Metadata)
	}
	if len(e.JWKS) != 1 || !e.JWKS[0].Loaded || e.JWKS[0].Keys != 2 || e.JWKS[0].Source != env.JWKSURL() {
		t.Fatalf("jwks: %+v", e.JWKS)
	}

	e = explain(t, "--path", "/pets")
	if e.Allowed || e.Reason != "token_missing" || e.Status != 401 || e.Body != `{"message":"Unauthorized"}` ||
		e.Headers["www-authenticate"] != "Bearer" || e.Claims != nil || e.Metadata.Reason != "token_missing" {
		t.Fatalf("no token: %+v", e)
	}

	e = explain(t, "--path", "/pets/9", "--token", id)
	if e.Allowed || e.Reason != "token_use_mismatch" || e.Route != "pet" || e.Claims["sub"] != "sub-7" {
		t.Fatalf("wrong token_use still shows the verified claims: %+v", e)
	}

	e = explain(t, "--path", "/anything", "--route", "list-pets", "--header", "Authorization=Bearer "+id)
	if !e.Allowed || e.Route != "list-pets" {
		t.Fatalf("--route and --header: %+v", e)
	}

	tokenFile := writeFile(t, "token", id+"\n")
	e = explain(t, "--path", "/pets", "--token-file", tokenFile)
	if !e.Allowed {
		t.Fatalf("--token-file: %+v", e)
	}
}

// httpStatus GETs url and returns the status code.
func httpStatus(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// freePort returns a loopback address that was free a moment ago.
func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// process is the extauthz binary (this test binary re-executed) running.
type process struct {
	cmd    *exec.Cmd
	stdout *syncBuffer
	stderr *syncBuffer
	done   chan error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func startProcess(t *testing.T, env []string, args ...string) *process {
	t.Helper()
	if testing.Short() {
		t.Skip("process-level test")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, args...)
	cmd.Env = append(append(os.Environ(), "EXTAUTHZ_TEST_MAIN=1"), env...)
	p := &process{cmd: cmd, stdout: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan error, 1)}
	cmd.Stdout, cmd.Stderr = p.stdout, p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.done
	})
	return p
}

func waitReady(t *testing.T, p *process, admin string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + admin + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case err := <-p.done:
			t.Fatalf("process exited early: %v\nstderr:\n%s", err, p.stderr.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Fatalf("not ready in time\nstderr:\n%s", p.stderr.String())
}

// TestServeProcess runs `extauthz serve` as a process configured through
// the environment, checks through it with the check command, then sends
// SIGTERM: the process must exit 0 after draining, and no log line may
// carry the token.
func TestServeProcess(t *testing.T) {
	env := testenv.New(t)
	path := writeFile(t, "policy.yaml", env.Expand(testenv.Policy))
	grpcAddr, adminAddr, httpAddr := freePort(t), freePort(t), freePort(t)
	p := startProcess(t, []string{
		"EXTAUTHZ_CONFIG=" + path,
		"EXTAUTHZ_GRPC_ADDR=" + grpcAddr,
		"EXTAUTHZ_ADMIN_ADDR=" + adminAddr,
		"EXTAUTHZ_HTTP_AUTHZ_ADDR=" + httpAddr,
		"EXTAUTHZ_LOG_LEVEL=debug",
		"EXTAUTHZ_SHUTDOWN_GRACE=5s",
		"EXTAUTHZ_ENABLE_PPROF=true",
	}, "serve")
	waitReady(t, p, adminAddr)
	if st := httpStatus(t, "http://"+adminAddr+"/debug/pprof/cmdline"); st != http.StatusOK {
		t.Fatalf("--enable-pprof: /debug/pprof/cmdline answered %d, want 200", st)
	}

	id := env.ID(t, issuer.TokenOptions{})
	code, out, errs := runCLI(t, "check", "--addr", grpcAddr, "--path", "/pets", "--token", id)
	if code != exitOK || !strings.Contains(out, `"allowed": true`) {
		t.Fatalf("check allowed: exit %d\n%s\n%s", code, out, errs)
	}
	code, out, _ = runCLI(t, "check", "--addr", grpcAddr, "--path", "/pets", "--token", id+"x")
	if code != exitFail || !strings.Contains(out, `"reason": "token_malformed"`) {
		t.Fatalf("check denied: exit %d\n%s", code, out)
	}
	// The HTTP authorization mode, on through the environment, makes the
	// same decision (and its log lines are held to the same no-token rule).
	if st, reason := httpAuthz(t, httpAddr, "/auth", map[string]string{
		"X-Forwarded-Method": "GET", "X-Forwarded-Uri": "/pets", "Authorization": "Bearer " + id,
	}); st != http.StatusOK {
		t.Fatalf("http authz allowed: %d %s", st, reason)
	}
	if st, reason := httpAuthz(t, httpAddr, "/auth", map[string]string{
		"X-Forwarded-Method": "GET", "X-Forwarded-Uri": "/pets", "Authorization": "Bearer " + id + "x",
	}); st != http.StatusUnauthorized || reason != "token_malformed" {
		t.Fatalf("http authz denied: %d %s", st, reason)
	}

	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.done:
		p.done <- err // for the cleanup
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v, want 0\nstderr:\n%s", err, p.stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no exit after SIGTERM")
	}
	logs := p.stderr.String()
	for _, want := range []string{`"msg":"ready"`, `"msg":"check allowed"`, `"msg":"check denied"`, "shutting down", `"msg":"stopped"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %s", want)
		}
	}
	for _, part := range append(strings.Split(id, "."), id) {
		if strings.Contains(logs, part) {
			t.Fatalf("a token part appears in the logs:\n%s", logs)
		}
	}
}

func TestServeBadPolicyExits(t *testing.T) {
	path := writeFile(t, "policy.yaml", invalidPolicy)
	p := startProcess(t, nil, "serve", "--config", path, "--grpc-addr", freePort(t), "--admin-addr", freePort(t))
	select {
	case err := <-p.done:
		p.done <- err
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != exitRuntime {
			t.Fatalf("exit = %v, want %d", err, exitRuntime)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("serve kept running on an invalid policy")
	}
	if !strings.Contains(p.stderr.String(), "nobody") {
		t.Fatalf("stderr does not name the problem:\n%s", p.stderr.String())
	}
}

// TestDevProcess runs `extauthz dev` (what `make run` starts) and follows
// its printed instructions: the sample tokens and check commands must do
// what the banner says.
func TestDevProcess(t *testing.T) {
	grpcAddr, adminAddr, httpAddr := freePort(t), freePort(t), freePort(t)
	p := startProcess(t, nil, "dev", "--grpc-addr", grpcAddr, "--admin-addr", adminAddr,
		"--http-authz-addr", httpAddr, "--log-level", "warn")
	waitReady(t, p, adminAddr)
	// The profiler is off unless asked for; the dev issuer's routes are on.
	if st := httpStatus(t, "http://"+adminAddr+"/debug/pprof/cmdline"); st != http.StatusNotFound {
		t.Fatalf("without --enable-pprof: /debug/pprof/cmdline answered %d, want 404", st)
	}

	vars := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(p.stdout.String()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if k, v, ok := strings.Cut(strings.TrimPrefix(sc.Text(), "export "), "="); ok && strings.HasPrefix(sc.Text(), "export ") {
			vars[k] = v
		}
	}
	id, access := vars["ID_TOKEN"], vars["ACCESS_TOKEN"]
	if id == "" || access == "" {
		t.Fatalf("dev banner lacks tokens:\n%s", p.stdout.String())
	}
	if !strings.Contains(p.stdout.String(), "envoy.service.auth.v3.Authorization/Check") {
		t.Fatal("dev banner lacks the grpcurl command")
	}
	tests := []struct {
		path, token string
		code        int
		reason      string
	}{
		{"/pets", id, exitOK, ""},
		{"/pets", "", exitFail, "token_missing"},
		{"/pets/7", id, exitFail, "token_use_mismatch"},
		{"/pets/7", access, exitOK, ""},
		{"/admin/users", id, exitFail, "group_missing"},
		{"/health", "", exitOK, ""},
	}
	for _, tt := range tests {
		args := []string{"check", "--addr", grpcAddr, "--path", tt.path}
		if tt.token != "" {
			args = append(args, "--token", tt.token)
		}
		code, out, errs := runCLI(t, args...)
		if code != tt.code || !strings.Contains(out, tt.reason) {
			t.Errorf("%s: exit %d, want %d with %q\n%s%s", tt.path, code, tt.code, tt.reason, out, errs)
		}
	}

	// The banner's HTTP authorization mode lines do what they say.
	if !strings.Contains(p.stdout.String(), "http://"+httpAddr+"/envoy/pets") {
		t.Fatalf("dev banner lacks the HTTP mode:\n%s", p.stdout.String())
	}
	httpTests := []struct {
		path    string
		headers map[string]string
		status  int
		reason  string
	}{
		{"/envoy/pets", map[string]string{"Authorization": "Bearer " + id}, http.StatusOK, ""},
		{"/auth", map[string]string{"X-Forwarded-Method": "GET", "X-Forwarded-Uri": "/pets", "Authorization": "Bearer " + id}, http.StatusOK, ""},
		{"/nginx", map[string]string{"X-Original-Method": "GET", "X-Original-URI": "/pets"}, http.StatusUnauthorized, "token_missing"},
	}
	for _, tt := range httpTests {
		if st, reason := httpAuthz(t, httpAddr, tt.path, tt.headers); st != tt.status || reason != tt.reason {
			t.Errorf("HTTP %s: %d %q, want %d %q", tt.path, st, reason, tt.status, tt.reason)
		}
	}

	// The mint endpoint makes tokens the policy accepts.
	resp, err := http.Get("http://" + adminAddr + "/dev/token?type=access&scope=pets/admin")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	minted := strings.TrimSpace(string(b))
	if code, out, _ := runCLI(t, "check", "--addr", grpcAddr, "--method", "DELETE", "--path", "/pets/1", "--token", minted); code != exitOK {
		t.Fatalf("minted token refused: %s", out)
	}
	resp, err = http.Get("http://" + adminAddr + "/dev/token?type=bogus")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("bad mint request: %d", resp.StatusCode)
	}
}

// httpAuthz asks the HTTP authorization listener at addr and returns the
// status and x-extauthz-reason.
func httpAuthz(t *testing.T, addr, path string, headers map[string]string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Header.Get("X-Extauthz-Reason")
}

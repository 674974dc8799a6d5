package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cognito-extauthz/cognito-extauthz/internal/issuer"
	"github.com/cognito-extauthz/cognito-extauthz/internal/testenv"
	"github.com/cognito-extauthz/cognito-extauthz/internal/wait"
)

// TestHTTPModeBehindProxies runs the REAL nginx and Caddy with the shipped
// example configs (examples/, only ports and paths templated) in front of
// a recording upstream, with `extauthz serve --http-authz-addr` deciding
// under the example policy (k8s/base/policy.yaml, its pool pointed at a
// local issuer). Allowed requests must reach the upstream with the right
// claim headers, forged claim headers never, denials never, and the client
// must see the right status and x-extauthz-reason.
func TestHTTPModeBehindProxies(t *testing.T) {
	requireE2E(t)
	env := testenv.New(t)
	svc := startHTTPService(t, env)
	up := newRecorder(t)
	tok := httpModeTokens(t, env)

	proxies := []struct {
		name  string
		start func(t *testing.T, authz, upstream string) string
		// body is what the client gets on a 401: nginx shows its own page.
		jsonBody bool
	}{
		{"nginx", startNginx, false},
		{"caddy", startCaddy, true},
	}
	for _, p := range proxies {
		t.Run(p.name, func(t *testing.T) {
			base := p.start(t, svc, up.addr)
			for _, c := range httpModeCases(tok) {
				t.Run(c.name, func(t *testing.T) {
					runProxyCase(t, base, up, c, p.jsonBody)
				})
			}
		})
	}
}

// TestNginxOtherStatuses: nginx answers any auth status but 2xx/401/403
// with 500, as docs/http-mode.md says; it is still a denial, the request
// never reaches the upstream, and x-extauthz-reason still reaches the
// client.
func TestNginxOtherStatuses(t *testing.T) {
	requireE2E(t)
	up := newRecorder(t)
	for _, tt := range []struct {
		status int
		reason string
	}{{503, "jwks_unavailable"}, {400, "request_invalid"}} {
		t.Run(strconv.Itoa(tt.status), func(t *testing.T) {
			authz := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("x-extauthz-reason", tt.reason)
				w.WriteHeader(tt.status)
			}))
			t.Cleanup(authz.Close)
			base := startNginx(t, authz.Listener.Addr().String(), up.addr)
			runProxyCase(t, base, up, proxyCase{path: "/pets", status: 500, reason: tt.reason}, false)
		})
	}
}

type proxyCase struct {
	name    string
	method  string
	path    string
	headers map[string]string
	status  int
	reason  string            // x-extauthz-reason the client must see ("" on allow)
	wwwAuth string            // on 401
	body    string            // the service's JSON body, checked where the proxy passes it
	claims  map[string]string // upstream must receive exactly these values
	absent  []string          // upstream must not receive these with a value
}

type httpTokens struct {
	sub, id, idNoGroups, expired, read, noScope string
}

func httpModeTokens(t *testing.T, env *testenv.Env) httpTokens {
	const sub = "7d4c2a1e-0000-4000-8000-00000000abcd"
	return httpTokens{
		sub:        sub,
		id:         env.ID(t, issuer.TokenOptions{Subject: sub, Email: "pat@example.com", Groups: []string{"admins", "users"}}),
		idNoGroups: env.ID(t, issuer.TokenOptions{Subject: sub}),
		expired:    env.ID(t, issuer.TokenOptions{TTL: -time.Hour}),
		read:       env.Access(t, issuer.TokenOptions{Subject: sub, Scopes: []string{"petstore/read"}}),
		noScope:    env.Access(t, issuer.TokenOptions{Scopes: []string{"other/x"}}),
	}
}

func httpModeCases(tok httpTokens) []proxyCase {
	b := func(tk string) map[string]string { return map[string]string{"Authorization": "Bearer " + tk} }
	with := func(m map[string]string, kv ...string) map[string]string {
		out := map[string]string{}
		for k, v := range m {
			out[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			out[kv[i]] = kv[i+1]
		}
		return out
	}
	unauthorized := `{"message":"Unauthorized"}`
	invalid := `Bearer error="invalid_token"`
	return []proxyCase{
		{name: "id token allowed with claim headers", path: "/pets", headers: b(tok.id), status: 200,
			claims: map[string]string{"X-User-Sub": tok.sub, "X-User-Email": "pat@example.com", "X-User-Groups": "admins,users"},
			absent: []string{"X-Client-Id"}},
		{name: "access token allowed with claim headers", path: "/pets/7?x=1", headers: b(tok.read), status: 200,
			claims: map[string]string{"X-User-Sub": tok.sub, "X-Client-Id": testenv.ClientID},
			absent: []string{"X-User-Email", "X-User-Groups"}},
		{name: "forged claim headers on an allowed route whose token lacks them", path: "/pets",
			headers: with(b(tok.idNoGroups), "X-User-Groups", "admins", "X-Client-Id", "forged-client", "X-User-Email", "boss@example.com"),
			status:  200, claims: map[string]string{"X-User-Sub": tok.sub},
			absent: []string{"X-User-Groups", "X-Client-Id", "X-User-Email"}},
		{name: "forged claim headers on a NONE route", path: "/health",
			headers: map[string]string{"X-User-Sub": "root", "X-User-Groups": "admins", "X-Client-Id": "forged", "X-User-Email": "x@example.com"},
			status:  200, absent: []string{"X-User-Sub", "X-User-Groups", "X-Client-Id", "X-User-Email"}},
		// CGI-style upstreams read X_User_Sub as X-User-Sub.
		{name: "forged underscore spellings of claim headers", path: "/pets",
			headers: with(b(tok.idNoGroups), "X_User_Sub", "root", "X_User_Groups", "admins"),
			status:  200, claims: map[string]string{"X-User-Sub": tok.sub},
			absent: []string{"X_User_Sub", "X_User_Groups", "X-User-Groups"}},
		{name: "forged underscore spellings on a NONE route", path: "/health",
			headers: map[string]string{"X_User_Sub": "root", "X_Client_Id": "forged"},
			status:  200, absent: []string{"X_User_Sub", "X_Client_Id", "X-User-Sub", "X-Client-Id"}},
		{name: "no token", path: "/pets", status: 401, reason: "token_missing", wwwAuth: "Bearer", body: unauthorized},
		{name: "forwarding headers cannot open a protected route", path: "/pets",
			headers: map[string]string{"X-Forwarded-Uri": "/health", "X-Forwarded-Method": "GET", "X-Original-URI": "/health", "X-Original-Method": "GET"},
			status:  401, reason: "token_missing", wwwAuth: "Bearer", body: unauthorized},
		{name: "expired", path: "/pets", headers: b(tok.expired), status: 401, reason: "token_expired",
			wwwAuth: `Bearer error="invalid_token", error_description="token expired"`, body: `{"message":"The incoming token has expired"}`},
		{name: "bad signature", path: "/pets", headers: b(tok.id[:len(tok.id)-4] + "AAAA"), status: 401, reason: "signature_invalid", wwwAuth: invalid, body: unauthorized},
		{name: "id token where an access token is required", path: "/pets/7", headers: b(tok.id), status: 401, reason: "token_use_mismatch", wwwAuth: invalid, body: unauthorized},
		{name: "scope missing", path: "/pets/7", headers: b(tok.noScope), status: 403, reason: "scope_missing", body: `{"message":"Forbidden"}`},
		{name: "no route", path: "/nowhere", headers: b(tok.id), status: 403, reason: "route_not_found", body: `{"message":"Missing Authentication Token"}`},
		{name: "method not routed", method: "PUT", path: "/pets", headers: b(tok.id), status: 403, reason: "route_not_found", body: `{"message":"Missing Authentication Token"}`},
	}
}

func runProxyCase(t *testing.T, base string, up *recorder, c proxyCase, jsonBody bool) {
	t.Helper()
	id := strconv.FormatInt(time.Now().UnixNano(), 36)
	m := c.method
	if m == "" {
		m = http.MethodGet
	}
	req, err := http.NewRequest(m, base+c.path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range c.headers {
		req.Header.Set(k, v)
	}
	req.Header.Set("X-Test-Id", id)
	client := &http.Client{Timeout: 15 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", m, c.path, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	got, reached := up.get(id)

	if resp.StatusCode != c.status {
		t.Fatalf("status %d, want %d (reason %q, body %s)", resp.StatusCode, c.status, resp.Header.Get("X-Extauthz-Reason"), body)
	}
	if c.status != 200 {
		if reached {
			t.Fatalf("a denied request reached the upstream")
		}
		if r := resp.Header.Values("X-Extauthz-Reason"); len(r) != 1 || r[0] != c.reason {
			t.Errorf("x-extauthz-reason = %q, want %q", r, c.reason)
		}
		if c.status == 401 {
			if w := resp.Header.Values("Www-Authenticate"); len(w) != 1 || w[0] != c.wwwAuth {
				t.Errorf("WWW-Authenticate = %q, want exactly one %q", w, c.wwwAuth)
			}
		}
		if jsonBody && string(body) != c.body {
			t.Errorf("body %s, want %s", body, c.body)
		}
		return
	}
	if !reached {
		t.Fatal("an allowed request never reached the upstream")
	}
	if r := resp.Header.Get("X-Extauthz-Reason"); r != "" {
		t.Errorf("allowed response carries x-extauthz-reason %q", r)
	}
	if want := strings.SplitN(c.path, "?", 2)[0]; got.path != want {
		t.Errorf("upstream got path %q, want %q", got.path, want)
	}
	for k, v := range c.claims {
		if vs := got.header.Values(k); len(vs) != 1 || vs[0] != v {
			t.Errorf("upstream %s = %q, want %q", k, vs, v)
		}
	}
	for _, k := range c.absent {
		for _, v := range got.header.Values(k) {
			if v != "" {
				t.Errorf("upstream received %s: %q (forged or unset claim header passed)", k, v)
			}
		}
	}
}

// startHTTPService runs extauthz serve on the example policy with its pool
// pointed at env's issuer, and returns its HTTP authorization address.
func startHTTPService(t *testing.T, env *testenv.Env) string {
	t.Helper()
	src, err := os.ReadFile("../k8s/base/policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(src)
	for old, repl := range map[string]string{
		"- arn: arn:aws:cognito-idp:us-east-1:123456789012:userpool/us-east-1_EXAMPLE00": "- { userPoolId: " + testenv.PoolID + ", issuer: " + env.IssuerURL() + ", jwksUri: " + env.JWKSURL() + " }",
		"appClientIds: [1example23456789abcdefghij0]":                                    "appClientIds: [" + testenv.ClientID + "]",
	} {
		if !strings.Contains(doc, old) {
			t.Fatalf("example policy no longer contains %q: update this test", old)
		}
		doc = strings.ReplaceAll(doc, old, repl)
	}
	path := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	startService(t, path, serveOptions{args: []string{"--http-authz-addr", addr}})
	if err := waitListening(addr, 10*time.Second); err != nil {
		t.Fatalf("http authz listener: %v", err)
	}
	return addr
}

// recorder is the upstream API: it answers 200 and remembers each request
// by its X-Test-Id.
type recorder struct {
	addr string
	mu   sync.Mutex
	seen map[string]recorded
}

type recorded struct {
	path   string
	header http.Header
}

func newRecorder(t *testing.T) *recorder {
	t.Helper()
	r := &recorder{seen: map[string]recorded{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.seen[req.Header.Get("X-Test-Id")] = recorded{req.URL.Path, req.Header.Clone()}
		r.mu.Unlock()
		_, _ = io.WriteString(w, "upstream")
	}))
	t.Cleanup(srv.Close)
	r.addr = srv.Listener.Addr().String()
	return r
}

func (r *recorder) get(id string) (recorded, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	v, ok := r.seen[id]
	return v, ok
}

// proxyBinary finds nginx or caddy (Debian puts nginx in /usr/sbin, which
// a non-root PATH may lack); missing means skip, or fail under CI.
func proxyBinary(t *testing.T, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/usr/bin", "/usr/local/bin", "/usr/local/sbin"} {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p
		}
	}
	missing(t, name, "apt-get install "+name+" (as .ci/run does)")
	return ""
}

// fillExample reads a shipped example and replaces each old string, which
// must be there, so that a changed example cannot silently go untemplated.
func fillExample(t *testing.T, file string, repl map[string]string) string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for old, new := range repl {
		if !strings.Contains(s, old) {
			t.Fatalf("%s no longer contains %q: update this test", file, old)
		}
		s = strings.ReplaceAll(s, old, new)
	}
	return s
}

// startNginx runs nginx, as the current user in a temp dir, with the
// shipped server block included in a minimal main config, and returns its
// base URL.
func startNginx(t *testing.T, authz, upstream string) string {
	t.Helper()
	bin := proxyBinary(t, "nginx")
	dir := t.TempDir()
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	listen := "127.0.0.1:" + strconv.Itoa(port)
	site := fillExample(t, "../examples/nginx/extauthz.conf", map[string]string{
		"server 127.0.0.1:9003;": "server " + authz + ";",
		"server 127.0.0.1:8080;": "server " + upstream + ";",
		"listen 127.0.0.1:8000;": "listen " + listen + ";",
	})
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	sitePath := write("extauthz.conf", site)
	// master_process off: one process as the current user, no worker user
	// switch; every path nginx writes is in dir.
	main := write("nginx.conf", fmt.Sprintf(`daemon off;
master_process off;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log info;
events { worker_connections 64; }
http {
    access_log %[1]s/access.log;
    client_body_temp_path %[1]s/body;
    proxy_temp_path %[1]s/proxy;
    fastcgi_temp_path %[1]s/fastcgi;
    uwsgi_temp_path %[1]s/uwsgi;
    scgi_temp_path %[1]s/scgi;
    include %[2]s;
}
`, dir, sitePath))
	p, err := startProc("nginx", dir, filepath.Join(dir, "stdout.log"), childEnv(), bin, "-p", dir, "-e", filepath.Join(dir, "error.log"), "-c", main)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.stop(5 * time.Second)
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Logf("nginx error.log:\n%s", tail(string(b), 8<<10))
		}
	})
	if err := waitListening(listen, 15*time.Second); err != nil {
		b, _ := os.ReadFile(filepath.Join(dir, "error.log"))
		t.Fatalf("nginx did not start: %v\n%s\n%s", err, p.logs(), b)
	}
	return "http://" + listen
}

// startCaddy runs caddy, as the current user with its home, data and
// config in a temp dir, on the shipped Caddyfile, and returns its base URL.
func startCaddy(t *testing.T, authz, upstream string) string {
	t.Helper()
	bin := proxyBinary(t, "caddy")
	dir := t.TempDir()
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	adminPort, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	listen := "127.0.0.1:" + strconv.Itoa(port)
	conf := fillExample(t, "../examples/caddy/Caddyfile", map[string]string{
		"forward_auth 127.0.0.1:9003":  "forward_auth " + authz,
		"reverse_proxy 127.0.0.1:8080": "reverse_proxy " + upstream,
		"http://127.0.0.1:8000":        "http://" + listen,
		"admin localhost:2019":         "admin localhost:" + strconv.Itoa(adminPort),
	})
	path := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	envv := childEnv("HOME="+dir, "XDG_DATA_HOME="+filepath.Join(dir, "data"), "XDG_CONFIG_HOME="+filepath.Join(dir, "config"))
	p, err := startProc("caddy", dir, filepath.Join(dir, "caddy.log"), envv, bin, "run", "--config", path, "--adapter", "caddyfile")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.stop(5 * time.Second)
		if t.Failed() {
			t.Logf("caddy log:\n%s", p.logTail(8<<10))
		}
	})
	if err := waitListening(listen, 15*time.Second); err != nil {
		t.Fatalf("caddy did not start: %v\n%s", err, p.logs())
	}
	return "http://" + listen
}

func waitListening(addr string, within time.Duration) error {
	return wait.Until(within, func() (bool, error) {
		c, err := net.DialTimeout("tcp", addr, 500*time.Millisecond)
		if err != nil {
			return false, err
		}
		c.Close()
		return true, nil
	})
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

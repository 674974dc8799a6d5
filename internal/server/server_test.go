package server_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/cognito-extauthz/cognito-extauthz/internal/issuer"
	"github.com/cognito-extauthz/cognito-extauthz/internal/server"
	"github.com/cognito-extauthz/cognito-extauthz/internal/testenv"
	"github.com/cognito-extauthz/cognito-extauthz/internal/wait"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/jwks"
)

// running is a server started on loopback ports with a client connected.
type running struct {
	srv    *server.Server
	cancel context.CancelFunc
	done   chan error
	conn   *grpc.ClientConn
	authz  authv3.AuthorizationClient
	health healthpb.HealthClient
	admin  string // base URL
	// stopped is set once Run has returned.
	stopped bool
}

func start(t *testing.T, cfg server.Config) *running {
	t.Helper()
	if cfg.GRPCAddr == "" {
		cfg.GRPCAddr = "127.0.0.1:0"
	}
	if cfg.AdminAddr == "" {
		cfg.AdminAddr = "127.0.0.1:0"
	}
	if cfg.Logger == nil {
		cfg.Logger = zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	}
	if cfg.TokenCacheSize == 0 {
		cfg.TokenCacheSize = 1000
	}
	if cfg.ReloadInterval == 0 {
		cfg.ReloadInterval = 200 * time.Millisecond
	}
	if cfg.JWKS.RetryMin == 0 {
		cfg.JWKS.RetryMin = 50 * time.Millisecond
		cfg.JWKS.RetryMax = 200 * time.Millisecond
	}
	srv, err := server.New(cfg)
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{srv: srv, cancel: cancel, done: make(chan error, 1), admin: "http://" + srv.AdminAddr()}
	go func() { r.done <- srv.Run(ctx) }()
	conn, err := grpc.NewClient(srv.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	r.conn = conn
	r.authz = authv3.NewAuthorizationClient(conn)
	r.health = healthpb.NewHealthClient(conn)
	t.Cleanup(func() {
		r.stop(t)
		conn.Close()
	})
	return r
}

// stop ends Run (as SIGTERM does) and waits for it.
func (r *running) stop(t *testing.T) {
	t.Helper()
	r.cancel()
	r.wait(t, 30*time.Second)
}

// wait waits for Run to return nil; later calls return at once.
func (r *running) wait(t *testing.T, within time.Duration) {
	t.Helper()
	if r.stopped {
		return
	}
	select {
	case err := <-r.done:
		r.stopped = true
		if err != nil {
			t.Errorf("Run returned %v, want nil", err)
		}
	case <-time.After(within):
		t.Fatal("Run did not return after shutdown")
	}
}

func (r *running) check(ctx context.Context, path, token string) (*authv3.CheckResponse, error) {
	h := map[string]string{}
	if token != "" {
		h["authorization"] = "Bearer " + token
	}
	return r.authz.Check(ctx, &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Method: "GET", Path: path, Headers: h,
		}},
	}})
}

func (r *running) code(t *testing.T, path, token string) codes.Code {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := r.check(ctx, path, token)
	if err != nil {
		t.Fatalf("Check %s: %v", path, err)
	}
	return codes.Code(resp.GetStatus().GetCode())
}

func (r *running) get(t *testing.T, path string) (int, string) {
	t.Helper()
	resp, err := http.Get(r.admin + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (r *running) healthStatus(t *testing.T, service string) healthpb.HealthCheckResponse_ServingStatus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := r.health.Check(ctx, &healthpb.HealthCheckRequest{Service: service})
	if err != nil {
		return healthpb.HealthCheckResponse_UNKNOWN
	}
	return resp.GetStatus()
}

func TestReadinessWaitsForKeys(t *testing.T) {
	env := testenv.New(t)
	env.SetMode(testenv.Down)
	r := start(t, server.Config{Snapshot: env.Policy(t, testenv.Policy)})

	for _, svc := range []string{"", "envoy.service.auth.v3.Authorization"} {
		if s := r.healthStatus(t, svc); s != healthpb.HealthCheckResponse_NOT_SERVING {
			t.Fatalf("health(%q) = %v before keys, want NOT_SERVING", svc, s)
		}
	}
	if code, _ := r.get(t, "/readyz"); code != http.StatusServiceUnavailable {
		t.Fatalf("/readyz = %d before keys, want 503", code)
	}
	if code, _ := r.get(t, "/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz = %d, want 200 while the process runs", code)
	}
	// Checks are answered meanwhile, closed.
	id := env.ID(t, issuer.TokenOptions{})
	if c := r.code(t, "/pets", id); c != codes.Unavailable {
		t.Fatalf("check before keys = %v, want Unavailable", c)
	}

	env.SetMode(testenv.Up)
	wait.For(t, 10*time.Second, "ready after the JWKS comes up", r.srv.Ready)
	wait.For(t, 5*time.Second, "health SERVING", func() bool {
		return r.healthStatus(t, "envoy.service.auth.v3.Authorization") == healthpb.HealthCheckResponse_SERVING &&
			r.healthStatus(t, "") == healthpb.HealthCheckResponse_SERVING
	})
	code, body := r.get(t, "/readyz")
	if code != http.StatusOK || !strings.Contains(body, `"ready":true`) {
		t.Fatalf("/readyz = %d %s", code, body)
	}
	wait.For(t, 10*time.Second, "check allowed once keys are in", func() bool {
		return r.code(t, "/pets", id) == codes.OK
	})

	// Once ready, a JWKS outage does not make the replica unready: it keeps
	// verifying with the keys it has.
	env.SetMode(testenv.Down)
	if c := r.code(t, "/pets", env.ID(t, issuer.TokenOptions{})); c != codes.OK {
		t.Fatalf("check with stale keys = %v, want OK", c)
	}
	if !r.srv.Ready() {
		t.Fatal("became unready on a JWKS outage")
	}
}

func TestMetricsEndpoint(t *testing.T) {
	env := testenv.New(t)
	r := start(t, server.Config{Snapshot: env.Policy(t, testenv.Policy)})
	wait.For(t, 10*time.Second, "ready", r.srv.Ready)
	r.code(t, "/pets", env.ID(t, issuer.TokenOptions{}))
	r.code(t, "/pets", "")
	_, body := r.get(t, "/metrics")
	for _, want := range []string{
		`extauthz_checks_total{decision="allow",edge="grpc",reason="allowed",route="list-pets"} 1`,
		`extauthz_checks_total{decision="deny",edge="grpc",reason="token_missing",route="list-pets"} 1`,
		`extauthz_check_duration_seconds_bucket{decision="allow",edge="grpc"`,
		`extauthz_jwks_fetches_total{result="ok",source="` + env.JWKSURL() + `"}`,
		`extauthz_policy_reloads_total{result="failure"} 0`,
		`extauthz_token_cache_entries 1`,
		`extauthz_ready 1`,
		`go_goroutines`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

func TestInvalidPolicyRefusesToStart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(path, []byte("apiVersion: cognito-extauthz/v1\nroutes: []\nbogus: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := server.New(server.Config{PolicyPath: path, GRPCAddr: "127.0.0.1:0", AdminAddr: "127.0.0.1:0"})
	if err == nil || !strings.Contains(err.Error(), "bogus") {
		t.Fatalf("New with an invalid policy = %v, want the problem reported", err)
	}
	_, err = server.New(server.Config{PolicyPath: filepath.Join(t.TempDir(), "missing.yaml"), GRPCAddr: "127.0.0.1:0", AdminAddr: "127.0.0.1:0"})
	if err == nil {
		t.Fatal("New with a missing policy file succeeded")
	}
}

// kubeletDir writes files into dir the way the kubelet updates a mounted
// ConfigMap: a new timestamped directory, a ..data_tmp symlink to it
// renamed over ..data, and the old directory removed. The file itself is a
// symlink into ..data, created once.
type kubeletDir struct {
	dir string
	gen int
	old string
}

// startWatched serves testenv.Policy from a kubelet-style directory and
// waits until ready; the test edits the policy with k.write.
func startWatched(t *testing.T) (*testenv.Env, *kubeletDir, string, *running) {
	t.Helper()
	env := testenv.New(t)
	k := &kubeletDir{dir: t.TempDir()}
	base := env.Expand(testenv.Policy)
	k.write(t, "policy.yaml", base)
	r := start(t, server.Config{PolicyPath: filepath.Join(k.dir, "policy.yaml")})
	wait.For(t, 10*time.Second, "ready", r.srv.Ready)
	return env, k, base, r
}

func (k *kubeletDir) write(t *testing.T, name, content string) {
	t.Helper()
	k.gen++
	ts := fmt.Sprintf("..2026_11_25_17_00_%02d.%d", k.gen, k.gen)
	if err := os.Mkdir(filepath.Join(k.dir, ts), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(k.dir, ts, name), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(k.dir, "..data_tmp")
	if err := os.Symlink(ts, tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(k.dir, "..data")); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(k.dir, name)
	if _, err := os.Lstat(link); os.IsNotExist(err) {
		if err := os.Symlink(filepath.Join("..data", name), link); err != nil {
			t.Fatal(err)
		}
	}
	if k.old != "" {
		if err := os.RemoveAll(filepath.Join(k.dir, k.old)); err != nil {
			t.Fatal(err)
		}
	}
	k.old = ts
}

// TestHotReloadUnderLoad updates the policy the way Kubernetes does while
// other goroutines check continuously: no check may fail or see a
// half-applied policy, the new policy is live within the settle interval
// plus 2 s (the swap is atomic, so it settles at the first look), and an invalid
// update is rejected with the old policy still serving.
func TestHotReloadUnderLoad(t *testing.T) {
	env, k, base, r := startWatched(t)

	id := env.ID(t, issuer.TokenOptions{})
	var checks, failures atomic.Int64
	var firstFailure atomic.Value
	stopChecks := r.checkLoop(4, "/pets", id, 0, func(resp *authv3.CheckResponse, err error) {
		checks.Add(1)
		if err != nil || codes.Code(resp.GetStatus().GetCode()) != codes.OK {
			failures.Add(1)
			firstFailure.CompareAndSwap(nil, fmt.Sprintf("err=%v status=%v", err, resp.GetStatus()))
		}
	})

	// A new route appears.
	if c := r.code(t, "/reports", id); c != codes.PermissionDenied {
		t.Fatalf("/reports before reload = %v, want PermissionDenied (no route)", c)
	}
	withReports := strings.Replace(base, "  - name: health\n", `  - name: reports
    match: { path: /reports }
    authorizer: users
    mode: identity-claims
  - name: health
`, 1)
	if withReports == base {
		t.Fatal("test policy edit did not apply")
	}
	changed := time.Now()
	k.write(t, "policy.yaml", withReports)
	wait.For(t, liveWithin, "new route live within the settle interval plus 2 s", func() bool {
		return r.code(t, "/reports", id) == codes.OK
	})
	t.Logf("reload live after %s", time.Since(changed).Round(time.Millisecond))

	// An invalid update is rejected; the last good policy keeps serving.
	k.write(t, "policy.yaml", strings.Replace(withReports, "mode: identity-claims", "mode: bogus-mode", 1))
	wait.For(t, liveWithin+time.Second, "failed reload counted", func() bool {
		_, body := r.get(t, "/metrics")
		return strings.Contains(body, `extauthz_policy_reloads_total{result="failure"} 1`)
	})
	if c := r.code(t, "/reports", id); c != codes.OK {
		t.Fatalf("after a rejected reload /reports = %v, want the old policy (OK)", c)
	}

	// A route disappears.
	k.write(t, "policy.yaml", base)
	wait.For(t, liveWithin, "removed route gone within the settle interval plus 2 s", func() bool {
		return r.code(t, "/reports", id) == codes.PermissionDenied
	})

	// Checks ran throughout; a few more after the last reload before the
	// loop stops (the count is a condition, never a rate).
	from := checks.Load()
	wait.For(t, wait.Patient, "checks after the last reload", func() bool { return checks.Load() >= max(from+10, 20) })
	stopChecks()
	if n := failures.Load(); n != 0 {
		t.Fatalf("%d of %d checks failed during reloads; first: %v", n, checks.Load(), firstFailure.Load())
	}
	_, body := r.get(t, "/metrics")
	if !strings.Contains(body, `extauthz_policy_reloads_total{result="success"} 2`) {
		t.Errorf("reload successes not counted:\n%s", grepLines(body, "reloads"))
	}
}

// A reload that adds a pool fetches its keys before the policy takes
// effect, so the first check on the new pool does not fail.
func TestReloadFetchesNewKeysFirst(t *testing.T) {
	env := testenv.New(t)
	other := testenv.New(t)
	k := &kubeletDir{dir: t.TempDir()}
	base := env.Expand(testenv.Policy)
	k.write(t, "policy.yaml", base)
	r := start(t, server.Config{PolicyPath: filepath.Join(k.dir, "policy.yaml")})
	wait.For(t, 10*time.Second, "ready", r.srv.Ready)

	doc := strings.Replace(base, "        jwksUri: "+env.JWKSURL()+"\n    appClientIds",
		"        jwksUri: "+env.JWKSURL()+"\n      - userPoolId: other_pool\n        issuer: "+other.IssuerURL()+
			"\n        jwksUri: "+other.JWKSURL()+"\n    appClientIds", 1)
	if doc == base {
		t.Fatal("test policy edit did not apply")
	}
	tok := other.ID(t, issuer.TokenOptions{})
	if c := r.code(t, "/pets", tok); c != codes.Unauthenticated {
		t.Fatalf("other pool before reload = %v, want Unauthenticated (issuer_unknown)", c)
	}
	hitsBefore := other.Hits()
	k.write(t, "policy.yaml", doc)
	wait.For(t, liveWithin, "other pool accepted", func() bool { return r.code(t, "/pets", tok) == codes.OK })
	if other.Hits() <= hitsBefore {
		t.Fatal("new pool's JWKS never fetched")
	}
}

// TestShutdownDrains: on shutdown, health turns NOT_SERVING and /readyz
// 503 during the shutdown delay (before the listeners close: a health
// answer at all proves the gRPC listener was still open), a check already
// in flight still gets its answer, and Run returns nil.
func TestShutdownDrains(t *testing.T) {
	env := testenv.New(t)
	snap := env.Policy(t, testenv.Policy)
	r := start(t, server.Config{
		Snapshot:      snap,
		ShutdownDelay: 3 * time.Second,
		ShutdownGrace: 10 * time.Second,
		// The in-flight check waits for its refetch until the fetch times out.
		JWKS: jwks.Options{FetchTimeout: 800 * time.Millisecond, MinRefetchInterval: time.Millisecond, MissWait: time.Minute},
	})
	wait.For(t, 10*time.Second, "ready", r.srv.Ready)

	inflight := r.checkInFlight(t, env)

	r.cancel()
	wait.For(t, wait.Patient, "NOT_SERVING while the listener is still open", func() bool {
		return r.healthStatus(t, "") == healthpb.HealthCheckResponse_NOT_SERVING
	})
	if code, _ := r.get(t, "/readyz"); code != http.StatusServiceUnavailable {
		t.Fatalf("/readyz during drain = %d, want 503", code)
	}
	select {
	case c := <-inflight:
		// The refetch timed out, so whether the kid exists is unknowable:
		// answered 503 (never dropped on the floor, never allowed).
		if c != codes.Unavailable {
			t.Fatalf("in-flight check = %v, want Unavailable", c)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("in-flight check never answered")
	}
	r.wait(t, 15*time.Second)
	if _, err := net.DialTimeout("tcp", r.srv.GRPCAddr(), time.Second); err == nil {
		t.Fatal("gRPC port still accepting after shutdown")
	}
}

// A grace shorter than the in-flight work still ends Run.
func TestShutdownGraceBounded(t *testing.T) {
	env := testenv.New(t)
	r := start(t, server.Config{
		Snapshot:      env.Policy(t, testenv.Policy),
		ShutdownGrace: 200 * time.Millisecond,
		// The in-flight check would wait 20 s for its refetch.
		JWKS: jwks.Options{FetchTimeout: 20 * time.Second, MinRefetchInterval: time.Millisecond, MissWait: time.Minute},
	})
	wait.For(t, 10*time.Second, "ready", r.srv.Ready)
	r.checkInFlight(t, env)
	start := time.Now()
	r.stop(t)
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("shutdown took %s with a 200ms grace", d)
	}
}

// checkInFlight starts a check that stays in flight: its token names a kid
// the cache lacks, so the server refetches the JWKS, which hangs until the
// fetch timeout. The channel receives the check's gRPC status code.
func (r *running) checkInFlight(t *testing.T, env *testenv.Env) <-chan codes.Code {
	t.Helper()
	env.SetMode(testenv.Hang)
	kid, err := env.Issuer.AddKey()
	if err != nil {
		t.Fatal(err)
	}
	tok := env.ID(t, issuer.TokenOptions{Header: map[string]any{"kid": kid}})
	hits := env.Hits()
	inflight := make(chan codes.Code, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		resp, err := r.check(ctx, "/pets", tok)
		if err != nil {
			inflight <- codes.Internal
			return
		}
		inflight <- codes.Code(resp.GetStatus().GetCode())
	}()
	wait.For(t, 5*time.Second, "refetch in flight", func() bool { return env.Hits() > hits })
	return inflight
}

// liveWithin bounds how long a policy change may take to be in force: the
// settle interval, plus the watcher's debounce and a key fetch.
const liveWithin = server.DefaultReloadSettle + 2*time.Second

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// checkLoop runs n goroutines that each check path with token over and
// over (pausing between checks), passing every answer to seen, until the
// returned stop is called; stop waits for them.
func (r *running) checkLoop(n int, path, token string, pause time.Duration, seen func(*authv3.CheckResponse, error)) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				resp, err := r.check(ctx, path, token)
				cancel()
				seen(resp, err)
				time.Sleep(pause)
			}
		})
	}
	return func() {
		close(done)
		wg.Wait()
	}
}

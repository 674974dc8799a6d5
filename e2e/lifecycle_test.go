package e2e

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/cognito-extauthz/cognito-extauthz/internal/wait"
)

// configMapDir writes a file the way the kubelet updates a mounted
// ConfigMap: the content lives in a timestamped directory, `..data` is a
// symlink to it, and the file itself is a symlink through `..data`. An
// update writes a new directory and renames a new `..data` symlink over the
// old one, so the file's inode and its directory's entries never change.
type configMapDir struct {
	dir, name string
	current   string // the timestamped directory ..data points to
	n         int
}

func newConfigMapDir(t *testing.T, name string, content []byte) *configMapDir {
	t.Helper()
	c := &configMapDir{dir: t.TempDir(), name: name}
	c.update(t, content)
	if err := os.Symlink(filepath.Join("..data", name), filepath.Join(c.dir, name)); err != nil {
		t.Fatal(err)
	}
	return c
}

// path is the file a program is told to read.
func (c *configMapDir) path() string { return filepath.Join(c.dir, c.name) }

func (c *configMapDir) update(t *testing.T, content []byte) {
	t.Helper()
	c.n++
	ts := fmt.Sprintf("..%s.%09d", time.Now().UTC().Format("2006_01_02_15_04_05"), c.n)
	if err := os.Mkdir(filepath.Join(c.dir, ts), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(c.dir, ts, c.name), content, 0o644); err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(c.dir, "..data_tmp")
	if err := os.Symlink(ts, tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(c.dir, "..data")); err != nil {
		t.Fatal(err)
	}
	if c.current != "" {
		if err := os.RemoveAll(filepath.Join(c.dir, c.current)); err != nil {
			t.Fatal(err)
		}
	}
	c.current = ts
}

// TestPolicyHotReload changes the policy of a running server the way
// Kubernetes does, then breaks it.
func TestPolicyHotReload(t *testing.T) {
	f := setup(t)
	cm := newConfigMapDir(t, "policy.yaml", f.policy(t, f.jwksURI, true))
	// A poll interval far beyond the deadlines below: only the file
	// watcher's events can meet them.
	svc := startService(t, cm.path(), serveOptions{args: []string{"--reload-interval", "1m"}})

	aliceID := bearer(f.aliceWeb.id)
	profile := request{path: "/profile", headers: aliceID}
	admin := request{path: "/admin/users", headers: aliceID}
	pet := request{path: "/pets/7", headers: bearer(f.aliceWeb.access)}
	const (
		success = `extauthz_policy_reloads_total{result="success"}`
		failure = `extauthz_policy_reloads_total{result="failure"}`
	)

	if r := svc.check(t, profile); r.code != codes.OK {
		t.Fatalf("before any reload: /profile = %v %q, want allowed", r.code, r.reason)
	}
	_, before, err := svc.readyz()
	if err != nil {
		t.Fatal(err)
	}
	successes := svc.metric(t, success)

	// 1. Remove the profile route.
	start := time.Now()
	cm.update(t, f.policy(t, f.jwksURI, false))
	// Live within the default settle interval (2 s) plus 2 s.
	err = wait.Until(4*time.Second, func() (bool, error) {
		r := svc.check(t, profile)
		return r.reason == "route_not_found", fmt.Errorf("/profile: %v %q", r.code, r.reason)
	})
	if err != nil {
		t.Fatalf("route removed by a ConfigMap-style swap: %v", err)
	}
	t.Logf("route removal took effect after %v", time.Since(start).Round(time.Millisecond))
	verify(t, svc.check(t, profile), noRoute)
	if r := svc.check(t, admin); r.code != codes.OK {
		t.Errorf("after the reload: /admin/users = %v %q, want allowed", r.code, r.reason)
	}
	if got := svc.metric(t, success); got != successes+1 {
		t.Errorf("%s = %v, want %v", success, got, successes+1)
	}
	_, reloaded, err := svc.readyz()
	if err != nil {
		t.Fatal(err)
	}
	if reloaded.Digest == before.Digest || reloaded.Routes != before.Routes-1 {
		t.Errorf("readyz after reload: digest %s routes %d; before: digest %s routes %d", reloaded.Digest, reloaded.Routes, before.Digest, before.Routes)
	}

	// 2. Break the file: the policy in force stays.
	invalid, err := os.ReadFile(filepath.Join("testdata", "invalid-policy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	failures := svc.metric(t, failure)
	cm.update(t, invalid)
	err = wait.Until(10*time.Second, func() (bool, error) {
		got := svc.metric(t, failure)
		return got > failures, fmt.Errorf("%s still %v", failure, got)
	})
	if err != nil {
		t.Fatalf("invalid policy: %v", err)
	}
	verify(t, svc.check(t, profile), noRoute)
	for _, r := range []request{admin, pet} {
		if got := svc.check(t, r); got.code != codes.OK {
			t.Errorf("with an invalid file in place: %s = %v %q, want allowed by the last good policy", r.path, got.code, got.reason)
		}
	}
	code, rz, err := svc.readyz()
	if err != nil || code != http.StatusOK || rz.Digest != reloaded.Digest {
		t.Errorf("readyz with an invalid file: %d digest %s (%v), want 200 and digest %s", code, rz.Digest, err, reloaded.Digest)
	}
	if got := svc.metric(t, success); got != successes+1 {
		t.Errorf("%s = %v after a failed reload, want %v", success, got, successes+1)
	}

	// 3. Fix it: the server follows again.
	cm.update(t, f.policy(t, f.jwksURI, true))
	err = wait.Until(10*time.Second, func() (bool, error) {
		r := svc.check(t, profile)
		return r.code == codes.OK, fmt.Errorf("/profile: %v %q", r.code, r.reason)
	})
	if err != nil {
		t.Fatalf("policy restored: %v", err)
	}
}

// TestGracefulShutdown sends SIGTERM to a running server: health turns
// NOT_SERVING and /readyz 503 while checks are still answered during the
// shutdown delay, then the process exits 0.
func TestGracefulShutdown(t *testing.T) {
	f := setup(t)
	svc := startService(t, f.writePolicy(t), serveOptions{args: []string{
		"--shutdown-delay", "5s", "--shutdown-grace", "10s",
	}})
	profile := request{path: "/profile", headers: bearer(f.aliceWeb.id)}
	if r := svc.check(t, profile); r.code != codes.OK {
		t.Fatalf("before SIGTERM: %v %q, want allowed", r.code, r.reason)
	}

	if err := svc.proc.signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	err := wait.Until(4*time.Second, func() (bool, error) {
		code, body, err := svc.readyz()
		if err != nil {
			return false, err
		}
		return code == http.StatusServiceUnavailable && body.Draining, fmt.Errorf("/readyz %d %+v", code, body)
	})
	if err != nil {
		t.Errorf("/readyz during the drain: %v", err)
	}
	for _, name := range []string{"", authService} {
		st, err := svc.healthStatus(name)
		if err != nil || st != healthpb.HealthCheckResponse_NOT_SERVING {
			t.Errorf("health %q during the drain = %v, %v; want NOT_SERVING", name, st, err)
		}
	}
	if r := svc.check(t, profile); r.code != codes.OK {
		t.Errorf("check during the shutdown delay: %v %q, want still allowed", r.code, r.reason)
	}

	if err := svc.proc.wait(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	if code := svc.proc.exitCode(); code != 0 {
		t.Errorf("exit code %d after SIGTERM, want 0", code)
	}
}

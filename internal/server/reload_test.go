package server_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc/codes"

	"github.com/cognito-extauthz/cognito-extauthz/internal/issuer"
	"github.com/cognito-extauthz/cognito-extauthz/internal/server"
	"github.com/cognito-extauthz/cognito-extauthz/internal/testenv"
	"github.com/cognito-extauthz/cognito-extauthz/internal/wait"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/policy"
)

// halfWrittenPolicy protects /admin with a group requirement on its last line, so
// every prefix of the file that stops before that line is a valid policy
// that lets any signed-in user in.
const halfWrittenPolicy = `apiVersion: cognito-extauthz/v1
authorizers:
  users:
    userPools:
      - userPoolId: ${POOL}
        issuer: ${ISSUER}
        jwksUri: ${JWKS}
    appClientIds: [client-a]
routes:
%s  - name: admin
    match: { path: /admin }
    authorizer: users
    mode: identity-claims
    groups: [admins]
`

const reportsRoute = `  - name: reports
    match: { path: /reports }
    authorizer: users
    mode: identity-claims
`

// TestHalfWrittenPolicyNeverApplied reproduces a policy rewritten in place
// by a slow writer: the new file's valid prefix (the admin route without its
// `groups: [admins]` line) sits on disk while checks run, before the rest is
// appended. A non-admin checking /admin over real gRPC throughout must never
// be allowed, and the completed policy must be applied once it has settled.
// The settle time is set here, far above the time the prefix sits on disk,
// so the test never races a default.
func TestHalfWrittenPolicyNeverApplied(t *testing.T) {
	env := testenv.New(t)
	path := filepath.Join(t.TempDir(), "policy.yaml")
	before := env.Expand(fmt.Sprintf(halfWrittenPolicy, ""))
	after := env.Expand(fmt.Sprintf(halfWrittenPolicy, reportsRoute))
	if err := os.WriteFile(path, []byte(before), 0o644); err != nil {
		t.Fatal(err)
	}
	const settle = 6 * time.Second
	r := start(t, server.Config{PolicyPath: path, ReloadSettle: settle})
	wait.For(t, 10*time.Second, "ready", r.srv.Ready)

	user := env.ID(t, issuer.TokenOptions{Groups: []string{"users"}})
	admin := env.ID(t, issuer.TokenOptions{Groups: []string{"admins"}})
	if c := r.code(t, "/admin", user); c != codes.PermissionDenied {
		t.Fatalf("non-admin on /admin before the rewrite = %v, want PermissionDenied", c)
	}

	var checks, allowed atomic.Int64
	stopChecks := r.checkLoop(2, "/admin", user, 5*time.Millisecond, func(resp *authv3.CheckResponse, err error) {
		checks.Add(1)
		if err == nil && codes.Code(resp.GetStatus().GetCode()) == codes.OK {
			allowed.Add(1)
		}
	})

	// The slow in-place rewrite: truncate, write a valid prefix, pause,
	// complete.
	cut := strings.Index(after, "    groups: [admins]\n")
	if cut < 0 {
		t.Fatal("test policy lost its groups line")
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(after[:cut]); err != nil {
		t.Fatal(err)
	}
	prefixed := time.Now()
	// The prefix stays while checks run on it: at least a second (the
	// watcher sees a write at once) and 50 checks.
	from := checks.Load()
	wait.For(t, settle/2, "50 checks while the prefix is on disk", func() bool {
		return checks.Load() >= from+50 && time.Since(prefixed) >= time.Second
	})
	if _, err := f.WriteString(after[cut:]); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}

	// The completed policy goes live once settled; keep checking a little
	// past that.
	wait.For(t, settle+wait.Patient, "completed policy applied", func() bool {
		return r.code(t, "/reports", user) == codes.OK
	})
	from = checks.Load()
	wait.For(t, wait.Patient, "checks after the completed policy applied", func() bool { return checks.Load() >= from+10 })
	stopChecks()

	if n := allowed.Load(); n != 0 {
		t.Fatalf("a non-admin was allowed on /admin %d times of %d checks during the rewrite", n, checks.Load())
	}
	if c := r.code(t, "/admin", admin); c != codes.OK {
		t.Fatalf("admin on /admin after the rewrite = %v, want OK", c)
	}
	if c := r.code(t, "/admin", user); c != codes.PermissionDenied {
		t.Fatalf("non-admin on /admin after the rewrite = %v, want PermissionDenied", c)
	}
	_, body := r.get(t, "/metrics")
	if !strings.Contains(body, `extauthz_policy_reloads_total{result="unsettled"}`) ||
		strings.Contains(body, `extauthz_policy_reloads_total{result="unsettled"} 0`) {
		t.Errorf("unsettled reload not counted:\n%s", grepLines(body, "reloads"))
	}
}

// TestReloadHonoursSizeLimit: a reload reads the policy file with the size
// limit the server was given (policy.Options.MaxBytes), as the first load
// does: a file one byte over it is rejected and counted, the policy in
// force kept; at the limit the new policy applies.
func TestReloadHonoursSizeLimit(t *testing.T) {
	env := testenv.New(t)
	path := filepath.Join(t.TempDir(), "policy.yaml")
	before := env.Expand(fmt.Sprintf(halfWrittenPolicy, ""))
	after := env.Expand(fmt.Sprintf(halfWrittenPolicy, reportsRoute))
	if err := os.WriteFile(path, []byte(before), 0o644); err != nil {
		t.Fatal(err)
	}
	limit := len(after) - 1 // after without its final newline fits exactly
	r := start(t, server.Config{PolicyPath: path, ReloadSettle: -1, Policy: policy.Options{MaxBytes: int64(limit)}})
	wait.For(t, 10*time.Second, "ready", r.srv.Ready)
	user := env.ID(t, issuer.TokenOptions{Groups: []string{"users"}})

	if err := os.WriteFile(path, []byte(after), 0o644); err != nil {
		t.Fatal(err)
	}
	r.srv.Reload()
	if c := r.code(t, "/reports", user); c == codes.OK {
		t.Fatalf("/reports after a reload of a policy over the limit = %v: it was applied", c)
	}
	if _, body := r.get(t, "/metrics"); !strings.Contains(body, `extauthz_policy_reloads_total{result="failure"}`) ||
		strings.Contains(body, `extauthz_policy_reloads_total{result="failure"} 0`) {
		t.Errorf("rejected reload not counted:\n%s", grepLines(body, "reloads"))
	}

	if err := os.WriteFile(path, []byte(after[:limit]), 0o644); err != nil {
		t.Fatal(err)
	}
	r.srv.Reload()
	if c := r.code(t, "/reports", user); c != codes.OK {
		t.Fatalf("/reports after a reload of a policy at the limit = %v, want OK", c)
	}
}

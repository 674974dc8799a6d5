package server_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/cognito-extauthz/cognito-extauthz/internal/issuer"
	"github.com/cognito-extauthz/cognito-extauthz/internal/revocation"
	"github.com/cognito-extauthz/cognito-extauthz/internal/revocation/redistest"
	"github.com/cognito-extauthz/cognito-extauthz/internal/server"
	"github.com/cognito-extauthz/cognito-extauthz/internal/testenv"
	"github.com/cognito-extauthz/cognito-extauthz/internal/wait"
)

// jtiOf reads a token's jti without verifying it.
func jtiOf(t *testing.T, raw string) string {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(strings.Split(raw, ".")[1])
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		JTI string `json:"jti"`
	}
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return c.JTI
}

// withRevocation is testenv's policy with a revocation block.
func withRevocation(env *testenv.Env, block string) string {
	return env.Expand(strings.Replace(testenv.Policy, "defaultAction: deny", "defaultAction: deny\n"+block, 1))
}

// TestRevocationFile: over real gRPC, a token allowed and cached is
// refused 401 token_revoked once its jti is added to the list file (no
// restart, no cache expiry); a bad edit of the file keeps the last good
// list (the token stays refused), and a good one applies.
func TestRevocationFile(t *testing.T) {
	env := testenv.New(t)
	dir := t.TempDir()
	policyPath := filepath.Join(dir, "policy.yaml")
	listPath := filepath.Join(dir, "revoked.txt")
	write := func(path, s string) {
		t.Helper()
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	}
	write(listPath, "# revoked tokens\n")
	write(policyPath, withRevocation(env, "revocation: { file: revoked.txt }\n"))
	r := start(t, server.Config{PolicyPath: policyPath, ReloadInterval: 100 * time.Millisecond, ReloadSettle: -1})
	wait.For(t, 10*time.Second, "ready", r.srv.Ready)

	tok := env.ID(t, issuer.TokenOptions{})
	other := env.ID(t, issuer.TokenOptions{})
	for range 2 { // the second answer comes from the token cache
		if c := r.code(t, "/pets", tok); c != codes.OK {
			t.Fatalf("before the revocation: %v", c)
		}
	}
	write(listPath, "jti "+jtiOf(t, tok)+"\n")
	wait.For(t, wait.Patient, "the revoked token refused", func() bool { return r.code(t, "/pets", tok) == codes.Unauthenticated })
	resp, err := r.check(t.Context(), "/pets", tok)
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.GetStatus().GetMessage(); got != "token_revoked" {
		t.Errorf("reason %q, want token_revoked", got)
	}
	if c := r.code(t, "/pets", other); c != codes.OK {
		t.Errorf("an unlisted token: %v", c)
	}

	// A bad line rejects the whole edit: the last good list stays.
	write(listPath, "jti "+jtiOf(t, tok)+"\nnonsense line\n")
	wait.For(t, wait.Patient, "the rejected edit counted", func() bool {
		_, body := r.get(t, "/metrics")
		return strings.Contains(body, `extauthz_revocation_updates_total{result="failure",source="file"} 1`)
	})
	if c := r.code(t, "/pets", tok); c != codes.Unauthenticated {
		t.Errorf("after a bad edit the listed token: %v, want still refused", c)
	}
	// A good edit applies.
	write(listPath, "jti "+jtiOf(t, other)+"\n")
	wait.For(t, wait.Patient, "the new list applied", func() bool {
		return r.code(t, "/pets", other) == codes.Unauthenticated && r.code(t, "/pets", tok) == codes.OK
	})
}

// TestRevocationRedisReadiness: with the list in a Redis that is not up,
// the service is not ready; once Redis answers it becomes ready, and a
// write there is enforced.
func TestRevocationRedisReadiness(t *testing.T) {
	env := testenv.New(t)
	rs := redistest.Start(t, redistest.Options{})
	rs.Kill()
	dir := t.TempDir()
	policyPath := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(policyPath, []byte(withRevocation(env, "revocation: { redis: { url: \""+rs.URL()+"\" } }\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	r := start(t, server.Config{PolicyPath: policyPath})
	// Once the keys are in and Redis has refused a connection, the only
	// thing keeping the service unready is the unread list.
	wait.For(t, wait.Patient, "keys loaded and a failed Redis connection counted", func() bool {
		_, body := r.get(t, "/metrics")
		_, ready := r.get(t, "/readyz")
		return strings.Contains(body, `extauthz_revocation_updates_total{result="failure",source="redis"}`) &&
			!strings.Contains(body, `extauthz_revocation_updates_total{result="failure",source="redis"} 0`) &&
			strings.Contains(ready, `"loaded":true`)
	})
	if code, _ := r.get(t, "/readyz"); code != http.StatusServiceUnavailable || r.srv.Ready() {
		t.Fatalf("/readyz = %d with the revocation list unread, want 503", code)
	}
	rs.Restart()
	wait.For(t, wait.Patient, "ready once Redis answers", r.srv.Ready)
	tok := env.ID(t, issuer.TokenOptions{})
	if c := r.code(t, "/pets", tok); c != codes.OK {
		t.Fatalf("before the revocation: %v", c)
	}
	// Another writer (a sign-out handler, another replica's revoke).
	l, err := revocation.New(revocation.Config{Redis: revocation.RedisConfig{URL: rs.URL()}})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if _, err := l.Write(t.Context(), revocation.Entry{Kind: revocation.JTI, ID: jtiOf(t, tok)}); err != nil {
		t.Fatal(err)
	}
	wait.For(t, 5*time.Second, "the Redis entry enforced", func() bool { return r.code(t, "/pets", tok) == codes.Unauthenticated })
}

package e2e

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/cognito-extauthz/cognito-extauthz/internal/issuer"
	"github.com/cognito-extauthz/cognito-extauthz/internal/revocation/redistest"
	"github.com/cognito-extauthz/cognito-extauthz/internal/testenv"
	"github.com/cognito-extauthz/cognito-extauthz/internal/wait"
)

// revocationConfig writes testenv's policy with the given revocation block.
func revocationConfig(t *testing.T, env *testenv.Env, block string) string {
	t.Helper()
	doc := strings.Replace(testenv.Policy, "defaultAction: deny", "defaultAction: deny\n"+block, 1)
	path := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(path, []byte(env.Expand(doc)), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// revoke runs the real `extauthz revoke` with env and fails the test
// unless it exits 0.
func revoke(t *testing.T, config string, env []string, args ...string) {
	t.Helper()
	cmd := exec.Command(binary(t), append([]string{"revoke", "--config", config}, args...)...)
	cmd.Env = childEnv(env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("extauthz revoke %s: %v\n%s", args[0], err, out)
	}
}

func originJTI(t *testing.T, raw string) string {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(strings.Split(raw, ".")[1])
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		OriginJTI string `json:"origin_jti"`
	}
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return c.OriginJTI
}

// TestRevocationFleet is the shared list as a fleet runs it: two service
// processes and a real redis-server. A revoke through one enforces on both
// within a second; with Redis killed, restarted empty and refilled, no
// token the replicas know to be revoked ever passes, and new entries apply
// after the resync.
func TestRevocationFleet(t *testing.T) {
	requireE2E(t)
	env := testenv.New(t)
	rs := redistest.Start(t, redistest.Options{Password: "s3cret-pw"})
	config := revocationConfig(t, env, "revocation:\n  redis: { url: \""+rs.URL()+"\" }\n")
	pw := []string{"EXTAUTHZ_REVOCATION_REDIS_PASSWORD=s3cret-pw"}
	a := startService(t, config, serveOptions{env: pw})
	b := startService(t, config, serveOptions{env: pw})
	replicas := []*service{a, b}
	status := func(s *service, tok string) codes.Code {
		resp, err := s.checkErr(request{path: "/pets", headers: bearer(tok)})
		if err != nil {
			return codes.Unknown
		}
		return codes.Code(resp.GetStatus().GetCode())
	}
	allowedEverywhere := func(tok string) {
		t.Helper()
		for i, s := range replicas {
			if c := status(s, tok); c != codes.OK {
				t.Fatalf("replica %d refuses a good token: %v", i, c)
			}
		}
	}

	// Write to enforce, on both replicas, for a few sign-outs.
	var lat []time.Duration
	var revoked []string
	for range 5 {
		tok := env.ID(t, issuer.TokenOptions{})
		allowedEverywhere(tok) // cached on both from here
		start := time.Now()
		revoke(t, config, pw, "--token", tok)
		wrote := time.Since(start)
		var mu sync.Mutex
		var wg sync.WaitGroup
		for _, s := range replicas {
			wg.Go(func() {
				for status(s, tok) != codes.Unauthenticated {
					if time.Since(start) > 10*time.Second {
						return
					}
					time.Sleep(2 * time.Millisecond)
				}
				mu.Lock()
				lat = append(lat, time.Since(start)-wrote)
				mu.Unlock()
			})
		}
		wg.Wait()
		revoked = append(revoked, tok)
	}
	if len(lat) != 2*len(revoked) {
		t.Fatalf("%d of %d revocations were enforced within 10 s", len(lat), 2*len(revoked))
	}
	slices.Sort(lat)
	t.Logf("write to enforcement on two replicas (after revoke returned): min %v, median %v, max %v",
		lat[0], lat[len(lat)/2], lat[len(lat)-1])
	if max := lat[len(lat)-1]; max > time.Second {
		t.Errorf("a revocation took %v to reach a replica, want within 1 s", max)
	}

	// Redis killed: the last known list keeps serving.
	rs.Kill()
	still := env.ID(t, issuer.TokenOptions{})
	for _, s := range replicas {
		wait.For(t, wait.Patient, "source_up 0", func() bool {
			body := s.metricsText(t)
			return strings.Contains(body, `extauthz_revocation_source_up{source="redis"} 0`)
		})
	}
	checkList := func(when string) {
		t.Helper()
		for i, s := range replicas {
			for _, tok := range revoked {
				if c := status(s, tok); c != codes.Unauthenticated {
					t.Fatalf("%s: replica %d lets a revoked token pass: %v", when, i, c)
				}
			}
			if c := status(s, still); c != codes.OK {
				t.Fatalf("%s: replica %d refuses a good token: %v (staleAfter is 0: the last list serves)", when, i, c)
			}
		}
	}
	checkList("Redis down")

	// Restarted empty: the replicas resync against nothing, and still
	// refuse what they knew.
	rs.Restart()
	for _, s := range replicas {
		wait.For(t, wait.Patient, "source_up 1 after the restart", func() bool {
			body := s.metricsText(t)
			return strings.Contains(body, `extauthz_revocation_source_up{source="redis"} 1`)
		})
	}
	checkList("Redis restarted empty")

	// Refilled: a new entry applies everywhere.
	revoke(t, config, pw, "--jti", originJTI(t, still))
	for _, s := range replicas {
		wait.For(t, 5*time.Second, "the new entry enforced", func() bool { return status(s, still) == codes.Unauthenticated })
	}
}

// TestRevocationStaleAfter: with staleAfter set, once Redis has been
// unreachable that long every check of a token is a 503
// revocation_unavailable: fail closed, by the operator's choice.
func TestRevocationStaleAfter(t *testing.T) {
	requireE2E(t)
	env := testenv.New(t)
	rs := redistest.Start(t, redistest.Options{})
	config := revocationConfig(t, env, "revocation:\n  redis: { url: \""+rs.URL()+"\" }\n  staleAfter: 1s\n")
	s := startService(t, config, serveOptions{})
	tok := env.ID(t, issuer.TokenOptions{})
	if r := s.check(t, request{path: "/pets", headers: bearer(tok)}); r.code != codes.OK {
		t.Fatalf("with Redis up: %v %s", r.code, r.reason)
	}
	rs.Kill()
	wait.For(t, wait.Patient, "503 revocation_unavailable once stale", func() bool {
		r := s.check(t, request{path: "/pets", headers: bearer(tok)})
		return r.code == codes.Unavailable && r.reason == "revocation_unavailable" && r.status == 503
	})
	// A route that needs no token is no business of the list.
	if r := s.check(t, request{path: "/health"}); r.code != codes.OK {
		t.Errorf("a NONE route while stale: %v", r.code)
	}
	rs.Restart()
	wait.For(t, wait.Patient, "allowed again once Redis is back", func() bool {
		return s.check(t, request{path: "/pets", headers: bearer(tok)}).code == codes.OK
	})
}

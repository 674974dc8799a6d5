package revocation

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cognito-extauthz/cognito-extauthz/internal/revocation/redistest"
)

// docSnippet returns the shell block of docs/revocation.md that contains
// marker.
func docSnippet(t *testing.T, marker string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", "revocation.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, block := range strings.Split(string(b), "```sh\n")[1:] {
		block = block[:strings.Index(block, "```")]
		if strings.Contains(block, marker) {
			return block
		}
	}
	t.Fatalf("docs/revocation.md has no shell block with %q", marker)
	return ""
}

// TestDocsRedisCLI runs the redis-cli write of docs/revocation.md, as
// written, against a Redis with TLS and a password: every replica revokes
// the token within a second.
func TestDocsRedisCLI(t *testing.T) {
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		redistest.Binary(t) // skips, or fails in CI, the same way
		t.Fatalf("redis-server is installed but redis-cli is not: %v", err)
	}
	const pw = "docs-password"
	srv := redistest.Start(t, redistest.Options{TLS: true, Password: pw})
	c := newClock(time.Now().UTC())
	r := newReplica(t, srv, c, func(cfg *Config) {
		cfg.Redis.Key = DefaultKey
		cfg.Redis.CAFile = srv.CAFile
		cfg.Redis.Getenv = func(k string) string {
			if k == PasswordEnv {
				return pw
			}
			return ""
		}
	})
	r.wait(t)
	script := docSnippet(t, "REDISCLI_AUTH")
	script = strings.ReplaceAll(script, "rediss://redis.auth.svc:6380/0", srv.URL())
	script = strings.ReplaceAll(script, "--cacert ca.crt", "--cacert "+srv.CAFile)
	script = strings.ReplaceAll(script, "redis-cli ", cli+" ")
	cmd := exec.Command("bash", "-euc", script)
	cmd.Env = append(os.Environ(), "REDIS_PASSWORD="+pw, "ORIGIN_JTI="+uuidA)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("documented redis-cli write: %v\n%s", err, out)
	}
	enforced(t, uuidA, c.Now, start, r)
	m, _ := r.Revoked("", uuidA, "", c.Now(), c.Now())
	if d := m.Time.Sub(c.Now()); d < 23*time.Hour || d > 25*time.Hour {
		t.Errorf("documented write revokes until %v, want about a day from now", m.Time)
	}
}

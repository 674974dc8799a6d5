package policy

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRevocationBlock: a policy without the block has no revocation; the
// block's paths resolve against the policy file's directory, the Redis key
// defaults, and every field is read.
func TestRevocationBlock(t *testing.T) {
	const head = "apiVersion: cognito-extauthz/v1\nauthorizers:\n  a: { userPools: [{ userPoolId: us-east-1_abc }] }\nroutes:\n  - { name: r, match: { path: /r }, authorizer: a }\n"
	dir := t.TempDir()
	tests := []struct {
		name  string
		block string
		want  *Revocation
	}{
		{"absent", "", nil},
		{"file only", "revocation: { file: revoked.txt }\n", &Revocation{File: filepath.Join(dir, "revoked.txt")}},
		{"absolute file", "revocation: { file: /etc/extauthz/revoked.txt }\n", &Revocation{File: "/etc/extauthz/revoked.txt"}},
		{"redis with the default key", "revocation: { redis: { url: \"rediss://redis.auth.svc:6380/0\" } }\n",
			&Revocation{RedisURL: "rediss://redis.auth.svc:6380/0", RedisKey: DefaultRevocationKey}},
		{"both, every field", "revocation:\n  file: lists/revoked.txt\n  redis: { url: \"redis://user@r:6379\", key: \"app:revoked\", caFile: ca.pem }\n  staleAfter: 90s\n",
			&Revocation{File: filepath.Join(dir, "lists/revoked.txt"), RedisURL: "redis://user@r:6379", RedisKey: "app:revoked",
				RedisCAFile: filepath.Join(dir, "ca.pem"), StaleAfter: 90 * time.Second}},
		// staleAfter 0 is off, so a file-only list may say so.
		{"file, staleAfter off", "revocation: { file: revoked.txt, staleAfter: 0s }\n", &Revocation{File: filepath.Join(dir, "revoked.txt")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Parse([]byte(head+tt.block), filepath.Join(dir, "policy.yaml"), Options{})
			if err != nil {
				t.Fatal(err)
			}
			got := s.Revocation()
			if (got == nil) != (tt.want == nil) || got != nil && *got != *tt.want {
				t.Fatalf("Revocation() = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestRedisURLProblem: what a revocation URL may be, and that no problem
// text repeats a password.
func TestRedisURLProblem(t *testing.T) {
	for _, tt := range []struct {
		url string
		ok  bool
	}{
		{"redis://r:6379", true},
		{"rediss://r:6380/0", true},
		{"redis://user@r:6379/3", true},
		{"redis://user:secret@r:6379", false},
		{"redis://:secret@r:6379", false},
		{"http://r:6379", false},
		{"redis://", false},
		{"redis://r:6379/db", false},
		{"redis://r:6379?skip_verify=true", false},
		{"redis://r:6379#x", false},
		{"::::", false},
	} {
		p := redisURLProblem(tt.url)
		if (p == "") != tt.ok {
			t.Errorf("redisURLProblem(%q) = %q, want ok %v", tt.url, p, tt.ok)
		}
		if p != "" && strings.Contains(p, "secret") {
			t.Errorf("redisURLProblem(%q) repeats the password: %q", tt.url, p)
		}
	}
}

package revocation

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cognito-extauthz/cognito-extauthz/internal/testpki"
)

func TestValidate(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.txt")
	writeList(t, good, "jti "+uuidA)
	bad := filepath.Join(dir, "bad.txt")
	writeList(t, bad, "# ok", "sub "+uuidB)
	ca := filepath.Join(dir, "ca.crt")
	testpki.WriteFile(t, ca, testpki.NewCA(t, "test").PEM)
	notPEM := filepath.Join(dir, "not.pem")
	testpki.WriteFile(t, notPEM, []byte("hello"))

	tests := []struct {
		name string
		cfg  Config
		err  string // "" = valid
		not  string // must not appear in the error
	}{
		{name: "file", cfg: Config{File: good}},
		{name: "redis", cfg: Config{Redis: RedisConfig{URL: "redis://redis.auth.svc:6379/0"}}},
		{name: "rediss with CA and both", cfg: Config{File: good, StaleAfter: time.Minute,
			Redis: RedisConfig{URL: "rediss://redis.auth.svc:6380/0", Key: "app:revoked", CAFile: ca}}},
		{name: "acl user without password", cfg: Config{Redis: RedisConfig{URL: "redis://extauthz@redis:6379"}}},
		{name: "nothing", cfg: Config{}, err: "neither a file nor a redis url"},
		{name: "bad file line", cfg: Config{File: bad}, err: bad + ":2:"},
		{name: "missing file", cfg: Config{File: filepath.Join(dir, "nope.txt")}, err: "no such file"},
		{name: "negative staleAfter", cfg: Config{File: good, StaleAfter: -time.Second}, err: "negative"},
		{name: "staleAfter without redis", cfg: Config{File: good, StaleAfter: time.Second}, err: "redis only"},
		{name: "password in url", cfg: Config{Redis: RedisConfig{URL: "redis://:hunter2@redis:6379"}},
			err: "carries a password", not: "hunter2"},
		{name: "user and password in url", cfg: Config{Redis: RedisConfig{URL: "rediss://u:hunter2@redis:6379"}},
			err: PasswordEnv, not: "hunter2"},
		{name: "unparsable url with password", cfg: Config{Redis: RedisConfig{URL: "redis://:hunter2@redis:port"}},
			err: "does not parse", not: "hunter2"},
		{name: "scheme", cfg: Config{Redis: RedisConfig{URL: "http://redis:6379"}}, err: "want redis:// or rediss://"},
		{name: "unix socket", cfg: Config{Redis: RedisConfig{URL: "unix:///run/redis.sock"}}, err: "scheme"},
		{name: "no host", cfg: Config{Redis: RedisConfig{URL: "redis:///0"}}, err: "no host"},
		{name: "query", cfg: Config{Redis: RedisConfig{URL: "rediss://redis:6380?skip_verify=true"}}, err: "query parameters"},
		{name: "bad db", cfg: Config{Redis: RedisConfig{URL: "redis://redis:6379/x"}}, err: "database number"},
		{name: "CA without TLS", cfg: Config{Redis: RedisConfig{URL: "redis://redis:6379", CAFile: ca}}, err: "needs a rediss://"},
		{name: "CA not PEM", cfg: Config{Redis: RedisConfig{URL: "rediss://redis:6379", CAFile: notPEM}}, err: "no PEM certificate"},
		{name: "CA missing", cfg: Config{Redis: RedisConfig{URL: "rediss://redis:6379", CAFile: filepath.Join(dir, "x")}}, err: "CA file"},
		{name: "key with space", cfg: Config{Redis: RedisConfig{URL: "redis://redis", Key: "a b"}}, err: "printable ASCII"},
		{name: "redis settings without url", cfg: Config{File: good, Redis: RedisConfig{Key: "k"}}, err: "without a redis url"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := Validate(tc.cfg)
			if tc.err == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("Validate error = %v, want %q", err, tc.err)
			}
			if tc.not != "" && strings.Contains(err.Error(), tc.not) {
				t.Fatalf("error %q shows %q", err, tc.not)
			}
			// New refuses what Validate refuses (file problems aside,
			// which New reports as load errors).
			if _, nerr := New(tc.cfg); nerr == nil {
				t.Fatalf("New accepted a config Validate refuses (%v)", err)
			}
		})
	}
}

func TestNewCredentials(t *testing.T) {
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "password")
	testpki.WriteFile(t, pwFile, []byte("s3cret\n"))
	empty := filepath.Join(dir, "empty")
	testpki.WriteFile(t, empty, []byte("\n"))
	env := func(kv map[string]string) func(string) string {
		return func(k string) string { return kv[k] }
	}
	url := "redis://127.0.0.1:1/0"
	tests := []struct {
		name string
		env  map[string]string
		err  string
	}{
		{name: "none", env: nil},
		{name: "env", env: map[string]string{PasswordEnv: "s3cret"}},
		{name: "file", env: map[string]string{PasswordFileEnv: pwFile}},
		{name: "both", env: map[string]string{PasswordEnv: "x", PasswordFileEnv: pwFile}, err: "set one"},
		{name: "missing file", env: map[string]string{PasswordFileEnv: filepath.Join(dir, "nope")}, err: "password file"},
		{name: "empty file", env: map[string]string{PasswordFileEnv: empty}, err: "is empty"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l, err := New(Config{Redis: RedisConfig{URL: url, Getenv: env(tc.env)}})
			if tc.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				_ = l.Close()
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("New error = %v, want %q", err, tc.err)
			}
		})
	}
	p, err := readPassword(pwFile)
	if err != nil || p != "s3cret" {
		t.Errorf("readPassword = %q, %v; want s3cret without the newline", p, err)
	}
	// Without Getenv, the process environment is read.
	t.Setenv(PasswordEnv, "x")
	t.Setenv(PasswordFileEnv, pwFile)
	if _, err := New(Config{Redis: RedisConfig{URL: url}}); err == nil || !strings.Contains(err.Error(), "set one") {
		t.Errorf("New with both variables in the environment: %v", err)
	}
}

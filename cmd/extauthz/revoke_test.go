package main

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cognito-extauthz/cognito-extauthz/internal/issuer"
	"github.com/cognito-extauthz/cognito-extauthz/internal/testenv"
)

// revocationPolicy writes testenv's policy with a revocation file beside
// it, and returns the policy's and the list's paths.
func revocationPolicy(t *testing.T, env *testenv.Env, list string) (policyPath, listPath string) {
	t.Helper()
	dir := t.TempDir()
	policyPath, listPath = filepath.Join(dir, "policy.yaml"), filepath.Join(dir, "revoked.txt")
	doc := strings.Replace(testenv.Policy, "defaultAction: deny", "defaultAction: deny\nrevocation: { file: revoked.txt }", 1)
	if err := os.WriteFile(policyPath, []byte(env.Expand(doc)), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(listPath, []byte(list), 0o600); err != nil {
		t.Fatal(err)
	}
	return policyPath, listPath
}

func claimsOf(t *testing.T, raw string) map[string]any {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(strings.Split(raw, ".")[1])
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestRevoke: revoke writes the entry the flags ask for into the policy's
// list file, and --token revokes the token's origin_jti until its exp
// after verifying it; explain then names the entry, and a denied token
// exits 1.
func TestRevoke(t *testing.T) {
	env := testenv.New(t)
	policyPath, listPath := revocationPolicy(t, env, "# revoked\n")
	tok := env.ID(t, issuer.TokenOptions{Subject: "sub-1", TTL: time.Hour})
	c := claimsOf(t, tok)
	exp := time.Unix(int64(c["exp"].(float64)), 0).UTC().Format(time.RFC3339)

	code, out, errs := runCLI(t, "revoke", "--config", policyPath, "--token", tok)
	if code != exitOK {
		t.Fatalf("revoke --token: exit %d\n%s%s", code, out, errs)
	}
	want := "jti " + c["origin_jti"].(string) + " " + exp
	if !strings.Contains(out, want) || !strings.Contains(out, listPath) {
		t.Fatalf("revoke --token printed %q, want the entry %q written to %s", out, want, listPath)
	}
	before := time.Now().Add(-time.Hour).UTC().Truncate(time.Second).Format(time.RFC3339)
	if code, out, errs := runCLI(t, "revoke", "--config", policyPath, "--sub", "sub-2", "--before", before); code != exitOK || !strings.Contains(out, "sub sub-2 "+before) {
		t.Fatalf("revoke --sub: exit %d %q %s", code, out, errs)
	}
	if code, out, _ := runCLI(t, "revoke", "--config", policyPath, "--jti", "abc"); code != exitOK || !strings.Contains(out, "jti abc ") {
		t.Fatalf("revoke --jti: exit %d %q", code, out)
	}
	b, err := os.ReadFile(listPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{want, "sub sub-2 " + before, "jti abc "} {
		if !strings.Contains(string(b), line) {
			t.Errorf("the list file lacks %q:\n%s", line, b)
		}
	}
	if code, _, errs := runCLI(t, "validate", "--config", policyPath); code != exitOK {
		t.Fatalf("the written list does not validate: %s", errs)
	}

	// explain consults the list and names the entry.
	code, out, errs = runCLI(t, "explain", "--config", policyPath, "--path", "/pets", "--token", tok)
	if code != exitFail || !strings.Contains(out, `"reason": "token_revoked"`) || !strings.Contains(out, want) || !strings.Contains(out, `"not_revoked"`) {
		t.Fatalf("explain of the revoked token: exit %d\n%s%s", code, out, errs)
	}
	code, out, _ = runCLI(t, "explain", "--config", policyPath, "--path", "/pets", "--token", env.ID(t, issuer.TokenOptions{}))
	if code != exitOK || !strings.Contains(out, `"got": "not listed"`) {
		t.Fatalf("explain of another token: exit %d\n%s", code, out)
	}
}

// TestRevokeRefusals: usage errors exit 2, a token that does not verify
// exits 1 and writes nothing.
func TestRevokeRefusals(t *testing.T) {
	env := testenv.New(t)
	policyPath, listPath := revocationPolicy(t, env, "")
	noBlock := writeFile(t, "policy.yaml", env.Expand(testenv.Policy))
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"--config", policyPath}, exitUsage, "exactly one of"},
		{[]string{"--config", policyPath, "--jti", "a", "--sub", "b"}, exitUsage, "exactly one of"},
		{[]string{"--config", policyPath, "--sub", "b", "--until", "2026-01-01T00:00:00Z"}, exitUsage, "exactly one of"},
		{[]string{"--config", policyPath, "--jti", "a", "--until", "tomorrow"}, exitUsage, "RFC 3339"},
		{[]string{"--config", noBlock, "--jti", "a"}, exitUsage, "no revocation block"},
		{[]string{"--config", policyPath, "--token", "not-a-token"}, exitFail, "does not verify"},
		{[]string{"--config", policyPath, "--token", env.ID(t, issuer.TokenOptions{TTL: -time.Hour})}, exitFail, "token_expired"},
	} {
		t.Run(strings.Join(tc.args[2:], " "), func(t *testing.T) {
			code, out, errs := runCLI(t, append([]string{"revoke"}, tc.args...)...)
			if code != tc.code || !strings.Contains(out+errs, tc.msg) {
				t.Fatalf("exit %d (want %d), output lacks %q:\n%s%s", code, tc.code, tc.msg, out, errs)
			}
		})
	}
	if b, _ := os.ReadFile(listPath); len(b) != 0 {
		t.Fatalf("a refused revoke wrote to the list:\n%s", b)
	}
}

// TestValidateRevocationFile: a bad line of the policy's revocation file is
// a validation problem with file:line, and exit 1.
func TestValidateRevocationFile(t *testing.T) {
	env := testenv.New(t)
	policyPath, listPath := revocationPolicy(t, env, "jti ok-1\nbogus line here\n")
	code, out, errs := runCLI(t, "validate", "--config", policyPath)
	if code != exitFail || !strings.Contains(out, listPath+":2") {
		t.Fatalf("exit %d, want %d with %s:2 named\nstdout: %s\nstderr: %s", code, exitFail, listPath, out, errs)
	}
}

package authz_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cognito-extauthz/cognito-extauthz/internal/authz"
	"github.com/cognito-extauthz/cognito-extauthz/internal/issuer"
	"github.com/cognito-extauthz/cognito-extauthz/internal/revocation"
	"github.com/cognito-extauthz/cognito-extauthz/internal/testenv"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/reason"
)

// fileList returns a started revocation list over a file in a fresh
// directory holding lines, and the file's path.
func fileList(t *testing.T, lines ...string) (*revocation.List, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "revoked.txt")
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := revocation.New(revocation.Config{File: path, FileSettle: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l, path
}

// TestRevokedTokens: a token is refused 401 token_revoked when its jti or
// its origin_jti is listed, or its sub with a time after its iat, whatever
// the route asks and whether or not the verified-token cache holds it; a
// token issued after a sub entry's time passes; no list, no check.
func TestRevokedTokens(t *testing.T) {
	f := newFixture(t, testenv.Policy, authz.Options{CacheSize: 100})
	issued := time.Now().Add(-10 * time.Minute).Truncate(time.Second)
	tok := func(sub string) (string, map[string]string) {
		raw := f.env.ID(t, issuer.TokenOptions{Subject: sub, IssuedAt: issued})
		c := payload(t, raw)
		return raw, map[string]string{"jti": c["jti"].(string), "origin_jti": c["origin_jti"].(string)}
	}
	byJTI, ids1 := tok("sub-jti")
	byOrigin, ids2 := tok("sub-origin")
	bySub, _ := tok("sub-signed-out")
	later := f.env.ID(t, issuer.TokenOptions{Subject: "sub-signed-out"}) // issued now: after the entry
	other, _ := tok("sub-other")

	// Every token allowed first, and cached.
	for _, raw := range []string{byJTI, byOrigin, bySub, later, other} {
		if d := f.decide(t, "GET", "/pets", bearer(raw)); !d.Allowed {
			t.Fatalf("before any revocation: %s %s", d.Reason, d.Detail)
		}
	}
	l, _ := fileList(t,
		"jti "+ids1["jti"],
		"jti "+ids2["origin_jti"]+" "+time.Now().Add(time.Hour).UTC().Format(time.RFC3339),
		"sub sub-signed-out "+issued.Add(time.Minute).UTC().Format(time.RFC3339),
	)
	f.az.SetRevocations(l)
	for _, tc := range []struct {
		name, raw string
		want      reason.Code
		detail    string
	}{
		{"jti listed", byJTI, reason.TokenRevoked, "jti " + ids1["jti"]},
		{"origin_jti listed", byOrigin, reason.TokenRevoked, "jti " + ids2["origin_jti"]},
		{"sub listed after iat", bySub, reason.TokenRevoked, "sub sub-signed-out"},
		{"sub listed before iat", later, reason.Allowed, ""},
		{"not listed", other, reason.Allowed, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := f.decide(t, "GET", "/pets", bearer(tc.raw))
			if d.Reason != tc.want || d.Allowed != (tc.want == reason.Allowed) {
				t.Fatalf("decision %s (%s), want %s", d.Reason, d.Detail, tc.want)
			}
			if !d.CacheHit && tc.want == reason.TokenRevoked {
				t.Errorf("the revoked token was not a cache hit: the test must show a cached token is refused")
			}
			if !strings.Contains(d.Detail, tc.detail) {
				t.Errorf("detail %q does not name the entry %q", d.Detail, tc.detail)
			}
			// On a route whose requirements it fails too, revocation
			// comes first: 401, not 403.
			if tc.want == reason.TokenRevoked {
				if d := f.decide(t, "GET", "/admin/x", bearer(tc.raw)); d.Reason != reason.TokenRevoked {
					t.Errorf("on the admins route: %s, want token_revoked first", d.Reason)
				}
			}
		})
	}
	f.az.SetRevocations(nil)
	if d := f.decide(t, "GET", "/pets", bearer(byJTI)); !d.Allowed {
		t.Fatalf("with no list in force: %s", d.Reason)
	}
}

// TestRevocationStaleFailsClosed: while a Redis list has not been read (or
// has been unreachable longer than staleAfter), every token is a 503
// revocation_unavailable, but one the file lists is still 401 revoked.
func TestRevocationStaleFailsClosed(t *testing.T) {
	f := newFixture(t, testenv.Policy, authz.Options{})
	listed := f.env.ID(t, issuer.TokenOptions{})
	other := f.env.ID(t, issuer.TokenOptions{})
	jti := payload(t, listed)["jti"].(string)
	path := filepath.Join(t.TempDir(), "revoked.txt")
	if err := os.WriteFile(path, []byte("jti "+jti+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// A Redis address nothing listens on: the list is never synced.
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close()
	l, err := revocation.New(revocation.Config{File: path, FileSettle: -1,
		Redis: revocation.RedisConfig{URL: fmt.Sprintf("redis://%s/0", addr)}, StaleAfter: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := l.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.az.SetRevocations(l)
	if d := f.decide(t, "GET", "/pets", bearer(listed)); d.Reason != reason.TokenRevoked {
		t.Errorf("a listed token while the list is stale: %s, want token_revoked", d.Reason)
	}
	if d := f.decide(t, "GET", "/pets", bearer(other)); d.Allowed || d.Reason != reason.RevocationUnavailable {
		t.Errorf("an unlisted token while the list is stale: %s allowed=%v, want revocation_unavailable", d.Reason, d.Allowed)
	}
	// No token at all is no business of the list.
	if d := f.decide(t, "GET", "/pets", nil); d.Reason != reason.TokenMissing {
		t.Errorf("no token: %s", d.Reason)
	}
	if d := f.decide(t, "GET", "/health", nil); !d.Allowed {
		t.Errorf("a NONE route: %s", d.Reason)
	}
}

// payload returns the claims of a token, unverified: the test reads the
// jti and origin_jti its issuer chose.
func payload(t *testing.T, raw string) map[string]any {
	t.Helper()
	parts := strings.Split(raw, ".")
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

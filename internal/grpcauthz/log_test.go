package grpcauthz_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cognito-extauthz/cognito-extauthz/internal/issuer"
	"github.com/cognito-extauthz/cognito-extauthz/internal/testenv"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/policy"
)

// TestNoTokenInLogs runs allows, every kind of denial, malformed tokens in
// every identity source, key outages, a deadline and a panic through the
// whole stack with every logger at debug level, then searches all output
// for any token, any segment of one, and any cookie value.
func TestNoTokenInLogs(t *testing.T) {
	logs := newLogBuffer()
	env := testenv.New(t)
	var panicking atomic.Bool
	var f *fixture
	f = newFixture(t, fixtureOptions{env: env, logs: logs, snapshot: func() *policy.Snapshot {
		if panicking.Load() {
			panic("policy snapshot unavailable")
		}
		return f.snap
	}})
	other := testenv.New(t)

	var secrets []string
	keep := func(s string) string { secrets = append(secrets, s); return s }

	id := keep(env.ID(t, issuer.TokenOptions{Email: "carol@example.com", Groups: []string{"admins"}, Claims: map[string]any{"custom:tenant": "acme"}}))
	access := keep(env.Access(t, issuer.TokenOptions{Scopes: []string{"pets/read"}}))
	cookieVal := keep("sess-" + randomHex(16))
	junk := keep("junk" + randomHex(24))
	calls := []call{
		// allows
		{path: "/pets", headers: withRequestID(bearer(id))},
		{path: "/pets/1?access_token=" + access, headers: bearer(access)},
		{path: "/admin/x", headers: bearer(id)},
		{path: "/tenant", headers: bearer(id)},
		{path: "/strip", headers: bearer(id)},
		{path: "/q?access_token=" + access},
		{path: "/c", headers: map[string]string{"cookie": "session=" + cookieVal + "; id_token=" + id}},
		{path: "/x", headers: map[string]string{"x-token": id}},
		{path: "/health", headers: bearer(id)},
		// denials
		{path: "/pets"},
		{path: "/pets", headers: bearer(keep(flipSignature(t, id)))},
		{path: "/pets", headers: bearer(keep(env.ID(t, issuer.TokenOptions{Header: map[string]any{"kid": "unknown-kid"}})))},
		{path: "/pets", headers: bearer(keep(other.ID(t, issuer.TokenOptions{})))},
		{path: "/pets", headers: bearer(access)},
		{path: "/pets/1", headers: bearer(id)},
		{path: "/pets", headers: bearer(keep(env.ID(t, issuer.TokenOptions{ClientID: "client-z"})))},
		{path: "/pets", headers: bearer(keep(env.ID(t, issuer.TokenOptions{TTL: -time.Hour})))},
		{path: "/pets/1", headers: bearer(keep(env.Access(t, issuer.TokenOptions{Scopes: []string{"x/y"}})))},
		{path: "/admin/x", headers: bearer(keep(env.ID(t, issuer.TokenOptions{})))},
		{path: "/tenant", headers: bearer(keep(env.ID(t, issuer.TokenOptions{Claims: map[string]any{"custom:tenant": "x"}})))},
		{path: "/nowhere?access_token=" + access, headers: bearer(id)},
		{path: "/pets", route: "missing-route", headers: bearer(id)},
		{path: "/pets", headers: map[string]string{"authorization": "Bearer " + id + ", Bearer " + access}},
		{path: "/pets", raw: [][2]string{{"authorization", "Bearer " + id}, {"authorization", "Bearer " + access}}},
		{path: "/pets/%zz", headers: bearer(id)},
		// malformed, in every source
		{path: "/pets", headers: bearer(junk)},
		{path: "/pets", headers: bearer(keep(id + "." + junk))},
		{path: "/pets", headers: bearer(keep(strings.Replace(id, ".", "=.", 1)))},
		{path: "/pets", headers: bearer(keep(junk + ".." + junk))},
		{path: "/pets", headers: map[string]string{"authorization": keep("Basic " + junk)}},
		{path: "/q?access_token=" + keep("q"+randomHex(20))},
		{path: "/q?access_token=" + keep("%zz"+randomHex(20))},
		{path: "/q?access_token=" + id + "&access_token=" + access},
		{path: "/c", headers: map[string]string{"cookie": "session=" + cookieVal + "; id_token=" + keep("c"+randomHex(20))}},
		{path: "/c", headers: map[string]string{"cookie": "id_token=" + id + "; id_token=" + access}},
		{path: "/x", headers: map[string]string{"x-token": keep(id[:len(id)-3])}},
	}
	for _, c := range calls {
		f.check(t, c.request())
	}

	// Keys unavailable, and a deadline while a refetch hangs.
	down := testenv.New(t)
	down.SetMode(testenv.Down)
	g := newFixture(t, fixtureOptions{env: down, logs: logs, noWait: true})
	g.check(t, call{path: "/pets", headers: bearer(keep(down.ID(t, issuer.TokenOptions{})))}.request())
	env.SetMode(testenv.Hang)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	_, _ = f.client.Check(ctx, call{path: "/pets", headers: bearer(keep(env.ID(t, issuer.TokenOptions{Header: map[string]any{"kid": "hang-kid"}})))}.request())
	cancel()
	env.SetMode(testenv.Up)

	// A panic, with a token in the request.
	panicking.Store(true)
	f.check(t, call{path: "/pets", headers: bearer(id)}.request())
	panicking.Store(false)

	out := logs.String()
	for _, want := range []string{`"msg":"check allowed"`, `"msg":"check denied"`, `"msg":"check panicked"`,
		`"msg":"check failed"`, `configuration error`, `"request_id":"req-42"`} {
		if !strings.Contains(out, want) {
			t.Errorf("logs lack %s: the scenarios did not run as intended", want)
		}
	}
	for _, s := range secrets {
		for _, frag := range fragments(s) {
			if strings.Contains(out, frag) {
				t.Errorf("log output contains token material %q (from %q)", clipForReport(frag), clipForReport(s))
			}
		}
	}
	if t.Failed() {
		t.Logf("logs:\n%s", out)
	}
}

func withRequestID(h map[string]string) map[string]string {
	h["x-request-id"] = "req-42"
	return h
}

// fragments returns s and every '.'-separated (and, for query and cookie
// values, '='-separated) part of it long enough to be unmistakable.
func fragments(s string) []string {
	out := []string{s}
	for _, part := range strings.FieldsFunc(s, func(r rune) bool { return r == '.' || r == '=' || r == ' ' }) {
		if len(part) >= 16 {
			out = append(out, part)
		}
	}
	return out
}

func clipForReport(s string) string {
	if len(s) > 24 {
		return s[:24] + "..."
	}
	return s
}

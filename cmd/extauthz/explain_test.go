package main

import (
	"context"
	"encoding/json"
	"flag"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cognito-extauthz/cognito-extauthz/internal/issuer"
	"github.com/cognito-extauthz/cognito-extauthz/internal/server"
	"github.com/cognito-extauthz/cognito-extauthz/internal/testenv"
)

var update = flag.Bool("update", false, "rewrite testdata/explain/*.golden from the current output")

// normalisers replace what changes from run to run (ports, times, ids).
var normalisers = []struct {
	re   *regexp.Regexp
	with string
}{
	{regexp.MustCompile(`127\.0\.0\.1:\d+`), "127.0.0.1:PORT"},
	{regexp.MustCompile(`"(exp|iat|auth_time)": [0-9.e+]+`), `"$1": 0`},
	{regexp.MustCompile(`"(last_success|jti|origin_jti|event_id)": "[^"]*"`), `"$1": "X"`},
	{regexp.MustCompile(`expired at [0-9TZ:-]+`), "expired at TIME"},
}

func normalise(s string) string {
	for _, n := range normalisers {
		s = n.re.ReplaceAllString(s, n.with)
	}
	return s
}

// TestExplainGolden: explain's whole output, candidates and requirements
// included, for an allow and each kind of denial, and its exit code.
func TestExplainGolden(t *testing.T) {
	env := testenv.New(t)
	raw, err := os.ReadFile("testdata/explain/policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	path := writeFile(t, "policy.yaml", env.Expand(string(raw)))
	const sub = "0b9d4a2e-7f3c-4c1e-9a51-1d2f3e4a5b6c"
	id := env.ID(t, issuer.TokenOptions{Subject: sub, Groups: []string{"users"}, Claims: map[string]any{"custom:tenant": "other"}})
	access := env.Access(t, issuer.TokenOptions{Subject: sub, Scopes: []string{"openid", "pets/write"}})
	expired := env.ID(t, issuer.TokenOptions{Subject: sub, TTL: -time.Hour})
	tests := []struct {
		name string
		args []string
		code int
		tok  string
	}{
		{"allow", []string{"--path", "/pets?page=2", "--token", id}, exitOK, id},
		{"deny-scope-missing", []string{"--path", "/pets/7", "--token", access}, exitFail, access},
		{"deny-group-and-claim", []string{"--method", "POST", "--path", "/pets/7", "--token", id}, exitFail, id},
		{"deny-token-expired", []string{"--path", "/pets", "--token", expired}, exitFail, expired},
		{"deny-route-not-found", []string{"--method", "POST", "--path", "/pets"}, exitFail, ""},
		{"context-route", []string{"--path", "/anything", "--route", "health"}, exitOK, ""},
		{"dry-run", []string{"--path", "/reports", "--token", id}, exitOK, id},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errs := runCLI(t, append([]string{"explain", "--config", path}, tt.args...)...)
			if code != tt.code {
				t.Fatalf("exit %d, want %d\n%s\n%s", code, tt.code, out, errs)
			}
			if tt.tok != "" {
				for _, part := range strings.Split(tt.tok, ".") {
					if strings.Contains(out, part) || strings.Contains(errs, part) {
						t.Fatal("explain printed (part of) the token")
					}
				}
			}
			got := normalise(out)
			golden := filepath.Join("testdata", "explain", tt.name+".golden")
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("read golden (run with -update to create): %v", err)
			}
			if got != string(want) {
				t.Errorf("explain output differs from %s:\n%s", golden, got)
			}
		})
	}
}

// TestExplainExitCodes: 2 for usage and configuration errors.
func TestExplainExitCodes(t *testing.T) {
	bad := writeFile(t, "bad.yaml", "apiVersion: cognito-extauthz/v1\nroutes: []\n")
	for _, args := range [][]string{
		{"explain", "--path", "/x"},
		{"explain", "--config", bad},
		{"explain", "--config", bad, "--path", "/x"},
		{"explain", "--config", bad, "--addr", "127.0.0.1:1", "--path", "/x"},
		{"explain", "--config", "/does/not/exist.yaml", "--path", "/x"},
		{"explain", "--bogus"},
	} {
		if code, _, _ := runCLI(t, args...); code != exitUsage {
			t.Errorf("%v: exit %d, want %d", args, code, exitUsage)
		}
	}
}

// TestExplainRemote: --addr asks a running service (Admin/Explain) and
// prints the same JSON, with the same exit codes.
func TestExplainRemote(t *testing.T) {
	env := testenv.New(t)
	raw, err := os.ReadFile("testdata/explain/policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Config{
		Snapshot: env.Policy(t, string(raw)), GRPCAddr: "127.0.0.1:0", AdminAddr: "127.0.0.1:0", EnableAdminRPC: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	id := env.ID(t, issuer.TokenOptions{Groups: []string{"users"}})
	code, out, errs := runCLI(t, "explain", "--addr", srv.GRPCAddr(), "--method", "POST", "--path", "/pets/7", "--token", id)
	if code != exitFail {
		t.Fatalf("exit %d, want %d\n%s\n%s", code, exitFail, out, errs)
	}
	var d struct {
		Reason          string `json:"reason"`
		RouteCandidates []struct {
			Route string `json:"route"`
			Won   bool   `json:"won"`
		} `json:"route_candidates"`
		Requirements []struct {
			Name string `json:"name"`
			Got  string `json:"got"`
			OK   bool   `json:"ok"`
		} `json:"requirements"`
	}
	if err := json.Unmarshal([]byte(out), &d); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	if d.Reason != "group_missing" || len(d.RouteCandidates) != 2 || !d.RouteCandidates[1].Won || len(d.Requirements) != 5 {
		t.Errorf("remote explain: %+v", d)
	}
	code, out, _ = runCLI(t, "explain", "--addr", srv.GRPCAddr(), "--path", "/health")
	if code != exitOK || !strings.Contains(out, `"allowed": true`) {
		t.Errorf("remote allow: exit %d\n%s", code, out)
	}
	if code, _, errs := runCLI(t, "explain", "--addr", freePort(t), "--path", "/health", "--jwks-fetch-timeout", "2s"); code != exitRuntime || !strings.Contains(errs, "enable-admin-rpc") {
		t.Errorf("unreachable service: exit %d, stderr %q", code, errs)
	}
}

// stalledKeyServer is a key server that accepts connections and never
// answers until release is called (also at the end of the test). accepted
// counts the connections it took.
func stalledKeyServer(t *testing.T) (url string, accepted *atomic.Int64, release func()) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted = new(atomic.Int64)
	var (
		mu    sync.Mutex
		conns []net.Conn
		once  sync.Once
		done  = make(chan struct{})
	)
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	release = func() {
		once.Do(func() {
			ln.Close()
			<-done
			mu.Lock()
			defer mu.Unlock()
			for _, c := range conns {
				c.Close()
			}
		})
	}
	t.Cleanup(release)
	return "http://" + ln.Addr().String() + "/.well-known/jwks.json", accepted, release
}

// stalledExplainPolicy writes testdata/explain/policy.yaml with its key
// server at jwksURL, one that accepts connections and never answers;
// accepted counts them.
func stalledExplainPolicy(t *testing.T, env *testenv.Env) (path, jwksURL string, accepted *atomic.Int64) {
	t.Helper()
	raw, err := os.ReadFile("testdata/explain/policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	jwksURL, accepted, _ = stalledKeyServer(t)
	return writeFile(t, "policy.yaml", env.Expand(strings.ReplaceAll(string(raw), "${JWKS}", jwksURL))), jwksURL, accepted
}

// TestExplainWithoutKeys: a request that needs no key (no token, a route
// that needs none, a token that fails before any key lookup) is decided
// while the key server stalls, with a fetch timeout of an hour: explain
// neither waits for nor fetches the keys, and lists no key source.
func TestExplainWithoutKeys(t *testing.T) {
	env := testenv.New(t)
	path, _, accepted := stalledExplainPolicy(t, env)
	// A failing explain waits the hour: stop at the test's own deadline
	// with a message instead of at the binary's.
	stop := time.Now().Add(time.Hour)
	if dl, ok := t.Deadline(); ok {
		stop = dl.Add(-10 * time.Second)
	}
	tests := []struct {
		name   string
		args   []string
		reason string
	}{
		{"no token", []string{"--path", "/pets"}, "token_missing"},
		{"route needs none", []string{"--path", "/health"}, "authorization_none"},
		{"no route", []string{"--method", "POST", "--path", "/pets"}, "route_not_found"},
		{"malformed token", []string{"--path", "/pets", "--token", "not-a-jwt"}, "token_malformed"},
		{"issuer not configured", []string{"--path", "/pets", "--token", testenv.New(t).ID(t, issuer.TokenOptions{})}, "issuer_unknown"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			type result struct {
				code     int
				out, err string
			}
			done := make(chan result, 1)
			go func() {
				code, out, errs := runCLI(t, append([]string{"explain", "--config", path, "--jwks-fetch-timeout", "1h"}, tt.args...)...)
				done <- result{code, out, errs}
			}()
			var r result
			select {
			case r = <-done:
			case <-time.After(time.Until(stop)):
				t.Fatal("explain is waiting on the stalled key server")
			}
			var d struct {
				Reason string            `json:"reason"`
				JWKS   []json.RawMessage `json:"jwks"`
			}
			if err := json.Unmarshal([]byte(r.out), &d); err != nil {
				t.Fatalf("exit %d, output is not JSON: %v\n%s\n%s", r.code, err, r.out, r.err)
			}
			if d.Reason != tt.reason || d.JWKS == nil || len(d.JWKS) != 0 {
				t.Fatalf("reason %q, jwks %s; want %q and no key source\n%s", d.Reason, d.JWKS, tt.reason, r.out)
			}
			if n := accepted.Load(); n != 0 {
				t.Fatalf("explain opened %d connection(s) to the key server for a decision that needs no key", n)
			}
		})
	}
}

// TestExplainWaitsForKeysWithToken: with a token of a configured issuer,
// explain fetches the keys and waits for them up to --jwks-fetch-timeout
// (plus a second), as before; a key server that never answers then gives
// jwks_unavailable, with the source listed as not loaded.
func TestExplainWaitsForKeysWithToken(t *testing.T) {
	env := testenv.New(t)
	path, jwksURL, accepted := stalledExplainPolicy(t, env)
	id := env.ID(t, issuer.TokenOptions{})
	code, out, errs := runCLI(t, "explain", "--config", path, "--jwks-fetch-timeout", "100ms", "--path", "/pets", "--token", id)
	var d struct {
		Reason string `json:"reason"`
		JWKS   []struct {
			Source string `json:"source"`
			Loaded bool   `json:"loaded"`
		} `json:"jwks"`
	}
	if err := json.Unmarshal([]byte(out), &d); err != nil {
		t.Fatalf("exit %d, output is not JSON: %v\n%s\n%s", code, err, out, errs)
	}
	if code != exitFail || d.Reason != "jwks_unavailable" || len(d.JWKS) != 1 || d.JWKS[0].Source != jwksURL || d.JWKS[0].Loaded {
		t.Fatalf("exit %d, %+v; want 1, jwks_unavailable and the stalled source not loaded\n%s", code, d, out)
	}
	if accepted.Load() == 0 {
		t.Fatal("explain decided without asking the key server")
	}
	if !strings.Contains(errs, "not every key set loaded") {
		t.Fatalf("stderr does not say the keys did not load:\n%s", errs)
	}
}

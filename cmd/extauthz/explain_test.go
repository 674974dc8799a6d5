package main

import (
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
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

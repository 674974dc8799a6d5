package main

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/cognito-extauthz/cognito-extauthz/internal/issuer"
	"github.com/cognito-extauthz/cognito-extauthz/internal/testenv"
)

// TestExitCodes holds every command to the exit codes docs/operating.md
// states: 0 success, 1 validation problems / check or explain denied, 2
// usage (and, for explain, a policy that does not load), 3 the command
// could not run. A policy file validate cannot read is 3 (it was 1).
func TestExitCodes(t *testing.T) {
	env := testenv.New(t)
	good := writeFile(t, "policy.yaml", env.Expand(testenv.Policy))
	bad := writeFile(t, "bad.yaml", invalidPolicy)
	missing := filepath.Join(t.TempDir(), "missing.yaml")
	dir := t.TempDir() // a directory is not a readable policy file
	id := env.ID(t, issuer.TokenOptions{})
	closed := closedAddr(t)

	tests := []struct {
		name string
		args []string
		code int
		out  string // in stdout+stderr
	}{
		{"validate ok", []string{"validate", "--config", good}, exitOK, "ok:"},
		{"validate problems", []string{"validate", "--config", bad}, exitFail, "nobody"},
		{"validate missing file", []string{"validate", "--config", missing}, exitRuntime, "missing.yaml"},
		{"validate directory", []string{"validate", "--config", dir}, exitRuntime, "read policy"},
		{"validate usage", []string{"validate"}, exitUsage, "required"},
		{"explain allowed", []string{"explain", "--config", good, "--path", "/pets", "--token", id}, exitOK, `"allowed": true`},
		{"explain denied", []string{"explain", "--config", good, "--path", "/pets"}, exitFail, `"token_missing"`},
		{"explain problems", []string{"explain", "--config", bad, "--path", "/pets"}, exitUsage, "nobody"},
		{"explain missing file", []string{"explain", "--config", missing, "--path", "/pets"}, exitUsage, "missing.yaml"},
		{"explain usage", []string{"explain", "--path", "/pets"}, exitUsage, "required"},
		{"check unreachable", []string{"check", "--addr", closed, "--path", "/pets", "--timeout", "2s"}, exitRuntime, "extauthz check:"},
		{"check usage", []string{"check"}, exitUsage, "--path is required"},
		{"serve usage", []string{"serve"}, exitUsage, "required"},
		{"dev usage", []string{"dev", "--token-ttl", "soon"}, exitUsage, "token-ttl"},
		{"version", []string{"version"}, exitOK, "commit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errs := runCLI(t, tt.args...)
			if code != tt.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tt.code, out, errs)
			}
			if !strings.Contains(out+errs, tt.out) {
				t.Fatalf("output lacks %q\nstdout: %s\nstderr: %s", tt.out, out, errs)
			}
		})
	}
}

// TestServeMissingPolicyExits3 is the process-level case of the table: a
// serve whose policy file does not exist exits 3.
func TestServeMissingPolicyExits3(t *testing.T) {
	p := startProcess(t, nil, "serve", "--config", filepath.Join(t.TempDir(), "nope.yaml"),
		"--grpc-addr", freePort(t), "--admin-addr", freePort(t))
	err := <-p.done
	p.done <- err
	if code := p.cmd.ProcessState.ExitCode(); code != exitRuntime {
		t.Fatalf("exit %d (%v), want %d\nstderr:\n%s", code, err, exitRuntime, p.stderr.String())
	}
	if !strings.Contains(p.stderr.String(), "nope.yaml") {
		t.Fatalf("stderr does not name the file:\n%s", p.stderr.String())
	}
}

// TestDevBusyPortExits3: dev cannot listen, so it could not run.
func TestDevBusyPortExits3(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	code, _, errs := runCLI(t, "dev", "--admin-addr", l.Addr().String(), "--grpc-addr", freePort(t))
	if code != exitRuntime || !strings.Contains(errs, "listen admin") {
		t.Fatalf("exit %d, want %d\n%s", code, exitRuntime, errs)
	}
}

// TestReadmeExitCodes pins the exit code sentence of docs/operating.md to
// the constants, so the two cannot drift apart.
func TestReadmeExitCodes(t *testing.T) {
	b, err := os.ReadFile("../../docs/operating.md")
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`Exit codes: 0 success, 1 validation problems / check or explain denied, 2\s+usage \(and, for explain, a policy that does not load\), 3 the\s+command could not run`)
	if !re.Match(b) {
		t.Fatal("docs/operating.md no longer states the exit codes this test checks; update both")
	}
	if exitOK != 0 || exitFail != 1 || exitUsage != 2 || exitRuntime != 3 {
		t.Fatal("exit code constants differ from docs/operating.md")
	}
}

// TestExplainMetadataMatchesCheck: explain's metadata is the dynamic
// metadata that check prints, key for key, for an allow and a deny; no
// empty fields that Envoy never gets.
func TestExplainMetadataMatchesCheck(t *testing.T) {
	env := testenv.New(t)
	path := writeFile(t, "policy.yaml", env.Expand(testenv.Policy))
	grpcAddr, adminAddr := freePort(t), freePort(t)
	p := startProcess(t, []string{"EXTAUTHZ_LOG_LEVEL=error"}, "serve", "--config", path,
		"--grpc-addr", grpcAddr, "--admin-addr", adminAddr)
	waitReady(t, p, adminAddr)
	id := env.ID(t, issuer.TokenOptions{Subject: "sub-9"})

	for _, tc := range []struct {
		name string
		args []string
		keys []string
	}{
		{"allowed", []string{"--path", "/pets", "--token", id}, []string{"client_id", "pool", "route", "scopes", "sub", "token_use", "username"}},
		{"denied", []string{"--path", "/pets"}, []string{"reason", "route"}},
		{"no route", []string{"--path", "/nowhere"}, []string{"reason", "route"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, cout, cerr := runCLI(t, append([]string{"check", "--addr", grpcAddr}, tc.args...)...)
			code, eout, eerr := runCLI(t, append([]string{"explain", "--config", path}, tc.args...)...)
			if code != exitOK && code != exitFail {
				t.Fatalf("explain: exit %d\n%s", code, eerr)
			}
			var c, e struct {
				Metadata map[string]any `json:"metadata"`
			}
			if err := json.Unmarshal([]byte(cout), &c); err != nil {
				t.Fatalf("check output: %v\n%s%s", err, cout, cerr)
			}
			if err := json.Unmarshal([]byte(eout), &e); err != nil {
				t.Fatalf("explain output: %v\n%s", err, eout)
			}
			if !reflect.DeepEqual(c.Metadata, e.Metadata) {
				t.Fatalf("metadata differs\ncheck:   %v\nexplain: %v", c.Metadata, e.Metadata)
			}
			var keys []string
			for k := range e.Metadata {
				keys = append(keys, k)
			}
			if !sameKeys(keys, tc.keys) {
				t.Fatalf("metadata keys %v, want %v", keys, tc.keys)
			}
		})
	}
}

func sameKeys(got, want []string) bool {
	if len(got) != len(want) {
		return false
	}
	m := map[string]bool{}
	for _, k := range got {
		m[k] = true
	}
	for _, k := range want {
		if !m[k] {
			return false
		}
	}
	return true
}

// closedAddr is a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

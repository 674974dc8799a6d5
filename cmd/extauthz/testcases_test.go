package main

import (
	"context"
	"encoding/xml"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/cognito-extauthz/cognito-extauthz/internal/issuer"
	"github.com/cognito-extauthz/cognito-extauthz/internal/policytest"
	"github.com/cognito-extauthz/cognito-extauthz/internal/testenv"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/policy"
)

const testCases = `cases:
  - name: id token lists pets
    request: { method: GET, path: /pets }
    claims: { email: a@example.com }
    expect: { allow: true, headers: { x-user-email: a@example.com } }
  - name: health is open
    request: { path: /health }
    expect: { allow: true, status: 200 }
  - name: no token
    request: { path: /pets }
    expect: { allow: false, reason: token_missing, status: 401 }
`

const failingCase = `  - name: admins only
    request: { path: /admin/users }
    claims: { "cognito:groups": [users] }
    expect: { allow: true }
`

func TestTestCommand(t *testing.T) {
	env := testenv.New(t)
	pol := writeFile(t, "policy.yaml", env.Expand(testenv.Policy))
	good := writeFile(t, "cases.yaml", testCases)
	bad := writeFile(t, "failing.yaml", testCases+failingCase)
	broken := writeFile(t, "broken.yaml", "cases:\n  - name: x\n    request: { path: /pets }\n    expect: { allow: maybe }\n")
	junit := filepath.Join(t.TempDir(), "report.xml")
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout []string
		stderr string
	}{
		{"all pass", []string{"test", "--config", pol, good}, exitOK,
			[]string{"PASS id token lists pets\n", "PASS health is open\n", "PASS no token\n", "3 passed, 0 failed\n"}, ""},
		{"flags after the file", []string{"test", good, "--config", pol, "--junit", junit}, exitOK, []string{"3 passed, 0 failed"}, ""},
		{"a failure", []string{"test", "--config", pol, bad}, exitFail,
			[]string{"FAIL admins only (" + bad + ":12): denied (group_missing, 403), want allowed\n", "3 passed, 1 failed\n"}, ""},
		{"bad cases file", []string{"test", "--config", pol, broken}, exitUsage, nil, broken + ":4:22: cases[0].expect.allow: must be true or false"},
		{"missing cases file", []string{"test", "--config", pol, filepath.Join(t.TempDir(), "none.yaml")}, exitUsage, nil, "none.yaml"},
		{"bad policy", []string{"test", "--config", good, good}, exitUsage, nil, "apiVersion"},
		{"no config", []string{"test", good}, exitUsage, nil, "usage: extauthz test --config policy.yaml CASES.yaml"},
		{"two files", []string{"test", "--config", pol, good, good}, exitUsage, nil, "usage"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errs := runCLI(t, tt.args...)
			if code != tt.code || !strings.Contains(errs, tt.stderr) {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.code, out, errs)
			}
			for _, want := range tt.stdout {
				if !strings.Contains(out, want) {
					t.Errorf("stdout lacks %q:\n%s", want, out)
				}
			}
		})
	}
	// The JUnit report of the second run.
	b, err := os.ReadFile(junit)
	if err != nil {
		t.Fatal(err)
	}
	var report struct {
		Tests  int `xml:"tests,attr"`
		Suites []struct {
			Name  string `xml:"name,attr"`
			Cases []struct {
				Name string `xml:"name,attr"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(b, &report); err != nil || report.Tests != 3 || len(report.Suites) != 1 ||
		report.Suites[0].Name != good || len(report.Suites[0].Cases) != 3 {
		t.Fatalf("junit report (%v):\n%s", err, b)
	}
}

// TestServeRejectsTheTestKey: the token `extauthz test` mints for a case,
// and allows, is refused by `extauthz serve` running the same policy; a
// token of the pool's own issuer is allowed by both.
func TestServeRejectsTheTestKey(t *testing.T) {
	env := testenv.New(t)
	path := writeFile(t, "policy.yaml", env.Expand(testenv.Policy))
	snap, err := policy.Load(path, policy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	runner, err := policytest.NewRunner(snap, policytest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	c := policytest.Case{Name: "minted", Request: policytest.Request{Path: "/pets"}, Claims: map[string]any{}, Expect: policytest.Expect{Allow: true}}
	if r := runner.Run(context.Background(), []policytest.Case{c})[0]; !r.Pass {
		t.Fatalf("the test command does not allow its own token: %v", r.Diffs)
	}
	req, err := runner.Request(context.Background(), &c)
	if err != nil {
		t.Fatal(err)
	}
	minted := strings.TrimPrefix(req.GetHeaders()["authorization"], "Bearer ")

	grpcAddr, adminAddr := freePort(t), freePort(t)
	p := startProcess(t, nil, "serve", "--config", path, "--grpc-addr", grpcAddr, "--admin-addr", adminAddr, "--log-level", "warn")
	waitReady(t, p, adminAddr)
	code, out, errs := runCLI(t, "check", "--addr", grpcAddr, "--path", "/pets", "--token", minted)
	if code != exitFail || !strings.Contains(out, `"reason": "kid_unknown"`) {
		t.Fatalf("serve on a test-key token: exit %d\n%s%s", code, out, errs)
	}
	// The same pool's real token passes, so the refusal is the key's.
	real := env.ID(t, issuer.TokenOptions{})
	if code, out, _ := runCLI(t, "check", "--addr", grpcAddr, "--path", "/pets", "--token", real); code != exitOK {
		t.Fatalf("serve on a real token: exit %d\n%s", code, out)
	}
}

// TestTestKeyConfinement: only the test command imports the package that
// holds the test key; serve, the server and the policy never reach it.
func TestTestKeyConfinement(t *testing.T) {
	const pkg = "github.com/cognito-extauthz/cognito-extauthz/internal/policytest"
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	var importers []string
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case "node_modules", "testdata", ".git", "tools":
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		for _, im := range f.Imports {
			if p, _ := strconv.Unquote(im.Path.Value); p == pkg {
				rel, _ := filepath.Rel(root, path)
				importers = append(importers, rel)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(importers) != 1 || importers[0] != filepath.Join("cmd", "extauthz", "testcases.go") {
		t.Fatalf("internal/policytest is imported by %v; only cmd/extauthz/testcases.go may", importers)
	}
}

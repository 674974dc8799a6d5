package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cognito-extauthz/cognito-extauthz/pkg/policy"
)

// TestImportCommand: the policy on stdout (loadable whatever the exit),
// one line per thing not carried on stderr, and the exit codes.
func TestImportCommand(t *testing.T) {
	const dir = "../../internal/apigw/testdata/"
	missing := filepath.Join(t.TempDir(), "missing.json")
	tests := []struct {
		name     string
		args     []string
		code     int
		findings int    // lines on stderr before the summary
		stderr   string // in stderr
	}{
		{"REST OpenAPI 3", []string{"import", "apigateway", dir + "petstore-rest-oas30.json"}, exitOK, 0, ""},
		{"REST Swagger 2", []string{"import", "apigateway", dir + "petstore-rest-swagger.yaml"}, exitOK, 0, ""},
		{"HTTP API", []string{"import", "apigateway", dir + "pets-http-api.yaml"}, exitOK, 0, ""},
		{"leftovers", []string{"import", "apigateway", dir + "leftovers-rest-oas30.json"}, exitFail, 11, "11 things not carried"},
		{"not an export", []string{"import", "apigateway", "../../README.md"}, exitUsage, -1, "not an API Gateway export"},
		{"a policy", []string{"import", "apigateway", "dev-policy.yaml"}, exitUsage, -1, "not an API Gateway export"},
		{"missing file", []string{"import", "apigateway", missing}, exitRuntime, -1, "missing.json"},
		{"no file", []string{"import", "apigateway"}, exitUsage, -1, "usage: extauthz import apigateway FILE"},
		{"unknown source", []string{"import", "kong", dir + "pets-http-api.yaml"}, exitUsage, -1, "usage"},
		{"help", []string{"import", "-h"}, exitOK, -1, "REST API export"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errs := runCLI(t, tt.args...)
			if code != tt.code || !strings.Contains(errs, tt.stderr) {
				t.Fatalf("exit %d, want %d; stderr:\n%s", code, tt.code, errs)
			}
			if tt.findings < 0 {
				if out != "" {
					t.Errorf("stdout on failure:\n%s", out)
				}
				return
			}
			if _, err := policy.Parse([]byte(out), "imported.yaml", policy.Options{}); err != nil {
				t.Fatalf("the printed policy does not load: %v", err)
			}
			lines := strings.Split(strings.TrimSpace(errs), "\n")
			if errs == "" {
				lines = nil
			}
			want := tt.findings
			if want > 0 {
				want++ // the summary
			}
			if len(lines) != want {
				t.Fatalf("%d lines on stderr, want %d:\n%s", len(lines), want, errs)
			}
			for _, l := range lines[:tt.findings] {
				if !strings.HasPrefix(l, "$") {
					t.Errorf("finding %q does not start with its JSON path", l)
				}
			}
		})
	}
}

// TestImportThenTest: the examples' migration path end to end: import an
// export, write the policy, run cases against it.
func TestImportThenTest(t *testing.T) {
	code, out, errs := runCLI(t, "import", "apigateway", "../../internal/apigw/testdata/pets-http-api.yaml")
	if code != exitOK {
		t.Fatalf("import: %d %s", code, errs)
	}
	dir := t.TempDir()
	pol := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(pol, []byte(out), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := writeFile(t, "cases.yaml", `cases:
  - name: readers list pets
    request: { path: /pets }
    claims: { scope: pets/read }
    expect: { allow: true }
  - name: an ID token has no scopes
    request: { path: /pets }
    claims: { token_use: id }
    expect: { allow: false, reason: scope_missing, status: 403 }
`)
	if code, out, errs := runCLI(t, "test", "--config", pol, cases); code != exitOK || !strings.Contains(out, "2 passed, 0 failed") {
		t.Fatalf("test: exit %d\n%s%s", code, out, errs)
	}
}

package apigw_test

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cognito-extauthz/cognito-extauthz/internal/apigw"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/policy"
)

var update = flag.Bool("update", false, "rewrite the golden files of testdata")

// exports are the real-shaped exports of testdata and how many findings
// each must have.
var exports = []struct {
	file     string
	findings int
}{
	{"petstore-rest-oas30.json", 0},
	{"petstore-rest-swagger.yaml", 0},
	{"pets-http-api.yaml", 0},
	{"leftovers-rest-oas30.json", 11},
}

func importFile(t *testing.T, file string) *apigw.Result {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", file))
	if err != nil {
		t.Fatal(err)
	}
	res, err := apigw.Import(data, file)
	if err != nil {
		t.Fatalf("import %s: %v", file, err)
	}
	return res
}

// TestGolden imports each export and compares the policy and the report
// with testdata/NAME.policy.yaml and NAME.findings (-update rewrites them).
// Every policy loads with the service's own loader, from a file.
func TestGolden(t *testing.T) {
	for _, ex := range exports {
		t.Run(ex.file, func(t *testing.T) {
			res := importFile(t, ex.file)
			if len(res.Findings) != ex.findings {
				t.Errorf("%d findings, want %d:\n%s", len(res.Findings), ex.findings, findings(res))
			}
			base := strings.TrimSuffix(ex.file, filepath.Ext(ex.file))
			golden(t, base+".policy.yaml", string(res.Policy))
			golden(t, base+".findings", findings(res))
			path := filepath.Join(t.TempDir(), "policy.yaml")
			if err := os.WriteFile(path, res.Policy, 0o600); err != nil {
				t.Fatal(err)
			}
			snap, err := policy.Load(path, policy.Options{})
			if err != nil {
				t.Fatalf("the imported policy does not load: %v", err)
			}
			if len(snap.Warnings()) > 0 {
				t.Errorf("the imported policy has warnings: %v", snap.Warnings())
			}
		})
	}
}

func findings(res *apigw.Result) string {
	var b strings.Builder
	for _, f := range res.Findings {
		b.WriteString(f.String() + "\n")
	}
	return b.String()
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run TestGolden -update)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs:\ngot:\n%s\nwant:\n%s", name, got, want)
	}
}

// TestRESTFormatsAgree: the PetStore exported as OpenAPI 3 JSON and as
// Swagger 2 YAML gives the same policy; only the comments that name JSON
// paths (securitySchemes vs securityDefinitions) and the file differ.
func TestRESTFormatsAgree(t *testing.T) {
	oas := stripComments(importFile(t, "petstore-rest-oas30.json").Policy)
	swagger := stripComments(importFile(t, "petstore-rest-swagger.yaml").Policy)
	if oas != swagger {
		t.Fatalf("the two formats differ:\nOpenAPI 3:\n%s\nSwagger 2:\n%s", oas, swagger)
	}
	if !strings.Contains(oas, "routes:") || strings.Count(oas, "- name:") != 6 {
		t.Fatalf("unexpected policy:\n%s", oas)
	}
}

func stripComments(policy []byte) string {
	var out []string
	for _, line := range strings.Split(string(policy), "\n") {
		if t := strings.TrimSpace(line); t != "" && !strings.HasPrefix(t, "#") {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

// TestKinds names each export's kind, as the policy's header says.
func TestKinds(t *testing.T) {
	want := map[string]string{
		"petstore-rest-oas30.json":   "REST API (OpenAPI 3.0.1)",
		"petstore-rest-swagger.yaml": "REST API (Swagger 2.0)",
		"pets-http-api.yaml":         "HTTP API (OpenAPI 3.0.1)",
	}
	for file, kind := range want {
		if got := importFile(t, file).Kind; got != kind {
			t.Errorf("%s: kind %q, want %q", file, got, kind)
		}
	}
}

// TestNotAnExport refuses what API Gateway did not write.
func TestNotAnExport(t *testing.T) {
	tests := []struct{ name, input, why string }{
		{"empty", "", "empty"},
		{"not YAML", "{ [", "not JSON or YAML"},
		{"a list", "[1, 2]", "not a mapping"},
		{"no version", `{"paths": {}}`, "no openapi"},
		{"OpenAPI 2 under openapi", `{"openapi": "2.0", "paths": {}}`, "no openapi"},
		{"Swagger 1.2", `{"swagger": "1.2", "paths": {}}`, "Swagger 2.0"},
		{"no paths", `{"openapi": "3.0.1", "x-amazon-apigateway-importexport-version": "1.0"}`, "no paths"},
		{"plain OpenAPI", "openapi: 3.0.1\ninfo: {title: t, version: v}\npaths:\n  /pets:\n    get:\n      security: [{auth: []}]\n", "without API Gateway extensions"},
		{"a policy", "apiVersion: cognito-extauthz/v1\nroutes: []\n", "no openapi"},
		{"two documents", "openapi: 3.0.1\npaths: {}\n---\nopenapi: 3.0.1\n", "more than one"},
		{"aliases", "openapi: 3.0.1\nx-amazon-apigateway-importexport-version: &v '1.0'\npaths: {a: *v}\n", "anchors or aliases"},
		{"duplicate keys", "openapi: 3.0.1\nx-amazon-apigateway-importexport-version: '1.0'\npaths: {}\npaths: {}\n", "given twice"},
		{"deep nesting", "openapi: 3.0.1\nx-amazon-apigateway-importexport-version: '1.0'\npaths: {}\nx: " + strings.Repeat("[", 300) + strings.Repeat("]", 300) + "\n", "nested"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := apigw.Import([]byte(tt.input), "x")
			var ne *apigw.NotExportError
			if !errors.As(err, &ne) || !strings.Contains(err.Error(), tt.why) {
				t.Fatalf("error %v, want a NotExportError saying %q", err, tt.why)
			}
		})
	}
	// An execute-api address alone marks an export made without
	// extensions.
	res, err := apigw.Import([]byte(`{"openapi":"3.0.1","servers":[{"url":"https://abc.execute-api.us-east-1.amazonaws.com/{basePath}"}],"paths":{"/a":{"get":{}}}}`), "x")
	if err != nil || len(res.Findings) != 0 || !strings.Contains(string(res.Policy), "authorization: NONE") {
		t.Fatalf("export without extensions: %v", err)
	}
}

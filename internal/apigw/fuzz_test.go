package apigw_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/cognito-extauthz/cognito-extauthz/internal/apigw"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/policy"
)

// FuzzImport: whatever the input, Import either says it is not an export,
// or returns a policy that loads and a finding for each thing it left out;
// never any other error, never a panic.
func FuzzImport(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.json")
	more, _ := filepath.Glob("testdata/*.yaml")
	for _, file := range append(files, more...) {
		if data, err := os.ReadFile(file); err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte(rest("paths: {/a: {get: {security: [{users: [x]}, {lambda: []}]}, x-amazon-apigateway-any-method: {}}}\n")))
	f.Add([]byte(httpAPI("paths: {$default: {x-amazon-apigateway-any-method: {}}, /: {get: {}}}\n")))
	f.Fuzz(func(t *testing.T, data []byte) {
		res, err := apigw.Import(data, "fuzz.json")
		var ne *apigw.NotExportError
		if errors.As(err, &ne) {
			return
		}
		if err != nil {
			t.Fatalf("Import: %v", err)
		}
		if _, err := policy.Parse(res.Policy, "fuzz.yaml", policy.Options{}); err != nil {
			t.Fatalf("the policy does not load: %v\n%s", err, res.Policy)
		}
		for _, fd := range res.Findings {
			if fd.Path == "" || fd.Path[0] != '$' || fd.Message == "" {
				t.Fatalf("finding without a JSON path or message: %+v", fd)
			}
		}
	})
}

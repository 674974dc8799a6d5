package examples_test

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/cognito-extauthz/cognito-extauthz/internal/apigw"
	"github.com/cognito-extauthz/cognito-extauthz/internal/policytest"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/policy"
)

// policyOf names the policy of a cases file that has no policy.yaml beside
// it: the petstore cases test the policy the proxy examples front.
var policyOf = map[string]string{
	"petstore/cases.yaml": "../k8s/base/policy.yaml",
}

// TestExampleCases runs every examples/**/cases.yaml against its policy
// with the code of `extauthz test`; every case must pass.
func TestExampleCases(t *testing.T) {
	var files []string
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && d.Name() == "cases.yaml" {
			files = append(files, path)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 3 {
		t.Fatalf("only %d cases files: %v", len(files), files)
	}
	for _, file := range files {
		t.Run(file, func(t *testing.T) {
			pol := filepath.Join(filepath.Dir(file), "policy.yaml")
			if p, ok := policyOf[filepath.ToSlash(file)]; ok {
				pol = p
			}
			snap, err := policy.Load(pol, policy.Options{})
			if err != nil {
				t.Fatalf("policy of %s: %v", file, err)
			}
			cases, err := policytest.Load(file)
			if err != nil {
				t.Fatal(err)
			}
			runner, err := policytest.NewRunner(snap, policytest.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if err := runner.Prepare(cases); err != nil {
				t.Fatal(err)
			}
			for _, r := range runner.Run(context.Background(), cases) {
				if !r.Pass {
					t.Errorf("FAIL %s (%s:%d): %v", r.Case.Name, file, r.Case.Line, r.Diffs)
				}
			}
		})
	}
}

// TestImportedExamples: the example policies are what `extauthz import
// apigateway` makes of the exports they name, byte for byte.
func TestImportedExamples(t *testing.T) {
	for dir, export := range map[string]string{
		"apigateway-rest": "petstore-rest-oas30.json",
		"apigateway-http": "pets-http-api.yaml",
	} {
		data, err := os.ReadFile(filepath.Join("../internal/apigw/testdata", export))
		if err != nil {
			t.Fatal(err)
		}
		res, err := apigw.Import(data, export)
		if err != nil {
			t.Fatal(err)
		}
		want, err := os.ReadFile(filepath.Join(dir, "policy.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		if string(res.Policy) != string(want) {
			t.Errorf("%s/policy.yaml is not the import of %s (regenerate: cd internal/apigw/testdata && extauthz import apigateway %s > ../../../examples/%s/policy.yaml)", dir, export, export, dir)
		}
	}
}

package check_test

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/cognito-extauthz/cognito-extauthz/"

// TestLayering holds the architecture to its shape: data flows edge ->
// decision -> verification -> keys. Neither edge imports the other, the
// core shared by both imports neither, and the supported Go API under pkg/
// imports nothing of the service (decision, edges, server).
func TestLayering(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	tests := []struct {
		pkg    string
		forbid []string
	}{
		{"internal/grpcauthz", []string{"internal/httpauthz", "internal/server"}},
		{"internal/httpauthz", []string{"internal/grpcauthz", "internal/server"}},
		{"internal/check", []string{"internal/grpcauthz", "internal/httpauthz", "internal/server"}},
		{"internal/authz", []string{"internal/check", "internal/grpcauthz", "internal/httpauthz", "internal/server"}},
		{"pkg/policy", []string{"internal/authz", "internal/check", "internal/grpcauthz", "internal/httpauthz", "internal/server"}},
		{"pkg/token", []string{"internal/authz", "internal/check", "internal/grpcauthz", "internal/httpauthz", "internal/server", "pkg/policy"}},
		{"pkg/jwks", []string{"internal/authz", "internal/check", "pkg/policy", "pkg/token"}},
	}
	for _, tt := range tests {
		t.Run(tt.pkg, func(t *testing.T) {
			out, err := exec.Command("go", "list", "-deps", module+tt.pkg).CombinedOutput()
			if err != nil {
				t.Fatalf("go list: %v\n%s", err, out)
			}
			deps := strings.Fields(string(out))
			if len(deps) < 2 {
				t.Fatalf("go list found no dependencies: %s", out)
			}
			for _, d := range deps {
				for _, f := range tt.forbid {
					if d == module+f {
						t.Errorf("%s depends on %s", tt.pkg, f)
					}
				}
			}
		})
	}
}

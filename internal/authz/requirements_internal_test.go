package authz

import (
	"testing"

	"github.com/cognito-extauthz/cognito-extauthz/pkg/policy"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/reason"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/token"
)

// TestRequirementsFailClosed: a route without a mode, or claims that passed
// no reading of appClientIds (only Verify grants one), never pass.
func TestRequirementsFailClosed(t *testing.T) {
	tests := []struct {
		name string
		mode policy.Mode
		want reason.Code
	}{
		{"no mode", 0, reason.Internal},
		{"unknown mode", policy.ModeJWT + 1, reason.Internal},
		{"jwt, no app client reading", policy.ModeJWT, reason.ClientNotAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if code, _ := requirements(&policy.Route{Mode: tt.mode}, &token.Claims{}); code != tt.want {
				t.Fatalf("requirements = %q, want %q", code, tt.want)
			}
		})
	}
}

package extauthz_test

import (
	"slices"
	"testing"

	"github.com/cognito-extauthz/cognito-extauthz/pkg/extauthz"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/reason"
)

// Denial header names are spelled as the contract (WWW-Authenticate,
// x-extauthz-reason) and API Gateway (Content-Type, x-amzn-ErrorType)
// spell them, so a client matching names exactly finds them. Envoy
// lower-cases them itself on the way to the client.
func TestDenialHeaderSpelling(t *testing.T) {
	tests := []struct {
		code reason.Code
		want []string
	}{
		{reason.TokenMissing, []string{"Content-Type", "x-amzn-ErrorType", "WWW-Authenticate", "x-extauthz-reason"}},
		{reason.SignatureInvalid, []string{"Content-Type", "x-amzn-ErrorType", "WWW-Authenticate", "x-extauthz-reason"}},
		{reason.ScopeMissing, []string{"Content-Type", "x-amzn-ErrorType", "WWW-Authenticate", "x-extauthz-reason"}},
		{reason.RouteNotFound, []string{"Content-Type", "x-amzn-ErrorType", "x-extauthz-reason"}},
		{reason.JWKSUnavailable, []string{"Content-Type", "x-amzn-ErrorType", "x-extauthz-reason"}},
	}
	for _, tt := range tests {
		t.Run(string(tt.code), func(t *testing.T) {
			d := extauthz.DenialFor(nil, tt.code, nil)
			var names []string
			for _, h := range d.Headers {
				names = append(names, h.Name)
			}
			if !slices.Equal(names, tt.want) {
				t.Fatalf("header names = %q, want %q", names, tt.want)
			}
		})
	}
}

// A code missing from the table fails closed: 503, never a success status.
func TestUnknownReasonFailsClosed(t *testing.T) {
	d := extauthz.DenialFor(nil, reason.Code("no_such_code"), nil)
	if d.Status != 503 || d.Body != `{"message":"Service Unavailable"}` {
		t.Fatalf("unknown code answered %d %s", d.Status, d.Body)
	}
	for _, c := range reason.All() {
		switch c {
		case reason.Allowed, reason.NoAuth, reason.DefaultAllow:
			continue
		}
		if d := extauthz.DenialFor(nil, c, nil); d.Status < 400 {
			t.Errorf("%s: status %d", c, d.Status)
		}
	}
}

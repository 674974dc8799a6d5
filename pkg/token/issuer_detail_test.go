package token_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cognito-extauthz/cognito-extauthz/pkg/reason"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/token"
)

// TestIssuerUnknownDetailListsAccepted: an issuer_unknown detail names the
// issuers the authorizer accepts, so a near miss (127.0.0.1 for localhost,
// a trailing slash) shows in explain and the logs without reading the
// policy. The list is bounded.
func TestIssuerUnknownDetailListsAccepted(t *testing.T) {
	many := func(n int) func(*token.Config) {
		return func(c *token.Config) {
			c.Pools = nil
			for i := range n {
				c.Pools = append(c.Pools, token.Pool{ID: fmt.Sprint("p", i), Issuers: []string{fmt.Sprintf("http://localhost:9229/local_%02d", i)}, Keys: srcA})
			}
		}
	}
	tests := []struct {
		name   string
		iss    string
		cfg    func(*token.Config)
		want   []string
		absent []string
	}{
		{"both Cognito forms", issA + "/", nil, []string{`accepted: "` + issA + `", "` + issANew + `"`}, nil},
		{"127.0.0.1 for localhost", "http://127.0.0.1:9229/local_00", many(1), []string{`accepted: "http://localhost:9229/local_00"`}, []string{"..."}},
		{"bounded", "https://evil.example", many(9), []string{`"http://localhost:9229/local_05", ...`}, []string{"local_06"}},
		{"no pools", "https://evil.example", func(c *token.Config) { c.Pools = nil }, []string{"accepted: none"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := configA()
			if tt.cfg != nil {
				tt.cfg(cfg)
			}
			raw := signRS(t, testKey(t, "a"), "RS256", hdr(), access(map[string]string{"iss": `"` + tt.iss + `"`}))
			_, err := token.NewVerifier(newWorld(t), time.Now).Verify(context.Background(), cfg, raw)
			var re *reason.Error
			if !errors.As(err, &re) || re.Code != reason.IssuerUnknown {
				t.Fatalf("Verify = %v, want issuer_unknown", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(re.Detail, w) {
					t.Errorf("detail %q lacks %q", re.Detail, w)
				}
			}
			for _, a := range tt.absent {
				if strings.Contains(re.Detail, a) {
					t.Errorf("detail %q has %q", re.Detail, a)
				}
			}
		})
	}
}

// TestDetailClipsAttackerText: an unknown iss is quoted in the detail whole
// up to 64 bytes and cut to 64 bytes plus "..." beyond.
func TestDetailClipsAttackerText(t *testing.T) {
	base := "https://evil.example/"
	tests := []struct {
		name string
		iss  string
		want string
	}{
		{"63 bytes, whole", base + strings.Repeat("x", 63-len(base)), ""},
		{"64 bytes, whole", base + strings.Repeat("x", 64-len(base)), ""},
		{"65 bytes, clipped", base + strings.Repeat("x", 65-len(base)), base + strings.Repeat("x", 64-len(base)) + "..."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := tt.want
			if want == "" {
				want = tt.iss
			}
			raw := signRS(t, testKey(t, "a"), "RS256", hdr(), access(map[string]string{"iss": `"` + tt.iss + `"`}))
			_, err := token.NewVerifier(newWorld(t), time.Now).Verify(context.Background(), configA(), raw)
			var re *reason.Error
			if !errors.As(err, &re) || re.Code != reason.IssuerUnknown {
				t.Fatalf("Verify = %v, want issuer_unknown", err)
			}
			if q := fmt.Sprintf("claim iss %q names", want); !strings.Contains(re.Detail, q) {
				t.Errorf("detail %q lacks %s", re.Detail, q)
			}
		})
	}
}

package grpcauthz_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/cognito-extauthz/cognito-extauthz/internal/issuer"
	"github.com/cognito-extauthz/cognito-extauthz/internal/testenv"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/policy"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

// TestGoldenResponses pins the complete CheckResponse, as protojson, of
// one allow of each kind and one denial of each class. Everything in them
// is stable: tokens are minted with fixed subjects and nothing secret is in
// a response. Run with -update to rewrite after an intended change.
func TestGoldenResponses(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	e := f.env
	down := testenv.New(t)
	down.SetMode(testenv.Down)
	g := newFixture(t, fixtureOptions{env: down, noWait: true})
	nilSnap := newFixture(t, fixtureOptions{env: e, snapshot: func() *policy.Snapshot { return nil }})

	id := e.ID(t, issuer.TokenOptions{Subject: "11111111-2222-4333-8444-555555555555", Username: "alice",
		Email: "alice@example.com", Groups: []string{"admins", "staff"}})
	tests := []struct {
		name string
		fx   *fixture
		call call
	}{
		{"allow-id-token", f, call{path: "/pets", headers: bearer(id)}},
		{"allow-access-token", f, call{method: "DELETE", path: "/pets/7", headers: bearer(e.Access(t, issuer.TokenOptions{
			Subject: "66666666-7777-4888-9999-000000000000", Username: "bob", Scopes: []string{"pets/admin", "openid"}}))}},
		{"allow-strip-cookie", f, call{path: "/c", headers: map[string]string{"cookie": "a=1; id_token=" + id}}},
		{"allow-strip-query", f, call{path: "/q?access_token=" + e.Access(t, issuer.TokenOptions{Subject: "q"})}},
		{"allow-none", f, call{path: "/health"}},
		{"deny-token-missing", f, call{path: "/pets"}},
		{"deny-signature-invalid", f, call{path: "/pets", headers: bearer(flipSignature(t, id))}},
		{"deny-token-expired", f, call{path: "/pets", headers: bearer(e.ID(t, issuer.TokenOptions{TTL: -time.Minute}))}},
		{"deny-scope-missing", f, call{path: "/pets/7", headers: bearer(e.Access(t, issuer.TokenOptions{Scopes: []string{"x"}}))}},
		{"deny-group-missing", f, call{path: "/admin/x", headers: bearer(e.ID(t, issuer.TokenOptions{}))}},
		{"deny-route-not-found", f, call{path: "/nowhere", headers: bearer(id)}},
		{"deny-jwks-unavailable", g, call{path: "/pets", headers: bearer(down.ID(t, issuer.TokenOptions{}))}},
		{"deny-internal", nilSnap, call{path: "/pets", headers: bearer(id)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := goldenJSON(t, tt.fx.check(t, tt.call.request()))
			path := filepath.Join("testdata", tt.name+".golden")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatalf("write golden: %v", err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("read golden (run with -update to create): %v", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from golden file:\n--- got\n%s\n--- want\n%s", tt.name, got, want)
			}
		})
	}
}

// goldenJSON renders resp as indented JSON with header lists sorted.
// protojson's whitespace is deliberately unstable, so its output is
// compacted and re-indented with encoding/json.
func goldenJSON(t *testing.T, resp *authv3.CheckResponse) []byte {
	t.Helper()
	resp = proto.Clone(resp).(*authv3.CheckResponse)
	byKey := func(a, b *corev3.HeaderValueOption) int {
		return strings.Compare(a.GetHeader().GetKey(), b.GetHeader().GetKey())
	}
	if ok := resp.GetOkResponse(); ok != nil {
		slices.SortFunc(ok.Headers, byKey)
		slices.Sort(ok.HeadersToRemove)
		slices.Sort(ok.QueryParametersToRemove)
	}
	if dr := resp.GetDeniedResponse(); dr != nil {
		slices.SortFunc(dr.Headers, byKey)
	}
	b, err := protojson.Marshal(resp)
	if err != nil {
		t.Fatalf("protojson: %v", err)
	}
	var compact, out bytes.Buffer
	if err := json.Compact(&compact, b); err != nil {
		t.Fatalf("compact: %v", err)
	}
	if err := json.Indent(&out, compact.Bytes(), "", "  "); err != nil {
		t.Fatalf("indent: %v", err)
	}
	out.WriteByte('\n')
	return out.Bytes()
}

package grpcauthz_test

import (
	"context"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/cognito-extauthz/cognito-extauthz/internal/authz"
	"github.com/cognito-extauthz/cognito-extauthz/internal/grpcauthz"
	"github.com/cognito-extauthz/cognito-extauthz/internal/issuer"
	"github.com/cognito-extauthz/cognito-extauthz/internal/testenv"
)

// Check sends its dynamic metadata pre-encoded; once on the wire it must
// decode to exactly the google.protobuf.Struct that an independent
// structpb build of the same decision gives (wantMetadata), for allows
// (ID and access tokens, cached or not, with and without scopes), denials
// of every kind, and routes without a token.
func TestWireResponseMatchesResponse(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	id := f.env.ID(t, issuer.TokenOptions{Email: "a@example.com", Groups: []string{"admins", "staff"}})
	access := f.env.Access(t, issuer.TokenOptions{Scopes: []string{"pets/read", "pets/admin", "x/y"}})
	noScope := f.env.Access(t, issuer.TokenOptions{})
	tests := []struct {
		name string
		c    call
	}{
		{"allow id token", call{path: "/pets", headers: bearer(id)}},
		{"allow access token with scopes", call{path: "/pets/7", headers: bearer(access)}},
		{"allow access token without scopes", call{path: "/any-access", headers: bearer(noScope)}},
		{"allow on a route that is not cached", call{path: "/nocache", headers: bearer(id)}},
		{"allow with a stripped cookie", call{path: "/c", headers: map[string]string{"cookie": "a=1; id_token=" + id}}},
		{"allow without a token", call{path: "/health"}},
		{"deny no token", call{path: "/pets"}},
		{"deny bad token", call{path: "/pets", headers: bearer("a.b.c")}},
		{"deny group missing", call{path: "/admin/x", headers: bearer(f.env.ID(t, issuer.TokenOptions{}))}},
		{"deny scope missing", call{path: "/pets/7", headers: bearer(noScope)}},
		{"deny no route", call{path: "/nowhere"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { wireMatches(t, f, tt.c) })
	}
	// Metadata reads the pre-encoded form back.
	_, resp := grpcauthz.Decide(context.Background(), f.snap, f.az, call{path: "/pets", headers: bearer(id)}.request())
	md, err := grpcauthz.Metadata(resp)
	if err != nil || md.GetFields()["route"].GetStringValue() != "list-pets" {
		t.Fatalf("Metadata = %v, %v; want route list-pets", md, err)
	}
}

// wantMetadata is the dynamic metadata of d built from structpb values,
// the way a reader of the schema (proto/extauthz/v1 CheckMetadata) expects
// it: the oracle of the hand-written wire encoding.
func wantMetadata(d *authz.Decision) *structpb.Struct {
	f := map[string]*structpb.Value{"route": structpb.NewStringValue(d.RouteName())}
	switch c := d.Claims; {
	case !d.Allowed:
		f["reason"] = structpb.NewStringValue(string(d.Reason))
	case c != nil:
		f["sub"] = structpb.NewStringValue(c.Subject())
		f["username"] = structpb.NewStringValue(c.Username())
		f["token_use"] = structpb.NewStringValue(c.TokenUse())
		f["client_id"] = structpb.NewStringValue(c.ClientID())
		f["pool"] = structpb.NewStringValue(c.Pool())
		var scopes []*structpb.Value
		for _, sc := range c.Scopes() {
			scopes = append(scopes, structpb.NewStringValue(sc))
		}
		f["scopes"] = structpb.NewListValue(&structpb.ListValue{Values: scopes})
	}
	if d.DryRun {
		f["dry_run"] = structpb.NewBoolValue(true)
		f["reason"] = structpb.NewStringValue(string(d.Reason))
	}
	return &structpb.Struct{Fields: f}
}

// wireMatches checks, twice (the second a cache hit where the route
// caches), that what Check sends decodes to exactly Response's answer.
func wireMatches(t *testing.T, f *fixture, c call) {
	t.Helper()
	for _, pass := range []string{"first", "second (cache hit where cached)"} {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		wire, err := f.srv.Check(ctx, c.request())
		cancel()
		if err != nil {
			t.Fatalf("%s check: %v", pass, err)
		}
		b, err := proto.Marshal(wire)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		var got authv3.CheckResponse
		if err := proto.Unmarshal(b, &got); err != nil {
			t.Fatalf("unmarshal: %v", err)
		}
		d, _ := f.decide(t, c.request())
		want := wantMetadata(d)
		if !proto.Equal(want, got.GetDynamicMetadata()) {
			t.Fatalf("%s check: wire metadata differs from the structpb build\nwant: %s\ngot:  %s", pass, prototext.Format(want), prototext.Format(got.GetDynamicMetadata()))
		}
		if _, ok := got.GetDynamicMetadata().GetFields()["route"]; !ok {
			t.Fatalf("dynamic metadata missing: %v", got.GetDynamicMetadata())
		}
	}
}

// TestWireDryRunMetadata: a dry-run route's would-be denial carries
// dry_run and reason on the wire.
func TestWireDryRunMetadata(t *testing.T) {
	doc := strings.Replace(testenv.Policy, "  - name: health\n", `  - name: dry
    match: { path: /dry }
    authorizer: users
    mode: identity-claims
    groups: [nobody]
    claimHeaders: { x-user-sub: sub }
    dryRun: true
  - name: health
`, 1)
	f := newFixture(t, fixtureOptions{policy: doc})
	id := f.env.ID(t, issuer.TokenOptions{})
	for _, c := range []call{
		{path: "/dry", headers: bearer(id)},
		{path: "/dry"},
	} {
		wireMatches(t, f, c)
		md, err := grpcauthz.Metadata(f.check(t, c.request()))
		if err != nil {
			t.Fatal(err)
		}
		if !md.GetFields()["dry_run"].GetBoolValue() || md.GetFields()["reason"].GetStringValue() == "" {
			t.Fatalf("%s: metadata %v lacks dry_run and reason", c.path, md)
		}
	}
}

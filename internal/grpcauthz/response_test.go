package grpcauthz_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cognito-extauthz/cognito-extauthz/internal/authz"
	"github.com/cognito-extauthz/cognito-extauthz/internal/check"
	"github.com/cognito-extauthz/cognito-extauthz/internal/grpcauthz"
	"github.com/cognito-extauthz/cognito-extauthz/internal/issuer"
	"github.com/cognito-extauthz/cognito-extauthz/internal/testenv"
	"github.com/cognito-extauthz/cognito-extauthz/internal/wait"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/jwks"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/reason"
)

// TestCheckResponseTable pins every row of the response table of
// docs/policy.md over a real gRPC connection: the RPC succeeds, and the
// CheckResponse carries the status, HTTP status, body, WWW-Authenticate
// and reason.
func TestCheckResponseTable(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	other := testenv.New(t) // a second, unconfigured issuer

	id := f.env.ID(t, issuer.TokenOptions{Email: "a@example.com"})
	access := f.env.Access(t, issuer.TokenOptions{Scopes: []string{"pets/read"}})

	tests := []checkCase{
		{name: "allowed", call: call{path: "/pets", headers: bearer(id)}, allow: true},
		{name: "authorization NONE", call: call{path: "/health"}, allow: true},
		{name: "no token", call: call{path: "/pets"}, want: denyMissing(reason.TokenMissing)},
		{name: "empty authorization", call: call{path: "/pets", headers: map[string]string{"authorization": ""}},
			want: denyMissing(reason.TokenMissing)},
		{name: "Bearer alone", call: call{path: "/pets", headers: map[string]string{"authorization": "Bearer"}},
			want: denyMissing(reason.TokenMissing)},
		{name: "Bearer and spaces", call: call{path: "/pets", headers: map[string]string{"authorization": "Bearer   "}},
			want: denyMissing(reason.TokenMissing)},
		{name: "malformed", call: call{path: "/pets", headers: bearer("not.a.jwt!")},
			want: denyInvalid(reason.TokenMalformed)},
		{name: "malformed two segments", call: call{path: "/pets", headers: bearer("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0")},
			want: denyInvalid(reason.TokenMalformed)},
		{name: "bad signature", call: call{path: "/pets", headers: bearer(flipSignature(t, id))},
			want: denyInvalid(reason.SignatureInvalid)},
		{name: "unknown kid", call: call{path: "/pets", headers: bearer(f.env.ID(t, issuer.TokenOptions{
			Header: map[string]any{"kid": "no-such-kid"}}))},
			want: denyInvalid(reason.KidUnknown)},
		{name: "wrong issuer", call: call{path: "/pets", headers: bearer(other.ID(t, issuer.TokenOptions{}))},
			want: denyInvalid(reason.IssuerUnknown)},
		{name: "access token on identity route", call: call{path: "/pets", headers: bearer(access)},
			want: denyInvalid(reason.TokenUseMismatch)},
		{name: "id token on access route", call: call{path: "/pets/7", headers: bearer(id)},
			want: denyInvalid(reason.TokenUseMismatch)},
		{name: "client not allowed", call: call{path: "/pets", headers: bearer(f.env.ID(t, issuer.TokenOptions{ClientID: "client-z"}))},
			want: denyInvalid(reason.ClientNotAllowed)},
		{name: "expired", call: call{path: "/pets", headers: bearer(f.env.ID(t, issuer.TokenOptions{TTL: -time.Minute}))},
			want: denyExpired},
		{name: "scope missing", call: call{path: "/pets/7", headers: bearer(f.env.Access(t, issuer.TokenOptions{Scopes: []string{"pets/write"}}))},
			want: denyForbidden(reason.ScopeMissing, `Bearer error="insufficient_scope", scope="pets/read pets/admin"`)},
		{name: "scope claim absent", call: call{path: "/pets/7", headers: bearer(f.env.Access(t, issuer.TokenOptions{}))},
			want: denyForbidden(reason.ScopeMissing, `Bearer error="insufficient_scope", scope="pets/read pets/admin"`)},
		{name: "group missing", call: call{path: "/admin/users", headers: bearer(f.env.ID(t, issuer.TokenOptions{Groups: []string{"users"}}))},
			want: denyForbidden(reason.GroupMissing, `Bearer error="insufficient_scope"`)},
		{name: "claim mismatch", call: call{path: "/tenant", headers: bearer(f.env.ID(t, issuer.TokenOptions{
			Claims: map[string]any{"custom:tenant": "globex"}}))},
			want: denyForbidden(reason.ClaimMismatch, `Bearer error="insufficient_scope"`)},
		{name: "alg none", call: call{path: "/pets", headers: bearer(hostile(t, f, map[string]any{"alg": "none"}, nil))},
			want: denyInvalid(reason.AlgNotAllowed)},
		{name: "alg HS256", call: call{path: "/pets", headers: bearer(hostile(t, f, map[string]any{"alg": "HS256"}, nil))},
			want: denyInvalid(reason.AlgNotAllowed)},
		{name: "kid absent", call: call{path: "/pets", headers: bearer(hostile(t, f, map[string]any{"kid": nil}, nil))},
			want: denyInvalid(reason.KidMissing)},
		{name: "crit header", call: call{path: "/pets", headers: bearer(hostile(t, f, map[string]any{"crit": []string{"exp"}}, nil))},
			want: denyInvalid(reason.HeaderInvalid)},
		{name: "jku header", call: call{path: "/pets", headers: bearer(hostile(t, f, map[string]any{"jku": "https://evil.example/jwks.json"}, nil))},
			want: denyInvalid(reason.HeaderInvalid)},
		{name: "exp as string", call: call{path: "/pets", headers: bearer(hostile(t, f, nil, map[string]any{"exp": "9999999999"}))},
			want: denyInvalid(reason.ClaimInvalid)},
		{name: "exp absent", call: call{path: "/pets", headers: bearer(hostile(t, f, nil, map[string]any{"exp": nil}))},
			want: denyInvalid(reason.ClaimInvalid)},
		{name: "nbf in the future", call: call{path: "/pets", headers: bearer(hostile(t, f, nil, map[string]any{"nbf": time.Now().Add(time.Hour).Unix()}))},
			want: denyInvalid(reason.ClaimInvalid)},
		{name: "token_use absent", call: call{path: "/pets", headers: bearer(hostile(t, f, nil, map[string]any{"token_use": nil}))},
			want: denyInvalid(reason.TokenUseMismatch)},
		// A JSON JWS has commas, so the header rule (Envoy joins repeated
		// headers with commas) refuses it before the shape gate would.
		{name: "JSON-serialised JWS", call: call{path: "/pets", headers: bearer(`{"payload":"e30","signatures":[]}`)},
			want: denyInvalid(reason.TokenAmbiguous)},
		{name: "JSON-serialised JWS without commas", call: call{path: "/pets", headers: bearer(`{"payload":"e30"}`)},
			want: denyInvalid(reason.TokenMalformed)},
		{name: "padded segment", call: call{path: "/pets", headers: bearer(strings.Replace(id, ".", "=.", 1))},
			want: denyInvalid(reason.TokenMalformed)},
		{name: "no route", call: call{path: "/nowhere", headers: bearer(id)}, want: denyNoRoute},
		{name: "query does not take part in matching", call: call{path: "/nowhere?/pets", headers: bearer(id)}, want: denyNoRoute},
		{name: "path with query still matches", call: call{path: "/pets?next=/health", headers: bearer(id)}, allow: true},
		{name: "undecodable path", call: call{path: "/pets/%zz", headers: bearer(id)},
			want: denial{codes.PermissionDenied, 403, `{"message":"Missing Authentication Token"}`, "", reason.PathInvalid}},
		{name: "no route, method not allowed", call: call{method: "POST", path: "/pets", headers: bearer(id)}, want: denyNoRoute},
		{name: "context route unknown", call: call{path: "/pets", headers: bearer(id), route: "no-such-route"}, want: denyNoRoute},
	}
	runCheckCases(t, f, tests)

	t.Run("wrong issuer never fetched", func(t *testing.T) {
		// An iss naming no pool is denied before any key
		// lookup, so attacker-chosen issuers cause no I/O.
		if n := other.Hits(); n != 0 {
			t.Errorf("the unconfigured issuer's JWKS was fetched %d times", n)
		}
	})
	t.Run("context route unknown is a logged configuration error", func(t *testing.T) {
		found := false
		for _, l := range f.logs.Lines(t) {
			if l["level"] == "error" && strings.Contains(l["msg"].(string), "configuration error") &&
				l["context_route"] == "no-such-route" && l["reason"] == string(reason.RouteNotFound) {
				found = true
			}
		}
		if !found {
			t.Errorf("no error-level configuration error line for the unknown context route; logs:\n%s", f.logs.String())
		}
	})
}

// TestCheckJWKSDown: a JWKS that is down with nothing cached answers 503
// jwks_unavailable, never an allow, never an RPC error.
func TestCheckJWKSDown(t *testing.T) {
	env := testenv.New(t)
	env.SetMode(testenv.Down)
	f := newFixture(t, fixtureOptions{env: env, noWait: true})
	tok := env.ID(t, issuer.TokenOptions{})
	for i := range 3 {
		resp := f.check(t, call{path: "/pets", headers: bearer(tok)}.request())
		wantDenied(t, resp, denyUnavail(reason.JWKSUnavailable))
		if t.Failed() {
			t.Fatalf("check %d", i)
		}
	}
	if env.Hits() == 0 {
		t.Errorf("the JWKS server was never asked")
	}
}

// TestCheckDeadline: a JWKS server that hangs while a key is needed makes
// the check fail closed by its deadline: the decision is
// deadline_exceeded (503), and on the wire the client sees either that
// CheckResponse or its own deadline error, never an allow.
func TestCheckDeadline(t *testing.T) {
	env := testenv.New(t)
	// The deadlines here end the wait for the refetch, not the kid-miss
	// budget.
	noBudget := jwks.Options{MissWait: time.Minute}
	f := newFixture(t, fixtureOptions{env: env, jwks: noBudget})
	env.SetMode(testenv.Hang)
	// A kid the loaded set lacks forces a refetch, which hangs.
	tok := func() string {
		return env.Access(t, issuer.TokenOptions{Scopes: []string{"pets/read"}, Header: map[string]any{"kid": "rotated-" + randomHex(8)}})
	}

	t.Run("decision", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		d, resp := grpcauthz.Decide(ctx, f.snap, f.az, call{path: "/pets/7", headers: bearer(tok())}.request())
		if d.Allowed {
			t.Fatalf("allowed past the deadline: %+v", d)
		}
		if d.Reason != reason.DeadlineExceeded {
			t.Errorf("reason = %s (%s), want %s", d.Reason, d.Detail, reason.DeadlineExceeded)
		}
		wantDenied(t, resp, denyUnavail(reason.DeadlineExceeded))
	})

	t.Run("decision canceled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		d, resp := grpcauthz.Decide(ctx, f.snap, f.az, call{path: "/pets/7", headers: bearer(tok())}.request())
		if d.Allowed || d.Reason != reason.Canceled {
			t.Fatalf("decision = %v %s, want a %s denial", d.Allowed, d.Reason, reason.Canceled)
		}
		wantDenied(t, resp, denyUnavail(reason.Canceled))
	})

	t.Run("wire, client deadline", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		resp, err := f.client.Check(ctx, call{path: "/pets/7", headers: bearer(tok())}.request())
		if err != nil {
			if c := status.Code(err); c != codes.DeadlineExceeded {
				t.Fatalf("rpc error %v, want a CheckResponse or DeadlineExceeded", err)
			}
			return
		}
		wantDenied(t, resp, denyUnavail(reason.DeadlineExceeded))
	})

	t.Run("wire, server timeout", func(t *testing.T) {
		// The server's own cap answers inside the client's deadline, so the
		// client always gets the CheckResponse.
		g := newFixture(t, fixtureOptions{env: env, noWait: true, timeout: 200 * time.Millisecond, jwks: noBudget})
		start := time.Now()
		resp := g.check(t, call{path: "/pets/7", headers: bearer(tok())}.request())
		wantDenied(t, resp, denyUnavail(reason.DeadlineExceeded))
		if el := time.Since(start); el > 10*time.Second {
			t.Errorf("answer took %v; the 200ms cap did not bound it", el)
		}
	})
}

// TestCheckSlowJWKSAtStartup: a JWKS server that hangs at start-up with a
// short FetchTimeout gives prompt 503s (never an allow), and checks recover
// once it answers.
func TestCheckSlowJWKSAtStartup(t *testing.T) {
	env := testenv.New(t)
	env.SetMode(testenv.Hang)
	f := newFixture(t, fixtureOptions{env: env, noWait: true, jwks: jwks.Options{
		FetchTimeout:       150 * time.Millisecond,
		MinRefetchInterval: 50 * time.Millisecond,
		RetryMin:           50 * time.Millisecond,
		RetryMax:           100 * time.Millisecond,
	}})
	tok := env.ID(t, issuer.TokenOptions{})
	req := call{path: "/pets", headers: bearer(tok)}.request()

	for i := range 5 {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		start := time.Now()
		resp, err := f.client.Check(ctx, req)
		el := time.Since(start)
		cancel()
		if err != nil {
			t.Fatalf("check %d: rpc error %v", i, err)
		}
		wantDenied(t, resp, denyUnavail(reason.JWKSUnavailable))
		// Bounded by the fetch timeout (a check may join one fetch and
		// start one more), far inside the client's deadline.
		if el > 5*time.Second {
			t.Errorf("check %d took %v with a 150ms fetch timeout", i, el)
		}
	}

	env.SetMode(testenv.Up)
	wait.For(t, wait.Patient, "checks to recover after the JWKS server came up", func() bool {
		resp := f.check(t, req)
		return codes.Code(resp.GetStatus().GetCode()) == codes.OK
	})
	wantAllowed(t, f.check(t, req))
}

// TestResponseUnknownReason: a reason code outside the table is answered
// as a 503, never as anything else.
func TestResponseUnknownReason(t *testing.T) {
	resp := grpcauthz.Response(nil, &authz.Decision{Reason: reason.Code("made_up_code")})
	wantDenied(t, resp, denyUnavail(reason.Code("made_up_code")))
}

// TestDenialForEveryReason pins the class of every reason code.
func TestDenialForEveryReason(t *testing.T) {
	tests := []struct {
		code   reason.Code
		grpc   codes.Code
		status int
	}{
		{reason.TokenMissing, codes.Unauthenticated, 401},
		{reason.TokenAmbiguous, codes.Unauthenticated, 401},
		{reason.TokenMalformed, codes.Unauthenticated, 401},
		{reason.HeaderInvalid, codes.Unauthenticated, 401},
		{reason.AlgNotAllowed, codes.Unauthenticated, 401},
		{reason.KidMissing, codes.Unauthenticated, 401},
		{reason.KidUnknown, codes.Unauthenticated, 401},
		{reason.SignatureInvalid, codes.Unauthenticated, 401},
		{reason.IssuerUnknown, codes.Unauthenticated, 401},
		{reason.ClaimInvalid, codes.Unauthenticated, 401},
		{reason.TokenUseMismatch, codes.Unauthenticated, 401},
		{reason.ClientNotAllowed, codes.Unauthenticated, 401},
		{reason.TokenExpired, codes.Unauthenticated, 401},
		{reason.ScopeMissing, codes.PermissionDenied, 403},
		{reason.GroupMissing, codes.PermissionDenied, 403},
		{reason.ClaimMismatch, codes.PermissionDenied, 403},
		{reason.RouteNotFound, codes.PermissionDenied, 403},
		{reason.PathInvalid, codes.PermissionDenied, 403},
		{reason.JWKSUnavailable, codes.Unavailable, 503},
		{reason.DeadlineExceeded, codes.Unavailable, 503},
		{reason.Canceled, codes.Unavailable, 503},
		{reason.Internal, codes.Unavailable, 503},
		{reason.RequestInvalid, codes.InvalidArgument, 400},
		// An allow code reaching the deny path is a bug: it fails closed.
		{reason.Allowed, codes.Unavailable, 503},
	}
	for _, tt := range tests {
		t.Run(string(tt.code), func(t *testing.T) {
			d := check.DenialFor(nil, tt.code, nil)
			if d.GRPCCode != tt.grpc || d.Status != tt.status {
				t.Errorf("DenialFor(%s) = %v/%d, want %v/%d", tt.code, d.GRPCCode, d.Status, tt.grpc, tt.status)
			}
			if tt.grpc == codes.OK {
				t.Errorf("a denial with gRPC OK")
			}
			var reasonHeader string
			for _, h := range d.Headers {
				if h.Name == "x-extauthz-reason" {
					reasonHeader = h.Value
				}
			}
			if reasonHeader != string(tt.code) {
				t.Errorf("x-extauthz-reason = %q", reasonHeader)
			}
		})
	}
}

// hostile mints an ID token for the allowed client with header and claim
// overrides (a nil value deletes), genuinely signed with the issuer's key.
func hostile(t *testing.T, f *fixture, header, claims map[string]any) string {
	t.Helper()
	return f.env.ID(t, issuer.TokenOptions{Header: header, Claims: claims})
}

package server_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cognito-extauthz/cognito-extauthz/internal/issuer"
	"github.com/cognito-extauthz/cognito-extauthz/internal/server"
	"github.com/cognito-extauthz/cognito-extauthz/internal/testenv"
	"github.com/cognito-extauthz/cognito-extauthz/internal/wait"
	extauthzv1 "github.com/cognito-extauthz/cognito-extauthz/proto/extauthz/v1"
)

const adminPolicy = `
apiVersion: cognito-extauthz/v1
authorizers:
  users:
    userPools: [{userPoolId: ${POOL}, issuer: ${ISSUER}, jwksUri: ${JWKS}}]
routes:
  - name: reports
    match: { path: /reports }
    authorizer: users
    mode: identity-claims
    groups: [GROUP]
`

func explainCall(t *testing.T, r *running, tok string) *extauthzv1.Decision {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d, err := extauthzv1.NewAdminClient(r.conn).Explain(ctx, &extauthzv1.ExplainRequest{
		Method: "GET", Path: "/reports", Headers: map[string]string{"authorization": "Bearer " + tok},
	})
	if err != nil {
		t.Fatalf("Admin/Explain: %v", err)
	}
	return d
}

// TestAdminExplainLive: the Admin/Explain RPC answers from the live policy:
// after a reload it explains with the new requirements. It never echoes the
// token.
func TestAdminExplainLive(t *testing.T) {
	env := testenv.New(t)
	path := filepath.Join(t.TempDir(), "policy.yaml")
	write := func(group string) {
		doc := strings.Replace(env.Expand(adminPolicy), "GROUP", group, 1)
		if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("auditors")
	r := start(t, server.Config{PolicyPath: path, EnableAdminRPC: true, ReloadInterval: time.Hour})
	wait.For(t, 10*time.Second, "ready", r.srv.Ready)
	tok := env.ID(t, issuer.TokenOptions{Groups: []string{"finance"}})

	d := explainCall(t, r, tok)
	if d.GetAllowed() || d.GetReason() != "group_missing" {
		t.Fatalf("before reload: allowed %v reason %s, want group_missing", d.GetAllowed(), d.GetReason())
	}
	var groups *extauthzv1.Requirement
	for _, req := range d.GetRequirements() {
		if req.GetName() == "groups" {
			groups = req
		}
	}
	if groups == nil || groups.GetWant() != "any of auditors" || groups.GetGot() != "finance" || groups.GetOk() {
		t.Fatalf("groups requirement %v, want auditors wanted, finance had, not ok", groups)
	}
	if len(d.GetRouteCandidates()) != 1 || !d.GetRouteCandidates()[0].GetWon() {
		t.Errorf("route candidates %v", d.GetRouteCandidates())
	}

	write("finance")
	r.srv.Reload()
	d = explainCall(t, r, tok)
	if !d.GetAllowed() || d.GetReason() != "allowed" {
		t.Fatalf("after reload: allowed %v reason %s, want allowed under the new policy", d.GetAllowed(), d.GetReason())
	}
	text := d.String()
	for _, part := range strings.Split(tok, ".") {
		if strings.Contains(text, part) {
			t.Fatal("Admin/Explain echoed (part of) the token")
		}
	}
}

// TestAdminRPCOffByDefault: without EnableAdminRPC the service does not
// exist on the listener.
func TestAdminRPCOffByDefault(t *testing.T) {
	env := testenv.New(t)
	r := start(t, server.Config{Snapshot: env.Policy(t, testenv.Policy)})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := extauthzv1.NewAdminClient(r.conn).Explain(ctx, &extauthzv1.ExplainRequest{Path: "/pets"})
	if status.Code(err) != codes.Unimplemented {
		t.Fatalf("Admin/Explain without --enable-admin-rpc: %v, want Unimplemented", err)
	}
}

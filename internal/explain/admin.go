package explain

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cognito-extauthz/cognito-extauthz/internal/authz"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/jwks"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/policy"
	extauthzv1 "github.com/cognito-extauthz/cognito-extauthz/proto/extauthz/v1"
)

// Admin serves extauthz.v1.Admin from a running service's live policy and
// key cache. It tells whoever can call it whether a token is valid and what
// it claims, so it is only registered when the operator asks for it.
type Admin struct {
	extauthzv1.UnimplementedAdminServer
	snapshot func() *policy.Snapshot
	keys     *jwks.Cache
	az       *authz.Authorizer
	live     *authz.Authorizer
}

// NewAdmin returns the Admin service over the live snapshot and keys, and
// the revocation list of live (the service's authorizer).
func NewAdmin(snapshot func() *policy.Snapshot, keys *jwks.Cache, live *authz.Authorizer) *Admin {
	// No token cache: an explanation verifies the token afresh, so it
	// shows what the keys say now, and never fills the service's cache.
	return &Admin{snapshot: snapshot, keys: keys, az: authz.New(keys, authz.Options{}), live: live}
}

// Register adds the service to g.
func (a *Admin) Register(g *grpc.Server) { extauthzv1.RegisterAdminServer(g, a) }

// Explain runs one decision as Check would and says why.
func (a *Admin) Explain(ctx context.Context, req *extauthzv1.ExplainRequest) (*extauthzv1.Decision, error) {
	if req.GetPath() == "" {
		return nil, status.Error(codes.InvalidArgument, "path is required")
	}
	if req.GetMethod() == "" {
		req.Method = "GET"
	}
	if a.live != nil {
		// The revocation list in force, as checks consult it.
		a.az.SetRevocations(a.live.Revocations())
	}
	msg, err := Explain(ctx, a.snapshot(), a.az, a.keys.Status, req)
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	return msg, nil
}

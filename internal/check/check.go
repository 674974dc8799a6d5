// Package check is what the two edges of the service share about one
// authorization check, whichever protocol asked for it: the denial table
// (status, body and headers of each reason), the check metrics, the
// decision log, the server span, the request limits and deadline, the
// panic guard, and the names of the dynamic metadata an allow carries.
//
// The gRPC edge (internal/grpcauthz) and the HTTP edge (internal/httpauthz)
// each translate their protocol to an authz.Request and the decision back;
// neither imports the other, and both report through one Observer, so an
// operator sees one set of counters (told apart by their edge label), one
// log format and one kind of trace.
package check

import (
	"fmt"
	"runtime/debug"

	"go.uber.org/zap"

	"github.com/cognito-extauthz/cognito-extauthz/internal/authz"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/policy"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/reason"
)

// Edge names, the edge label of the check metrics and the edge field of
// the decision log.
const (
	EdgeGRPC = "grpc" // envoy.service.auth.v3.Authorization/Check
	EdgeHTTP = "http" // the HTTP authorization endpoints
)

// Keys of the dynamic metadata of a check (Envoy writes it under
// envoy.filters.http.ext_authz; proto/extauthz/v1 CheckMetadata is its
// schema). An allow carries route and, when a token verified, sub,
// username, token_use, client_id, pool and scopes; a denial carries route
// and reason; a dry-run route's let-through denial adds dry_run and reason.
const (
	MetaRoute    = "route"
	MetaSub      = "sub"
	MetaUsername = "username"
	MetaTokenUse = "token_use"
	MetaClientID = "client_id"
	MetaPool     = "pool"
	MetaScopes   = "scopes"
	MetaReason   = "reason"
	MetaDryRun   = "dry_run"
)

// Snapshots returns the policy in force; each check reads it once. A nil
// Snapshots (and a nil result) is a service with no policy, whose every
// check fails closed.
type Snapshots func() *policy.Snapshot

// Load returns the policy in force, nil when there is none.
func (f Snapshots) Load() *policy.Snapshot {
	if f == nil {
		return nil
	}
	return f()
}

// Guard is deferred by each edge around one check: a panic there must never
// become an allow, nor kill the process every request of the mesh depends
// on. It logs the panic with its stack and hands deny an internal-error
// decision to answer with; without a panic it does nothing. It must be
// called directly by defer (recover works only there), and re-panics
// with what it recovered when repanic says so (net/http's ErrAbortHandler).
func Guard(log *zap.Logger, repanic func(any) bool, deny func(*authz.Decision)) {
	p := recover()
	if p == nil {
		return
	}
	if repanic != nil && repanic(p) {
		panic(p)
	}
	log.Error("check panicked", zap.Any("panic", p), zap.ByteString("stack", debug.Stack()))
	deny(&authz.Decision{Reason: reason.Internal, Detail: fmt.Sprint("panic: ", p)})
}

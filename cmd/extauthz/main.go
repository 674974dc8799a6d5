// Command extauthz is an Envoy ext_authz v3 gRPC service that authorizes
// requests the way an Amazon API Gateway COGNITO_USER_POOLS authorizer does.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

// Set by the linker: -X main.version=... -X main.commit=...
var (
	version = "dev"
	commit  = "unknown"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// Exit codes.
const (
	exitOK      = 0
	exitFail    = 1 // validate found problems; check or explain was denied
	exitUsage   = 2 // bad flags or arguments
	exitRuntime = 3 // the command could not do its job
)

func usage(w interface{ Write([]byte) (int, error) }) {
	fmt.Fprint(w, `extauthz: an Envoy ext_authz service with API Gateway COGNITO_USER_POOLS semantics

Usage:
  extauthz serve    --config policy.yaml   run the gRPC ext_authz and admin HTTP servers
  extauthz dev                             zero-setup demo: embedded policy and local issuer
  extauthz validate --config policy.yaml   check a policy file offline (exit 1 on problems)
  extauthz explain  --config policy.yaml --method GET --path /pets/7 --token T
                                           run one decision locally and print it, and why, as JSON
                                           (--addr HOST:PORT asks a running service instead;
                                           exit 0 allowed, 1 denied, 2 usage or config error)
  extauthz check    --addr 127.0.0.1:9001 --path /pets --token T
                                           send one Check to a running server (exit 1 if denied)
  extauthz revoke   --config policy.yaml (--token T | --jti ID [--until T] | --sub SUB [--before T])
                                           add an entry to the policy's revocation list (file or Redis)
  extauthz import   apigateway EXPORT      print the policy for an API Gateway export (REST or HTTP API);
                                           what cannot be carried is listed on stderr (exit 1)
  extauthz test     --config policy.yaml CASES.yaml [--junit FILE]
                                           run declarative test cases against a policy (exit 1 if one fails)
  extauthz version                         print version, commit and Go version

Every flag also reads an environment variable: --grpc-addr is EXTAUTHZ_GRPC_ADDR.
Precedence: flag, then environment, then default. Run "extauthz <command> -h" for a command's flags.
`)
}

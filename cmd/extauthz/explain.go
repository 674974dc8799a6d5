package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/cognito-extauthz/cognito-extauthz/internal/authz"
	"github.com/cognito-extauthz/cognito-extauthz/internal/explain"
	"github.com/cognito-extauthz/cognito-extauthz/internal/revocation"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/jwks"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/policy"
	extauthzv1 "github.com/cognito-extauthz/cognito-extauthz/proto/extauthz/v1"
)

// runExplain makes one decision and prints it with why: locally from a
// policy file and freshly fetched keys, or with --addr by a running service
// from its live policy and keys. Exit 0 allowed, 1 denied, 2 usage or
// configuration error, 3 the decision could not be had (service
// unreachable).
func runExplain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("explain", flag.ContinueOnError)
	configPath := fs.String("config", "", "policy file; required unless --addr is given")
	addr := fs.String("addr", "", "ask the running service at HOST:PORT (its gRPC address, started with --enable-admin-rpc) instead of deciding locally")
	fetchTimeout := fs.Duration("jwks-fetch-timeout", 5*time.Second, "timeout of one JWKS fetch (local), or of the whole call (--addr)")
	allowHTTP := fs.Bool("jwks-allow-http", false, "allow plain-http JWKS URLs to non-loopback hosts")
	logLevel := fs.String("log-level", "warn", "log level for diagnostics on stderr")
	var rf requestFlags
	rf.register(fs)
	var pf policyFlags
	pf.register(fs)
	if code, ok := parseFlags(fs, args, stderr); !ok {
		return code
	}
	if (*configPath == "") == (*addr == "") || rf.path == "" {
		fmt.Fprintln(stderr, "extauthz explain: --path and exactly one of --config or --addr are required")
		return exitUsage
	}
	if err := pf.validate(); err != nil {
		fmt.Fprintf(stderr, "extauthz explain: %v\n", err)
		return exitUsage
	}
	headers, err := rf.headerMap(os.Stdin)
	if err != nil {
		fmt.Fprintf(stderr, "extauthz explain: %v\n", err)
		return exitUsage
	}
	req := &extauthzv1.ExplainRequest{Method: rf.method, Path: rf.path, Host: rf.host, Headers: headers, Route: rf.route}
	var (
		msg  *extauthzv1.Decision
		code int
	)
	if *addr != "" {
		msg, code = explainRemote(ctx, *addr, *fetchTimeout, req, stderr)
	} else {
		msg, code = explainLocal(ctx, *configPath, pf.options(*allowHTTP), *fetchTimeout, *logLevel, req, stderr)
	}
	if msg == nil {
		return code
	}
	out, err := explain.JSON(msg)
	if err != nil {
		fmt.Fprintf(stderr, "extauthz explain: %v\n", err)
		return exitRuntime
	}
	if _, err := stdout.Write(out); err != nil {
		return exitRuntime
	}
	if !msg.GetAllowed() {
		return exitFail
	}
	return exitOK
}

// explainLocal decides with the policy file and keys fetched now.
func explainLocal(ctx context.Context, configPath string, opts policy.Options, fetchTimeout time.Duration, logLevel string, req *extauthzv1.ExplainRequest, stderr io.Writer) (*extauthzv1.Decision, int) {
	log, err := newLogger(logLevel, "console", stderr)
	if err != nil {
		fmt.Fprintf(stderr, "extauthz explain: %v\n", err)
		return nil, exitUsage
	}
	snap, err := policy.Load(configPath, opts)
	if err != nil {
		fmt.Fprintf(stderr, "extauthz explain: %v\n", err)
		return nil, exitUsage
	}
	// One question, no other checks to keep fast: an unknown kid may wait
	// for its whole refetch.
	keys := jwks.New(jwks.Options{FetchTimeout: fetchTimeout, MissWait: fetchTimeout + time.Second, AllowHTTP: opts.AllowHTTPJWKS, Logger: log.Named("jwks")})
	defer keys.Close()
	// The revocation list the service would consult: its file is read now
	// (a bad line is a configuration error), its Redis only once a token
	// verified and the list is asked.
	var list *revocation.List
	if cfg := revocation.PolicyConfig(snap.Revocation()); cfg != nil {
		cfg.Logger = log.Named("revocation")
		if list, err = revocation.New(*cfg); err != nil {
			fmt.Fprintf(stderr, "extauthz explain: %v\n", err)
			return nil, exitUsage
		}
		defer list.Close()
	}
	var az *authz.Authorizer // the closure below runs after it is set
	lazy := &lazyKeys{cache: keys, prepare: func(ctx context.Context) {
		if err := keys.Prepare(ctx, snap.KeySources(), nil, fetchTimeout+time.Second); err != nil {
			log.Warn("not every key set loaded", zap.Error(err))
		}
		if list != nil {
			_ = list.Start(ctx)
			wctx, cancel := context.WithTimeout(ctx, fetchTimeout+time.Second)
			defer cancel()
			if err := list.Wait(wctx); err != nil {
				log.Warn("revocation list not read; checks would answer revocation_unavailable", zap.Error(err))
			}
			az.SetRevocations(list)
		}
	}}
	az = authz.New(lazy, authz.Options{})
	// The key sources are listed as the decision left them: every source
	// of the policy when it needed a key, none when it needed none.
	msg, err := explain.Explain(ctx, snap, az, keys.Status, req)
	if err != nil {
		fmt.Fprintf(stderr, "extauthz explain: %v\n", err)
		return nil, exitRuntime
	}
	return msg, exitOK
}

// lazyKeys fetches the policy's key sets, and waits for them as a check
// at start-up would, only when the decision first asks for a key. A
// request without a token, with one that fails before any key is needed
// (malformed, an unknown issuer), or on a route that needs none is
// decided at once, even when the key servers cannot be reached from here.
type lazyKeys struct {
	cache   *jwks.Cache
	prepare func(ctx context.Context)
	once    sync.Once
}

func (k *lazyKeys) Key(ctx context.Context, src jwks.Source, kid string) (*jwks.Key, error) {
	k.once.Do(func() { k.prepare(ctx) })
	return k.cache.Key(ctx, src, kid)
}

// explainRemote asks a running service through extauthz.v1.Admin/Explain.
func explainRemote(ctx context.Context, addr string, timeout time.Duration, req *extauthzv1.ExplainRequest, stderr io.Writer) (*extauthzv1.Decision, int) {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		fmt.Fprintf(stderr, "extauthz explain: %v\n", err)
		return nil, exitUsage
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	msg, err := extauthzv1.NewAdminClient(conn).Explain(ctx, req)
	if err != nil {
		fmt.Fprintf(stderr, "extauthz explain: %s: %v (is the service started with --enable-admin-rpc?)\n", addr, err)
		return nil, exitRuntime
	}
	return msg, exitOK
}

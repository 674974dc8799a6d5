package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"go.uber.org/zap"

	"github.com/cognito-extauthz/cognito-extauthz/pkg/authz"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/extauthz"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/jwks"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/policy"
)

// explainOutput is what explain prints.
type explainOutput struct {
	Allowed bool   `json:"allowed"`
	Route   string `json:"route"`
	Reason  string `json:"reason"`
	Detail  string `json:"detail,omitempty"`
	// The answer Envoy would get.
	GRPCCode        string            `json:"grpc_code"`
	Status          int               `json:"status,omitempty"`
	Body            string            `json:"body,omitempty"`
	Headers         map[string]string `json:"headers"`
	HeadersToRemove []string          `json:"headers_to_remove,omitempty"`
	QueryToRemove   []string          `json:"query_parameters_to_remove,omitempty"`
	Metadata        map[string]any    `json:"metadata,omitempty"`
	// What the token said, when it verified.
	Claims map[string]any      `json:"claims"`
	JWKS   []jwks.SourceStatus `json:"jwks"`
}

// runExplain makes one decision locally, with the real policy and real
// keys, and prints everything about it. It exits 0 whenever a decision was
// made, allowed or denied; the decision is in the output.
func runExplain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("explain", flag.ContinueOnError)
	configPath := fs.String("config", "", "policy file; required")
	fetchTimeout := fs.Duration("jwks-fetch-timeout", 5*time.Second, "timeout of one JWKS fetch")
	allowHTTP := fs.Bool("jwks-allow-http", false, "allow plain-http JWKS URLs to non-loopback hosts")
	logLevel := fs.String("log-level", "warn", "log level for diagnostics on stderr")
	var rf requestFlags
	rf.register(fs)
	if code, ok := parseFlags(fs, args, stderr); !ok {
		return code
	}
	if *configPath == "" || rf.path == "" {
		fmt.Fprintln(stderr, "extauthz explain: --config and --path are required")
		return exitUsage
	}
	headers, err := rf.headerMap(os.Stdin)
	if err != nil {
		fmt.Fprintf(stderr, "extauthz explain: %v\n", err)
		return exitUsage
	}
	log, err := newLogger(*logLevel, "console", stderr)
	if err != nil {
		fmt.Fprintf(stderr, "extauthz explain: %v\n", err)
		return exitUsage
	}
	snap, err := policy.Load(*configPath, policy.Options{AllowHTTPJWKS: *allowHTTP})
	if err != nil {
		fmt.Fprintf(stderr, "extauthz explain: %v\n", err)
		return exitFail
	}

	keys := jwks.New(jwks.Options{FetchTimeout: *fetchTimeout, AllowHTTP: *allowHTTP, Logger: log.Named("jwks")})
	defer keys.Close()
	sources := snap.KeySources()
	keys.Sync(sources)
	wctx, cancel := context.WithTimeout(ctx, *fetchTimeout+time.Second)
	if err := keys.Wait(wctx, sources); err != nil {
		log.Warn("not every key set loaded", zap.Error(err))
	}
	cancel()

	req := &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Method: strings.ToUpper(rf.method), Path: rf.path, Host: rf.host, Headers: headers,
		}},
	}}
	if rf.route != "" {
		req.Attributes.ContextExtensions = map[string]string{"route": rf.route}
	}
	az := authz.New(keys, authz.Options{})
	d, resp := extauthz.Decide(ctx, snap, az, req)

	sum := summarize(resp)
	out := explainOutput{
		Allowed:         d.Allowed,
		Route:           d.RouteName(),
		Reason:          string(d.Reason),
		Detail:          d.Detail,
		GRPCCode:        sum.GRPCCode,
		Status:          sum.Status,
		Body:            sum.Body,
		Headers:         sum.Headers,
		HeadersToRemove: sum.HeadersToRemove,
		QueryToRemove:   sum.QueryToRemove,
		Metadata:        sum.Metadata,
		JWKS:            keys.Status(),
	}
	if out.Headers == nil {
		out.Headers = map[string]string{}
	}
	if d.Claims != nil {
		out.Claims = d.Claims.Map()
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		fmt.Fprintf(stderr, "extauthz explain: %v\n", err)
		return exitRuntime
	}
	return exitOK
}

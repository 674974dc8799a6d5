package main

import (
	"bytes"
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
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cognito-extauthz/cognito-extauthz/pkg/authz"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/extauthz"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/jwks"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/policy"
	extauthzv1 "github.com/cognito-extauthz/cognito-extauthz/proto/extauthz/v1"
)

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
		return loadExitCode(err)
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

	out, err := decisionJSON(d, resp, keys.Status())
	if err != nil {
		fmt.Fprintf(stderr, "extauthz explain: %v\n", err)
		return exitRuntime
	}
	if _, err := stdout.Write(out); err != nil {
		return exitRuntime
	}
	return exitOK
}

// decisionJSON renders a decision as the extauthz.v1.Decision message of
// proto/, in JSON with the proto field names, indented and stable.
func decisionJSON(d *authz.Decision, resp *authv3.CheckResponse, sources []jwks.SourceStatus) ([]byte, error) {
	sum := summarize(resp)
	msg := &extauthzv1.Decision{
		Allowed:                 d.Allowed,
		Route:                   d.RouteName(),
		Reason:                  string(d.Reason),
		Detail:                  d.Detail,
		GrpcCode:                sum.GRPCCode,
		Status:                  int32(sum.Status),
		Body:                    sum.Body,
		Headers:                 sum.Headers,
		HeadersToRemove:         sum.HeadersToRemove,
		QueryParametersToRemove: sum.QueryToRemove,
	}
	for _, st := range sources {
		ks := &extauthzv1.KeySourceStatus{
			Source:    st.Source.String(),
			Loaded:    st.Loaded,
			Keys:      int32(st.Keys),
			LastError: st.LastError,
		}
		if !st.LastSuccess.IsZero() {
			ks.LastSuccess = timestamppb.New(st.LastSuccess)
		}
		msg.Jwks = append(msg.Jwks, ks)
	}
	if d.Claims != nil {
		claims, err := structpb.NewStruct(plainJSON(d.Claims.Map()).(map[string]any))
		if err != nil {
			return nil, fmt.Errorf("claims: %w", err)
		}
		msg.Claims = claims
	}
	raw, err := protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true}.Marshal(msg)
	if err != nil {
		return nil, err
	}
	// protojson varies its whitespace on purpose; normalise it.
	var compact, out bytes.Buffer
	if err := json.Compact(&compact, raw); err != nil {
		return nil, err
	}
	// metadata is the dynamic metadata exactly as Envoy gets it, so that it
	// shows the same keys as `check`, not every CheckMetadata field empty.
	md, err := json.Marshal(sum.Metadata)
	if err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	if md = bytes.TrimSpace(md); string(md) == "null" {
		md = []byte("{}")
	}
	// Metadata was left unset, so protojson wrote it as null: put the map
	// there. Outside strings (where quotes are escaped) this byte sequence
	// can only be that key, and it comes before claims, whose members could
	// repeat it.
	spliced := bytes.Replace(compact.Bytes(), []byte(`"metadata":null`), append([]byte(`"metadata":`), md...), 1)
	if err := json.Indent(&out, spliced, "", "  "); err != nil {
		return nil, err
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}

// plainJSON turns json.Number values into float64 (exact up to 2^53, which
// covers every NumericDate) or, beyond that, their decimal text, so that a
// claims map fits google.protobuf.Struct.
func plainJSON(v any) any {
	switch x := v.(type) {
	case json.Number:
		text := x.String()
		if !strings.ContainsAny(text, ".eE") {
			if n, err := x.Int64(); err == nil && n >= -(1<<53) && n <= 1<<53 {
				return float64(n)
			}
			return text // beyond float64's exact range: keep the digits
		}
		if f, err := x.Float64(); err == nil {
			return f
		}
		return text
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = plainJSON(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = plainJSON(e)
		}
		return out
	}
	return v
}

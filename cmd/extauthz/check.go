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
	"unicode"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
)

// requestFlags describe one HTTP request, for check and explain.
type requestFlags struct {
	method, path, host, route string
	token, tokenFile          string
	headers                   multiFlag
}

func (r *requestFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&r.method, "method", "GET", "HTTP method")
	fs.StringVar(&r.path, "path", "", "request path, query included; required")
	fs.StringVar(&r.host, "host", "", "request host (:authority)")
	fs.StringVar(&r.route, "route", "", "policy route name, as Envoy's context_extensions route would select it")
	fs.Var(&r.headers, "header", "request header NAME=VALUE (repeatable)")
	fs.StringVar(&r.token, "token", "", "token to send as Authorization: Bearer TOKEN")
	fs.StringVar(&r.tokenFile, "token-file", "", "read the token from this file (- for stdin) instead of --token; white space around it is ignored")
}

// maxTokenFile bounds what --token-file reads: a Cognito token is a few
// KiB; anything near this is not a token.
const maxTokenFile = 1 << 20

// headerMap returns the request headers with lower-case names, the token
// added as an Authorization header when one was given.
func (r *requestFlags) headerMap(stdin io.Reader) (map[string]string, error) {
	h := map[string]string{}
	for _, kv := range r.headers {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--header %q: want NAME=VALUE", kv)
		}
		k = strings.ToLower(k)
		if prev, dup := h[k]; dup {
			v = prev + "," + v // as Envoy joins repeated headers
		}
		h[k] = v
	}
	tok, err := r.readToken(stdin)
	if err != nil {
		return nil, err
	}
	if tok != "" {
		if _, set := h["authorization"]; set {
			return nil, fmt.Errorf("--header authorization and --token/--token-file both set the Authorization header; give one")
		}
		h["authorization"] = "Bearer " + tok
	}
	return h, nil
}

// readToken returns the token of --token, or of --token-file (- for stdin)
// with surrounding white space (a trailing newline) removed.
func (r *requestFlags) readToken(stdin io.Reader) (string, error) {
	return readToken(r.token, r.tokenFile, stdin)
}

// readToken returns the token of --token, or of --token-file (a path, or -
// for stdin, at most maxTokenFile bytes, white space around it trimmed),
// which keeps the token out of the process list; "" when neither is given.
func readToken(token, tokenFile string, stdin io.Reader) (string, error) {
	if tokenFile == "" {
		return token, nil
	}
	if token != "" {
		return "", fmt.Errorf("--token and --token-file both give the token; give one")
	}
	in, name := stdin, "stdin"
	if tokenFile != "-" {
		f, err := os.Open(tokenFile)
		if err != nil {
			return "", fmt.Errorf("read token: %w", err)
		}
		defer f.Close()
		in, name = f, tokenFile
	}
	b, err := io.ReadAll(io.LimitReader(in, maxTokenFile+1))
	if err != nil {
		return "", fmt.Errorf("read token from %s: %w", name, err)
	}
	if len(b) > maxTokenFile {
		return "", fmt.Errorf("read token from %s: more than %d bytes, not a token", name, maxTokenFile)
	}
	tok := strings.TrimSpace(string(b))
	switch {
	case tok == "":
		return "", fmt.Errorf("read token from %s: empty", name)
	case strings.ContainsFunc(tok, unicode.IsSpace):
		// Two tokens, or "Bearer <token>": either way not one token.
		return "", fmt.Errorf("read token from %s: white space inside; want the token alone", name)
	}
	return tok, nil
}

// checkOutput is what check prints.
type checkOutput struct {
	Allowed         bool              `json:"allowed"`
	GRPCCode        string            `json:"grpc_code"`
	Reason          string            `json:"reason,omitempty"`
	Status          int               `json:"status,omitempty"`
	Body            string            `json:"body,omitempty"`
	Headers         map[string]string `json:"headers,omitempty"`
	HeadersToRemove []string          `json:"headers_to_remove,omitempty"`
	QueryToRemove   []string          `json:"query_parameters_to_remove,omitempty"`
	Metadata        map[string]any    `json:"metadata,omitempty"`
}

// runCheck sends one Check to a running server, like Envoy would.
func runCheck(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:9001", "address of the extauthz gRPC server")
	timeout := fs.Duration("timeout", 5*time.Second, "deadline of the Check call")
	var rf requestFlags
	rf.register(fs)
	var ct clientTLSFlags
	ct.register(fs)
	if code, ok := parseFlags(fs, args, stderr); !ok {
		return code
	}
	if rf.path == "" {
		fmt.Fprintln(stderr, "extauthz check: --path is required")
		return exitUsage
	}
	headers, err := rf.headerMap(os.Stdin)
	if err != nil {
		fmt.Fprintf(stderr, "extauthz check: %v\n", err)
		return exitUsage
	}
	creds, err := ct.credentials()
	if err != nil {
		fmt.Fprintf(stderr, "extauthz check: %v\n", err)
		return exitUsage
	}
	conn, err := grpc.NewClient(*addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		fmt.Fprintf(stderr, "extauthz check: %v\n", err)
		return exitRuntime
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req := &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Method:  strings.ToUpper(rf.method),
			Path:    rf.path,
			Host:    rf.host,
			Headers: headers,
		}},
	}}
	if rf.route != "" {
		req.Attributes.ContextExtensions = map[string]string{"route": rf.route}
	}
	resp, err := authv3.NewAuthorizationClient(conn).Check(ctx, req)
	if err != nil {
		fmt.Fprintf(stderr, "extauthz check: %v\n", err)
		return exitRuntime
	}
	out := summarize(resp)
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	_ = enc.Encode(out)
	if !out.Allowed {
		return exitFail
	}
	return exitOK
}

func summarize(resp *authv3.CheckResponse) checkOutput {
	code := codes.Code(resp.GetStatus().GetCode())
	out := checkOutput{Allowed: code == codes.OK, GRPCCode: code.String()}
	if md := resp.GetDynamicMetadata(); md != nil {
		out.Metadata = md.AsMap()
	}
	if ok := resp.GetOkResponse(); ok != nil && out.Allowed {
		for _, h := range ok.GetHeaders() {
			if out.Headers == nil {
				out.Headers = map[string]string{}
			}
			// Lower case, as Envoy forwards them (HTTP/2 on the wire).
			out.Headers[strings.ToLower(h.GetHeader().GetKey())] = h.GetHeader().GetValue()
		}
		out.HeadersToRemove = ok.GetHeadersToRemove()
		out.QueryToRemove = ok.GetQueryParametersToRemove()
	}
	if den := resp.GetDeniedResponse(); den != nil && !out.Allowed {
		out.Status = int(den.GetStatus().GetCode())
		out.Body = den.GetBody()
		out.Headers = map[string]string{}
		for _, h := range den.GetHeaders() {
			// Lower case, as Envoy forwards them (HTTP/2 on the wire).
			out.Headers[strings.ToLower(h.GetHeader().GetKey())] = h.GetHeader().GetValue()
		}
		out.Reason = out.Headers["x-extauthz-reason"]
	}
	return out
}

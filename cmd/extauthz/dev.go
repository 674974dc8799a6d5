package main

import (
	"context"
	_ "embed"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/cognito-extauthz/cognito-extauthz/internal/issuer"
	"github.com/cognito-extauthz/cognito-extauthz/internal/server"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/policy"
)

//go:embed dev-policy.yaml
var devPolicy string

const (
	devPoolID   = "local_devpool"
	devClientID = "devclient"
)

// runDev starts the service with an embedded policy and a built-in issuer
// that serves a Cognito-shaped JWKS on the admin port and mints tokens. It
// needs no AWS account and no files.
func runDev(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("dev", flag.ContinueOnError)
	var sf serverFlags
	sf.register(fs, "127.0.0.1:9001", "127.0.0.1:9002", "console", true)
	sf.registerHTTPAuthz(fs, "127.0.0.1:9003")
	ttl := fs.Duration("token-ttl", time.Hour, "lifetime of the sample tokens")
	if code, ok := parseFlags(fs, args, stderr); !ok {
		return code
	}
	if err := sf.validate(); err != nil {
		fmt.Fprintf(stderr, "extauthz dev: %v\n", err)
		return exitUsage
	}
	log, decisions, err := newLoggers(sf.logLevel, sf.logFormat, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "extauthz dev: %v\n", err)
		return exitUsage
	}
	defer func() { _ = log.Sync() }()

	// The admin listener comes first: the issuer URL names its port.
	adminLis, err := net.Listen("tcp", sf.adminAddr)
	if err != nil {
		fmt.Fprintf(stderr, "extauthz dev: listen admin %s: %v\n", sf.adminAddr, err)
		return exitRuntime
	}
	issURL := "http://" + loopbackAddr(adminLis.Addr()) + "/" + devPoolID
	iss, err := issuer.New(issURL, devPoolID)
	if err != nil {
		adminLis.Close()
		fmt.Fprintf(stderr, "extauthz dev: %v\n", err)
		return exitRuntime
	}
	snap, err := policy.Parse([]byte(strings.ReplaceAll(devPolicy, "${ISSUER}", issURL)), "dev-policy.yaml", sf.policy.options(false))
	if err != nil {
		adminLis.Close()
		fmt.Fprintf(stderr, "extauthz dev: embedded policy: %v\n", err)
		return exitRuntime
	}

	cfg := sf.config(log, decisions)
	cfg.Snapshot = snap
	stopTracing, err := startTracing(ctx, &cfg, log)
	if err != nil {
		adminLis.Close()
		fmt.Fprintf(stderr, "extauthz dev: %v\n", err)
		return exitUsage
	}
	defer stopTracing()
	cfg.AdminListener = adminLis
	if cfg.AdminHandlers == nil {
		cfg.AdminHandlers = map[string]http.Handler{}
	}
	cfg.AdminHandlers["GET /"+devPoolID+"/.well-known/jwks.json"] = iss
	cfg.AdminHandlers["GET /dev/token"] = mintHandler(iss, *ttl)
	srv, err := server.New(cfg)
	if err != nil {
		adminLis.Close()
		fmt.Fprintf(stderr, "extauthz dev: %v\n", err)
		return exitRuntime
	}

	if err := mintSamples(stdout, iss, srv, issURL, *ttl); err != nil {
		fmt.Fprintf(stderr, "extauthz dev: mint sample tokens: %v\n", err)
		return exitRuntime
	}
	if err := srv.Run(ctx); err != nil {
		log.Error("server failed", zap.Error(err))
		return exitRuntime
	}
	return exitOK
}

// mintSamples mints the demo's sample tokens and prints the banner.
func mintSamples(stdout io.Writer, iss *issuer.Issuer, srv *server.Server, issURL string, ttl time.Duration) error {
	id, err := iss.IDToken(issuer.TokenOptions{
		Subject: "0b9d4a2e-7f3c-4c1e-9a51-1d2f3e4a5b6c", Username: "demo-user",
		ClientID: devClientID, Email: "demo@example.com", Groups: []string{"users"}, TTL: ttl,
	})
	if err == nil {
		var access string
		access, err = iss.AccessToken(issuer.TokenOptions{
			Subject: "0b9d4a2e-7f3c-4c1e-9a51-1d2f3e4a5b6c", Username: "demo-user",
			ClientID: devClientID, Scopes: []string{"openid", "pets/read"}, Groups: []string{"users"}, TTL: ttl,
		})
		if err == nil {
			printDevBanner(stdout, srv.GRPCAddr(), srv.AdminAddr(), issURL, id, access, ttl)
			printHTTPAuthzBanner(stdout, srv.HTTPAuthzAddr())
		}
	}
	return err
}

// loopbackAddr turns a wildcard listen address into one a local client can
// dial.
func loopbackAddr(a net.Addr) string {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// mintHandler mints demo tokens: GET /dev/token?type=id|access&scope=a+b&groups=x,y&sub=S&client_id=C.
// It exists only in dev mode, on the loopback admin port.
func mintHandler(iss *issuer.Issuer, ttl time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		o := issuer.TokenOptions{
			Subject:  q.Get("sub"),
			Username: q.Get("username"),
			ClientID: q.Get("client_id"),
			Email:    q.Get("email"),
			TTL:      ttl,
		}
		if o.Subject == "" {
			o.Subject = "0b9d4a2e-7f3c-4c1e-9a51-1d2f3e4a5b6c"
		}
		if o.Username == "" {
			o.Username = "demo-user"
		}
		if o.ClientID == "" {
			o.ClientID = devClientID
		}
		if g := q.Get("groups"); g != "" {
			o.Groups = strings.Split(g, ",")
		}
		if s := q.Get("scope"); s != "" {
			o.Scopes = strings.Fields(s)
		}
		if d := q.Get("ttl"); d != "" {
			v, err := time.ParseDuration(d)
			if err != nil {
				http.Error(w, "bad ttl: "+err.Error(), http.StatusBadRequest)
				return
			}
			o.TTL = v
		}
		var tok string
		var err error
		switch q.Get("type") {
		case "", "id":
			if o.Email == "" {
				o.Email = "demo@example.com"
			}
			tok, err = iss.IDToken(o)
		case "access":
			tok, err = iss.AccessToken(o)
		default:
			http.Error(w, "type must be id or access", http.StatusBadRequest)
			return
		}
		if err != nil {
			http.Error(w, "mint failed", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("Cache-Control", "no-store")
		fmt.Fprintln(w, tok)
	})
}

func printDevBanner(w io.Writer, grpcAddr, adminAddr, issURL, id, access string, ttl time.Duration) {
	grpcurl := func(path, tokenVar string) string {
		hdr := ""
		if tokenVar != "" {
			hdr = `,\"headers\":{\"authorization\":\"Bearer $` + tokenVar + `\"}`
		}
		return `go tool grpcurl -plaintext -d "{\"attributes\":{\"request\":{\"http\":{\"method\":\"GET\",\"path\":\"` +
			path + `\"` + hdr + `}}}}" ` + grpcAddr + ` envoy.service.auth.v3.Authorization/Check`
	}
	fmt.Fprintf(w, `
cognito-extauthz dev mode
  ext_authz gRPC : %[1]s   (envoy.service.auth.v3.Authorization/Check, grpc.health.v1, reflection on)
  admin HTTP     : http://%[2]s   (/healthz /readyz /metrics)
  local issuer   : %[3]s   (JWKS at %[3]s/.well-known/jwks.json)
  policy         : routes list-pets (GET /pets, ID token), pet (GET|DELETE /pets/{petId}, access token with
                   pets/read or pets/admin), admin (/admin/{proxy+}, group admins), health (/health, no token)

Sample tokens (valid %[4]s). Paste these into another shell in the repository:

export ID_TOKEN=%[5]s
export ACCESS_TOKEN=%[6]s

Allowed: an ID token on an identity-claims route (claim headers come back in ok_response):
  bin/extauthz check --addr %[1]s --path /pets --token "$ID_TOKEN"

Denied, 401 token_missing (no token):
  bin/extauthz check --addr %[1]s --path /pets

Denied, 401 token_use_mismatch (an ID token where an access token is required):
  bin/extauthz check --addr %[1]s --path /pets/7 --token "$ID_TOKEN"

Allowed, access token with scope pets/read:
  bin/extauthz check --addr %[1]s --path /pets/7 --token "$ACCESS_TOKEN"

Denied, 403 group_missing (the demo user is not in group admins):
  bin/extauthz check --addr %[1]s --path /admin/users --token "$ID_TOKEN"

More tokens: curl 'http://%[2]s/dev/token?type=access&scope=pets/admin'   (type=id|access, scope, groups, sub, ttl)

The same checks with grpcurl, raw CheckResponse (the first "go tool grpcurl" compiles it: a minute or two):
  %[7]s
  %[8]s

`, grpcAddr, adminAddr, issURL, ttl, id, access, grpcurl("/pets", "ID_TOKEN"), grpcurl("/pets", ""))
}

// printHTTPAuthzBanner shows the HTTP authorization mode, when it is on.
func printHTTPAuthzBanner(w io.Writer, addr string) {
	if addr == "" {
		return
	}
	fmt.Fprintf(w, `HTTP authorization mode: http://%[1]s   (/envoy/<path>, /auth, /nginx; 200 allows, anything else denies)
  curl -i -H "Authorization: Bearer $ID_TOKEN" http://%[1]s/envoy/pets
  curl -i -H "X-Forwarded-Method: GET" -H "X-Forwarded-Uri: /pets" -H "Authorization: Bearer $ID_TOKEN" http://%[1]s/auth
  curl -i -H "X-Original-Method: GET" -H "X-Original-URI: /pets" http://%[1]s/nginx   (401 token_missing)

`, addr)
}

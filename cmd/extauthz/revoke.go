package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"go.uber.org/zap"

	"github.com/cognito-extauthz/cognito-extauthz/internal/revocation"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/jwks"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/policy"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/reason"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/token"
)

// runRevoke adds one entry to the revocation list the policy names: Redis
// when it names one (every replica enforces it within a second), else the
// file (rewritten atomically; the service re-reads it like the policy).
// --token verifies the token against the policy first and revokes its
// origin_jti (else its jti) until its exp: the whole sign-in it came from.
// Exit 0 written, 1 the token does not verify, 2 usage or a policy without
// a revocation block, 3 the list could not be written.
func runRevoke(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("revoke", flag.ContinueOnError)
	configPath := fs.String("config", "", "policy file whose revocation block says where the list lives; required")
	jti := fs.String("jti", "", "revoke tokens whose jti or origin_jti is this")
	until := fs.String("until", "", "with --jti: RFC 3339 time the entry lasts until (default: 24h from now, Cognito's longest token lifetime)")
	sub := fs.String("sub", "", "revoke every token of this sub issued before --before")
	before := fs.String("before", "", "with --sub: RFC 3339 time (default: now)")
	tok := fs.String("token", "", "verify this token against the policy, then revoke its origin_jti (else jti) until its exp")
	tokenFile := fs.String("token-file", "", "read the token from this file (- for stdin)")
	timeout := fs.Duration("timeout", 10*time.Second, "bound on fetching keys (--token) and writing the entry")
	allowHTTP := fs.Bool("jwks-allow-http", false, "allow plain-http JWKS URLs to non-loopback hosts")
	if code, ok := parseFlags(fs, args, stderr); !ok {
		return code
	}
	raw, err := readToken(*tok, *tokenFile, os.Stdin)
	if err != nil {
		fmt.Fprintf(stderr, "extauthz revoke: %v\n", err)
		return exitUsage
	}
	kinds := 0
	for _, set := range []bool{*jti != "", *sub != "", raw != ""} {
		if set {
			kinds++
		}
	}
	if *configPath == "" || kinds != 1 || *until != "" && *jti == "" || *before != "" && *sub == "" {
		fmt.Fprintln(stderr, "extauthz revoke: --config and exactly one of --jti ID [--until T], --sub SUB [--before T] or --token T are required")
		return exitUsage
	}
	snap, err := policy.Load(*configPath, policy.Options{AllowHTTPJWKS: *allowHTTP})
	if err != nil {
		fmt.Fprintf(stderr, "extauthz revoke: %v\n", err)
		return exitUsage
	}
	cfg := revocation.PolicyConfig(snap.Revocation())
	if cfg == nil {
		fmt.Fprintf(stderr, "extauthz revoke: %s has no revocation block: add one naming a file or Redis\n", *configPath)
		return exitUsage
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	entry, code := revokeEntry(ctx, snap, *jti, *until, *sub, *before, raw, *allowHTTP, stderr)
	if code != exitOK {
		return code
	}
	list, err := revocation.New(*cfg)
	if err != nil {
		fmt.Fprintf(stderr, "extauthz revoke: %v\n", err)
		return exitRuntime
	}
	defer list.Close()
	written, err := list.Write(ctx, entry)
	if err != nil {
		fmt.Fprintf(stderr, "extauthz revoke: %v\n", err)
		return exitRuntime
	}
	where := cfg.File
	if cfg.Redis.URL != "" {
		where = cfg.Redis.URL + " key " + cfg.Redis.Key
	}
	fmt.Fprintf(stdout, "%s\nwritten to %s\n", written, where)
	return exitOK
}

// revokeEntry builds the entry the flags ask for.
func revokeEntry(ctx context.Context, snap *policy.Snapshot, jti, until, sub, before, raw string, allowHTTP bool, stderr io.Writer) (revocation.Entry, int) {
	parse := func(name, s string) (time.Time, bool) {
		if s == "" {
			return time.Time{}, true
		}
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			fmt.Fprintf(stderr, "extauthz revoke: --%s %q: want an RFC 3339 time such as 2026-11-26T10:00:00Z\n", name, s)
			return time.Time{}, false
		}
		return t, true
	}
	switch {
	case jti != "":
		t, ok := parse("until", until)
		if !ok {
			return revocation.Entry{}, exitUsage
		}
		return revocation.Entry{Kind: revocation.JTI, ID: jti, Time: t}, exitOK
	case sub != "":
		t, ok := parse("before", before)
		if !ok {
			return revocation.Entry{}, exitUsage
		}
		return revocation.Entry{Kind: revocation.Sub, ID: sub, Time: t}, exitOK
	}
	c, err := verifyForRevoke(ctx, snap, raw, allowHTTP)
	if err != nil {
		fmt.Fprintf(stderr, "extauthz revoke: the token does not verify against %s, so nothing names it: %v\n", "the policy", err)
		return revocation.Entry{}, exitFail
	}
	id := c.OriginJTI()
	if id == "" {
		id = c.JTI()
	}
	if id == "" {
		fmt.Fprintln(stderr, "extauthz revoke: the token has neither origin_jti nor jti: revoke its sub with --sub instead")
		return revocation.Entry{}, exitFail
	}
	return revocation.Entry{Kind: revocation.JTI, ID: id, Time: c.Expiry()}, exitOK
}

// verifyForRevoke verifies raw with the authorizers of the policy (keys
// fetched now), and returns its claims from the first that accepts it.
func verifyForRevoke(ctx context.Context, snap *policy.Snapshot, raw string, allowHTTP bool) (*token.Claims, error) {
	keys := jwks.New(jwks.Options{AllowHTTP: allowHTTP, Logger: zap.NewNop()})
	defer keys.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = keys.Prepare(ctx, snap.KeySources(), nil, time.Until(dl))
	}
	v := token.NewVerifier(keys, time.Now)
	var errs []error
	for _, az := range snap.Authorizers() {
		c, err := v.Verify(ctx, az.Token, raw)
		if err == nil {
			return c, nil
		}
		if reason.Of(err) != reason.IssuerUnknown {
			errs = append(errs, fmt.Errorf("authorizer %s: %w", az.Name, err))
		}
	}
	if len(errs) == 0 {
		return nil, errors.New("its issuer is none of the policy's pools")
	}
	return nil, errors.Join(errs...)
}

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/cognito-extauthz/cognito-extauthz/internal/revocation"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/policy"
)

// runValidate checks a policy file offline: no network, no keys. Problems go
// to stdout, one per line, each with its place in the file.
func runValidate(_ context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	configPath := fs.String("config", "", "policy file to check; required")
	allowHTTP := fs.Bool("jwks-allow-http", false, "accept plain-http JWKS URLs to non-loopback hosts")
	var pf policyFlags
	pf.register(fs)
	if code, ok := parseFlags(fs, args, stderr); !ok {
		return code
	}
	if *configPath == "" {
		fmt.Fprintln(stderr, "extauthz validate: --config (or EXTAUTHZ_CONFIG) is required")
		return exitUsage
	}
	if err := pf.validate(); err != nil {
		fmt.Fprintf(stderr, "extauthz validate: %v\n", err)
		return exitUsage
	}
	snap, err := policy.Load(*configPath, pf.options(*allowHTTP))
	if err != nil {
		var probs policy.Problems
		if errors.As(err, &probs) {
			for _, p := range probs {
				fmt.Fprintln(stdout, p.String())
			}
			fmt.Fprintf(stderr, "%s: %s\n", *configPath, count(len(probs), "problem", "problems"))
			return exitFail
		}
		// Not a problem in the policy: the file could not be read.
		fmt.Fprintf(stderr, "extauthz validate: %v\n", err)
		return exitRuntime
	}
	// The revocation list file is the policy's too: a bad line keeps the
	// service from starting, so it is a problem here (with file:line).
	if cfg := revocation.PolicyConfig(snap.Revocation()); cfg != nil {
		if err := revocation.Validate(*cfg); err != nil {
			n := 0
			for _, line := range strings.Split(err.Error(), "\n") {
				fmt.Fprintln(stdout, line)
				n++
			}
			fmt.Fprintf(stderr, "%s: %s\n", *configPath, count(n, "problem", "problems"))
			return exitFail
		}
	}
	// Warnings do not fail validation: the policy is valid as written.
	for _, w := range snap.Warnings() {
		fmt.Fprintln(stdout, "warning: "+w.String())
	}
	fmt.Fprintf(stdout, "%s: ok: %s, %s, %s\n", *configPath,
		count(len(snap.Routes()), "route", "routes"),
		count(len(snap.Authorizers()), "authorizer", "authorizers"),
		count(len(snap.KeySources()), "key source", "key sources"))
	return exitOK
}

// count renders n with the noun in the right number: 1 route, 2 routes.
func count(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

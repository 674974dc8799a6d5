package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/cognito-extauthz/cognito-extauthz/pkg/policy"
)

// runValidate checks a policy file offline: no network, no keys. Problems go
// to stdout, one per line, each with its place in the file.
func runValidate(_ context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	configPath := fs.String("config", "", "policy file to check; required")
	allowHTTP := fs.Bool("jwks-allow-http", false, "accept plain-http JWKS URLs to non-loopback hosts")
	if code, ok := parseFlags(fs, args, stderr); !ok {
		return code
	}
	if *configPath == "" {
		fmt.Fprintln(stderr, "extauthz validate: --config (or EXTAUTHZ_CONFIG) is required")
		return exitUsage
	}
	snap, err := policy.Load(*configPath, policy.Options{AllowHTTPJWKS: *allowHTTP})
	if err != nil {
		var probs policy.Problems
		if errors.As(err, &probs) {
			for _, p := range probs {
				fmt.Fprintln(stdout, p.String())
			}
			fmt.Fprintf(stderr, "%s: %d problem(s)\n", *configPath, len(probs))
			return exitFail
		}
		// Not a problem in the policy: the file could not be read.
		fmt.Fprintf(stderr, "extauthz validate: %v\n", err)
		return exitRuntime
	}
	fmt.Fprintf(stdout, "%s: ok: %d routes, %d authorizers, %d key sources\n",
		*configPath, len(snap.Routes()), len(snap.Authorizers()), len(snap.KeySources()))
	return exitOK
}

package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/cognito-extauthz/cognito-extauthz/internal/policytest"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/jwks"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/policy"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/token"
)

// runTest runs the declarative cases of a cases file against a policy: a
// line per case, then the totals. Exit 0 all passed, 1 some failed, 2 a
// bad cases file, policy or usage, 3 the report could not be written.
func runTest(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	configPath := fs.String("config", "", "policy file the cases run against; required")
	junitPath := fs.String("junit", "", "also write the results as JUnit XML to this file")
	fetchTimeout := fs.Duration("jwks-fetch-timeout", 5*time.Second, "timeout of one JWKS fetch, for cases with a literal token")
	allowHTTP := fs.Bool("jwks-allow-http", false, "allow plain-http JWKS URLs to non-loopback hosts")
	flags, pos := splitArgs(fs, args)
	if code, ok := parseFlags(fs, flags, stderr); !ok {
		return code
	}
	if *configPath == "" || len(pos) != 1 {
		fmt.Fprintln(stderr, "usage: extauthz test --config policy.yaml CASES.yaml [--junit FILE]")
		return exitUsage
	}
	casesPath := pos[0]
	snap, err := policy.Load(*configPath, policy.Options{AllowHTTPJWKS: *allowHTTP})
	if err != nil {
		fmt.Fprintf(stderr, "extauthz test: %v\n", err)
		return exitUsage
	}
	cases, err := policytest.Load(casesPath)
	if err != nil {
		fmt.Fprintf(stderr, "extauthz test: %v\n", err)
		return exitUsage
	}
	var keys *jwks.Cache
	defer func() {
		if keys != nil {
			keys.Close()
		}
	}()
	own := func(ctx context.Context) (token.Keys, error) {
		log, err := newLogger("warn", "console", stderr)
		if err != nil {
			return nil, err
		}
		keys = jwks.New(jwks.Options{FetchTimeout: *fetchTimeout, AllowHTTP: *allowHTTP, Logger: log.Named("jwks")})
		if err := keys.Prepare(ctx, snap.KeySources(), nil, *fetchTimeout+time.Second); err != nil {
			log.Warn("not every key set loaded", zap.Error(err))
		}
		return keys, nil
	}
	runner, err := policytest.NewRunner(snap, policytest.Options{OwnKeys: own})
	if err != nil {
		fmt.Fprintf(stderr, "extauthz test: %v\n", err)
		return exitRuntime
	}
	if err := runner.Prepare(cases); err != nil {
		fmt.Fprintf(stderr, "extauthz test: %v\n", err)
		return exitUsage
	}
	started := time.Now()
	results := runner.Run(ctx, cases)
	failed := printResults(stdout, results)
	if *junitPath != "" {
		if err := writeJUnit(*junitPath, policytest.Report{Suite: casesPath, Policy: *configPath, Started: started}, results); err != nil {
			fmt.Fprintf(stderr, "extauthz test: %v\n", err)
			return exitRuntime
		}
	}
	if failed > 0 {
		return exitFail
	}
	return exitOK
}

// printResults writes a line per case and the totals, and returns how many
// failed.
func printResults(w io.Writer, results []policytest.Result) int {
	failed := 0
	for _, r := range results {
		if r.Pass {
			fmt.Fprintf(w, "PASS %s\n", r.Case.Name)
			continue
		}
		failed++
		where := ""
		if r.Case.File != "" {
			where = fmt.Sprintf(" (%s:%d)", r.Case.File, r.Case.Line)
		}
		fmt.Fprintf(w, "FAIL %s%s: %s\n", r.Case.Name, where, strings.Join(r.Diffs, "; "))
	}
	fmt.Fprintf(w, "%d passed, %d failed\n", len(results)-failed, failed)
	return failed
}

// writeJUnit writes the report to path.
func writeJUnit(path string, rep policytest.Report, results []policytest.Result) error {
	var b bytes.Buffer
	if err := policytest.WriteJUnit(&b, rep, results); err != nil {
		return err
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		return fmt.Errorf("write junit report: %w", err)
	}
	return nil
}

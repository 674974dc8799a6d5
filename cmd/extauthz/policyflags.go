package main

import (
	"flag"
	"fmt"

	"github.com/cognito-extauthz/cognito-extauthz/pkg/policy"
)

// minPolicyBytes is the smallest --max-policy-bytes accepted: below it not
// even a one-route policy with a comment fits, so a smaller value is a
// mistake (a missing unit, say).
const minPolicyBytes = 1024

// policyFlags are the flags of every command that loads a policy: serve and
// dev (through serverFlags), validate and explain. One definition, so the
// commands cannot disagree on a name or a default.
type policyFlags struct {
	maxBytes int64
}

func (p *policyFlags) register(fs *flag.FlagSet) {
	fs.Int64Var(&p.maxBytes, "max-policy-bytes", policy.DefaultMaxBytes,
		"largest policy file accepted, in bytes; a larger one is refused before it is parsed (the default holds 50,000 routes written one field per line)")
}

func (p *policyFlags) validate() error {
	if p.maxBytes < minPolicyBytes {
		return fmt.Errorf("--max-policy-bytes must be at least %d", minPolicyBytes)
	}
	return nil
}

// options returns the policy options the flags set.
func (p *policyFlags) options(allowHTTPJWKS bool) policy.Options {
	return policy.Options{AllowHTTPJWKS: allowHTTPJWKS, MaxBytes: p.maxBytes}
}

package policy

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// DefaultMaxBytes is the largest policy accepted when Options.MaxBytes is
// not set: 32 MiB. A route written one field per line, as people write
// them, takes about 180 bytes with its scopes or groups, 400 with claims,
// claim headers and a comment; 32 MiB holds 50,000 routes of up to about
// 670 bytes each. A larger file is almost certainly not a policy (a log,
// a device, a generated dump), and parsing takes about 27 times the file's
// size in memory for a moment (see BENCHMARKS.md), so it is refused
// before it is parsed.
const DefaultMaxBytes = 32 << 20

// maxBytes is the size limit opts sets.
func (o Options) maxBytes() int64 {
	if o.MaxBytes > 0 {
		return o.MaxBytes
	}
	return DefaultMaxBytes
}

// tooLarge says which limit a policy exceeds, and where the service sets it.
func tooLarge(limit int64) string {
	return fmt.Sprintf("larger than the limit of %d bytes (extauthz --max-policy-bytes, env EXTAUTHZ_MAX_POLICY_BYTES)", limit)
}

// ReadFile reads the policy file at path as Load does: a file larger than
// the limit of opts (Options.MaxBytes) is an error, read no further than
// one byte past the limit.
func ReadFile(path string, opts Options) ([]byte, error) {
	limit := opts.maxBytes()
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read policy %q: %w", path, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read policy %q: %w", path, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("read policy %q: %s", path, tooLarge(limit))
	}
	return data, nil
}

// Load reads the policy file at path (ReadFile) and parses it with Parse.
// A file that is not valid comes back as Problems, every one of them at
// once.
func Load(path string, opts Options) (*Snapshot, error) {
	data, err := ReadFile(path, opts)
	if err != nil {
		return nil, err
	}
	return Parse(data, path, opts)
}

// Parse reads a policy in three steps: decode the YAML strictly into the
// document model (decode.go), validate it, collecting every problem
// (validate*.go), and compile it into the immutable Snapshot (compile.go);
// then the lints that look across routes run on the result (lint.go).
//
// name is the file name used in problem text; a relative jwksFile is
// resolved against its directory. Any problem, unknown fields included,
// fails the whole policy: the error is then Problems, listing every problem
// in file order, and the Snapshot is nil. Warnings do not fail it; they are
// on the Snapshot (Warnings).
func Parse(data []byte, name string, opts Options) (*Snapshot, error) {
	r := &reporter{file: name}
	if limit := opts.maxBytes(); int64(len(data)) > limit {
		return nil, Problems{{File: name, Message: "policy is " + tooLarge(limit)}}
	}
	doc := decode(r, data)
	if doc == nil {
		return nil, r.failed()
	}
	v := validate(r, doc, filepath.Dir(name), opts)
	if len(r.probs) > 0 {
		return nil, r.failed()
	}
	s := compile(v, data)
	for _, l := range lints {
		l(r, s, doc)
	}
	if len(r.probs) > 0 {
		return nil, r.failed()
	}
	sortProblems(r.warns)
	s.warnings = r.warns
	return s, nil
}

// failed returns the problems in file order.
func (r *reporter) failed() Problems {
	sortProblems(r.probs)
	return r.probs
}

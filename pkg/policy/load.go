package policy

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// maxPolicySize bounds what Load reads: a policy is hand-written and small;
// a huge file is a mistake (or a device) and is refused.
const maxPolicySize = 4 << 20

// Load reads the policy file at path and parses it with Parse. A file that
// is not valid comes back as Problems, every one of them at once.
func Load(path string, opts Options) (*Snapshot, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read policy %q: %w", path, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxPolicySize+1))
	if err != nil {
		return nil, fmt.Errorf("read policy %q: %w", path, err)
	}
	if len(data) > maxPolicySize {
		return nil, fmt.Errorf("read policy %q: larger than %d bytes", path, maxPolicySize)
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
	if len(data) > maxPolicySize {
		return nil, Problems{{File: name, Message: fmt.Sprintf("policy is larger than %d bytes", maxPolicySize)}}
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

package policy

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v4"
)

// Problem is one thing wrong with a policy file, with its place. The same
// type carries warnings (Snapshot.Warnings): valid, but probably not what
// the author meant.
type Problem struct {
	File   string
	Line   int // 1-based; 0 when unknown
	Column int // 1-based; 0 when unknown
	// Path locates the value in the document, e.g. routes[2].authorizer.
	Path    string
	Message string
}

// String formats the problem as compilers do:
// policy.yaml:12:5: routes[2].authorizer: unknown authorizer "x".
func (p Problem) String() string {
	var b strings.Builder
	if p.File != "" {
		b.WriteString(p.File)
		b.WriteString(":")
	}
	if p.Line > 0 {
		b.WriteString(strconv.Itoa(p.Line))
		b.WriteString(":")
		if p.Column > 0 {
			b.WriteString(strconv.Itoa(p.Column))
			b.WriteString(":")
		}
	}
	if b.Len() > 0 {
		b.WriteString(" ")
	}
	if p.Path != "" {
		b.WriteString(p.Path)
		b.WriteString(": ")
	}
	b.WriteString(p.Message)
	return b.String()
}

// Problems is every problem found in a policy file. It is the error Load
// and Parse return for a file that is not valid.
type Problems []Problem

// Error returns one problem per line.
func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// sortProblems puts problems in file order; problems at one place keep the
// order they were found in.
func sortProblems(ps Problems) {
	slices.SortStableFunc(ps, func(a, b Problem) int {
		return cmp.Or(cmp.Compare(a.Line, b.Line), cmp.Compare(a.Column, b.Column))
	})
}

// reporter collects the problems (which fail the policy) and the warnings
// (which do not) of one file, in the order they are found.
type reporter struct {
	file  string
	probs Problems
	warns Problems
}

func (r *reporter) add(p Problem) { r.probs = append(r.probs, p) }

func (r *reporter) at(n *yaml.Node, path, format string, args []any) Problem {
	p := Problem{File: r.file, Path: path, Message: fmt.Sprintf(format, args...)}
	if n != nil {
		p.Line, p.Column = n.Line, n.Column
	}
	return p
}

// problemf reports a problem at node n (nil when it has no place).
func (r *reporter) problemf(n *yaml.Node, path, format string, args ...any) {
	r.add(r.at(n, path, format, args))
}

// warnf reports a warning: something valid but probably not meant.
func (r *reporter) warnf(n *yaml.Node, path, format string, args ...any) {
	r.warns = append(r.warns, r.at(n, path, format, args))
}

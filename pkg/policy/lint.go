package policy

// A lint is a rule that looks across the compiled policy, after every
// value is known to be valid: it sees the Snapshot (routes in file order,
// matching, authorizers) and the document (for places to report at). Most
// lints find things that are valid but probably not meant, and report them
// with warnf; a lint may also report a problem, which fails the policy.
type lint func(r *reporter, s *Snapshot, doc *document)

// lints run in order on every policy that validated. Add a rule here.
var lints = []lint{
	unusedAuthorizers,
	hostShadowed,
	caseCollisions,
}

// unusedAuthorizers warns about an authorizer no route names: it checks
// nothing, and its keys are not fetched, so a mistake in its pools would
// only show once a route starts using it.
func unusedAuthorizers(r *reporter, s *Snapshot, doc *document) {
	used := map[string]bool{}
	for _, rt := range s.routes {
		if rt.Authorizer != nil {
			used[rt.Authorizer.Name] = true
		}
	}
	for _, e := range doc.Authorizers.Entries {
		if !used[e.Name] {
			r.warnf(e.Key, e.Val.Path(), "no route uses authorizer %q: it checks nothing and its keys are not fetched", e.Name)
		}
	}
}

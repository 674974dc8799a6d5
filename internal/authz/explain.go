package authz

import (
	"strings"

	"github.com/cognito-extauthz/cognito-extauthz/pkg/policy"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/token"
)

// Requirement is one requirement of a route, as explain shows it: what
// the route wants, what the request had, and whether it held.
type Requirement struct {
	Name string
	Want string
	Got  string
	OK   bool
}

// notVerified is the Got of a requirement that could not be checked
// because no token verified.
const notVerified = "(not checked: no verified token)"

// Requirements lists the requirements of d's route in the order Decide
// checks them, each with what the request had. A denial for an unmet
// requirement names the first one not OK. It is for explain, off the hot
// path; Decide does not use it.
func Requirements(d *Decision) []Requirement {
	route := d.Route
	if route == nil {
		return nil
	}
	if route.NoAuth {
		return []Requirement{{Name: "authorization", Want: "NONE", Got: "no token needed", OK: true}}
	}
	c := d.Claims
	az := route.Authorizer
	out := make([]Requirement, 0, 5+len(route.Claims))
	out = append(out, tokenRequirement(d))
	if d.Revocation != "" {
		out = append(out, revocationRequirement(d))
	}

	add := func(name, want string, got func() (string, bool)) {
		r := Requirement{Name: name, Want: want, Got: notVerified}
		if c != nil {
			r.Got, r.OK = got()
		}
		out = append(out, r)
	}
	if route.Mode == policy.ModeJWT {
		add("token_use", "id or access", func() (string, bool) {
			return c.TokenUse(), c.TokenUse() != ""
		})
	} else {
		add("token_use", route.Mode.TokenUse(), func() (string, bool) {
			return c.TokenUse(), c.TokenUse() == route.Mode.TokenUse()
		})
	}
	if az != nil && az.Token != nil && len(az.Token.ClientIDs) > 0 {
		want := "one of " + strings.Join(az.Token.ClientIDs, ", ")
		if route.Mode == policy.ModeJWT {
			want += " (" + clientRule(route.Mode) + ")"
		}
		add("app_client", want, func() (string, bool) {
			return c.ClientID(), clientAllowed(route.Mode, c)
		})
	}
	if len(route.Scopes) > 0 {
		add("scopes", "any of "+strings.Join(route.Scopes, " "), func() (string, bool) {
			return strings.Join(c.Scopes(), " "), c.HasAnyScope(route.Scopes)
		})
	}
	if len(route.Groups) > 0 {
		add("groups", "any of "+strings.Join(route.Groups, ", "), func() (string, bool) {
			return strings.Join(c.Groups(), ", "), c.InAnyGroup(route.Groups)
		})
	}
	for _, req := range route.Claims {
		add("claim "+req.Claim, req.Value, func() (string, bool) {
			return claimRequirement(c, req.Claim, req.Value)
		})
	}
	return out
}

// tokenRequirement is the first row: the token verified, or why not.
func tokenRequirement(d *Decision) Requirement {
	tok := Requirement{Name: "token", Want: "a valid token"}
	if az := d.Route.Authorizer; az != nil {
		tok.Want += " in " + az.Source.String() + " from a pool of authorizer " + az.Name
	}
	if d.Claims != nil {
		tok.Got, tok.OK = "verified (pool "+d.Claims.Pool()+")", true
		return tok
	}
	tok.Got = string(d.Reason)
	if d.Detail != "" {
		tok.Got = d.Detail
	}
	return tok
}

// revocationRequirement is checked right after the token verified, before
// the route's own requirements.
func revocationRequirement(d *Decision) Requirement {
	r := Requirement{Name: "not_revoked", Want: "not on the revocation list", Got: d.Revocation,
		OK: d.Revocation == RevocationNotListed}
	if !r.OK && d.Detail != "" {
		r.Got = d.Detail
	}
	return r
}

// claimRequirement reads a required claim as the decision does: a scalar
// equal to want, never a list or object that happens to render as it.
func claimRequirement(c *token.Claims, name, want string) (string, bool) {
	if v, ok := c.Scalar(name); ok {
		return v, v == want
	}
	if v, ok := c.Format(name); ok {
		return v + " (not a single value)", false
	}
	return "(absent)", false
}

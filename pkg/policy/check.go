package policy

import (
	"fmt"
	"strings"
)

// The checks below are the validator's own rules for single values, for
// programs that write policies (extauthz import): what they emit then
// validates by construction rather than by luck.

// CheckName reports whether s may name a route or an authorizer.
func CheckName(s string) error {
	if !nameRE.MatchString(s) || len(s) > maxNameLen {
		return fmt.Errorf("name %q: use 1 to %d of A-Z a-z 0-9 . _ -", s, maxNameLen)
	}
	return nil
}

// CheckTemplate reports whether t is a valid match.path template.
func CheckTemplate(t string) error {
	_, err := parseTemplate(t)
	return err
}

// CheckIdentitySource reports whether s is a valid identitySource.
func CheckIdentitySource(s string) error {
	_, err := parseIdentitySource(s)
	return err
}

// CheckPoolARN reports whether s is a valid user pool ARN.
func CheckPoolARN(s string) error {
	_, _, err := parseARN(s)
	return err
}

// CheckPoolID reports whether s is a valid Cognito user pool id
// (REGION_ID).
func CheckPoolID(s string) error {
	_, err := parsePoolID(s)
	return err
}

// CheckIssuer reports whether s is a valid pool issuer override.
func CheckIssuer(s string) error { return checkIssuer(s) }

// CheckWord reports whether s is a valid scope, group or app client id:
// non-empty, without whitespace or control characters.
func CheckWord(s string) error {
	if s == "" || !isWord(s) {
		return fmt.Errorf("%q must be one word: no spaces or control characters", s)
	}
	return nil
}

// CheckResponseHeader reports whether a gatewayResponses header may be
// set; the name is case-insensitive.
func CheckResponseHeader(name, value string) error {
	return checkResponseHeader(strings.ToLower(name), value)
}

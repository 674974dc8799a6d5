package jwks

import (
	"crypto/rsa"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strings"

	"github.com/cognito-extauthz/cognito-extauthz/internal/httpsyntax"
)

// The rules below are the one definition of what key sources and keys this
// service accepts. The policy loader calls CheckURL on every jwksUri (and
// derived JWKS URL), the cache calls it again before fetching, and token
// verification calls CheckKey on the key it is about to use.

// CheckURL accepts an absolute https JWKS URL, or http to a loopback host
// (a local emulator or sidecar), or any http URL when allowHTTP. URLs with
// credentials are refused (the URL is a log field and a metric label), and
// so are fragments, whitespace and control characters.
func CheckURL(s string, allowHTTP bool) error {
	if strings.TrimSpace(s) != s || strings.ContainsAny(s, " \t") || httpsyntax.HasControl(s) {
		return errors.New("JWKS URL must not contain whitespace or control characters")
	}
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("JWKS URL %q is not a URL: %w", s, err)
	}
	switch {
	case !u.IsAbs() || u.Opaque != "":
		return fmt.Errorf("JWKS URL %q must be absolute (https://host/path)", s)
	case u.Scheme != "https" && u.Scheme != "http":
		return fmt.Errorf("JWKS URL %q must use https", s)
	case u.Host == "" || u.Hostname() == "":
		return fmt.Errorf("JWKS URL %q has no host", s)
	case u.User != nil:
		return fmt.Errorf("JWKS URL %q must not carry user information", u.Redacted())
	case u.Fragment != "" || strings.Contains(s, "#"):
		return fmt.Errorf("JWKS URL %q must not have a fragment", s)
	case u.Scheme == "http" && !allowHTTP && !IsLoopback(u.Hostname()):
		return fmt.Errorf("JWKS URL %q uses plain http to a host that is not loopback: keys fetched in clear text can be replaced in flight; use https, or allow http JWKS explicitly", s)
	}
	return nil
}

// IsLoopback reports whether host is localhost or a loopback IP literal
// (127.0.0.0/8, ::1, or either mapped into IPv6). Names other than
// localhost are not resolved: what they resolve to can change after the
// check.
func IsLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	addr, err := netip.ParseAddr(host)
	return err == nil && addr.Unmap().IsLoopback()
}

// Admission limits for RSA keys. The upper bound is defence in depth: the
// set comes from an operator-chosen source, but one verification with a
// huge modulus costs far more than one with Cognito's 2048 bits.
const (
	minModulusBits = 2048
	maxModulusBits = 8192
	rsaExponent    = 65537
)

// Rules a key can fail; they appear in the warn log that names the key.
const (
	ruleModulus      = "n is not a valid RSA modulus"
	ruleModulusSmall = "modulus is shorter than 2048 bits"
	ruleModulusLarge = "modulus is longer than 8192 bits"
	ruleExponent     = "e is not 65537"
)

var (
	errModulus      = errors.New(ruleModulus)
	errModulusSmall = errors.New(ruleModulusSmall)
	errModulusLarge = errors.New(ruleModulusLarge)
	errExponent     = errors.New(ruleExponent)
)

// CheckKey is the admission rule for an RSA public key: an odd modulus of
// 2048 to 8192 bits and exponent 65537. Keys are checked when a set is
// loaded (a failing key is dropped with a log line) and again by token
// verification before use, so a weak key can never verify a token.
func CheckKey(pub *rsa.PublicKey) error {
	switch {
	case pub == nil || pub.N == nil || pub.N.Sign() <= 0 || pub.N.Bit(0) == 0:
		// An even modulus is not a product of two odd primes.
		return errModulus
	case pub.N.BitLen() < minModulusBits:
		return errModulusSmall
	case pub.N.BitLen() > maxModulusBits:
		return errModulusLarge
	case pub.E != rsaExponent:
		return errExponent
	}
	return nil
}

package token

import (
	"encoding/base64"
	"fmt"

	"github.com/cognito-extauthz/cognito-extauthz/pkg/reason"
)

// MaxTokenLen is the largest token accepted, in bytes. Cognito ID tokens with
// many groups or custom attributes reach a few KiB; 16 KiB leaves room while
// bounding the work a hostile client can buy.
const MaxTokenLen = 16 << 10

// b64url is the only encoding a token segment may use: URL alphabet, no
// padding, zero trailing bits.
var b64url = base64.RawURLEncoding.Strict()

// b64Value maps a base64url character to its 6-bit value, or 0xff for every
// byte outside [A-Za-z0-9_-] (so '=', '+', '/', '.', whitespace and non-ASCII
// are all invalid).
var b64Value = func() (t [256]byte) {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	for i := range t {
		t[i] = 0xff
	}
	for i := range len(alphabet) {
		t[alphabet[i]] = byte(i)
	}
	return t
}()

// CheckShape runs verification step 0 alone: raw is at most MaxTokenLen
// bytes and is exactly three non-empty segments of canonical, unpadded
// base64url separated by '.', so that one token has exactly one string. It
// looks at each byte once, allocates nothing on success, and never hands the
// input to a JSON or JOSE parser. The error is a *reason.Error with
// reason.TokenMalformed.
func CheckShape(raw string) error {
	_, _, _, err := split(raw)
	return err
}

// split checks the shape of raw and returns its three segments (substrings
// of raw, not copies).
func split(raw string) (header, payload, sig string, err error) {
	if len(raw) > MaxTokenLen {
		return "", "", "", reason.New(reason.TokenMalformed, "token is longer than 16 KiB")
	}
	if raw == "" {
		return "", "", "", reason.New(reason.TokenMalformed, "token is empty")
	}
	var dots [2]int
	n := 0
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c == '.' {
			if n == len(dots) {
				return "", "", "", reason.New(reason.TokenMalformed, "token has more than three segments")
			}
			dots[n] = i
			n++
			continue
		}
		if b64Value[c] == 0xff {
			return "", "", "", reason.New(reason.TokenMalformed, "token has a byte outside the base64url alphabet")
		}
	}
	if n != len(dots) {
		return "", "", "", reason.New(reason.TokenMalformed, "token does not have three segments")
	}
	header, payload, sig = raw[:dots[0]], raw[dots[0]+1:dots[1]], raw[dots[1]+1:]
	for i, seg := range [3]string{header, payload, sig} {
		if err := canonical(seg); err != nil {
			return "", "", "", reason.Wrap(reason.TokenMalformed, segmentNames[i], err)
		}
	}
	return header, payload, sig, nil
}

// canonical reports whether seg, already known to hold only base64url
// characters, is the unique unpadded encoding of some byte string: its length
// is not 1 mod 4 and the bits of its last character that encode nothing are
// zero. Together with the alphabet check this is exactly the set of inputs
// that base64.RawURLEncoding.Strict() decodes and re-encodes unchanged (the
// fuzz target FuzzCheckShape holds the two to each other).
func canonical(seg string) error {
	switch len(seg) % 4 {
	case 1:
		return errLength
	case 2: // the last character carries 2 bits, 4 unused
		if b64Value[seg[len(seg)-1]]&0x0f != 0 {
			return errTrailingBits
		}
	case 3: // the last character carries 4 bits, 2 unused
		if b64Value[seg[len(seg)-1]]&0x03 != 0 {
			return errTrailingBits
		}
	case 0:
		if len(seg) == 0 {
			return errEmpty
		}
	}
	return nil
}

// segmentNames name the segments in error details without allocating.
var segmentNames = [3]string{"header segment", "payload segment", "signature segment"}

// shapeError is a fixed shape failure; it never quotes the input.
type shapeError string

func (e shapeError) Error() string { return string(e) }

const (
	errEmpty        shapeError = "segment is empty"
	errLength       shapeError = "segment length is not a valid base64url length"
	errTrailingBits shapeError = "segment is not canonical base64url (non-zero trailing bits)"
)

// decodeSegments decodes the three segments that split accepted into one
// buffer. split has already proved each segment canonical (the fuzz target
// FuzzCheckShape holds that to a decode-and-re-encode oracle), so one token
// still has one string, which the token cache keys on; decoding does not
// repeat that work. The strict decoder is kept as a second line: it would
// refuse non-zero trailing bits on its own.
func decodeSegments(segs [3]string) ([3][]byte, error) {
	var out [3][]byte
	n := 0
	for _, seg := range segs {
		n += b64url.DecodedLen(len(seg))
	}
	buf := make([]byte, n)
	for i, seg := range segs {
		m, err := b64url.Decode(buf, []byte(seg))
		if err != nil {
			return out, reason.Wrap(reason.TokenMalformed, segmentNames[i], fmt.Errorf("decode segment: %w", err))
		}
		out[i], buf = buf[:m:m], buf[m:]
	}
	return out, nil
}

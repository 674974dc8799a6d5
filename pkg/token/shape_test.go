package token

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/cognito-extauthz/cognito-extauthz/pkg/reason"
)

// A structurally valid token (the bytes need not be JSON for step 0).
const shapeOK = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"

func TestCheckShape(t *testing.T) {
	cases := []struct {
		name string
		raw  string
		ok   bool
	}{
		{"valid", shapeOK, true},
		{"segments of every valid length", "AA.AAA.AAAA", true},
		{"url alphabet", "-_-_.AAAA.AAAA", true},
		{"empty", "", false},
		{"one segment", "AAAA", false},
		{"two segments", "AAAA.AAAA", false},
		{"four segments", "AAAA.AAAA.AAAA.AAAA", false},
		{"trailing dot", shapeOK + ".", false},
		{"leading dot", "." + shapeOK, false},
		{"empty header", ".AAAA.AAAA", false},
		{"empty payload", "AAAA..AAAA", false},
		{"empty signature", "AAAA.AAAA.", false},
		{"only dots", "..", false},
		{"length 1 mod 4", "AAAAA.AAAA.AAAA", false},
		{"single character segment", "A.AAAA.AAAA", false},
		{"padding", "AA==.AAAA.AAAA", false},
		{"padding in the middle", "AA=A.AAAA.AAAA", false},
		{"plus", "A+AA.AAAA.AAAA", false},
		{"slash", "A/AA.AAAA.AAAA", false},
		{"space inside", "AA AA.AAAA.AAAA", false},
		{"leading space", " " + shapeOK, false},
		{"trailing space", shapeOK + " ", false},
		{"trailing newline", shapeOK + "\n", false},
		{"CRLF inside", "AAAA\r\nAAAA.AAAA.AAAA", false},
		{"tab", "AAAA\t.AAAA.AAAA", false},
		{"NUL", "AAAA\x00.AAAA.AAAA", false},
		{"non-ASCII", "AAAÀ.AAAA.AAAA", false},
		{"JSON", `{"protected":"AAAA","payload":"AAAA","signature":"AAAA"}`, false},
		{"non-zero trailing bits, 2-char group", "AB.AAAA.AAAA", false},
		{"zero trailing bits, 2-char group", "AQ.AAAA.AAAA", true},
		{"non-zero trailing bits, 3-char group", "AAB.AAAA.AAAA", false},
		{"zero trailing bits, 3-char group", "AAE.AAAA.AAAA", true},
		{"exactly MaxTokenLen", strings.Repeat("A", MaxTokenLen-10) + ".AAAA.AAAA", true},
		{"one over MaxTokenLen", strings.Repeat("A", MaxTokenLen-9) + ".AAAA.AAAA", false},
		{"1 MiB of dots", strings.Repeat(".", 1<<20), false},
		{"8 MiB token", strings.Repeat("A", 8<<20) + ".AAAA.AAAA", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckShape(tc.raw)
			if (err == nil) != tc.ok {
				t.Fatalf("CheckShape = %v, want ok=%v", err, tc.ok)
			}
			if err != nil {
				if got := reason.Of(err); got != reason.TokenMalformed {
					t.Fatalf("code = %q, want %q", got, reason.TokenMalformed)
				}
				if len(err.Error()) > 200 {
					t.Fatalf("error text is %d bytes long: it must not echo the input", len(err.Error()))
				}
			}
			if got := oracleShape(tc.raw); got != tc.ok {
				t.Fatalf("oracle disagrees with the table: oracle ok=%v", got)
			}
		})
	}
}

// oracleShape is the definition of step 0 written the slow, obvious way:
// the fuzz target holds CheckShape to it.
func oracleShape(raw string) bool {
	if len(raw) > MaxTokenLen {
		return false
	}
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return false
	}
	for _, p := range parts {
		if p == "" || strings.ContainsAny(p, "=\r\n") {
			return false
		}
		dec, err := base64.RawURLEncoding.Strict().DecodeString(p)
		if err != nil || base64.RawURLEncoding.EncodeToString(dec) != p {
			return false
		}
	}
	return true
}

// A non-canonical segment never reaches a JSON parser: split refuses it,
// and the strict decoder behind it would too.
func TestDecodeRejectsNonCanonical(t *testing.T) {
	for _, seg := range []string{"AB", "AAB", "A\nA==", "AA\r\nAA"} {
		_, _, _, err := split(seg + ".AAAA.AAAA")
		if err == nil {
			t.Errorf("split accepted the non-canonical segment %q", seg)
		}
		if !strings.ContainsAny(seg, "\r\n=") {
			if _, err := decodeSegments([3]string{seg, "AAAA", "AAAA"}); err == nil {
				t.Errorf("decodeSegments accepted the non-canonical segment %q", seg)
			}
		}
	}
	got, err := decodeSegments([3]string{"aGVsbG8gd29ybGQgaGVsbG8gd29ybGQgaGVsbG8gd29ybGQgaGVsbG8gd29ybGQgaGVsbG8gd29ybGQ", "AAAA", "AQ"})
	if err != nil || string(got[0]) != strings.Repeat("hello world ", 4)+"hello world" || string(got[1]) != "\x00\x00\x00" || string(got[2]) != "\x01" {
		t.Fatalf("decodeSegments = %q, %v", got, err)
	}
}

// TestCheckShapeAllocations: step 0 allocates nothing on success and a
// constant, small amount on any failure, however large the input.
func TestCheckShapeAllocations(t *testing.T) {
	cases := []struct {
		name string
		raw  string
		max  float64
	}{
		{"valid", shapeOK, 0},
		{"1 MiB of dots", strings.Repeat(".", 1<<20), 1},
		{"8 MiB token", strings.Repeat("A", 8<<20), 1},
		{"16 KiB of dots", strings.Repeat(".", MaxTokenLen), 1},
		{"16 KiB bad last byte", strings.Repeat("A", MaxTokenLen-1) + "=", 1},
		{"non-canonical signature", "AAAA.AAAA.AB", 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := testing.AllocsPerRun(20, func() { _ = CheckShape(tc.raw) }); got > tc.max {
				t.Fatalf("CheckShape allocates %v times per call, want at most %v", got, tc.max)
			}
		})
	}
}

func FuzzCheckShape(f *testing.F) {
	for _, s := range []string{shapeOK, "AA.AAA.AAAA", "AB.AAAA.AAAA", "AA==.AAAA.AAAA", "..", "A+/A.AAAA.AAAA", shapeOK + "\n", "a.b.c.d", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		err := CheckShape(raw)
		if want := oracleShape(raw); (err == nil) != want {
			t.Fatalf("CheckShape(%q) = %v, oracle ok=%v", raw, err, want)
		}
		if err != nil {
			var re *reason.Error
			if !errors.As(err, &re) || re.Code != reason.TokenMalformed {
				t.Fatalf("CheckShape error %v is not token_malformed", err)
			}
			return
		}
		h, p, s, err := split(raw)
		if err != nil || h+"."+p+"."+s != raw {
			t.Fatalf("split(%q) = %q %q %q %v", raw, h, p, s, err)
		}
		if _, err := decodeSegments([3]string{h, p, s}); err != nil {
			t.Fatalf("decodeSegments failed on segments CheckShape accepted (%q): %v", raw, err)
		}
	})
}

func BenchmarkCheckShape(b *testing.B) {
	cases := []struct{ name, raw string }{
		{"valid-1KiB", strings.Repeat("A", 400) + "." + strings.Repeat("A", 300) + "." + strings.Repeat("A", 342)},
		{"dots-1MiB", strings.Repeat(".", 1<<20)},
		{"dots-16KiB", strings.Repeat(".", MaxTokenLen)},
		{"token-8MiB", strings.Repeat("A", 8<<20)},
	}
	for _, bc := range cases {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(bc.raw)))
			for b.Loop() {
				_ = CheckShape(bc.raw)
			}
		})
	}
}

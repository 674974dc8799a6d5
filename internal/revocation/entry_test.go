package revocation

import (
	"strings"
	"testing"
	"time"
)

const (
	uuidA = "3a25593b-dc5a-400e-b339-347dc5a79edc"
	uuidB = "0b9d4a2e-7f3c-4c1e-9a51-1d2f3e4a5b6c"
	uuidC = "7f1c2d3e-4b5a-4c6d-8e9f-0a1b2c3d4e5f"
)

func mustTime(t testing.TB, s string) time.Time {
	t.Helper()
	tm, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return tm.UTC()
}

func TestParseLine(t *testing.T) {
	t11 := mustTime(t, "2026-11-26T11:00:00Z")
	tests := []struct {
		name, line string
		want       Entry
		ok         bool
		err        string
	}{
		{name: "blank", line: ""},
		{name: "spaces", line: "  \t "},
		{name: "comment", line: "# a comment"},
		{name: "indented comment", line: "   # a comment"},
		{name: "jti with time", line: "jti " + uuidA + " 2026-11-26T11:00:00Z", ok: true,
			want: Entry{Kind: JTI, ID: uuidA, Time: t11}},
		{name: "jti without time", line: "jti " + uuidA, ok: true, want: Entry{Kind: JTI, ID: uuidA}},
		{name: "trailing comment", line: "jti " + uuidA + " 2026-11-26T11:00:00Z   # signed out", ok: true,
			want: Entry{Kind: JTI, ID: uuidA, Time: t11}},
		{name: "comment right after id", line: "jti " + uuidA + " #x", ok: true, want: Entry{Kind: JTI, ID: uuidA}},
		{name: "tabs and CR", line: "sub\t" + uuidB + "\t2026-11-26T11:00:00Z\r", ok: true,
			want: Entry{Kind: Sub, ID: uuidB, Time: t11}},
		{name: "offset time", line: "sub " + uuidB + " 2026-11-26T12:00:00+01:00", ok: true,
			want: Entry{Kind: Sub, ID: uuidB, Time: t11}},
		{name: "fractional time", line: "jti x 2026-11-26T11:00:00.25Z", ok: true,
			want: Entry{Kind: JTI, ID: "x", Time: t11.Add(250 * time.Millisecond)}},
		{name: "non-uuid id", line: "jti some-opaque-id", ok: true, want: Entry{Kind: JTI, ID: "some-opaque-id"}},
		{name: "sub without time", line: "sub " + uuidB, err: `want "sub SUB TIME"`},
		{name: "kind only", line: "jti", err: `want "jti ID [TIME]"`},
		{name: "unknown kind", line: "user " + uuidB, err: `unknown entry kind "user"`},
		{name: "upper-case kind", line: "JTI " + uuidA, err: "unknown entry kind"},
		{name: "too many fields", line: "jti a 2026-11-26T11:00:00Z extra", err: "more than 3 fields"},
		{name: "bad time", line: "jti a 2026-11-26", err: "is not RFC 3339"},
		{name: "time without zone", line: "jti a 2026-11-26T11:00:00", err: "is not RFC 3339"},
		{name: "time before 1970", line: "sub a 1969-12-31T23:59:59Z", err: "out of range"},
		{name: "hash inside id", line: "jti abc#def", err: "'#' inside a field"},
		{name: "non-ascii id", line: "jti caf\u00e9", err: "forbidden character"},
		{name: "control char", line: "jti a\x00b", err: "forbidden character"},
		{name: "long id", line: "jti " + strings.Repeat("a", MaxIDLen+1), err: "longer than"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok, err := ParseLine(tc.line)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("ParseLine(%q) error = %v, want one containing %q", tc.line, err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseLine(%q): %v", tc.line, err)
			}
			if ok != tc.ok || got.Kind != tc.want.Kind || got.ID != tc.want.ID || !got.Time.Equal(tc.want.Time) {
				t.Fatalf("ParseLine(%q) = %+v, %v; want %+v, %v", tc.line, got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestEntryStringRoundTrip(t *testing.T) {
	for _, e := range []Entry{
		{Kind: JTI, ID: uuidA},
		{Kind: JTI, ID: uuidA, Time: mustTime(t, "2026-11-26T11:00:00Z")},
		{Kind: Sub, ID: "us-east-1:odd", Time: mustTime(t, "2026-01-02T03:04:05Z")},
	} {
		got, ok, err := ParseLine(e.String())
		if err != nil || !ok || got.Kind != e.Kind || got.ID != e.ID || !got.Time.Equal(e.Time) {
			t.Errorf("ParseLine(%q) = %+v, %v, %v; want %+v", e.String(), got, ok, err, e)
		}
	}
	// A fraction is rounded up to the second, as lists keep it.
	e := Entry{Kind: Sub, ID: uuidB, Time: mustTime(t, "2026-11-26T10:00:00Z").Add(time.Millisecond)}
	if got, want := e.String(), "sub "+uuidB+" 2026-11-26T10:00:01Z"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

func TestParseMember(t *testing.T) {
	tests := []struct {
		member string
		score  float64
		want   Entry
		err    string
	}{
		{member: "jti:" + uuidA, score: 1795086000, want: Entry{Kind: JTI, ID: uuidA, Time: time.Unix(1795086000, 0).UTC()}},
		{member: "sub:" + uuidB, score: 1795086000.2, want: Entry{Kind: Sub, ID: uuidB, Time: time.Unix(1795086001, 0).UTC()}},
		{member: "jti:a:b", score: 1, want: Entry{Kind: JTI, ID: "a:b", Time: time.Unix(1, 0).UTC()}},
		{member: uuidA, score: 1, err: "no kind prefix"},
		{member: "user:" + uuidA, score: 1, err: "unknown kind"},
		{member: "jti:", score: 1, err: "empty id"},
		{member: "jti:a b", score: 1, err: "forbidden character"},
		{member: "jti:a", score: 0, err: "not a Unix time"},
		{member: "jti:a", score: -5, err: "not a Unix time"},
		{member: "jti:a", score: 1e12, err: "not a Unix time"},
	}
	for _, tc := range tests {
		got, err := ParseMember(tc.member, tc.score)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseMember(%q, %v) error = %v, want %q", tc.member, tc.score, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseMember(%q, %v) = %+v, %v; want %+v", tc.member, tc.score, got, err, tc.want)
		}
		if m := got.Member(); m != tc.member {
			t.Errorf("Member() = %q, want %q", m, tc.member)
		}
	}
}

func TestParseUUID(t *testing.T) {
	for _, tc := range []struct {
		s  string
		ok bool
	}{
		{uuidA, true},
		{strings.ToUpper(uuidA), true},
		{"3a25593bdc5a400eb339347dc5a79edc", false},
		{"3a25593b-dc5a-400e-b339-347dc5a79ed", false},
		{"3a25593b-dc5a-400e-b339-347dc5a79edg", false},
		{"3a25593b+dc5a-400e-b339-347dc5a79edc", false},
		{"{3a25593b-dc5a-400e-b339-347dc5a79ed}", false},
	} {
		if _, ok := parseUUID(tc.s); ok != tc.ok {
			t.Errorf("parseUUID(%q) ok = %v, want %v", tc.s, ok, tc.ok)
		}
	}
	a, _ := parseUUID(uuidA)
	b, _ := parseUUID(strings.ToUpper(uuidA))
	if a != b || a[0] != 0x3a || a[15] != 0xdc {
		t.Errorf("parseUUID bytes: %x, %x", a, b)
	}
}

// parseUUIDSlow is the obvious decoder, the reference for parseUUID.
func parseUUIDSlow(s string) ([16]byte, bool) {
	var u [16]byte
	if len(s) != 36 {
		return u, false
	}
	j := 0
	for i := 0; i < 36; i++ {
		if i == 8 || i == 13 || i == 18 || i == 23 {
			if s[i] != '-' {
				return u, false
			}
			continue
		}
		var v byte
		switch c := s[i]; {
		case '0' <= c && c <= '9':
			v = c - '0'
		case 'a' <= c && c <= 'f':
			v = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			v = c - 'A' + 10
		default:
			return u, false
		}
		u[j/2] |= v << (4 * (1 - j%2))
		j++
	}
	return u, true
}

// FuzzParseUUID holds parseUUID to the obvious decoder.
func FuzzParseUUID(f *testing.F) {
	for _, s := range []string{uuidA, strings.ToUpper(uuidB), uuidC, "3a25593b-dc5a-400e-b339-347dc5a79ed\x10",
		"\x10a25593b-dc5a-400e-b339-347dc5a79edc", "3a25593b-dc5a-400e-b339-347dc5a79eg0", "3a25593b-dc5a-400e-b339-347dc5a79e@0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := parseUUID(s)
		want, wok := parseUUIDSlow(s)
		if ok != wok || (ok && got != want) {
			t.Fatalf("parseUUID(%q) = %x, %v; want %x, %v", s, got, ok, want, wok)
		}
	})
}

// TestParseUUIDEveryByte: each position of a UUID, set to each byte value,
// decodes as the obvious decoder says.
func TestParseUUIDEveryByte(t *testing.T) {
	for i := 0; i < 36; i++ {
		for c := 0; c < 256; c++ {
			b := []byte(uuidA)
			b[i] = byte(c)
			got, ok := parseUUID(string(b))
			want, wok := parseUUIDSlow(string(b))
			if ok != wok || (ok && got != want) {
				t.Fatalf("position %d byte %#x: %x %v, want %x %v", i, c, got, ok, want, wok)
			}
		}
	}
}

// FuzzParseLine: the parser never panics; what it accepts formats back to
// a line that parses to the same entry (times rounded up to the second);
// what it accepts has a valid ID.
func FuzzParseLine(f *testing.F) {
	for _, s := range []string{
		"", "# c", "jti " + uuidA, "jti " + uuidA + " 2026-11-26T11:00:00Z # c",
		"sub " + uuidB + " 2026-11-26T10:00:00.5+02:00", "jti a#b", "sub x", "jti \x00",
		"jti a 2026-11-26T11:00:00Z b", "\tjti\ta\t2026-11-26T11:00:00Z\r",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		e, ok, err := ParseLine(line)
		if err != nil || !ok {
			if ok {
				t.Fatalf("ok with error %v", err)
			}
			return
		}
		if verr := checkID(e.ID); verr != nil {
			t.Fatalf("accepted id %q: %v", e.ID, verr)
		}
		if e.Kind == Sub && e.Time.IsZero() {
			t.Fatal("sub entry without a time")
		}
		again, ok2, err := ParseLine(e.String())
		if err != nil || !ok2 {
			t.Fatalf("String() %q does not parse: %v", e.String(), err)
		}
		want := e
		if !want.Time.IsZero() {
			want.Time = time.Unix(ceilUnix(e.Time), 0).UTC()
		}
		if again.Kind != want.Kind || again.ID != want.ID || !again.Time.Equal(want.Time) {
			t.Fatalf("round trip %q -> %+v -> %q -> %+v", line, e, e.String(), again)
		}
	})
}

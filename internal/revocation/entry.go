package revocation

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Kind says which claims an entry matches.
type Kind uint8

// Entry kinds.
const (
	// JTI matches a token whose jti or origin_jti is the entry's ID, until
	// the entry's time. Cognito gives every token minted from one refresh
	// token the same origin_jti, so one entry revokes a whole sign-in.
	JTI Kind = 1
	// Sub matches every token of the entry's sub whose iat is before the
	// entry's time (what GlobalSignOut means).
	Sub Kind = 2
)

// String returns the kind as the file and Redis formats spell it.
func (k Kind) String() string {
	switch k {
	case JTI:
		return "jti"
	case Sub:
		return "sub"
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// DefaultJTILifetime is how long a jti entry written without a time lives:
// Cognito's longest access and ID token lifetime, so every token that
// carried the jti has expired by then.
const DefaultJTILifetime = 24 * time.Hour

// SubGrace is how long a sub entry is kept past its time. A token issued
// before the time expires at most a day later (Cognito's longest lifetime,
// which the verifier enforces as exp - iat <= 24 h), plus the clock skew the
// verifier allows (at most 5 minutes); an hour covers the skew with room.
// Past that no token the entry can match is still accepted, so the entry
// is dropped. Redis trims by the same rule.
const SubGrace = DefaultJTILifetime + time.Hour

// maxUnix is 9999-12-31T23:59:59Z: later times do not format in RFC 3339.
const maxUnix = 253402300799

// MaxIDLen bounds the ID of an entry (a Cognito jti or sub is a 36-byte
// UUID).
const MaxIDLen = 256

// Entry is one line of the deny list.
type Entry struct {
	Kind Kind
	// ID is the jti, origin_jti or sub value: printable ASCII without
	// spaces or '#', at most MaxIDLen bytes.
	ID string
	// Time is, for a JTI entry, when it stops applying (the zero time: 24
	// hours after it is first seen or written), and for a Sub entry, the
	// issue time before which every token of the sub is revoked. Lists
	// keep times to the second, rounded up: a Sub entry at 10:00:00.5
	// revokes a token issued (iat) at 10:00:00.
	Time time.Time
}

// String formats the entry as a line of the file format.
func (e Entry) String() string {
	if e.Time.IsZero() {
		return e.Kind.String() + " " + e.ID
	}
	return e.Kind.String() + " " + e.ID + " " + formatTime(e.Time)
}

// formatTime formats t in RFC 3339, rounded up to the second as lists keep
// it.
func formatTime(t time.Time) string {
	return time.Unix(ceilUnix(t), 0).UTC().Format(time.RFC3339)
}

// Member is the entry's member in the Redis sorted set: "jti:<id>" or
// "sub:<sub>".
func (e Entry) Member() string { return e.Kind.String() + ":" + e.ID }

// Validate reports an entry that no list accepts.
func (e Entry) Validate() error {
	if e.Kind != JTI && e.Kind != Sub {
		return fmt.Errorf("unknown entry kind %d", e.Kind)
	}
	if err := checkID(e.ID); err != nil {
		return err
	}
	if e.Kind == Sub && e.Time.IsZero() {
		return errors.New("a sub entry needs a time: sub SUB TIME")
	}
	return nil
}

// checkID reports an ID that is empty, too long, or has a byte outside
// printable ASCII, a space or a '#' (which would end it in the file format).
func checkID(id string) error {
	if id == "" {
		return errors.New("empty id")
	}
	if len(id) > MaxIDLen {
		return fmt.Errorf("id longer than %d bytes", MaxIDLen)
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c <= ' ' || c > '~' || c == '#' {
			return fmt.Errorf("id has a forbidden character %q (printable ASCII without spaces or '#' only)", rune(c))
		}
	}
	return nil
}

// ParseLine parses one line of the file format: "jti ID [TIME]" or "sub ID
// TIME", fields separated by spaces or tabs, TIME in RFC 3339. A '#' at the
// start of the line or after a space starts a comment. ok is false for a
// blank or comment-only line. A JTI entry without a time has a zero Time.
func ParseLine(line string) (e Entry, ok bool, err error) {
	fields, err := splitLine(line)
	if err != nil || len(fields) == 0 {
		return Entry{}, false, err
	}
	switch fields[0] {
	case "jti":
		e.Kind = JTI
		if len(fields) < 2 || len(fields) > 3 {
			return Entry{}, false, fmt.Errorf("want \"jti ID [TIME]\", got %d fields", len(fields))
		}
	case "sub":
		e.Kind = Sub
		if len(fields) != 3 {
			return Entry{}, false, fmt.Errorf("want \"sub SUB TIME\", got %d fields", len(fields))
		}
	default:
		return Entry{}, false, fmt.Errorf("unknown entry kind %q (want jti or sub)", truncate(fields[0]))
	}
	e.ID = fields[1]
	if err := checkID(e.ID); err != nil {
		return Entry{}, false, err
	}
	if len(fields) == 3 {
		t, err := time.Parse(time.RFC3339, fields[2])
		if err != nil {
			return Entry{}, false, fmt.Errorf("time %q is not RFC 3339 (like 2026-11-26T10:00:00Z)", truncate(fields[2]))
		}
		if t.Unix() < 0 || t.Unix() >= maxUnix {
			return Entry{}, false, fmt.Errorf("time %q is out of range (1970 to 9999)", truncate(fields[2]))
		}
		e.Time = t.UTC()
	}
	return e, true, nil
}

// splitLine splits a line into fields, dropping a trailing comment.
func splitLine(line string) ([]string, error) {
	var fields []string
	for i := 0; i < len(line); {
		c := line[i]
		if c == ' ' || c == '\t' || c == '\r' {
			i++
			continue
		}
		if c == '#' {
			break
		}
		j := i
		for j < len(line) && line[j] != ' ' && line[j] != '\t' && line[j] != '\r' {
			if line[j] == '#' {
				return nil, errors.New("'#' inside a field (a comment starts at the line start or after a space)")
			}
			j++
		}
		if len(fields) == 3 {
			return nil, errors.New("more than 3 fields")
		}
		fields = append(fields, line[i:j])
		i = j
	}
	return fields, nil
}

// ParseMember parses a Redis member ("jti:<id>" or "sub:<sub>") and its
// score (the entry's time in Unix seconds).
func ParseMember(member string, score float64) (Entry, error) {
	kind, id, found := strings.Cut(member, ":")
	if !found {
		return Entry{}, fmt.Errorf("member %q has no kind prefix (jti: or sub:)", truncate(member))
	}
	var e Entry
	switch kind {
	case "jti":
		e.Kind = JTI
	case "sub":
		e.Kind = Sub
	default:
		return Entry{}, fmt.Errorf("member %q: unknown kind %q (want jti or sub)", truncate(member), truncate(kind))
	}
	if err := checkID(id); err != nil {
		return Entry{}, fmt.Errorf("member %q: %w", truncate(member), err)
	}
	sec, ok := scoreSeconds(score)
	if !ok {
		return Entry{}, fmt.Errorf("member %q: score %v is not a Unix time", truncate(member), score)
	}
	e.ID = id
	e.Time = time.Unix(sec, 0).UTC()
	return e, nil
}

// scoreSeconds rounds a Redis score up to whole Unix seconds; ok is false
// for a score that is not a positive time before year 10000.
func scoreSeconds(score float64) (int64, bool) {
	if math.IsNaN(score) || score <= 0 || score > maxUnix {
		return 0, false
	}
	return int64(math.Ceil(score)), true
}

// ceilUnix is t in Unix seconds, rounded up.
func ceilUnix(t time.Time) int64 {
	s := t.Unix()
	if t.Nanosecond() > 0 {
		s++
	}
	return s
}

// truncate shortens text quoted in an error message.
func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

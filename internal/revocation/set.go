package revocation

import (
	"time"
)

// Sources: the source label of the metrics and Match.Source.
const (
	SourceFile  = "file"
	SourceRedis = "redis"
)

// Claims a Match names.
const (
	ClaimJTI       = "jti"
	ClaimOriginJTI = "origin_jti"
	ClaimSub       = "sub"
)

// Match is the entry that revoked a token.
type Match struct {
	// Entry is the entry as the list holds it; its ID is the token's
	// value of Claim.
	Entry
	// Claim is the token claim that matched: "jti", "origin_jti" or "sub".
	Claim string
	// Source is where the entry came from: "file" or "redis".
	Source string
}

// String names the entry and where it matched, for explain and logs.
func (m Match) String() string {
	return m.Entry.String() + " (" + m.Source + ", token " + m.Claim + ")"
}

// set holds the entries of one source.
type set struct {
	jti *table // ID -> end of the entry, Unix seconds
	sub *table // sub -> tokens issued before this are revoked, Unix seconds
}

func newSet() *set { return &set{jti: newTable(), sub: newTable()} }

func (s *set) len() int { return s.jti.len() + s.sub.len() }

// claimKeys are a token's claims, each parsed once per lookup; an empty
// string is a claim the token lacks.
type claimKeys struct {
	jti, origin, sub          key
	jtiStr, originStr, subStr string
	iat, now                  int64
}

func (ck *claimKeys) init(jti, originJTI, sub string, iat, now time.Time) {
	if originJTI == jti {
		originJTI = ""
	}
	ck.jtiStr, ck.originStr, ck.subStr = jti, originJTI, sub
	ck.iat, ck.now = iat.Unix(), now.Unix()
	if jti != "" {
		ck.jti.parse(jti)
	}
	if originJTI != "" {
		ck.origin.parse(originJTI)
	}
	if sub != "" {
		ck.sub.parse(sub)
	}
}

// lookup finds the entry that revokes the token, if any. A jti entry
// applies while now is before its time; a sub entry to tokens issued
// before its time.
func (s *set) lookup(ck *claimKeys) (Match, bool) {
	if s.jti.len() > 0 {
		if ck.jtiStr != "" {
			if v, ok := s.jti.get(&ck.jti); ok && ck.now < v {
				return match(JTI, ck.jtiStr, v, ClaimJTI), true
			}
		}
		if ck.originStr != "" {
			if v, ok := s.jti.get(&ck.origin); ok && ck.now < v {
				return match(JTI, ck.originStr, v, ClaimOriginJTI), true
			}
		}
	}
	if ck.subStr != "" && s.sub.len() > 0 {
		if v, ok := s.sub.get(&ck.sub); ok && ck.iat < v {
			return match(Sub, ck.subStr, v, ClaimSub), true
		}
	}
	return Match{}, false
}

func match(k Kind, id string, v int64, claim string) Match {
	return Match{Entry: Entry{Kind: k, ID: id, Time: time.Unix(v, 0).UTC()}, Claim: claim}
}

// kvs turns entries into table input, one slice per table. Entries must
// have a time.
func kvs(entries []Entry) (jti, sub []kv) {
	for _, e := range entries {
		x := kv{k: makeKey(e.ID), v: ceilUnix(e.Time)}
		if e.Kind == Sub {
			sub = append(sub, x)
		} else {
			jti = append(jti, x)
		}
	}
	return jti, sub
}

// put adds entries (each with a time) and returns how many were new or
// got a later time.
func (s *set) put(entries []Entry) int {
	jti, sub := kvs(entries)
	return s.jti.put(jti) + s.sub.put(sub)
}

// has reports whether the set holds e's key with e's time or a later one.
func (s *set) has(e Entry) bool {
	t := s.jti
	if e.Kind == Sub {
		t = s.sub
	}
	k := makeKey(e.ID)
	v, ok := t.get(&k)
	return ok && v >= ceilUnix(e.Time)
}

// sweep drops the entries that can no longer match a live token at now.
func (s *set) sweep(now time.Time) int {
	n := now.Unix()
	return s.jti.sweep(n) + s.sub.sweep(n-int64(SubGrace/time.Second))
}

// live reports whether an entry still matters at now: a jti entry until
// its time, a sub entry until SubGrace past it.
func live(e Entry, now time.Time) bool {
	t := ceilUnix(e.Time)
	if e.Kind == Sub {
		return t > now.Unix()-int64(SubGrace/time.Second)
	}
	return t > now.Unix()
}

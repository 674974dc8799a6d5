package policy

import (
	"net/url"
	"path/filepath"
	"strings"
	"time"
)

// DefaultRevocationKey is the Redis key (a sorted set, and the pub/sub
// channel of the same name) of the revocation list when the policy names
// none.
const DefaultRevocationKey = "extauthz:revoked"

// maxStaleAfter bounds staleAfter: no token lives longer than a day, so a
// list may be at most that old before "stale" means anything else than
// "off".
const maxStaleAfter = 24 * time.Hour

// Revocation is the policy's revocation block: where the deny list of
// revoked tokens lives. Every authorizer checks it. The content of the list
// (the file's entries, Redis) is not the policy's: the service reads it,
// and `extauthz validate` checks the file.
type Revocation struct {
	// File is the list file, absolute (relative paths are resolved
	// against the policy file's directory); "" for none.
	File string
	// RedisURL is the redis:// or rediss:// URL of a list shared by a
	// fleet; "" for none. It never holds a password: that comes from the
	// environment.
	RedisURL string
	// RedisKey is the sorted set (and pub/sub channel) of the list.
	RedisKey string
	// RedisCAFile, when set, is the CA bundle (absolute) that verifies a
	// rediss:// server instead of the system roots.
	RedisCAFile string
	// StaleAfter > 0: once the Redis list has been unreachable that long,
	// checks answer 503 revocation_unavailable (fail closed); 0 keeps the
	// last known list however old.
	StaleAfter time.Duration
}

// revocation reads the revocation block; nil when it has problems.
func (v *validator) revocation(d *revocationDoc) *Revocation {
	if d.bad {
		return nil
	}
	out := &Revocation{}
	ok := !d.keysBad
	if !d.File.Set() && !d.Redis.Set() {
		v.problemf(d.Node, d.Path(), "name where the list lives: file, redis, or both")
		ok = false
	}
	if d.File.Set() {
		if f, fok := v.str(d.File); !fok || f == "" {
			if fok {
				v.problemf(d.File.Node, d.File.Path(), "must not be empty")
			}
			ok = false
		} else {
			out.File = v.path(f)
		}
	}
	if d.Redis.Set() {
		ok = v.redis(&d.Redis, out) && ok
	}
	if d.StaleAfter.Set() {
		s, sok := v.duration(d.StaleAfter, maxStaleAfter)
		out.StaleAfter = s
		ok = sok && ok
		if sok && s > 0 && !d.Redis.Set() {
			v.problemf(d.StaleAfter.Node, d.StaleAfter.Path(), "staleAfter applies to a redis list, and none is set (a file is re-read from disk)")
			ok = false
		}
	}
	if !ok {
		return nil
	}
	return out
}

// redis reads the redis part of the revocation block into out.
func (v *validator) redis(d *redisDoc, out *Revocation) bool {
	if d.bad {
		return false
	}
	ok := !d.keysBad
	if !d.URL.Set() {
		v.missing(d.docValue, d.URL, "set the redis:// or rediss:// URL of the list")
		ok = false
	} else if s, sok := v.str(d.URL); sok {
		if problem := redisURLProblem(s); problem != "" {
			v.problemf(d.URL.Node, d.URL.Path(), "%s", problem)
			ok = false
		}
		out.RedisURL = s
	} else {
		ok = false
	}
	out.RedisKey = DefaultRevocationKey
	if d.Key.Set() {
		k, kok := v.word(d.Key)
		out.RedisKey = k
		ok = kok && ok
	}
	if d.CAFile.Set() {
		if f, fok := v.str(d.CAFile); !fok || f == "" {
			if fok {
				v.problemf(d.CAFile.Node, d.CAFile.Path(), "must not be empty")
			}
			ok = false
		} else {
			out.RedisCAFile = v.path(f)
		}
	}
	return ok
}

// redisURLProblem says what is wrong with a revocation redis URL, "" when
// nothing is. The problem text never repeats a password.
func redisURLProblem(s string) string {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return "not a URL: want redis://host:port/db or rediss://host:port/db"
	case u.Scheme != "redis" && u.Scheme != "rediss":
		return "scheme " + u.Scheme + ": want redis:// or rediss://"
	case u.Host == "":
		return "no host: want redis://host:port/db or rediss://host:port/db"
	case u.User != nil && hasPassword(u.User):
		return "the URL carries a password: a policy file is no place for one; set EXTAUTHZ_REVOCATION_REDIS_PASSWORD (or _FILE) in the service's environment"
	case u.RawQuery != "" || u.ForceQuery:
		return "the URL has query parameters: TLS and timeouts are the service's to choose (caFile sets the CA)"
	case u.Fragment != "":
		return "the URL has a fragment"
	}
	if db := strings.Trim(u.Path, "/"); db != "" && strings.Trim(db, "0123456789") != "" {
		return "the path must be a database number, e.g. /0"
	}
	return ""
}

func hasPassword(u *url.Userinfo) bool {
	_, set := u.Password()
	return set
}

// path resolves a file named in the policy against the policy file's
// directory.
func (v *validator) path(f string) string {
	if !filepath.IsAbs(f) {
		f = filepath.Join(v.dir, f)
	}
	return filepath.Clean(f)
}

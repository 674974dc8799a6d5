package revocation

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap/zaptest/observer"

	"github.com/cognito-extauthz/cognito-extauthz/internal/revocation/redistest"
	"github.com/cognito-extauthz/cognito-extauthz/internal/wait"
)

// enforceWithin is the promise: a write reaches every replica within 1 s.
const enforceWithin = time.Second

// waitDeadline bounds waits that have no latency promise behind them.
const waitDeadline = 20 * time.Second

type replica struct {
	*List
	reg  *prometheus.Registry
	logs *observer.ObservedLogs
}

// newReplica starts a List on srv with short intervals set explicitly.
func newReplica(t *testing.T, srv *redistest.Server, c *clock, tune func(*Config)) *replica {
	t.Helper()
	logger, logs := observed()
	reg := prometheus.NewRegistry()
	cfg := Config{
		Redis: RedisConfig{
			URL:            srv.URL(),
			Key:            "test:revoked",
			ResyncInterval: time.Hour, // only the tests that want it resync periodically
			HealthInterval: 500 * time.Millisecond,
			Getenv:         func(string) string { return "" },
			minBackoff:     20 * time.Millisecond,
			maxBackoff:     200 * time.Millisecond,
			resyncGap:      50 * time.Millisecond,
		},
		Logger:     logger,
		Registerer: reg,
		Now:        c.Now,
		sweepEvery: time.Hour,
	}
	if tune != nil {
		tune(&cfg)
	}
	l, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	if err := l.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return &replica{List: l, reg: reg, logs: logs}
}

func (r *replica) wait(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitDeadline)
	defer cancel()
	if err := r.Wait(ctx); err != nil {
		t.Fatalf("replica not ready: %v; logs: %v", err, r.logs.All())
	}
}

func (r *replica) revoked(jti string, now time.Time) bool {
	_, ok := r.Revoked(jti, "", "", now, now)
	return ok
}

func (r *replica) up(t *testing.T) float64 {
	return metric(t, r.reg, "extauthz_revocation_source_up", "source", "redis")
}

// plainWrite writes an entry the way a sign-out handler does, with plain
// commands (the ones the package documentation gives).
func plainWrite(t *testing.T, c *redis.Client, key, member string, score int64, now time.Time) {
	t.Helper()
	ctx := context.Background()
	_, err := c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Do(ctx, "ZADD", key, "GT", score, member)
		p.Do(ctx, "ZREMRANGEBYSCORE", key, "-inf", now.Unix()-90000)
		p.Do(ctx, "PUBLISH", key, member)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// enforced waits until every replica revokes jti, failing after the 1 s
// promise; it returns how long that took.
func enforced(t *testing.T, jti string, now func() time.Time, start time.Time, replicas ...*replica) time.Duration {
	t.Helper()
	for _, r := range replicas {
		for !r.revoked(jti, now()) {
			if time.Since(start) > enforceWithin {
				t.Fatalf("%s not enforced within %v", jti, enforceWithin)
			}
			time.Sleep(time.Millisecond)
		}
	}
	return time.Since(start)
}

// TestRedisSharedList: a write through one replica, or by any program with
// plain commands, is enforced by every replica within a second.
func TestRedisSharedList(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	c := newClock(time.Now().UTC())
	a, b := newReplica(t, srv, c, nil), newReplica(t, srv, c, nil)
	a.wait(t)
	b.wait(t)
	if a.Stale(c.Now()) || a.up(t) != 1 {
		t.Fatal("synced replica stale or down")
	}

	start := time.Now()
	e, err := a.Write(context.Background(), Entry{Kind: JTI, ID: uuidA})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Write through one replica enforced by both in %v", enforced(t, uuidA, c.Now, start, a, b))
	if !e.Time.Equal(time.Unix(ceilUnix(c.Now().Add(24*time.Hour)), 0)) {
		t.Errorf("written time %v, want now + 24 h", e.Time)
	}

	cl := srv.Client()
	defer cl.Close()
	start = time.Now()
	plainWrite(t, cl, "test:revoked", "jti:"+uuidB, c.Now().Add(time.Hour).Unix(), c.Now())
	t.Logf("plain MULTI/ZADD/PUBLISH enforced by both in %v", enforced(t, uuidB, c.Now, start, a, b))

	// A sub entry, and one notification naming two members.
	subTime := c.Now().Add(time.Second).Unix()
	ctx := context.Background()
	if err := cl.ZAdd(ctx, "test:revoked", redis.Z{Score: float64(subTime), Member: "sub:" + uuidC},
		redis.Z{Score: float64(c.Now().Add(time.Hour).Unix()), Member: "jti:two"}).Err(); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	if err := cl.Publish(ctx, "test:revoked", "sub:"+uuidC+" jti:two").Err(); err != nil {
		t.Fatal(err)
	}
	enforced(t, "two", c.Now, start, a, b)
	for _, r := range []*replica{a, b} {
		m, ok := r.Revoked(uuidN(1), "", uuidC, c.Now(), c.Now())
		if !ok || m.Claim != ClaimSub || m.Source != SourceRedis {
			t.Errorf("sub entry: %v %v", m, ok)
		}
		if _, ok := r.Revoked(uuidN(1), "", uuidC, time.Unix(subTime, 0), c.Now()); ok {
			t.Error("sub entry revokes a token issued at its time")
		}
		if got := metric(t, r.reg, "extauthz_revocation_entries", "source", "redis"); got != 4 {
			t.Errorf("entries gauge %v, want 4", got)
		}
	}
	if got := metric(t, b.reg, "extauthz_revocation_updates_total", "source", "redis", "result", "entry"); got != 4 {
		t.Errorf("entries learned from notifications %v, want 4", got)
	}
}

// TestBothSources: with a file and Redis, entries from both apply (the
// match names its source), and Write goes to Redis, leaving the file alone.
func TestBothSources(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	c := newClock(time.Now().UTC())
	path := t.TempDir() + "/revoked.txt"
	until := c.Now().Add(time.Hour).Format(time.RFC3339)
	writeList(t, path, "jti "+uuidA+" "+until)
	r := newReplica(t, srv, c, func(cfg *Config) { cfg.File = path })
	r.wait(t)
	if _, err := r.Write(context.Background(), Entry{Kind: Sub, ID: uuidB}); err != nil {
		t.Fatal(err)
	}
	if m, ok := r.Revoked(uuidA, "", uuidB, c.Now().Add(-time.Hour), c.Now()); !ok || m.Source != SourceFile {
		t.Errorf("file entry: %v %v", m, ok)
	}
	if m, ok := r.Revoked(uuidC, "", uuidB, c.Now().Add(-time.Hour), c.Now()); !ok || m.Source != SourceRedis {
		t.Errorf("redis entry: %v %v", m, ok)
	}
	if got := string(mustRead(t, path)); got != "jti "+uuidA+" "+until+"\n" {
		t.Errorf("Write touched the file: %q", got)
	}
	if f, n := r.Len(); f != 1 || n != 1 {
		t.Errorf("Len = %d, %d; want 1, 1", f, n)
	}
	for _, src := range []string{SourceFile, SourceRedis} {
		if got := metric(t, r.reg, "extauthz_revocation_source_up", "source", src); got != 1 {
			t.Errorf("source_up{%s} = %v", src, got)
		}
	}
}

// TestRedisInitialSync: what Redis holds before a replica starts is read at
// its first sync: live entries in, expired ones and non-entries out (and
// counted), dead members trimmed from Redis.
func TestRedisInitialSync(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	cl := srv.Client()
	defer cl.Close()
	now := time.Now().UTC()
	ctx := context.Background()
	if err := cl.ZAdd(ctx, "test:revoked",
		redis.Z{Score: float64(now.Add(time.Hour).Unix()), Member: "jti:" + uuidA},
		redis.Z{Score: float64(now.Add(-time.Hour).Unix()), Member: "sub:" + uuidB},       // live: tokens issued before
		redis.Z{Score: float64(now.Add(-time.Minute).Unix()), Member: "jti:expired"},      // past its time, not yet trimmed
		redis.Z{Score: float64(now.Add(-26 * time.Hour).Unix()), Member: "sub:long-gone"}, // trimmed
		redis.Z{Score: float64(now.Add(time.Hour).Unix()), Member: "not-an-entry"},
	).Err(); err != nil {
		t.Fatal(err)
	}
	c := newClock(now)
	r := newReplica(t, srv, c, nil)
	r.wait(t)
	if !r.revoked(uuidA, now) {
		t.Error("jti entry from Redis not loaded")
	}
	if _, ok := r.Revoked("", "", uuidB, now.Add(-2*time.Hour), now); !ok {
		t.Error("sub entry from Redis not loaded")
	}
	if r.revoked("expired", now) {
		t.Error("expired entry loaded")
	}
	if _, n := r.Len(); n != 2 {
		t.Errorf("%d entries held, want 2", n)
	}
	if got := metric(t, r.reg, "extauthz_revocation_updates_total", "source", "redis", "result", "invalid"); got != 1 {
		t.Errorf("invalid count %v, want 1", got)
	}
	if got := metric(t, r.reg, "extauthz_revocation_updates_total", "source", "redis", "result", "success"); got != 1 {
		t.Errorf("sync count %v, want 1", got)
	}
	if _, err := cl.ZScore(ctx, "test:revoked", "sub:long-gone").Result(); err != redis.Nil {
		t.Errorf("dead member not trimmed: %v", err)
	}
	if _, err := cl.ZScore(ctx, "test:revoked", "jti:expired").Result(); err != nil {
		t.Errorf("member inside the grace trimmed: %v", err)
	}
}

// TestRedisOutage: Redis killed, then restarted empty and refilled. The
// last known list keeps serving throughout, source_up goes to 0, the
// outage is logged once and its end once, staleAfter turns the list stale,
// no entry known before is forgotten, and the new entries apply.
func TestRedisOutage(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	c := newClock(time.Now().UTC())
	tune := func(cfg *Config) { cfg.StaleAfter = time.Minute }
	a, b := newReplica(t, srv, c, tune), newReplica(t, srv, c, tune)
	a.wait(t)
	b.wait(t)
	x, err := a.Write(context.Background(), Entry{Kind: JTI, ID: uuidA, Time: c.Now().Add(2 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	enforced(t, uuidA, c.Now, time.Now(), a, b)

	srv.Kill()
	for _, r := range []*replica{a, b} {
		wait.For(t, waitDeadline, "source_up 0", func() bool { return r.up(t) == 0 })
		// Several reconnect attempts fail; the outage is logged once.
		wait.For(t, waitDeadline, "three failed attempts", func() bool {
			return metric(t, r.reg, "extauthz_revocation_updates_total", "source", "redis", "result", "failure") >= 3
		})
		if n := logCount(r.logs, msgRedisDown); n != 1 {
			t.Errorf("outage logged %d times, want once", n)
		}
		if !r.revoked(uuidA, c.Now()) {
			t.Error("known entry not served while Redis is down")
		}
		if r.Stale(c.Now()) {
			t.Error("stale at once, staleAfter is a minute")
		}
		if !r.Stale(c.Now().Add(61 * time.Second)) {
			t.Error("not stale a minute after the last sign of Redis")
		}
		if !r.Ready() {
			t.Error("a replica that synced once became unready")
		}
	}

	srv.Restart() // empty: no persistence
	for _, r := range []*replica{a, b} {
		wait.For(t, waitDeadline, "source_up 1 after restart", func() bool { return r.up(t) == 1 })
		if n := logCount(r.logs, msgRedisUp); n != 1 {
			t.Errorf("recovery logged %d times, want once", n)
		}
		if r.Stale(c.Now().Add(time.Hour)) {
			t.Error("stale while connected")
		}
		if !r.revoked(uuidA, c.Now()) {
			t.Fatal("entry forgotten after a resync against an empty Redis")
		}
	}
	// Refilled by a writer: the new entry applies, the old one still does.
	cl := srv.Client()
	defer cl.Close()
	start := time.Now()
	plainWrite(t, cl, "test:revoked", "jti:"+uuidB, c.Now().Add(3*time.Hour).Unix(), c.Now())
	enforced(t, uuidB, c.Now, start, a, b)
	for _, r := range []*replica{a, b} {
		if !r.revoked(uuidA, c.Now()) {
			t.Error("entry forgotten after the refill")
		}
	}
	// A third replica started now knows only what Redis holds.
	third := newReplica(t, srv, c, tune)
	third.wait(t)
	if !third.revoked(uuidB, c.Now()) || third.revoked(uuidA, c.Now()) {
		t.Error("a new replica does not hold exactly what Redis holds")
	}
	// The known entry leaves at its own time.
	c.Set(x.Time)
	a.sweep()
	if a.revoked(uuidA, c.Now()) {
		t.Error("entry applies past its time")
	}
	if _, n := a.Len(); n != 1 {
		t.Errorf("%d entries after the sweep, want 1", n)
	}
}

// TestRedisSilentConnection: a Redis that stops answering without closing
// the connection (a partition) is detected by the health ping, served from
// the last list meanwhile, and resynced when it answers again.
func TestRedisSilentConnection(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	c := newClock(time.Now().UTC())
	r := newReplica(t, srv, c, func(cfg *Config) { cfg.Redis.HealthInterval = 100 * time.Millisecond })
	r.wait(t)
	if _, err := r.Write(context.Background(), Entry{Kind: JTI, ID: uuidA}); err != nil {
		t.Fatal(err)
	}
	srv.Freeze()
	defer srv.Thaw()
	t0 := time.Now()
	wait.For(t, waitDeadline, "silent connection given up", func() bool { return r.up(t) == 0 })
	t.Logf("down after %v", time.Since(t0))
	if !r.revoked(uuidA, c.Now()) {
		t.Error("known entry not served during the partition")
	}
	srv.Thaw()
	t1 := time.Now()
	wait.For(t, waitDeadline, "resynced after the partition", func() bool { return r.up(t) == 1 })
	t.Logf("up after %v", time.Since(t1))
	if n := logCount(r.logs, msgRedisDown); n != 1 {
		t.Errorf("partition logged %d times, want once", n)
	}
}

// TestRedisNotReadyUntilSync: with Redis unreachable at start the list is
// not ready and is stale (whatever staleAfter); it becomes ready at the
// first sync.
func TestRedisNotReadyUntilSync(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	srv.Kill()
	c := newClock(time.Now().UTC())
	r := newReplica(t, srv, c, nil)
	wait.For(t, waitDeadline, "a failed attempt", func() bool {
		return metric(t, r.reg, "extauthz_revocation_updates_total", "source", "redis", "result", "failure") >= 1
	})
	if r.Ready() || !r.Stale(c.Now()) {
		t.Fatal("ready or not stale before any sync")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := r.Wait(ctx); err == nil {
		t.Fatal("Wait returned before any sync")
	}
	srv.Restart()
	r.wait(t)
	if r.Stale(c.Now()) || r.up(t) != 1 {
		t.Fatal("stale or down after the first sync")
	}
}

// TestRedisResyncHealsMissedWrite: a member added without a notification
// (a writer that crashed before PUBLISH) applies at the next periodic
// resync; a notification that names no entry triggers one too.
func TestRedisResyncHealsMissedWrite(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	c := newClock(time.Now().UTC())
	r := newReplica(t, srv, c, func(cfg *Config) { cfg.Redis.ResyncInterval = 200 * time.Millisecond })
	r.wait(t)
	cl := srv.Client()
	defer cl.Close()
	ctx := context.Background()
	if err := cl.ZAdd(ctx, "test:revoked", redis.Z{Score: float64(c.Now().Add(time.Hour).Unix()), Member: "jti:" + uuidA}).Err(); err != nil {
		t.Fatal(err)
	}
	wait.For(t, waitDeadline, "missed write healed by a resync", func() bool { return r.revoked(uuidA, c.Now()) })

	slow := newReplica(t, srv, c, nil) // resyncs hourly
	slow.wait(t)
	if err := cl.ZAdd(ctx, "test:revoked", redis.Z{Score: float64(c.Now().Add(time.Hour).Unix()), Member: "jti:" + uuidB}).Err(); err != nil {
		t.Fatal(err)
	}
	if err := cl.Publish(ctx, "test:revoked", "something changed").Err(); err != nil {
		t.Fatal(err)
	}
	wait.For(t, waitDeadline, "resync after a notification naming no entry", func() bool { return slow.revoked(uuidB, c.Now()) })
	if got := metric(t, slow.reg, "extauthz_revocation_updates_total", "source", "redis", "result", "invalid"); got != 2 {
		t.Errorf("invalid count %v, want 2 (two words)", got)
	}
}

// TestRedisPassword: requirepass, the password from the environment or a
// mounted file; a wrong or missing one keeps the list unready, and the
// password never reaches a log line.
func TestRedisPassword(t *testing.T) {
	const pw = "correct-horse-battery"
	srv := redistest.Start(t, redistest.Options{Password: pw})
	pwFile := t.TempDir() + "/password"
	writeList(t, pwFile, pw)
	wrongFile := t.TempDir() + "/wrong"
	writeList(t, wrongFile, "wrong-"+pw)
	tests := []struct {
		name string
		env  map[string]string
		ok   bool
	}{
		{"env", map[string]string{PasswordEnv: pw}, true},
		{"file", map[string]string{PasswordFileEnv: pwFile}, true},
		{"wrong env", map[string]string{PasswordEnv: "wrong-" + pw}, false},
		{"wrong file", map[string]string{PasswordFileEnv: wrongFile}, false},
		{"none", nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newClock(time.Now().UTC())
			r := newReplica(t, srv, c, func(cfg *Config) {
				cfg.Redis.Getenv = func(k string) string { return tc.env[k] }
			})
			if tc.ok {
				r.wait(t)
				if _, err := r.Write(context.Background(), Entry{Kind: JTI, ID: uuidA}); err != nil {
					t.Fatal(err)
				}
				return
			}
			wait.For(t, waitDeadline, "a failed attempt", func() bool {
				return metric(t, r.reg, "extauthz_revocation_updates_total", "source", "redis", "result", "failure") >= 2
			})
			if r.Ready() {
				t.Fatal("ready without the right password")
			}
			for _, e := range r.logs.All() {
				if line := fmt.Sprint(e.Message, e.ContextMap()); strings.Contains(line, pw) {
					t.Fatalf("password in a log line: %s", line)
				}
			}
			if n := logCount(r.logs, msgRedisDown); n != 1 {
				t.Errorf("failure logged %d times, want once", n)
			}
		})
	}
}

// TestRedisACLUsers: the least-privilege users the documentation gives
// work: a replica that may only read and subscribe (it then leaves
// trimming to writers, and says so once), and a sign-out handler that may
// only write and publish.
func TestRedisACLUsers(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	admin := srv.Client()
	defer admin.Close()
	ctx := context.Background()
	for _, cmd := range [][]any{
		{"ACL", "SETUSER", "extauthz", "on", ">reader-pw", "resetkeys", "~test:revoked", "resetchannels", "&test:revoked",
			"-@all", "+hello", "+auth", "+ping", "+zscan", "+zmscore", "+subscribe"},
		{"ACL", "SETUSER", "signout", "on", ">writer-pw", "resetkeys", "~test:revoked", "resetchannels", "&test:revoked",
			"-@all", "+hello", "+auth", "+multi", "+exec", "+zadd", "+zremrangebyscore", "+publish"},
	} {
		if err := admin.Do(ctx, cmd...).Err(); err != nil {
			t.Fatal(err)
		}
	}
	c := newClock(time.Now().UTC())
	r := newReplica(t, srv, c, func(cfg *Config) {
		cfg.Redis.URL = "redis://extauthz@" + srv.Addr() + "/0"
		cfg.Redis.Getenv = func(k string) string {
			if k == PasswordEnv {
				return "reader-pw"
			}
			return ""
		}
	})
	r.wait(t)
	if n := logCount(r.logs, "revocation redis user may not trim the set; leaving that to writers"); n != 1 {
		t.Errorf("trim refusal logged %d times, want once", n)
	}
	writer := redis.NewClient(&redis.Options{Addr: srv.Addr(), Username: "signout", Password: "writer-pw"})
	defer writer.Close()
	start := time.Now()
	plainWrite(t, writer, "test:revoked", "jti:"+uuidA, c.Now().Add(time.Hour).Unix(), c.Now())
	enforced(t, uuidA, c.Now, start, r)
	if _, err := r.Write(ctx, Entry{Kind: JTI, ID: uuidB}); err == nil || !strings.Contains(err.Error(), "NOPERM") {
		t.Errorf("a read-only replica's Write: %v", err)
	}
}

// TestRedisTLS: rediss:// verified against a CA file; without it the
// system roots reject the test CA and the list stays unready.
func TestRedisTLS(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{TLS: true})
	c := newClock(time.Now().UTC())
	good := newReplica(t, srv, c, func(cfg *Config) { cfg.Redis.CAFile = srv.CAFile })
	good.wait(t)
	bad := newReplica(t, srv, c, nil)
	if _, err := good.Write(context.Background(), Entry{Kind: JTI, ID: uuidA}); err != nil {
		t.Fatal(err)
	}
	wait.For(t, waitDeadline, "a failed TLS attempt", func() bool {
		return metric(t, bad.reg, "extauthz_revocation_updates_total", "source", "redis", "result", "failure") >= 1
	})
	if bad.Ready() {
		t.Fatal("ready with a server certificate the system roots do not trust")
	}
	down := bad.logs.FilterMessage(msgRedisDown).All()
	if len(down) != 1 || !strings.Contains(fmt.Sprint(down[0].ContextMap()), "certificate") {
		t.Errorf("TLS failure not logged as a certificate problem: %v", down)
	}
	if !strings.HasPrefix(srv.URL(), "rediss://") {
		t.Fatalf("server URL %s", srv.URL())
	}
}

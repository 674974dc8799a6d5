package revocation

import (
	"context"
	"maps"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cognito-extauthz/cognito-extauthz/internal/revocation/redistest"
)

// filled returns a List whose Redis-sourced set holds n live entries:
// n*9/10 jti entries and n/10 sub entries, UUIDs as Cognito issues them.
// No Redis is involved: lookups read memory only.
func filled(tb testing.TB, n int) *List {
	tb.Helper()
	l, err := New(Config{Redis: RedisConfig{URL: "redis://127.0.0.1:1/0", Getenv: func(string) string { return "" }}})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = l.Close() })
	fill(l.redis.set, n, t0)
	return l
}

func fill(s *set, n int, now time.Time) {
	const chunk = 100_000
	until := now.Add(12 * time.Hour)
	for i := 0; i < n; i += chunk {
		batch := make([]Entry, 0, chunk)
		for j := i; j < min(n, i+chunk); j++ {
			k := JTI
			if j%10 == 9 {
				k = Sub
			}
			batch = append(batch, Entry{Kind: k, ID: uuidN(uint64(j)), Time: until})
		}
		s.put(batch)
	}
}

// BenchmarkRevoked is the cost a check pays: a token with jti, origin_jti
// and sub, none listed (the common case), or listed.
func BenchmarkRevoked(b *testing.B) {
	iat, now := t0.Add(-time.Minute), t0
	jti, origin, sub := uuidN(1<<40), uuidN(1<<41), uuidN(1<<42)
	b.Run("nil-list", func(b *testing.B) {
		var l *List
		b.ReportAllocs()
		for b.Loop() {
			l.Revoked(jti, origin, sub, iat, now)
		}
	})
	b.Run("empty", func(b *testing.B) {
		path := filepath.Join(b.TempDir(), "revoked.txt")
		writeList(b, path, "# nothing revoked")
		l, err := New(Config{File: path, Now: func() time.Time { return t0 }})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			l.Revoked(jti, origin, sub, iat, now)
		}
	})
	for _, n := range []int{1000, 1_000_000} {
		l := filled(b, n)
		name := strconv.Itoa(n)
		b.Run(name+"/miss", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, ok := l.Revoked(jti, origin, sub, iat, now); ok {
					b.Fatal("revoked")
				}
			}
		})
		b.Run(name+"/miss-parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					l.Revoked(jti, origin, sub, iat, now)
				}
			})
		})
		b.Run(name+"/hit-origin_jti", func(b *testing.B) {
			listed := uuidN(uint64(n / 2))
			b.ReportAllocs()
			for b.Loop() {
				if _, ok := l.Revoked(jti, listed, sub, iat, now); !ok {
					b.Fatal("not revoked")
				}
			}
		})
		b.Run(name+"/hit-sub", func(b *testing.B) {
			listed := uuidN(uint64(n - 1)) // a sub entry
			b.ReportAllocs()
			for b.Loop() {
				if _, ok := l.Revoked(jti, origin, listed, iat, now); !ok {
					b.Fatal("not revoked")
				}
			}
		})
	}
}

// BenchmarkWrite is the cost of applying one notification to a list of a
// million entries: the shard it lands in is copied (about 128 entries).
// copy-whole-map is the naive alternative, a copy-on-write of one map, for
// comparison.
func BenchmarkWrite(b *testing.B) {
	l := filled(b, 1_000_000)
	until := t0.Add(time.Hour)
	b.Run("sharded", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			i++
			l.redis.set.put([]Entry{{Kind: JTI, ID: uuidN(uint64(1<<32 + i)), Time: until}})
		}
	})
	b.Run("copy-whole-map", func(b *testing.B) {
		m := map[[16]byte]int64{}
		for i := range 1_000_000 {
			u, _ := parseUUID(uuidN(uint64(i)))
			m[u] = 1
		}
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			i++
			c := maps.Clone(m)
			u, _ := parseUUID(uuidN(uint64(1<<32 + i)))
			c[u] = 1
			m = c
		}
	})
}

// heapPerEntry builds n entries and returns the heap they hold per entry.
func heapPerEntry(n int) float64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	s := newSet()
	fill(s, n, t0)
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(s)
	return float64(after.HeapAlloc-before.HeapAlloc) / float64(n)
}

// BenchmarkMemoryPerEntry reports the heap a million UUID entries hold,
// per entry (bytes/entry); ns/op is the time to build them.
func BenchmarkMemoryPerEntry(b *testing.B) {
	var per float64
	for b.Loop() {
		per = heapPerEntry(1_000_000)
	}
	b.ReportMetric(per, "bytes/entry")
}

// TestMemoryPerEntry holds the memory per UUID entry under 80 bytes (the
// 16-byte key and 8-byte time, map overhead and spare capacity).
func TestMemoryPerEntry(t *testing.T) {
	n := 1_000_000
	if testing.Short() || raceEnabled {
		n = 200_000
	}
	per := heapPerEntry(n)
	t.Logf("%d entries: %.1f bytes per entry", n, per)
	if per > 80 {
		t.Errorf("%.1f bytes per entry, want at most 80", per)
	}
}

// BenchmarkWriteToEnforce is the time from Write on one replica until
// another replica sharing a real Redis revokes the token: ns/op, and the
// median, 99th percentile and maximum in ms.
func BenchmarkWriteToEnforce(b *testing.B) {
	srv := redistest.Start(b, redistest.Options{})
	c := newClock(time.Now().UTC())
	mk := func() *List {
		l, err := New(Config{Redis: RedisConfig{URL: srv.URL(), Getenv: func(string) string { return "" }}, Now: c.Now})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = l.Close() })
		if err := l.Start(context.Background()); err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), waitDeadline)
		defer cancel()
		if err := l.Wait(ctx); err != nil {
			b.Fatal(err)
		}
		return l
	}
	writer, reader := mk(), mk()
	var lat []time.Duration
	i := 0
	for b.Loop() {
		i++
		id := "bench-" + strconv.Itoa(i)
		start := time.Now()
		if _, err := writer.Write(context.Background(), Entry{Kind: JTI, ID: id}); err != nil {
			b.Fatal(err)
		}
		for {
			if _, ok := reader.Revoked(id, "", "", c.Now(), c.Now()); ok {
				break
			}
			if time.Since(start) > enforceWithin {
				b.Fatalf("write %d not enforced within %v", i, enforceWithin)
			}
			runtime.Gosched()
		}
		lat = append(lat, time.Since(start))
	}
	slices.Sort(lat)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(ms(lat[len(lat)/2]), "p50-ms")
	b.ReportMetric(ms(lat[len(lat)*99/100]), "p99-ms")
	b.ReportMetric(ms(lat[len(lat)-1]), "max-ms")
}

// BenchmarkNotificationThroughput is how fast one replica takes in
// entries announced one message each (as a fleet of sign-out handlers
// sends them), against a real Redis: ns/op is per entry, entries/s the
// rate, until the last is enforced.
func BenchmarkNotificationThroughput(b *testing.B) {
	srv := redistest.Start(b, redistest.Options{})
	c := newClock(time.Now().UTC())
	l, err := New(Config{Redis: RedisConfig{URL: srv.URL(), Getenv: func(string) string { return "" }}, Now: c.Now})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	if err := l.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitDeadline)
	defer cancel()
	if err := l.Wait(ctx); err != nil {
		b.Fatal(err)
	}
	cl := srv.Client()
	defer cl.Close()
	score := float64(c.Now().Add(time.Hour).Unix())
	start := time.Now()
	n := 0
	for b.Loop() {
		n++
		member := "jti:" + uuidN(uint64(n))
		p := cl.Pipeline()
		p.ZAdd(context.Background(), DefaultKey, redis.Z{Score: score, Member: member})
		p.Publish(context.Background(), DefaultKey, member)
		if _, err := p.Exec(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
	last := uuidN(uint64(n))
	for {
		if _, ok := l.Revoked(last, "", "", c.Now(), c.Now()); ok {
			break
		}
		if time.Since(start) > time.Minute {
			b.Fatal("entries not all applied within a minute")
		}
		time.Sleep(time.Millisecond)
	}
	if _, got := l.Len(); got != n {
		b.Fatalf("%d entries held, want %d", got, n)
	}
	b.ReportMetric(float64(n)/time.Since(start).Seconds(), "entries/s")
}

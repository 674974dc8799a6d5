package tokencache

import (
	"crypto/sha256"
	"encoding/binary"
	"sync"
	"testing"
	"time"
)

func key(i int) Key {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(i))
	return sha256.Sum256(b[:])
}

var t0 = time.Unix(1_800_000_000, 0)

func TestGetPut(t *testing.T) {
	c := New[string](64)
	if _, ok := c.Get(key(1), t0); ok {
		t.Fatal("empty cache returned a value")
	}
	c.Put(key(1), "one", t0.Add(time.Minute), t0)
	if v, ok := c.Get(key(1), t0); !ok || v != "one" {
		t.Fatalf("Get = %q, %v; want one, true", v, ok)
	}
	if _, ok := c.Get(key(2), t0); ok {
		t.Fatal("unknown key returned a value")
	}
	c.Put(key(1), "uno", t0.Add(time.Minute), t0)
	if v, _ := c.Get(key(1), t0); v != "uno" {
		t.Fatalf("overwrite: got %q", v)
	}
}

func TestExpiry(t *testing.T) {
	tests := []struct {
		name    string
		expires time.Duration // relative to t0
		at      time.Duration // Get time relative to t0
		want    bool
	}{
		{"before expiry", time.Minute, 59 * time.Second, true},
		{"at expiry", time.Minute, time.Minute, false},
		{"after expiry", time.Minute, 2 * time.Minute, false},
		{"already expired on put", -time.Second, 0, false},
		{"expires exactly at put", 0, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := New[int](16)
			c.Put(key(1), 1, t0.Add(tt.expires), t0)
			if _, ok := c.Get(key(1), t0.Add(tt.at)); ok != tt.want {
				t.Fatalf("Get ok = %v, want %v", ok, tt.want)
			}
		})
	}
}

func TestExpiredEntryIsRemoved(t *testing.T) {
	c := New[int](16)
	c.Put(key(1), 1, t0.Add(time.Second), t0)
	if c.Len() != 1 {
		t.Fatalf("Len = %d, want 1", c.Len())
	}
	c.Get(key(1), t0.Add(time.Hour))
	if c.Len() != 0 {
		t.Fatalf("Len after expired Get = %d, want 0", c.Len())
	}
}

// A flood of unique entries must never grow the cache past its capacity.
func TestBoundedUnderFlood(t *testing.T) {
	const size = 1000
	c := New[int](size)
	for i := 0; i < 100*size; i++ {
		c.Put(key(i), i, t0.Add(time.Hour), t0)
	}
	if got := c.Len(); got > c.Capacity() || got < size/2 {
		t.Fatalf("Len = %d, capacity %d", got, c.Capacity())
	}
	if c.Capacity() < size || c.Capacity() >= size+shardCount {
		t.Fatalf("Capacity = %d for size %d", c.Capacity(), size)
	}
	// The most recent entries survive; the oldest are gone.
	if _, ok := c.Get(key(100*size-1), t0); !ok {
		t.Fatal("newest entry was evicted")
	}
	if _, ok := c.Get(key(0), t0); ok {
		t.Fatal("oldest entry survived a flood")
	}
}

func TestLRUOrder(t *testing.T) {
	c := New[int](shardCount) // one entry per shard
	var a, b Key
	// Find two keys in the same shard.
	a = key(0)
	for i := 1; ; i++ {
		if k := key(i); k[0]%shardCount == a[0]%shardCount {
			b = k
			break
		}
	}
	c.Put(a, 1, t0.Add(time.Hour), t0)
	c.Put(b, 2, t0.Add(time.Hour), t0)
	if _, ok := c.Get(a, t0); ok {
		t.Fatal("a should have been evicted by b in a one-entry shard")
	}
	if v, ok := c.Get(b, t0); !ok || v != 2 {
		t.Fatal("b missing")
	}
}

func TestRecentlyUsedSurvives(t *testing.T) {
	c := New[int](2 * shardCount) // two entries per shard
	var same []Key
	for i := 0; len(same) < 3; i++ {
		if k := key(i); k[0]%shardCount == 0 {
			same = append(same, k)
		}
	}
	c.Put(same[0], 0, t0.Add(time.Hour), t0)
	c.Put(same[1], 1, t0.Add(time.Hour), t0)
	c.Get(same[0], t0) // same[0] is now the most recent
	c.Put(same[2], 2, t0.Add(time.Hour), t0)
	if _, ok := c.Get(same[0], t0); !ok {
		t.Fatal("recently used entry was evicted")
	}
	if _, ok := c.Get(same[1], t0); ok {
		t.Fatal("least recently used entry survived")
	}
}

func TestNilCacheIsDisabled(t *testing.T) {
	c := New[int](0)
	if c != nil {
		t.Fatal("New(0) should return nil")
	}
	c.Put(key(1), 1, t0.Add(time.Hour), t0)
	if _, ok := c.Get(key(1), t0); ok {
		t.Fatal("nil cache returned a value")
	}
	if c.Len() != 0 || c.Capacity() != 0 {
		t.Fatal("nil cache has size")
	}
}

func TestConcurrent(t *testing.T) {
	c := New[int](256)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 2000; i++ {
				k := key(g*10000 + i%300)
				c.Put(k, i, t0.Add(time.Hour), t0)
				c.Get(k, t0)
			}
		}(g)
	}
	wg.Wait()
	if c.Len() > c.Capacity() {
		t.Fatalf("Len %d > capacity %d", c.Len(), c.Capacity())
	}
}

func BenchmarkGetHit(b *testing.B) {
	c := New[int](100_000)
	k := key(42)
	c.Put(k, 1, t0.Add(time.Hour), t0)
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := c.Get(k, t0); !ok {
			b.Fatal("miss")
		}
	}
}

func BenchmarkPutEvict(b *testing.B) {
	c := New[int](1024)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		c.Put(key(i), i, t0.Add(time.Hour), t0)
		i++
	}
}

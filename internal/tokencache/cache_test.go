package tokencache

import (
	"crypto/sha256"
	"encoding/binary"
	"runtime"
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
	c := New[string](64, 0)
	if _, ok := c.Get(key(1), t0); ok {
		t.Fatal("empty cache returned a value")
	}
	c.Put(key(1), "one", 0, t0.Add(time.Minute), t0)
	if v, ok := c.Get(key(1), t0); !ok || v != "one" {
		t.Fatalf("Get = %q, %v; want one, true", v, ok)
	}
	if _, ok := c.Get(key(2), t0); ok {
		t.Fatal("unknown key returned a value")
	}
	c.Put(key(1), "uno", 0, t0.Add(time.Minute), t0)
	if v, _ := c.Get(key(1), t0); v != "uno" {
		t.Fatalf("overwrite: got %q", v)
	}
}

// Keys that share a shard and a map slot (the same bytes 0 and 8-15) but
// differ elsewhere never read each other's values: the newer entry
// replaces the older, and a third key of the slot misses.
func TestSlotCollision(t *testing.T) {
	a, b, other := key(1), key(1), key(1)
	b[31] ^= 1
	other[20] ^= 1
	if slot(a) != slot(b) || a[0] != b[0] || a == b {
		t.Fatal("the keys must share shard and slot and differ")
	}
	c := New[string](64, 0)
	c.Put(a, "a", 10, t0.Add(time.Minute), t0)
	if v, ok := c.Get(b, t0); ok {
		t.Fatalf("key b read a's value %q", v)
	}
	c.Put(b, "b", 20, t0.Add(time.Minute), t0)
	if v, ok := c.Get(b, t0); !ok || v != "b" {
		t.Fatalf("Get(b) = %q, %v", v, ok)
	}
	if v, ok := c.Get(a, t0); ok {
		t.Fatalf("key a read %q after b replaced it", v)
	}
	if v, ok := c.Get(other, t0); ok {
		t.Fatalf("a key never stored read %q", v)
	}
	if c.Len() != 1 || c.Bytes() != 20+EntryOverhead {
		t.Fatalf("Len %d, Bytes %d after the replacement; want 1, %d", c.Len(), c.Bytes(), 20+EntryOverhead)
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
			c := New[int](16, 0)
			c.Put(key(1), 1, 0, t0.Add(tt.expires), t0)
			if _, ok := c.Get(key(1), t0.Add(tt.at)); ok != tt.want {
				t.Fatalf("Get ok = %v, want %v", ok, tt.want)
			}
		})
	}
}

func TestExpiredEntryIsRemoved(t *testing.T) {
	c := New[int](16, 0)
	c.Put(key(1), 1, 0, t0.Add(time.Second), t0)
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
	c := New[int](size, 0)
	for i := 0; i < 100*size; i++ {
		c.Put(key(i), i, 0, t0.Add(time.Hour), t0)
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
	c := New[int](shardCount, 0) // one entry per shard
	var a, b Key
	// Find two keys in the same shard.
	a = key(0)
	for i := 1; ; i++ {
		if k := key(i); k[0]%shardCount == a[0]%shardCount {
			b = k
			break
		}
	}
	c.Put(a, 1, 0, t0.Add(time.Hour), t0)
	c.Put(b, 2, 0, t0.Add(time.Hour), t0)
	if _, ok := c.Get(a, t0); ok {
		t.Fatal("a should have been evicted by b in a one-entry shard")
	}
	if v, ok := c.Get(b, t0); !ok || v != 2 {
		t.Fatal("b missing")
	}
}

func TestRecentlyUsedSurvives(t *testing.T) {
	c := New[int](2*shardCount, 0) // two entries per shard
	var same []Key
	for i := 0; len(same) < 3; i++ {
		if k := key(i); k[0]%shardCount == 0 {
			same = append(same, k)
		}
	}
	c.Put(same[0], 0, 0, t0.Add(time.Hour), t0)
	c.Put(same[1], 1, 0, t0.Add(time.Hour), t0)
	c.Get(same[0], t0) // same[0] is now the most recent
	c.Put(same[2], 2, 0, t0.Add(time.Hour), t0)
	if _, ok := c.Get(same[0], t0); !ok {
		t.Fatal("recently used entry was evicted")
	}
	if _, ok := c.Get(same[1], t0); ok {
		t.Fatal("least recently used entry survived")
	}
}

func TestNilCacheIsDisabled(t *testing.T) {
	c := New[int](0, 0)
	if c != nil {
		t.Fatal("New(0) should return nil")
	}
	c.Put(key(1), 1, 0, t0.Add(time.Hour), t0)
	if _, ok := c.Get(key(1), t0); ok {
		t.Fatal("nil cache returned a value")
	}
	if c.Len() != 0 || c.Capacity() != 0 {
		t.Fatal("nil cache has size")
	}
}

func TestConcurrent(t *testing.T) {
	c := New[int](256, 0)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 2000; i++ {
				k := key(g*10000 + i%300)
				c.Put(k, i, 0, t0.Add(time.Hour), t0)
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
	c := New[int](100_000, 0)
	k := key(42)
	c.Put(k, 1, 0, t0.Add(time.Hour), t0)
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := c.Get(k, t0); !ok {
			b.Fatal("miss")
		}
	}
}

func BenchmarkPutEvict(b *testing.B) {
	c := New[int](1024, 0)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		c.Put(key(i), i, 0, t0.Add(time.Hour), t0)
		i++
	}
}

// The byte bound holds whatever the entry count allows: large entries
// evict the least recently used ones, accounted bytes never exceed the
// bound, and an entry larger than a shard's share is not stored at all.
func TestByteBound(t *testing.T) {
	const perShard = 10 * (EntryOverhead + 100) // ten 100-byte entries per shard
	tests := []struct {
		name     string
		size     int
		puts     int
		wantMax  int // most entries a shard can hold at this size
		stored   bool
		maxBytes int64
	}{
		{"small entries fill to the byte bound", 100, 2000, 10, true, shardCount * perShard},
		{"large entries hold fewer", 4*EntryOverhead + 400, 2000, 2, true, shardCount * perShard},
		{"an entry larger than a shard's share is refused", perShard, 50, 0, false, shardCount * perShard},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := New[int](1_000_000, tt.maxBytes)
			if got := c.MaxBytes(); got != tt.maxBytes {
				t.Fatalf("MaxBytes = %d, want %d", got, tt.maxBytes)
			}
			for i := range tt.puts {
				c.Put(key(i), i, tt.size, t0.Add(time.Hour), t0)
				if b := c.Bytes(); b > tt.maxBytes {
					t.Fatalf("after %d puts Bytes = %d > bound %d", i+1, b, tt.maxBytes)
				}
			}
			if got, limit := c.Len(), tt.wantMax*shardCount; got > limit {
				t.Fatalf("Len = %d, want at most %d", got, limit)
			}
			if want := int64(c.Len()) * int64(tt.size+EntryOverhead); c.Bytes() != want {
				t.Fatalf("Bytes = %d, want %d for %d entries", c.Bytes(), want, c.Len())
			}
			_, ok := c.Get(key(tt.puts-1), t0)
			if ok != tt.stored {
				t.Fatalf("newest entry stored = %v, want %v", ok, tt.stored)
			}
		})
	}
}

// Replacing, expiring and evicting entries keeps the byte count exact.
func TestByteAccounting(t *testing.T) {
	c := New[int](1000, 0)
	c.Put(key(1), 1, 100, t0.Add(time.Hour), t0)
	c.Put(key(1), 1, 300, t0.Add(time.Hour), t0) // replaced: counted once
	if got, want := c.Bytes(), int64(300+EntryOverhead); got != want {
		t.Fatalf("after replace Bytes = %d, want %d", got, want)
	}
	c.Put(key(2), 2, 50, t0.Add(time.Second), t0)
	c.Get(key(2), t0.Add(time.Minute)) // expired: removed
	if got, want := c.Bytes(), int64(300+EntryOverhead); got != want {
		t.Fatalf("after expiry Bytes = %d, want %d", got, want)
	}
	for i := range 10_000 { // far more than the capacity: most puts evict
		c.Put(key(100+i), i, 10, t0.Add(time.Hour), t0)
	}
	if got, want := c.Bytes(), int64(c.Len())*(10+EntryOverhead); got != want {
		t.Fatalf("after evictions Bytes = %d, want %d (%d entries)", got, want, c.Len())
	}
}

// EntryOverhead is counted against the byte bound for the cache's own
// memory per entry, so it must cover what an entry really costs beyond its
// value: the node and its share of the map, at any fill level.
func TestEntryOverheadCoversHeap(t *testing.T) {
	for _, n := range []int{1_000, 50_000, 100_000} {
		c := New[*int](n, 0)
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		for i := range n {
			c.Put(key(i), nil, 0, t0.Add(time.Hour), t0)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		per := int(after.HeapAlloc-before.HeapAlloc) / c.Len()
		runtime.KeepAlive(c)
		if per > EntryOverhead {
			t.Errorf("%d entries: %d heap bytes each, EntryOverhead is %d", c.Len(), per, EntryOverhead)
		}
		t.Logf("%d entries: %d heap bytes each", c.Len(), per)
	}
}

// TestLookupValueOutlivesEntry: a value read in place is never written
// again, whether the entry is replaced, evicted or expires, so a check
// that holds it reads what was stored.
func TestLookupValueOutlivesEntry(t *testing.T) {
	type claims struct{ sub, group string }
	c := New[claims](shardCount, 0) // one entry per shard
	c.Put(key(1), claims{"alice", "admins"}, 0, t0.Add(time.Minute), t0)
	held := c.Lookup(key(1), t0)
	if held == nil || *held != (claims{"alice", "admins"}) {
		t.Fatalf("Lookup = %v", held)
	}
	c.Put(key(1), claims{"bob", "users"}, 0, t0.Add(time.Minute), t0) // replaced
	if got := c.Lookup(key(1), t0); got == nil || got.sub != "bob" {
		t.Fatalf("after replacement, Lookup = %v", got)
	}
	for i := 2; i < 200; i++ { // evicts everything
		c.Put(key(i), claims{"x", "y"}, 0, t0.Add(time.Minute), t0)
	}
	if c.Lookup(key(1), t0.Add(2*time.Minute)) != nil {
		t.Fatal("an expired or evicted entry was found")
	}
	if *held != (claims{"alice", "admins"}) {
		t.Fatalf("the value held from the first entry changed to %v", *held)
	}
	var nilCache *Cache[claims]
	if nilCache.Lookup(key(1), t0) != nil {
		t.Fatal("a nil cache found a value")
	}
}

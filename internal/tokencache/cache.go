// Package tokencache is a bounded, expiring LRU used to remember verified tokens.
//
// It is sharded so that concurrent checks on different tokens rarely contend,
// and bounded both in entries and in bytes so that a flood of unique (valid)
// tokens, large ones included, cannot grow memory without limit: the least
// recently used entries of a full shard are evicted on insert. Only verified
// tokens are ever stored; there is no negative cache.
package tokencache

import (
	"encoding/binary"
	"sync"
	"time"
)

// Key identifies an entry. Callers derive it from a cryptographic hash so
// that the raw token never sits in memory as a map key.
type Key [32]byte

const shardCount = 16

// Cache is a sharded LRU with per-entry expiry. The zero value is not usable;
// call New. A nil *Cache is a valid, always-empty cache.
type Cache[V any] struct {
	shards [shardCount]shard[V]
}

type shard[V any] struct {
	mu       sync.Mutex
	max      int
	maxBytes int64
	bytes    int64 // sum of the sizes of the entries held
	// items finds an entry by 8 bytes of its key (slot); the entry's
	// full key is compared on every lookup. Keys come from a
	// cryptographic hash, so two live keys share a slot with probability
	// about n²/2⁶⁵; when they do, the newer entry replaces the older
	// (a miss, never the wrong value). Half the map's memory of full keys.
	items map[uint64]*node[V]
	// head is the most recently used entry, tail the least.
	head, tail *node[V]
}

type node[V any] struct {
	key        Key
	value      V
	expires    int64 // unix nanoseconds
	size       int64 // as given to Put, plus EntryOverhead
	prev, next *node[V]
}

// EntryOverhead is what the cache itself spends per entry beside the value
// (whose size the caller gives Put, including any part of it held in the
// node): the list node (key, expiry, size, links: 72 bytes) and its
// share of the shard's map (an 8-byte slot key and a pointer, a control
// byte, spare capacity at the map's load factor: 20 to 40 bytes). It is
// counted against the byte bound with each entry's own size;
// TestEntryOverheadCoversHeap holds it above what the heap shows.
const EntryOverhead = 120

// New returns a cache holding at most size entries in total (rounded up to a
// multiple of the shard count) and no more entry bytes than maxBytes (each
// shard gets an equal share; maxBytes <= 0 means no byte bound). size <= 0
// returns nil: caching disabled.
func New[V any](size int, maxBytes int64) *Cache[V] {
	if size <= 0 {
		return nil
	}
	per := (size + shardCount - 1) / shardCount
	perBytes := int64(-1)
	if maxBytes > 0 {
		perBytes = max(maxBytes/shardCount, 1)
	}
	c := &Cache[V]{}
	for i := range c.shards {
		c.shards[i].max = per
		c.shards[i].maxBytes = perBytes
		c.shards[i].items = make(map[uint64]*node[V])
	}
	return c
}

func (c *Cache[V]) shard(k Key) *shard[V] {
	return &c.shards[k[0]%shardCount]
}

// slot is the map key of k: bytes the shard choice does not use.
func slot(k Key) uint64 { return binary.LittleEndian.Uint64(k[8:16]) }

// Get returns the value stored under k if it has not expired at now.
// An expired entry is removed.
func (c *Cache[V]) Get(k Key, now time.Time) (V, bool) {
	if v := c.Lookup(k, now); v != nil {
		return *v, true
	}
	var zero V
	return zero, false
}

// Lookup is Get returning the stored value in place, nil on a miss. The
// value is never written after Put (an entry is replaced, not updated), so
// the pointer stays valid and unchanged after the entry is evicted. A
// cache of struct values is then one allocation per entry, not two.
func (c *Cache[V]) Lookup(k Key, now time.Time) *V {
	if c == nil {
		return nil
	}
	s := c.shard(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	n, ok := s.items[slot(k)]
	if !ok || n.key != k {
		return nil
	}
	if now.UnixNano() >= n.expires {
		s.remove(n)
		return nil
	}
	s.moveToFront(n)
	return &n.value
}

// Put stores v, which occupies size bytes of memory (the caller's estimate,
// excluding EntryOverhead), under k until expires. Entries already expired
// are not stored, nor is an entry larger than a shard's share of the byte
// bound. When the shard is full, in entries or in bytes, its least recently
// used entries are evicted until the new one fits.
func (c *Cache[V]) Put(k Key, v V, size int, expires, now time.Time) {
	if c == nil || !expires.After(now) {
		return
	}
	sz := int64(max(size, 0)) + EntryOverhead
	s := c.shard(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	if n, ok := s.items[slot(k)]; ok {
		// Replace rather than update in place, so the byte count stays
		// exact and the bound is checked for the new size; an entry of
		// another key in the same slot goes too.
		s.remove(n)
	}
	if s.maxBytes > 0 && sz > s.maxBytes {
		return
	}
	for len(s.items) >= s.max || s.maxBytes > 0 && s.bytes+sz > s.maxBytes {
		s.evictOldest()
	}
	n := &node[V]{key: k, value: v, expires: expires.UnixNano(), size: sz}
	s.items[slot(k)] = n
	s.bytes += sz
	s.pushFront(n)
}

// Len returns the number of entries, expired ones included until they are
// touched or evicted.
func (c *Cache[V]) Len() int {
	if c == nil {
		return 0
	}
	total := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		total += len(s.items)
		s.mu.Unlock()
	}
	return total
}

// Bytes returns the accounted size of the entries held (their sizes as
// given to Put, plus EntryOverhead each).
func (c *Cache[V]) Bytes() int64 {
	if c == nil {
		return 0
	}
	var total int64
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		total += s.bytes
		s.mu.Unlock()
	}
	return total
}

// MaxBytes returns the byte bound, 0 when there is none.
func (c *Cache[V]) MaxBytes() int64 {
	if c == nil || c.shards[0].maxBytes <= 0 {
		return 0
	}
	return c.shards[0].maxBytes * shardCount
}

// Capacity returns the maximum number of entries.
func (c *Cache[V]) Capacity() int {
	if c == nil {
		return 0
	}
	return c.shards[0].max * shardCount
}

func (s *shard[V]) evictOldest() {
	if s.tail != nil {
		s.remove(s.tail)
	}
}

func (s *shard[V]) remove(n *node[V]) {
	s.unlink(n)
	delete(s.items, slot(n.key))
	s.bytes -= n.size
}

func (s *shard[V]) pushFront(n *node[V]) {
	n.prev = nil
	n.next = s.head
	if s.head != nil {
		s.head.prev = n
	}
	s.head = n
	if s.tail == nil {
		s.tail = n
	}
}

func (s *shard[V]) unlink(n *node[V]) {
	if n.prev != nil {
		n.prev.next = n.next
	} else {
		s.head = n.next
	}
	if n.next != nil {
		n.next.prev = n.prev
	} else {
		s.tail = n.prev
	}
	n.prev, n.next = nil, nil
}

func (s *shard[V]) moveToFront(n *node[V]) {
	if s.head == n {
		return
	}
	s.unlink(n)
	s.pushFront(n)
}

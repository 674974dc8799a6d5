// Package tokencache is a bounded, expiring LRU used to remember verified tokens.
//
// It is sharded so that concurrent checks on different tokens rarely contend,
// and bounded in entries so that a flood of unique (valid) tokens cannot grow
// memory without limit: the least recently used entry of a full shard is
// evicted on insert. Only verified tokens are ever stored; there is no
// negative cache.
package tokencache

import (
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
	mu    sync.Mutex
	max   int
	items map[Key]*node[V]
	// head is the most recently used entry, tail the least.
	head, tail *node[V]
}

type node[V any] struct {
	key        Key
	value      V
	expires    int64 // unix nanoseconds
	prev, next *node[V]
}

// New returns a cache holding at most size entries in total (rounded up to a
// multiple of the shard count). size <= 0 returns nil: caching disabled.
func New[V any](size int) *Cache[V] {
	if size <= 0 {
		return nil
	}
	per := (size + shardCount - 1) / shardCount
	c := &Cache[V]{}
	for i := range c.shards {
		c.shards[i].max = per
		c.shards[i].items = make(map[Key]*node[V])
	}
	return c
}

func (c *Cache[V]) shard(k Key) *shard[V] {
	return &c.shards[k[0]%shardCount]
}

// Get returns the value stored under k if it has not expired at now.
// An expired entry is removed.
func (c *Cache[V]) Get(k Key, now time.Time) (V, bool) {
	var zero V
	if c == nil {
		return zero, false
	}
	s := c.shard(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	n, ok := s.items[k]
	if !ok {
		return zero, false
	}
	if now.UnixNano() >= n.expires {
		s.unlink(n)
		delete(s.items, k)
		return zero, false
	}
	s.moveToFront(n)
	return n.value, true
}

// Put stores v under k until expires. Entries already expired are not
// stored. When the shard is full its least recently used entry is evicted.
func (c *Cache[V]) Put(k Key, v V, expires, now time.Time) {
	if c == nil || !expires.After(now) {
		return
	}
	s := c.shard(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	if n, ok := s.items[k]; ok {
		n.value = v
		n.expires = expires.UnixNano()
		s.moveToFront(n)
		return
	}
	if len(s.items) >= s.max {
		s.evictOldest()
	}
	n := &node[V]{key: k, value: v, expires: expires.UnixNano()}
	s.items[k] = n
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

// Capacity returns the maximum number of entries.
func (c *Cache[V]) Capacity() int {
	if c == nil {
		return 0
	}
	return c.shards[0].max * shardCount
}

func (s *shard[V]) evictOldest() {
	n := s.tail
	if n == nil {
		return
	}
	s.unlink(n)
	delete(s.items, n.key)
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

package revocation

import (
	"hash/maphash"
	"maps"
	"math/bits"
	"math/rand/v2"
	"sync"
	"sync/atomic"
)

// key is an ID in the form a table stores it: a UUID (every jti,
// origin_jti and sub Cognito issues) as its 16 bytes, anything else as the
// string itself.
type key struct {
	u [16]byte
	s string // the ID when it is not a UUID; empty for a UUID
}

func (k *key) isUUID() bool { return k.s == "" }

// makeKey parses id. Only the canonical 8-4-4-4-12 hex form is a UUID; hex
// case does not matter (RFC 9562 compares UUIDs case-insensitively).
func makeKey(id string) key {
	var k key
	k.parse(id)
	return k
}

// parse sets k to id (not empty) in place.
func (k *key) parse(id string) {
	if !parseUUIDInto(&k.u, id) {
		k.s = id
	}
}

// parseUUID decodes a canonical UUID.
func parseUUID(s string) ([16]byte, bool) {
	var u [16]byte
	ok := parseUUIDInto(&u, s)
	return u, ok
}

// parseUUIDInto decodes a canonical UUID into u, eight hex digits at a
// time (it runs three times a check); u is undefined when it returns false.
func parseUUIDInto(u *[16]byte, s string) bool {
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return false
	}
	a, ok1 := hex8(le64s(s, 0))
	b, ok2 := hex8(le32s(s, 9) | le32s(s, 14)<<32)
	c, ok3 := hex8(le32s(s, 19) | le32s(s, 24)<<32)
	d, ok4 := hex8(le64s(s, 28))
	putLE32(u[0:4], a)
	putLE32(u[4:8], b)
	putLE32(u[8:12], c)
	putLE32(u[12:16], d)
	return ok1 && ok2 && ok3 && ok4
}

const (
	ones = 0x0101010101010101
	high = 0x8080808080808080
)

// hex8 decodes eight ASCII hex digits, the first in the low byte of x,
// into four bytes (the first in the low byte); false if any is not hex.
func hex8(x uint64) (uint32, bool) {
	if x&high != 0 {
		return 0, false
	}
	digit := between(x, '0', '9')
	letter := between(x|0x2020202020202020, 'a', 'f') // either case
	if digit|letter != high {
		return 0, false
	}
	// A letter has bit 6 set: its low nibble plus 9 is its value.
	v := x&0x0f0f0f0f0f0f0f0f + (x>>6&ones)*9
	v = (v<<4 | v>>8) & 0x00ff00ff00ff00ff
	v = (v | v>>8) & 0x0000ffff0000ffff
	v = v | v>>16
	return uint32(v), true
}

// between sets the high bit of each byte of x (all below 0x80) that is in
// [lo, hi].
func between(x uint64, lo, hi byte) uint64 {
	ge := x + ones*uint64(0x80-lo)
	gt := x + ones*uint64(0x7f-hi)
	return ge &^ gt & high
}

func le64s(s string, i int) uint64 { return le32s(s, i) | le32s(s, i+4)<<32 }

func le32s(s string, i int) uint64 {
	_ = s[i+3]
	return uint64(s[i]) | uint64(s[i+1])<<8 | uint64(s[i+2])<<16 | uint64(s[i+3])<<24
}

func putLE32(b []byte, v uint32) {
	_ = b[3]
	b[0], b[1], b[2], b[3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
}

// kv is one entry on its way into a table: the key and its time in Unix
// seconds.
type kv struct {
	k key
	v int64
}

// shardTarget is the average number of entries per shard a table is sized
// for. A write copies one shard, so it costs about this many map inserts
// whatever the table's size; a lookup costs the same at any size.
const shardTarget = 128

// table maps keys to times. Lookups are lock-free and allocation-free: a
// table is an array of shards, each an immutable pair of maps behind an
// atomic pointer. A write copies the one shard it touches (copy on write)
// under the writer lock, so a write to a million-entry table copies about
// shardTarget entries, not the million. The shard array is rebuilt (at
// shardTarget entries per shard) when the table grows or shrinks fourfold.
//
// Values only grow: a put keeps the later of the stored and the new time,
// so puts commute and a resync racing a notification cannot lose either.
type table struct {
	mu  sync.Mutex // serialises writers
	cur atomic.Pointer[shardSet]
	n   atomic.Int64 // entries held, expired ones not yet swept included
}

type shardSet struct {
	seed   uint64
	mask   uint64
	shards []atomic.Pointer[shard]
	// filter is a blocked Bloom filter over the keys: a lookup reads one
	// word and, for a key never stored (almost every check), stops there
	// instead of reading a shard's map. Bits are only ever added (atomic
	// OR, before the shard that holds the key is published); a rebuild
	// starts a fresh one, so swept keys leave it then.
	filter []atomic.Uint64
	fmask  uint64
	marks  int // keys added to the filter (under the table's writer lock)
}

// filterBitsPerEntry is the filter's size per entry the shard array can
// hold before it grows fourfold: 8 bits at the fullest, 32 just after a
// rebuild; four bits in one word a key, so a false positive (which costs
// one map lookup) is rare.
const filterBitsPerEntry = 8

// shard is immutable once published.
type shard struct {
	u map[[16]byte]int64
	s map[string]int64
}

var emptyShard = &shard{}

var strSeed = maphash.MakeSeed()

func newTable() *table {
	t := &table{}
	t.cur.Store(newShardSet(0))
	return t
}

// newShardSet returns an empty shard array sized for n entries.
func newShardSet(n int) *shardSet {
	count := 1
	if n > shardTarget {
		count = 1 << bits.Len(uint(n/shardTarget))
	}
	words := 4 * shardTarget * count * filterBitsPerEntry / 64
	ss := &shardSet{
		seed:   rand.Uint64(),
		mask:   uint64(count - 1),
		shards: make([]atomic.Pointer[shard], count),
		filter: make([]atomic.Uint64, words),
		fmask:  uint64(words - 1),
	}
	for i := range ss.shards {
		ss.shards[i].Store(emptyShard)
	}
	return ss
}

// hash mixes k with the set's seed: UUIDs with a multiply-fold (UUID v1
// and v7 have few random bits in places), strings with maphash. The low
// bits pick the shard, the high bits the filter word and bits.
func (ss *shardSet) hash(k *key) uint64 {
	if k.isUUID() {
		a := le64(k.u[0:8]) ^ ss.seed
		b := le64(k.u[8:16])
		hi, lo := bits.Mul64(a, b^0x9e3779b97f4a7c15)
		return hi ^ lo
	}
	return maphash.String(strSeed, k.s) ^ ss.seed
}

func (ss *shardSet) index(k *key) uint64 { return ss.hash(k) & ss.mask }

// filterAt returns the filter word of hash h and the bits h sets in it.
func (ss *shardSet) filterAt(h uint64) (*atomic.Uint64, uint64) {
	g := h * 0x9e3779b97f4a7c15
	bits := uint64(1)<<(g>>58) | uint64(1)<<(g>>52&63) | uint64(1)<<(g>>46&63) | uint64(1)<<(g>>40&63)
	return &ss.filter[(h>>32)&ss.fmask], bits
}

// mark adds k to the filter.
func (ss *shardSet) mark(k *key) {
	w, b := ss.filterAt(ss.hash(k))
	w.Or(b)
	ss.marks++
}

func le64(b []byte) uint64 {
	_ = b[7]
	return uint64(b[0]) | uint64(b[1])<<8 | uint64(b[2])<<16 | uint64(b[3])<<24 |
		uint64(b[4])<<32 | uint64(b[5])<<40 | uint64(b[6])<<48 | uint64(b[7])<<56
}

// len returns the number of entries held.
func (t *table) len() int { return int(t.n.Load()) }

// get returns k's time. It never locks or allocates.
func (t *table) get(k *key) (int64, bool) {
	if t.n.Load() == 0 {
		return 0, false
	}
	ss := t.cur.Load()
	h := ss.hash(k)
	if w, b := ss.filterAt(h); w.Load()&b != b {
		return 0, false
	}
	sh := ss.shards[h&ss.mask].Load()
	if k.isUUID() {
		v, ok := sh.u[k.u]
		return v, ok
	}
	v, ok := sh.s[k.s]
	return v, ok
}

// put stores each entry, keeping the later time of a key stored twice.
// It returns how many keys were new or got a later time.
func (t *table) put(batch []kv) int {
	if len(batch) == 0 {
		return 0
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	ss := t.cur.Load()
	if n := int(t.n.Load()) + len(batch); n > 4*shardTarget*len(ss.shards) {
		// Growing fourfold: rebuild at the right size (amortised O(1)).
		return t.rebuildLocked(batch, minCutoff)
	}
	copies := map[uint64]*shard{}
	changed, added := 0, 0
	for i := range batch {
		e := &batch[i]
		idx := ss.index(&e.k)
		sh := copies[idx]
		if sh == nil {
			old := ss.shards[idx].Load()
			if v, ok := old.lookup(&e.k); ok && v >= e.v {
				continue
			}
			sh = &shard{u: maps.Clone(old.u), s: maps.Clone(old.s)}
			copies[idx] = sh
		}
		isNew, grew := sh.set(&e.k, e.v)
		if isNew {
			added++
			ss.mark(&e.k) // before the shard holding it is published
		}
		if grew {
			changed++
		}
	}
	for idx, sh := range copies {
		ss.shards[idx].Store(sh)
	}
	t.n.Add(int64(added))
	return changed
}

// minCutoff is a cutoff no entry is at or below.
const minCutoff = -1 << 63

// rebuildLocked replaces the shard array with one sized for the entries
// held above cutoff plus batch, dropping the rest. t.mu must be held.
func (t *table) rebuildLocked(batch []kv, cutoff int64) int {
	old := t.cur.Load()
	ss := newShardSet(int(t.n.Load()) + len(batch))
	fresh := make([]*shard, len(ss.shards))
	n := 0
	add := func(k *key, v int64) bool {
		idx := ss.index(k)
		sh := fresh[idx]
		if sh == nil {
			sh = &shard{}
			fresh[idx] = sh
		}
		isNew, grew := sh.set(k, v)
		if isNew {
			n++
			ss.mark(k)
		}
		return grew
	}
	for i := range old.shards {
		sh := old.shards[i].Load()
		for u, v := range sh.u {
			if v > cutoff {
				add(&key{u: u}, v)
			}
		}
		for s, v := range sh.s {
			if v > cutoff {
				add(&key{s: s}, v)
			}
		}
	}
	changed := 0
	for i := range batch {
		if add(&batch[i].k, batch[i].v) {
			changed++
		}
	}
	for i, sh := range fresh {
		if sh != nil {
			ss.shards[i].Store(sh)
		}
	}
	t.cur.Store(ss)
	t.n.Store(int64(n))
	return changed
}

// sweep drops every entry whose time is at or below cutoff and returns how
// many it dropped. Shards without such entries are left as they are.
func (t *table) sweep(cutoff int64) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.n.Load() == 0 {
		return 0
	}
	ss := t.cur.Load()
	dropped := 0
	for i := range ss.shards {
		sh := ss.shards[i].Load()
		d := sh.countAtOrBelow(cutoff)
		if d == 0 {
			continue
		}
		nsh := &shard{}
		for u, v := range sh.u {
			if v > cutoff {
				nsh.set(&key{u: u}, v)
			}
		}
		for s, v := range sh.s {
			if v > cutoff {
				nsh.set(&key{s: s}, v)
			}
		}
		ss.shards[i].Store(nsh)
		dropped += d
	}
	n := int(t.n.Add(int64(-dropped)))
	// Rebuild when the table has shrunk fourfold, or when most of the
	// filter's bits belong to swept keys (a list whose entries turn over
	// would otherwise fill the filter with them).
	if (len(ss.shards) > 1 && n < shardTarget*len(ss.shards)/4) || ss.marks > 2*n+shardTarget {
		t.rebuildLocked(nil, minCutoff)
	}
	return dropped
}

func (sh *shard) lookup(k *key) (int64, bool) {
	if k.isUUID() {
		v, ok := sh.u[k.u]
		return v, ok
	}
	v, ok := sh.s[k.s]
	return v, ok
}

// set stores v under k unless a later time is stored; sh must not be
// published yet. isNew: k was absent; grew: the stored time changed.
func (sh *shard) set(k *key, v int64) (isNew, grew bool) {
	if k.isUUID() {
		old, ok := sh.u[k.u]
		if ok && old >= v {
			return false, false
		}
		if sh.u == nil {
			sh.u = map[[16]byte]int64{}
		}
		sh.u[k.u] = v
		return !ok, true
	}
	old, ok := sh.s[k.s]
	if ok && old >= v {
		return false, false
	}
	if sh.s == nil {
		sh.s = map[string]int64{}
	}
	sh.s[k.s] = v
	return !ok, true
}

func (sh *shard) countAtOrBelow(cutoff int64) int {
	d := 0
	for _, v := range sh.u {
		if v <= cutoff {
			d++
		}
	}
	for _, v := range sh.s {
		if v <= cutoff {
			d++
		}
	}
	return d
}

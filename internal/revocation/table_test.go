package revocation

import (
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
)

// uuidN is a UUID string made from n (version 4 layout).
func uuidN(n uint64) string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[0:8], n*0x9e3779b97f4a7c15)
	binary.BigEndian.PutUint64(b[8:16], n)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

func TestTablePutGet(t *testing.T) {
	tb := newTable()
	kA, kS := makeKey(uuidA), makeKey("opaque-id")
	if !kA.isUUID() || kS.isUUID() {
		t.Fatalf("key kinds: %+v %+v", kA, kS)
	}
	if _, ok := tb.get(&kA); ok {
		t.Fatal("empty table has an entry")
	}
	if n := tb.put([]kv{{kA, 100}, {kS, 50}}); n != 2 {
		t.Fatalf("put = %d, want 2", n)
	}
	// A later time wins; an earlier one changes nothing.
	if n := tb.put([]kv{{kA, 90}}); n != 0 {
		t.Fatalf("put earlier = %d, want 0", n)
	}
	if n := tb.put([]kv{{kA, 200}, {kA, 150}}); n != 1 {
		t.Fatalf("put later = %d, want 1", n)
	}
	upper := makeKey("3A25593B-DC5A-400E-B339-347DC5A79EDC")
	for _, tc := range []struct {
		k    key
		want int64
	}{{kA, 200}, {upper, 200}, {kS, 50}} {
		if v, ok := tb.get(&tc.k); !ok || v != tc.want {
			t.Errorf("get(%+v) = %d, %v; want %d", tc.k, v, ok, tc.want)
		}
	}
	if tb.len() != 2 {
		t.Errorf("len = %d, want 2", tb.len())
	}
	if d := tb.sweep(100); d != 1 {
		t.Fatalf("sweep(100) dropped %d, want 1 (the string entry at 50)", d)
	}
	if _, ok := tb.get(&kS); ok || tb.len() != 1 {
		t.Fatalf("after sweep: string entry still there or len %d", tb.len())
	}
	if d := tb.sweep(200); d != 1 || tb.len() != 0 {
		t.Fatalf("sweep(200) dropped %d, len %d", d, tb.len())
	}
}

// TestTableResize: the table grows its shard array as entries arrive one
// batch at a time and shrinks it when a sweep empties it, never losing an
// entry.
func TestTableResize(t *testing.T) {
	tb := newTable()
	const n = 20000
	for i := 0; i < n; i += 100 {
		batch := make([]kv, 0, 100)
		for j := i; j < i+100; j++ {
			k := makeKey(uuidN(uint64(j)))
			if j%10 == 0 {
				k = makeKey(fmt.Sprintf("s-%d", j))
			}
			batch = append(batch, kv{k, int64(j + 1)})
		}
		tb.put(batch)
	}
	if tb.len() != n {
		t.Fatalf("len = %d, want %d", tb.len(), n)
	}
	shards := len(tb.cur.Load().shards)
	if shards < n/(4*shardTarget) {
		t.Fatalf("%d shards for %d entries: the table did not grow", shards, n)
	}
	check := func(from int) {
		t.Helper()
		for j := 0; j < n; j++ {
			k := makeKey(uuidN(uint64(j)))
			if j%10 == 0 {
				k = makeKey(fmt.Sprintf("s-%d", j))
			}
			v, ok := tb.get(&k)
			if want := j >= from; ok != want || (ok && v != int64(j+1)) {
				t.Fatalf("entry %d: %d, %v; want present=%v", j, v, ok, want)
			}
		}
	}
	check(0)
	tb.sweep(n - 100)
	check(n - 100)
	if got := len(tb.cur.Load().shards); got >= shards {
		t.Errorf("shards %d after sweeping to 100 entries, was %d: the table did not shrink", got, shards)
	}
}

// TestTableConcurrent: readers never see a missing entry that was stored
// before they started, while writers add and a sweeper drops others (run
// with -race).
func TestTableConcurrent(t *testing.T) {
	tb := newTable()
	stable := make([]key, 1000)
	batch := make([]kv, len(stable))
	for i := range stable {
		stable[i] = makeKey(uuidN(uint64(i)))
		batch[i] = kv{stable[i], 1 << 40}
	}
	tb.put(batch)
	var stop atomic.Bool
	var writers, readers sync.WaitGroup
	for w := 0; w < 2; w++ {
		writers.Go(func() {
			for i := 0; !stop.Load(); i++ {
				tb.put([]kv{{makeKey(uuidN(uint64(1_000_000*(w+1) + i))), int64(i % 50)}})
			}
		})
	}
	writers.Go(func() {
		for i := 0; !stop.Load(); i++ {
			tb.sweep(int64(i % 50))
		}
	})
	var misses atomic.Int64
	for r := 0; r < 2; r++ {
		readers.Go(func() {
			for i := 0; i < 200_000; i++ {
				if _, ok := tb.get(&stable[i%len(stable)]); !ok {
					misses.Add(1)
				}
			}
		})
	}
	readers.Wait()
	stop.Store(true)
	writers.Wait()
	if misses.Load() != 0 {
		t.Fatalf("%d lookups missed a stored entry", misses.Load())
	}
	for i := range stable {
		if _, ok := tb.get(&stable[i]); !ok {
			t.Fatalf("stable entry %d lost", i)
		}
	}
}

// TestTableFilterTurnover: a list whose entries expire and are replaced
// keeps a filter that mostly holds live keys (a rebuild at a sweep), and
// never hides a live one.
func TestTableFilterTurnover(t *testing.T) {
	tb := newTable()
	const per = 2000
	for round := 0; round < 10; round++ {
		batch := make([]kv, per)
		for i := range batch {
			batch[i] = kv{makeKey(uuidN(uint64(round*per + i))), int64(round + 1)}
		}
		tb.put(batch)
		tb.sweep(int64(round)) // drops the previous round
		if tb.len() != per {
			t.Fatalf("round %d: len %d, want %d", round, tb.len(), per)
		}
		tb.mu.Lock()
		marks := tb.cur.Load().marks
		tb.mu.Unlock()
		if marks > 2*per+shardTarget {
			t.Fatalf("round %d: %d keys marked in the filter for %d live", round, marks, per)
		}
		for i := range batch {
			if _, ok := tb.get(&batch[i].k); !ok {
				t.Fatalf("round %d: live key %d not found", round, i)
			}
		}
	}
	// A key never stored is rejected by the filter almost always.
	miss, filtered := 0, 0
	ss := tb.cur.Load()
	for i := 0; i < 10000; i++ {
		k := makeKey(uuidN(uint64(1<<40 + i)))
		if w, b := ss.filterAt(ss.hash(&k)); w.Load()&b != b {
			filtered++
		}
		if _, ok := tb.get(&k); !ok {
			miss++
		}
	}
	if miss != 10000 || filtered < 9000 {
		t.Fatalf("absent keys: %d missed, %d stopped by the filter (want 10000, >= 9000)", miss, filtered)
	}
}

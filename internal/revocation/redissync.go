package revocation

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

const (
	// scanCount is the COUNT hint of each ZSCAN: small steps keep Redis
	// responsive for its other clients while a large list is read.
	scanCount = 2000
	// maxBatch bounds the members one ZMSCORE asks for.
	maxBatch = 1000
)

// fullSync reads the whole set with ZSCAN (which never blocks Redis the
// way one ZRANGE of a million members would) and adds what the list
// lacks. Entries the set no longer has are kept until their time passes.
func (r *redisSource) fullSync(ctx context.Context) error {
	now := r.now()
	var cursor uint64
	var changes []Entry
	seen, invalid := 0, 0
	var example string
	for {
		kv, next, err := r.client.ZScan(ctx, r.cfg.Key, cursor, "", scanCount).Result()
		if err != nil {
			return fmt.Errorf("zscan %s: %w", r.cfg.Key, err)
		}
		for i := 0; i+1 < len(kv); i += 2 {
			score, err := strconv.ParseFloat(kv[i+1], 64)
			if err != nil {
				score = -1
			}
			e, err := ParseMember(kv[i], score)
			if err != nil {
				invalid++
				example = err.Error()
				continue
			}
			if !live(e, now) {
				continue
			}
			seen++
			if !r.set.has(e) {
				changes = append(changes, e)
			}
		}
		if next == 0 {
			break
		}
		cursor = next
	}
	added := r.set.put(changes)
	r.set.sweep(now)
	r.trim(ctx, now)
	r.m.count(ResultSuccess, 1)
	r.m.count(ResultInvalid, invalid)
	r.m.entries.Set(float64(r.set.len()))
	if invalid > 0 {
		r.log.Warn("revocation redis set has members that are not entries; skipped",
			zap.Int("invalid", invalid), zap.String("example", example))
	}
	// ZSCAN may return a member twice, so this can undercount; it only
	// feeds a log line.
	missing := max(0, r.set.len()-seen)
	if missing > r.missing {
		r.log.Warn("revocation redis set lacks entries this replica holds (data lost or members removed); keeping them until they expire",
			zap.Int("missing", missing))
	}
	r.missing = missing
	r.log.Debug("revocation redis resync", zap.Int("members", seen), zap.Int("added", added),
		zap.Int("entries", r.set.len()), zap.Duration("took", r.now().Sub(now)))
	r.touch()
	return nil
}

// trim removes the members no token can match any more (best effort: a
// read-only user cannot, and then writers keep the set trimmed).
func (r *redisSource) trim(ctx context.Context, now time.Time) {
	if r.noTrim {
		return
	}
	err := r.client.ZRemRangeByScore(ctx, r.cfg.Key, "-inf", trimBound(now)).Err()
	if err != nil && isDenied(err) {
		r.noTrim = true
		r.log.Info("revocation redis user may not trim the set; leaving that to writers", zap.Error(err))
	}
}

// trimBound is the highest score that no longer matters at now.
func trimBound(now time.Time) string {
	return strconv.FormatInt(now.Unix()-int64(SubGrace/time.Second), 10)
}

func isDenied(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "NOPERM") || strings.HasPrefix(msg, "READONLY")
}

// apply handles a notification and the ones already queued behind it:
// each payload names members ("jti:<id>", "sub:<sub>", several separated
// by spaces); their times are read with ZMSCORE and the live ones added.
// again asks for a full resync: a payload named something else.
func (r *redisSource) apply(ctx context.Context, first string, msgs <-chan string) (again bool, err error) {
	members := map[string]struct{}{}
	invalid := 0
	take := func(p string) {
		for _, m := range strings.Fields(p) {
			if _, err := ParseMember(m, 1); err != nil {
				invalid++
				continue
			}
			members[m] = struct{}{}
		}
	}
	take(first)
drain:
	for len(members) < 4*maxBatch {
		select {
		case p := <-msgs:
			take(p)
		default:
			break drain
		}
	}
	r.m.count(ResultInvalid, invalid)
	if invalid > 0 {
		r.log.Debug("revocation notification names no entry; resyncing", zap.Int("invalid", invalid))
	}
	list := make([]string, 0, len(members))
	for m := range members {
		list = append(list, m)
	}
	now := r.now()
	var entries []Entry
	for len(list) > 0 {
		batch := list[:min(len(list), maxBatch)]
		list = list[len(batch):]
		scores, err := r.client.ZMScore(ctx, r.cfg.Key, batch...).Result()
		if err != nil {
			return false, fmt.Errorf("zmscore %s: %w", r.cfg.Key, err)
		}
		for i, s := range scores {
			if s <= 0 {
				continue // not in the set (trimmed, or removed)
			}
			if e, err := ParseMember(batch[i], s); err == nil && live(e, now) {
				entries = append(entries, e)
			}
		}
	}
	r.set.put(entries)
	r.m.count(ResultEntry, len(entries))
	r.m.entries.Set(float64(r.set.len()))
	return invalid > 0, nil
}

// write adds e to the set and announces it in one transaction, trimming
// on the way; then applies it here at once.
func (r *redisSource) write(ctx context.Context, e Entry, now time.Time) error {
	member := e.Member()
	_, err := r.client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.ZAddGT(ctx, r.cfg.Key, redis.Z{Score: float64(ceilUnix(e.Time)), Member: member})
		p.ZRemRangeByScore(ctx, r.cfg.Key, "-inf", trimBound(now))
		p.Publish(ctx, r.cfg.Key, member)
		return nil
	})
	if err != nil {
		return fmt.Errorf("revocation: write to redis %s key %s: %w", r.addr, r.cfg.Key, err)
	}
	r.set.put([]Entry{e})
	r.m.entries.Set(float64(r.set.len()))
	return nil
}

// Package revocation is the deny list of revoked tokens: a file, Redis, or
// both, checked on every request in constant time.
//
// Offline verifiers accept a revoked Cognito token until it expires; a
// service that keeps this list refuses it. Two kinds of entries:
//
//	jti 3a25593b-dc5a-400e-b339-347dc5a79edc 2026-11-26T11:00:00Z   # a jti or origin_jti, until that time
//	sub 0b9d4a2e-7f3c-4c1e-9a51-1d2f3e4a5b6c 2026-11-26T10:00:00Z   # every token of sub issued (iat) before that time
//
// A jti entry matches a token whose jti or origin_jti is its ID. Cognito
// gives every token minted from one refresh token the same origin_jti, so
// the origin_jti of a sign-in revokes all its tokens. Without a time a jti
// entry lives 24 hours (Cognito's longest token lifetime) from when it is
// first seen or written. A sub entry revokes every token of that sub
// issued before its time, which is what GlobalSignOut means; it is
// dropped a day and an hour after its time, when no token it can match is
// alive. Entries past their time are dropped, so memory is bounded by the
// tokens still alive. Times are RFC 3339 and kept to the second, rounded
// up.
//
// # The file
//
// One entry a line, fields separated by spaces or tabs; blank lines and
// comments ('#' at the start of a line or after a space) are ignored. IDs
// are printable ASCII without spaces or '#'. A file with any bad line is
// rejected whole, with every problem as file:line: what; the last good
// list stays in force. A changed file applies once its content has held
// still for the settle time (a prefix of a file being written is a valid
// list that lacks entries).
//
// # The Redis data model
//
// One sorted set, key "extauthz:revoked" by default:
//
//	member  "jti:<jti or origin_jti>"  score: the entry's time, Unix seconds
//	member  "sub:<sub>"                score: the entry's time, Unix seconds
//
// and a pub/sub channel with the same name as the key, on which a writer
// announces the members it wrote (one member, or several separated by
// spaces). Any program can write an entry with plain commands, in one
// transaction:
//
//	MULTI
//	ZADD extauthz:revoked GT 1795086000 jti:3a25593b-dc5a-400e-b339-347dc5a79edc
//	ZREMRANGEBYSCORE extauthz:revoked -inf <now - 90000>
//	PUBLISH extauthz:revoked jti:3a25593b-dc5a-400e-b339-347dc5a79edc
//	EXEC
//
// GT never shortens an entry that is already there. ZREMRANGEBYSCORE
// trims the members that can no longer match a live token (score at least
// 25 hours in the past), so the set stays bounded with no TTL on the key;
// replicas trim too when their Redis user may. Redis 6.2 or later (or
// Valkey).
//
// Every replica keeps the whole list in memory; the hot path never touches
// the network. The replica's Redis user needs only HELLO, AUTH, PING,
// ZSCAN, ZMSCORE and SUBSCRIBE (ZREMRANGEBYSCORE too to trim; ZADD, MULTI,
// EXEC and PUBLISH to Write). A replica subscribes to the channel, then reads the whole
// set with ZSCAN (at start, after every reconnect, and every
// ResyncInterval), and reads the score of each announced member with
// ZMSCORE: a write is enforced everywhere within about a round trip of its
// PUBLISH. A message that names no entry makes replicas resync (at most
// every 10 seconds). Pub/sub rather than keyspace notifications, which
// managed Redis services often turn off.
//
// An entry a replica has learned stays until its own time passes, even if
// a later resync does not find it: Redis restarting empty, or a failover
// that loses the last writes, never lets a revoked token pass on a replica
// that knew the entry. Removing a member from Redis therefore does not
// un-revoke on running replicas; a revoked user signs in again and gets
// new tokens (new jti, origin_jti and iat).
//
// # Redis down
//
// The last known list keeps serving; extauthz_revocation_source_up{source
// ="redis"} is 0; the outage is logged once (and its end once); the
// replica reconnects with exponential backoff (100 ms doubling to 30 s,
// jittered). With StaleAfter > 0, Stale reports true once Redis has been
// unreachable that long, and the decision fails closed. Before the first
// sync the list is not Ready and Stale.
//
// # Cost
//
// Lookups take no lock and allocate nothing. Each table (jti entries, sub
// entries, per source) is an array of shards, each an immutable map behind
// an atomic pointer, with a blocked Bloom filter in front: a token that is
// not listed, the common case, costs one filter word per claim. A write
// copies only the shard it touches (about 128 entries, whatever the size
// of the list) and sets its filter bits before publishing the shard; the
// shard array and filter are rebuilt when the list grows or shrinks
// fourfold or its filter fills with expired keys. UUIDs, which every
// Cognito jti, origin_jti and sub is, are stored as 16 bytes: about 46
// bytes an entry in all. BenchmarkRevoked, BenchmarkWrite and
// TestMemoryPerEntry measure it.
package revocation

package jwks

// The miss path of a lookup: a kid the cached set lacks (or no set yet).
// It may start or join the source's one fetch, and what waiting for that
// fetch may cost is bounded: at most MissWait per lookup, at most
// MaxMissWaiters lookups per source at once.

import (
	"context"
	"fmt"
	"time"

	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Failures of a lookup the miss bounds turned away. Both are
// ErrUnavailable: until the fetch answers, a freshly rotated key cannot be
// told from a made-up kid, and "try again" is the honest answer for the
// real one.
var (
	errMissBudgetSpent = fmt.Errorf("key set fetch did not answer within the kid-miss wait: %w", ErrUnavailable)
	errMissWaitersFull = fmt.Errorf("too many lookups already wait for the key set fetch: %w", ErrUnavailable)
)

// Sampling of the miss-bound log line: per second, the first
// missLogFirst lines are written, the rest only counted (by the
// kid-miss metric).
const missLogFirst = 5

const msgMissBounded = "kid miss answered unavailable without waiting for the key set fetch"

// sampled returns log wrapped in the sampler of the miss-bound lines: a
// kid spray is one line per second per message, not one per check.
func sampled(log *zap.Logger) *zap.Logger {
	return log.WithOptions(zap.WrapCore(func(c zapcore.Core) zapcore.Core {
		return zapcore.NewSamplerWithOptions(c, time.Second, missLogFirst, 0)
	}))
}

func (c *Cache) miss(ctx context.Context, e *entry, kid string) (*Key, error) {
	if e.reject != nil {
		return nil, ErrUnavailable
	}
	// Lock-free answer inside the window, so a flood of forged kids costs
	// neither I/O nor lock contention.
	inflight := e.inflight.Load()
	if inflight == nil && c.opts.Now().UnixNano() < e.refetchAfter.Load() {
		e.missLimited.Inc()
		return e.answer(kid)
	}
	// Lock-free too while a fetch runs and every waiting slot is taken.
	if inflight != nil && e.waiters.Load() >= int32(c.opts.MaxMissWaiters) {
		return c.turnAway(e, kid, inflight, true)
	}
	call, started, err := c.refetch(ctx, e, kid)
	if call == nil {
		k, err := e.answerOr(kid, err)
		if err != nil {
			e.missLimited.Inc()
		}
		return k, err
	}
	if !e.enterWait(int32(c.opts.MaxMissWaiters)) {
		return c.turnAway(e, kid, call, true)
	}
	defer e.waiters.Add(-1)
	return c.await(ctx, e, kid, call, started)
}

// await waits for call, within MissWait and ctx, and answers from the set
// it leaves. It may go round once more (see below) within the same budget.
func (c *Cache) await(ctx context.Context, e *entry, kid string, call *fetchCall, started bool) (*Key, error) {
	budget := time.NewTimer(c.opts.MissWait)
	defer budget.Stop()
	spent := false
	for {
		if !spent {
			select {
			case <-call.done:
			case <-budget.C:
				spent = true
			case <-ctx.Done():
				e.missRefetched.Inc()
				return nil, fmt.Errorf("wait for key set %s: %w", e.label, ctx.Err())
			}
		}
		if !call.finished() {
			return c.turnAway(e, kid, call, false)
		}
		if c.lookup(e.src) != e {
			e.missRefetched.Inc()
			return nil, ErrUnavailable
		}
		k, err := e.answer(kid)
		if err == nil || started {
			e.missRefetched.Inc()
			return k, err
		}
		// The fetch joined was someone else's, possibly a refresh that
		// began before the key was published: one more round, which the
		// window turns into an immediate answer if a lookup fetched lately.
		var rerr error
		if call, started, rerr = c.refetch(ctx, e, kid); call == nil {
			e.missRefetched.Inc()
			return e.answerOr(kid, rerr)
		}
	}
}

// turnAway answers a lookup that may not wait (any longer) for call, full
// when it found every waiting slot taken, else because its budget is spent:
// with the key if the fetch has brought it meanwhile, else with the bound's
// ErrUnavailable. It counts the outcome and logs it, sampled.
func (c *Cache) turnAway(e *entry, kid string, call *fetchCall, full bool) (*Key, error) {
	if call.finished() && c.lookup(e.src) == e {
		if k, err := e.answer(kid); err == nil {
			e.missRefetched.Inc()
			return k, nil
		}
	}
	counter, outcome, err := e.missBudgetSpent, missBudgetSpent, errMissBudgetSpent
	if full {
		counter, outcome, err = e.missWaitersFull, missWaitersFull, errMissWaitersFull
	}
	counter.Inc()
	if ce := c.missLog.Check(zapcore.WarnLevel, msgMissBounded); ce != nil {
		ce.Write(zap.String("source", e.label), zap.String("kid", quoteKid(kid)), zap.String("outcome", outcome),
			zap.Int32("waiters", e.waiters.Load()), zap.Duration("miss_wait", c.opts.MissWait))
	}
	return nil, err
}

// enterWait takes one of the source's limit waiting slots, or reports
// that none is free. The caller gives it back with waiters.Add(-1).
func (e *entry) enterWait(limit int32) bool {
	for {
		n := e.waiters.Load()
		if n >= limit {
			return false
		}
		if e.waiters.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// finished reports whether the fetch has answered.
func (f *fetchCall) finished() bool {
	select {
	case <-f.done:
		return true
	default:
		return false
	}
}

// refetch joins the fetch in flight or, outside the refetch window, starts
// one and opens the window. It returns a nil call when the lookup must be
// answered from the cache, with an error to use if the cache cannot answer
// either (the source was dropped meanwhile).
func (c *Cache) refetch(ctx context.Context, e *entry, kid string) (call *fetchCall, started bool, err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if call := e.inflight.Load(); call != nil {
		return call, false, nil
	}
	if _, err := e.answer(kid); err == nil {
		return nil, false, nil // a fetch finished since the lock-free lookup
	}
	now := c.opts.Now()
	if now.UnixNano() < e.refetchAfter.Load() {
		return nil, false, nil
	}
	call = c.startLocked(e, trace.SpanContextFromContext(ctx))
	if call == nil {
		return nil, false, ErrUnavailable
	}
	e.refetchAfter.Store(now.Add(c.opts.MinRefetchInterval).UnixNano())
	return call, true, nil
}

// answer looks kid up in the current set without fetching. A kid missing
// from a set whose latest load failed is ErrUnavailable, not
// ErrKidUnknown: during an IdP outage a freshly rotated key cannot be
// told from a forged kid, and the honest answer is "try again" (503), not
// "your token is bad" (401). Known kids keep verifying from stale keys.
func (e *entry) answer(kid string) (*Key, error) {
	s := e.set.Load()
	if s == nil {
		return nil, ErrUnavailable
	}
	if k := s.keys[kid]; k != nil {
		return k, nil
	}
	if e.stale.Load() {
		return nil, ErrUnavailable
	}
	return nil, ErrKidUnknown
}

// answerOr answers from the cache, or fails with err when err is set.
func (e *entry) answerOr(kid string, err error) (*Key, error) {
	if err != nil {
		return nil, err
	}
	return e.answer(kid)
}

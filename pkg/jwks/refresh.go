package jwks

// The background side of the cache: each entry's refresh loop and the
// fetch that loads a set and publishes it.

import (
	"context"
	"crypto/sha256"
	"errors"
	"math/rand/v2"
	"strconv"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"
)

// run is an entry's background loop: load at once, then refresh every
// RefreshInterval after a success, or retry with exponential backoff
// (RetryMin..RetryMax) after a failure. Retrying a failed refresh early,
// rather than waiting a full interval on stale keys, shortens the time a
// rotated-out key keeps verifying.
func (c *Cache) run(e *entry) {
	defer c.wg.Done()
	if e.reject != nil {
		c.recordReject(e)
		return
	}
	backoff := c.opts.RetryMin
	for {
		call := c.startOrJoin(e)
		if call == nil {
			return
		}
		select {
		case <-call.done:
		case <-e.ctx.Done():
			return
		}
		wait := jitter(c.opts.RefreshInterval)
		if call.err != nil {
			wait = min(backoff, c.opts.RefreshInterval)
			backoff = min(2*backoff, c.opts.RetryMax)
		} else {
			backoff = c.opts.RetryMin
		}
		var loadedElsewhere <-chan struct{}
		if !e.isLoaded() {
			loadedElsewhere = e.loaded
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
			continue
		case <-e.ctx.Done():
			t.Stop()
			return
		case <-loadedElsewhere:
			// A lookup's fetch loaded the set during the backoff: from now
			// on the refresh schedule applies.
			t.Stop()
			backoff = c.opts.RetryMin
		}
		t = time.NewTimer(jitter(c.opts.RefreshInterval))
		select {
		case <-t.C:
		case <-e.ctx.Done():
			t.Stop()
			return
		}
	}
}

// jitter spreads d by ±10% so replicas do not refresh in lockstep.
func jitter(d time.Duration) time.Duration {
	return time.Duration(float64(d) * (0.9 + 0.2*rand.Float64()))
}

func (c *Cache) recordReject(e *entry) {
	// Logged before it is counted, so whoever sees the count finds the
	// explanation already written.
	c.log.Error("key source rejected, never fetched",
		zap.String("source", e.label), zap.String("result", resultURLRejected), zap.Error(e.reject))
	e.mu.Lock()
	if !e.dropped {
		e.lastErr = e.reject.Error()
		c.metrics.fetches.WithLabelValues(e.label, resultURLRejected).Inc()
	}
	e.mu.Unlock()
}

// fetch loads the source once and publishes the outcome: a good set
// replaces the old one atomically; a failure keeps the old one.
func (c *Cache) fetch(e *entry, call *fetchCall) {
	defer c.wg.Done()
	// The span's parent is the lookup's, but its lifetime is the entry's:
	// a check that gives up must not cancel a load others wait for.
	ctx := trace.ContextWithSpanContext(e.ctx, call.parent)
	if !call.parent.IsValid() {
		ctx = e.ctx
	}
	ctx, span := c.tracer.Start(ctx, "jwks.fetch", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("jwks.source", e.label)))
	start := time.Now()
	body, err := c.read(ctx, e)
	var (
		set *keySet
		res parseResult
	)
	if err == nil {
		set, res, err = parseSet(body)
		switch {
		case errors.Is(err, errNoKeys):
			err = failure(resultNoKeys, err)
		case err != nil:
			err = failure(resultParse, err)
		}
	}
	dur := time.Since(start)
	result := resultOf(err)
	span.SetAttributes(attribute.String("jwks.result", result))
	if err != nil {
		span.SetStatus(codes.Error, result)
	}
	span.End()

	e.mu.Lock()
	dropped := e.dropped
	changed, first := false, false
	kept := 0
	if !dropped {
		c.metrics.fetches.WithLabelValues(e.label, result).Inc()
		c.metrics.fetchDuration.WithLabelValues(e.label).Observe(dur.Seconds())
		if err == nil {
			digest := sha256.Sum256(body)
			changed = digest != e.lastDigest
			e.lastDigest = digest
			first = e.set.Load() == nil
			e.set.Store(set)
			e.lastSuccess = c.opts.Now()
			e.lastErr = ""
			e.stale.Store(false)
			c.metrics.keys.WithLabelValues(e.label).Set(float64(len(set.keys)))
			c.metrics.lastSuccess.WithLabelValues(e.label).Set(float64(e.lastSuccess.UnixNano()) / 1e9)
		} else {
			e.lastErr = err.Error()
			e.stale.Store(true)
			if s := e.set.Load(); s != nil {
				kept = len(s.keys)
			}
		}
	}
	e.mu.Unlock()

	// Log before anyone waiting on this load (Wait, a lookup, the loop)
	// resumes, so what they observe has already been explained.
	if !dropped {
		c.logLoad(e, res, result, dur, err, changed, set, kept)
	}
	// Only one fetch of an entry runs at a time, so only one sees first.
	if first {
		close(e.loaded)
	}
	e.mu.Lock()
	call.err = err
	e.inflight.Store(nil)
	e.mu.Unlock()
	close(call.done)
}

func (c *Cache) logLoad(e *entry, res parseResult, result string, dur time.Duration, err error, changed bool, set *keySet, kept int) {
	if err != nil {
		c.log.Warn("key set load failed",
			zap.String("source", e.label), zap.String("result", result), zap.Duration("duration", dur),
			zap.Int("keys", kept), zap.Error(err))
		// A body that parsed but admitted nothing still explains itself.
		c.logDropped(e, res, true)
		return
	}
	c.logDropped(e, res, changed)
	if changed {
		c.log.Info("key set loaded",
			zap.String("source", e.label), zap.String("result", result), zap.Duration("duration", dur),
			zap.Int("keys", len(set.keys)))
	} else {
		c.log.Debug("key set unchanged",
			zap.String("source", e.label), zap.String("result", result), zap.Duration("duration", dur),
			zap.Int("keys", len(set.keys)))
	}
}

// logDropped warns about refused keys when the
// body is new; an unchanged body repeats them only at debug level.
func (c *Cache) logDropped(e *entry, res parseResult, changed bool) {
	level := zap.DebugLevel
	if changed {
		level = zap.WarnLevel
	}
	for _, d := range res.dropped {
		c.log.Log(level, "key dropped",
			zap.String("source", e.label), zap.String("kid", quoteKid(d.kid)), zap.String("rule", d.rule))
	}
}

// read returns the source's body: a file read, or a fetch bounded by
// FetchTimeout and tied to the entry (not to any request).
func (c *Cache) read(ctx context.Context, e *entry) ([]byte, error) {
	if e.src.File != "" {
		return readFile(e.src.File, c.opts.MaxBodyBytes)
	}
	ctx, cancel := context.WithTimeout(ctx, c.opts.FetchTimeout)
	defer cancel()
	return fetchURL(ctx, c.client, e.src.URL, c.opts.MaxBodyBytes)
}

// quoteKid renders a kid for a log line: quoted, so empty and odd kids are
// visible, and truncated, so a hostile set cannot flood the log.
func quoteKid(kid string) string {
	if len(kid) > maxLoggedKid {
		return strconv.Quote(kid[:maxLoggedKid]) + "..."
	}
	return strconv.Quote(kid)
}

package jwks

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// Defaults for the zero (or negative) fields of Options.
const (
	defaultFetchTimeout       = 5 * time.Second
	defaultMaxBodyBytes       = 1 << 20
	defaultRefreshInterval    = 10 * time.Minute
	defaultMinRefetchInterval = 10 * time.Second
	defaultRetryMin           = time.Second
	defaultRetryMax           = 30 * time.Second
)

// maxLoggedKid bounds how much of a kid a log line repeats.
const maxLoggedKid = 128

// Options configure a Cache. A zero or negative duration or size takes its
// default: FetchTimeout 5s, MaxBodyBytes 1 MiB, RefreshInterval 10m,
// MinRefetchInterval 10s, RetryMin 1s, RetryMax 30s.
type Options struct {
	// FetchTimeout bounds one fetch, body included.
	FetchTimeout time.Duration
	// MaxBodyBytes caps a JWKS body or file; a larger one fails with
	// result too_large.
	MaxBodyBytes int64
	// AllowHTTP allows http:// URLs to non-loopback hosts. http to a
	// loopback host is always allowed.
	AllowHTTP bool
	// RefreshInterval is how often a loaded set is refetched (±10% jitter).
	RefreshInterval time.Duration
	// MinRefetchInterval is the least time between two fetches of one
	// source caused by lookups (unknown kid, or not loaded yet).
	MinRefetchInterval time.Duration
	// RetryMin and RetryMax bound the exponential backoff after a failed
	// load: while a source has never loaded, and also after a failed
	// refresh of a loaded one (stale keys are served meanwhile; the retry
	// is capped at RefreshInterval).
	RetryMin, RetryMax time.Duration
	// Logger receives the cache's logs; nil discards them.
	Logger *zap.Logger
	// Registerer receives the cache's metrics; nil registers them nowhere.
	Registerer prometheus.Registerer
	// Now is the clock for the refetch window and status times; nil is
	// time.Now.
	Now func() time.Time
	// HTTPClient replaces the package's hardened client (tests). Its own
	// redirect and proxy policy then applies; the URL check, status check,
	// size cap and FetchTimeout still do.
	HTTPClient *http.Client
}

// Cache is the process-wide JWKS cache: one entry per Source, loaded and
// refreshed in the background, refetched (rate-limited) when a lookup names
// an unknown kid. A Cache is safe for concurrent use.
type Cache struct {
	opts    Options
	log     *zap.Logger
	client  *http.Client
	metrics *metrics
	// ownClient: the client is ours, so Close may close its idle
	// connections.
	ownClient bool

	// entries is the kept set. It is replaced, never modified, so Key reads
	// it without a lock. mu serialises writers (Sync, Close).
	entries atomic.Pointer[map[Source]*entry]
	mu      sync.Mutex
	closed  atomic.Bool // written under mu
	// wg counts background loops and fetches; Close waits for them.
	wg sync.WaitGroup
}

// entry is the state of one kept source.
type entry struct {
	src    Source
	label  string
	reject error // non-nil: the source may never be loaded

	ctx    context.Context // cancelled when the entry is dropped
	cancel context.CancelFunc

	set          atomic.Pointer[keySet]
	inflight     atomic.Pointer[fetchCall] // written under mu
	refetchAfter atomic.Int64              // unix nanos before which lookups do not fetch
	// stale is set while the latest load failed: the set in hand may lack
	// keys the IdP now publishes, so a kid it lacks is unknowable, not
	// unknown.
	stale  atomic.Bool
	loaded chan struct{} // closed on the first successful load

	missRefetched prometheus.Counter
	missLimited   prometheus.Counter

	mu          sync.Mutex
	dropped     bool
	lastSuccess time.Time
	lastErr     string
	lastDigest  [sha256.Size]byte
}

// fetchCall is one load of a source, shared by everyone who waits for it.
type fetchCall struct {
	done chan struct{}
	err  error // set before done is closed
}

// SourceStatus is the state of one kept source, for /readyz and explain.
type SourceStatus struct {
	Source Source `json:"source"`
	// Loaded is true once a key set has been loaded.
	Loaded bool `json:"loaded"`
	// Keys is the number of keys served now.
	Keys int `json:"keys"`
	// LastSuccess is the time of the last successful load; zero if none.
	LastSuccess time.Time `json:"last_success"`
	// LastError is the failure of the latest load; "" when it succeeded or
	// none has finished yet.
	LastError string `json:"last_error,omitempty"`
}

// New returns a Cache with no sources; Sync gives it some. The proxy
// environment (HTTPS_PROXY, HTTP_PROXY, NO_PROXY) is read now.
func New(opts Options) *Cache {
	if opts.FetchTimeout <= 0 {
		opts.FetchTimeout = defaultFetchTimeout
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = defaultMaxBodyBytes
	}
	if opts.RefreshInterval <= 0 {
		opts.RefreshInterval = defaultRefreshInterval
	}
	if opts.MinRefetchInterval <= 0 {
		opts.MinRefetchInterval = defaultMinRefetchInterval
	}
	if opts.RetryMin <= 0 {
		opts.RetryMin = defaultRetryMin
	}
	if opts.RetryMax <= 0 {
		opts.RetryMax = defaultRetryMax
	}
	opts.RetryMax = max(opts.RetryMax, opts.RetryMin)
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	c := &Cache{opts: opts, log: opts.Logger, client: opts.HTTPClient}
	if c.client == nil {
		c.client = newHTTPClient(opts.FetchTimeout)
		c.ownClient = true
	}
	c.metrics = newMetrics(opts.Registerer, c.log)
	empty := map[Source]*entry{}
	c.entries.Store(&empty)
	return c
}

// Sync makes exactly sources the kept set: new ones start loading in the
// background at once, ones no longer listed are dropped (their background
// work stops and their metric series are deleted). It does not block and is
// idempotent. After Close it does nothing.
func (c *Cache) Sync(sources []Source) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed.Load() {
		return
	}
	old := *c.entries.Load()
	next := make(map[Source]*entry, len(sources))
	for _, src := range sources {
		if _, dup := next[src]; dup {
			continue
		}
		if e, ok := old[src]; ok {
			next[src] = e
			continue
		}
		e := c.newEntry(src)
		next[src] = e
		c.wg.Add(1)
		go c.run(e)
	}
	c.entries.Store(&next)
	for src, e := range old {
		if _, kept := next[src]; !kept {
			c.drop(e)
			c.log.Info("key source dropped", zap.String("source", e.label))
		}
	}
}

func (c *Cache) newEntry(src Source) *entry {
	ctx, cancel := context.WithCancel(context.Background())
	e := &entry{
		src:    src,
		label:  sourceLabel(src),
		reject: checkSource(src, c.opts.AllowHTTP),
		ctx:    ctx,
		cancel: cancel,
		loaded: make(chan struct{}),
	}
	e.missRefetched = c.metrics.kidMiss.WithLabelValues(e.label, missRefetched)
	e.missLimited = c.metrics.kidMiss.WithLabelValues(e.label, missRateLimited)
	return e
}

// drop stops an entry's work and deletes its series. Once dropped is set no
// fetch starts and no finishing fetch touches metrics, so the series stay
// deleted.
func (c *Cache) drop(e *entry) {
	e.mu.Lock()
	e.dropped = true
	c.metrics.forget(e.label)
	e.mu.Unlock()
	e.cancel()
}

// Close stops all background work and waits for it. Key then returns
// ErrUnavailable for every source. Close is idempotent.
func (c *Cache) Close() {
	c.mu.Lock()
	if !c.closed.Load() {
		c.closed.Store(true)
		old := *c.entries.Load()
		empty := map[Source]*entry{}
		c.entries.Store(&empty)
		for _, e := range old {
			c.drop(e)
		}
	}
	c.mu.Unlock()
	c.wg.Wait()
	if c.ownClient {
		c.client.CloseIdleConnections()
	}
}

// Wait blocks until every source in sources has loaded once, or ctx ends;
// then the error wraps ctx.Err() and names the sources still missing. A
// source that is not in the kept set (or is dropped while waiting) is an
// error wrapping ErrUnavailable at once.
func (c *Cache) Wait(ctx context.Context, sources []Source) error {
	for _, src := range sources {
		e := c.lookup(src)
		if e == nil {
			return fmt.Errorf("wait for key source %s: not synced: %w", sourceLabel(src), ErrUnavailable)
		}
		if e.isLoaded() {
			continue // select picks at random: a loaded source must not lose to a done ctx
		}
		select {
		case <-e.loaded:
		case <-e.ctx.Done():
			return fmt.Errorf("wait for key source %s: dropped: %w", e.label, ErrUnavailable)
		case <-ctx.Done():
			return fmt.Errorf("wait for key sources %s: %w", strings.Join(c.missing(sources), ", "), ctx.Err())
		}
	}
	return nil
}

// missing lists the sources among sources that have not loaded yet.
func (c *Cache) missing(sources []Source) []string {
	var out []string
	for _, src := range sources {
		if e := c.lookup(src); e == nil || !e.isLoaded() {
			out = append(out, sourceLabel(src))
		}
	}
	return out
}

// Ready reports whether every kept source has loaded once. A closed Cache
// is never ready.
func (c *Cache) Ready() bool {
	if c.closed.Load() {
		return false
	}
	for _, e := range *c.entries.Load() {
		if !e.isLoaded() {
			return false
		}
	}
	return true
}

// Status reports each kept source, ordered by its label.
func (c *Cache) Status() []SourceStatus {
	m := *c.entries.Load()
	out := make([]SourceStatus, 0, len(m))
	for _, e := range m {
		st := SourceStatus{Source: e.src, Loaded: e.isLoaded()}
		if s := e.set.Load(); s != nil {
			st.Keys = len(s.keys)
		}
		e.mu.Lock()
		st.LastSuccess, st.LastError = e.lastSuccess, e.lastErr
		e.mu.Unlock()
		out = append(out, st)
	}
	slices.SortFunc(out, func(a, b SourceStatus) int { return strings.Compare(a.Source.String(), b.Source.String()) })
	return out
}

// Key returns the key with kid from src's set. A hit takes no lock and
// allocates nothing. On a miss (unknown kid, or the set not loaded yet) one
// fetch per source per MinRefetchInterval is allowed, shared by every
// concurrent caller; the caller waits for it no longer than ctx allows and
// then gets ctx's error. Inside the window a miss is answered at once from
// the cache. The result is the key, ErrKidUnknown (the set is loaded but
// lacks kid) or ErrUnavailable (no set, or src is not kept: only Sync'd
// sources are ever fetched). The returned Key is shared: never modify it.
func (c *Cache) Key(ctx context.Context, src Source, kid string) (*Key, error) {
	e := c.lookup(src)
	if e == nil {
		return nil, ErrUnavailable
	}
	if s := e.set.Load(); s != nil {
		if k := s.keys[kid]; k != nil {
			return k, nil
		}
	}
	return c.miss(ctx, e, kid)
}

// Cached returns the key when the cache already holds it, nil otherwise.
// It never waits, fetches or counts a miss: callers use it to skip work
// (a context, a timer) that only a fetch needs.
func (c *Cache) Cached(src Source, kid string) *Key {
	if e := c.lookup(src); e != nil {
		if s := e.set.Load(); s != nil {
			return s.keys[kid]
		}
	}
	return nil
}

func (c *Cache) lookup(src Source) *entry { return (*c.entries.Load())[src] }

func (c *Cache) miss(ctx context.Context, e *entry, kid string) (*Key, error) {
	if e.reject != nil {
		return nil, ErrUnavailable
	}
	// Lock-free answer inside the window, so a flood of forged kids costs
	// neither I/O nor lock contention.
	if e.inflight.Load() == nil && c.opts.Now().UnixNano() < e.refetchAfter.Load() {
		e.missLimited.Inc()
		return e.answer(kid)
	}
	counted := false
	for {
		call, started, err := c.refetch(e, kid)
		if call == nil {
			k, err := e.answerOr(kid, err)
			if err != nil && !counted {
				e.missLimited.Inc()
			}
			return k, err
		}
		if !counted {
			e.missRefetched.Inc()
			counted = true
		}
		select {
		case <-call.done:
		case <-ctx.Done():
			return nil, fmt.Errorf("wait for key set %s: %w", e.label, ctx.Err())
		}
		if c.lookup(e.src) != e {
			return nil, ErrUnavailable
		}
		k, err := e.answer(kid)
		if err == nil || started {
			return k, err
		}
		// The fetch joined was someone else's, possibly a refresh that
		// began before the key was published: one more round, which the
		// window turns into an immediate answer if a lookup fetched lately.
	}
}

// refetch joins the fetch in flight or, outside the refetch window, starts
// one and opens the window. It returns a nil call when the lookup must be
// answered from the cache, with an error to use if the cache cannot answer
// either (the source was dropped meanwhile).
func (c *Cache) refetch(e *entry, kid string) (call *fetchCall, started bool, err error) {
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
	call = c.startLocked(e)
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

// isLoaded reports whether the first load has been published (its log lines
// included).
func (e *entry) isLoaded() bool {
	select {
	case <-e.loaded:
		return true
	default:
		return false
	}
}

// startOrJoin returns the source's fetch in flight, or starts one. It
// returns nil once the entry is dropped.
func (c *Cache) startOrJoin(e *entry) *fetchCall {
	e.mu.Lock()
	defer e.mu.Unlock()
	if call := e.inflight.Load(); call != nil {
		return call
	}
	return c.startLocked(e)
}

// startLocked starts a fetch; e.mu must be held and nothing be in flight.
func (c *Cache) startLocked(e *entry) *fetchCall {
	if e.dropped {
		return nil
	}
	call := &fetchCall{done: make(chan struct{})}
	e.inflight.Store(call)
	c.wg.Add(1)
	go c.fetch(e, call)
	return call
}

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
	start := time.Now()
	body, err := c.read(e)
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

	e.mu.Lock()
	dropped := e.dropped
	changed, first := false, false
	kept := 0
	if !dropped {
		c.metrics.fetches.WithLabelValues(e.label, result).Inc()
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
func (c *Cache) read(e *entry) ([]byte, error) {
	if e.src.File != "" {
		return readFile(e.src.File, c.opts.MaxBodyBytes)
	}
	ctx, cancel := context.WithTimeout(e.ctx, c.opts.FetchTimeout)
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

package jwks

import (
	"context"
	"crypto/sha256"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
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
	defaultMissWait           = 250 * time.Millisecond
	defaultMaxMissWaiters     = 32
)

// maxLoggedKid bounds how much of a kid a log line repeats.
const maxLoggedKid = 128

// Options configure a Cache. A zero or negative duration or size takes its
// default: FetchTimeout 5s, MaxBodyBytes 1 MiB, RefreshInterval 10m,
// MinRefetchInterval 10s, RetryMin 1s, RetryMax 30s, MissWait 250ms,
// MaxMissWaiters 32.
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
	// MissWait is the longest a lookup of a kid the cache lacks waits for
	// its source's refetch (the caller's context may end the wait sooner).
	// Past it the lookup fails with ErrUnavailable while the refetch goes
	// on for later lookups. Envoy multiplexes every check over a few
	// connections with a bounded number of streams each, so a check parked
	// on a slow IdP holds a stream that valid checks need.
	MissWait time.Duration
	// MaxMissWaiters is how many lookups of one source may wait for its
	// refetch at once; a lookup beyond them fails with ErrUnavailable at
	// once. With MissWait it bounds what a spray of made-up kids during a
	// slow or hanging refetch can hold.
	MaxMissWaiters int
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
	// TracerProvider, when set, traces every load as a "jwks.fetch" span.
	// A load started by a lookup (an unknown kid) is a child of the span
	// in that lookup's context, so a trace of the check that paid for the
	// fetch shows it. nil traces nothing.
	TracerProvider trace.TracerProvider
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
	missLog *zap.Logger // sampled: lookups turned away by the miss bounds
	client  *http.Client
	metrics *metrics
	tracer  trace.Tracer
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
	// waiters counts the lookups waiting for a fetch now (MaxMissWaiters).
	waiters atomic.Int32

	missRefetched   prometheus.Counter
	missLimited     prometheus.Counter
	missBudgetSpent prometheus.Counter
	missWaitersFull prometheus.Counter

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
	// parent is the span context of the lookup that started the load;
	// invalid for background loads.
	parent trace.SpanContext
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
	if opts.MissWait <= 0 {
		opts.MissWait = defaultMissWait
	}
	if opts.MaxMissWaiters <= 0 {
		opts.MaxMissWaiters = defaultMaxMissWaiters
	}
	opts.MaxMissWaiters = min(opts.MaxMissWaiters, math.MaxInt32) // counted in an atomic.Int32
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
	c := &Cache{opts: opts, log: opts.Logger, missLog: sampled(opts.Logger), client: opts.HTTPClient}
	if c.client == nil {
		c.client = newHTTPClient(opts.FetchTimeout)
		c.ownClient = true
	}
	c.metrics = newMetrics(opts.Registerer, c.log)
	tp := opts.TracerProvider
	if tp == nil {
		tp = noop.NewTracerProvider()
	}
	c.tracer = tp.Tracer("github.com/cognito-extauthz/cognito-extauthz/pkg/jwks")
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
	e.missBudgetSpent = c.metrics.kidMiss.WithLabelValues(e.label, missBudgetSpent)
	e.missWaitersFull = c.metrics.kidMiss.WithLabelValues(e.label, missWaitersFull)
	c.metrics.initSource(e.label)
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
// concurrent caller. A caller waits for it at most MissWait, and only if
// fewer than MaxMissWaiters callers already wait; otherwise, or once
// MissWait has passed, it gets ErrUnavailable while the fetch goes on. If
// ctx ends first, it gets ctx's error. Inside the window a miss is answered
// at once from the cache. The result is the key, ErrKidUnknown (the set is
// loaded but lacks kid) or ErrUnavailable (no set, the fetch did not answer
// in time, or src is not kept: only Sync'd sources are ever fetched). The
// returned Key is shared: never modify it.
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
	return c.startLocked(e, trace.SpanContext{})
}

// startLocked starts a fetch; e.mu must be held and nothing be in flight.
func (c *Cache) startLocked(e *entry, parent trace.SpanContext) *fetchCall {
	if e.dropped {
		return nil
	}
	call := &fetchCall{done: make(chan struct{}), parent: parent}
	e.inflight.Store(call)
	c.wg.Add(1)
	go c.fetch(e, call)
	return call
}

// Prepare is the one "fetch keys, then wait" sequence, used at start-up,
// on reload and by explain: it makes sources (and keep, sources still in
// use by checks on an older policy) the cache's kept set, which starts
// fetching any new one, then waits up to timeout for every source in
// sources to load once. A non-nil error names the sources still missing;
// the fetches go on in the background either way.
func (c *Cache) Prepare(ctx context.Context, sources, keep []Source, timeout time.Duration) error {
	c.Sync(slices.Concat(sources, keep)) // Sync drops duplicates
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return c.Wait(wctx, sources)
}

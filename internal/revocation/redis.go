package revocation

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// Log messages of an outage: each logged once per outage.
const (
	msgRedisDown = "revocation redis unreachable; serving the last known list, reconnecting with backoff"
	msgRedisUp   = "revocation redis reachable again; list resynced"
)

// redisSource keeps a full copy of the Redis list in memory: subscribed to
// the channel, it learns each write from its notification, and it reads
// the whole set at the start of every connection and periodically.
//
// Entries learned from Redis are kept until their own time passes, even
// when a resync no longer finds them: a Redis that restarts empty, or a
// failover that loses the last writes, must not let a revoked token pass.
// The list in memory only ever grows (a later time wins) until entries
// expire.
type redisSource struct {
	cfg    RedisConfig
	client *redis.Client
	addr   string
	log    *zap.Logger
	m      *sourceMetrics
	now    func() time.Time
	set    *set

	ready     chan struct{}
	readyOnce sync.Once
	up        atomic.Bool
	// heard is when the list was last known current (Unix nanoseconds):
	// the end of a sync or any frame on a synced connection.
	heard atomic.Int64

	// Used by run's goroutine only.
	down      bool
	downSince time.Time
	// Used by fullSync only (never two at once).
	missing int  // entries held that the last resync did not find
	noTrim  bool // the user may not trim; stop trying
}

func newRedisSource(cfg Config, m *sourceMetrics) (*redisSource, error) {
	opts, err := redisOptions(cfg.Redis)
	if err != nil {
		return nil, err
	}
	if err := credentials(opts, cfg.Redis.Getenv); err != nil {
		return nil, err
	}
	installRedisLogger(cfg.Logger)
	return &redisSource{
		cfg:    cfg.Redis,
		client: redis.NewClient(opts),
		addr:   opts.Addr,
		log:    cfg.Logger.With(zap.String("redis", opts.Addr), zap.String("key", cfg.Redis.Key)),
		m:      m,
		now:    cfg.Now,
		set:    newSet(),
		ready:  make(chan struct{}),
	}, nil
}

// run keeps a session going until ctx ends, reconnecting with exponential
// backoff (with jitter) after a failure.
func (r *redisSource) run(ctx context.Context) {
	backoff := r.cfg.minBackoff
	t := time.NewTimer(time.Hour)
	t.Stop()
	defer t.Stop()
	for {
		synced, err := r.session(ctx)
		if ctx.Err() != nil {
			return
		}
		r.markDown(err)
		if synced {
			backoff = r.cfg.minBackoff
		}
		// Full jitter between half the backoff and the backoff, so a fleet
		// does not reconnect in step after Redis comes back.
		t.Reset(backoff/2 + rand.N(backoff/2+1))
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		backoff = min(2*backoff, r.cfg.maxBackoff)
	}
}

// session subscribes, syncs and applies notifications until something
// fails. synced reports whether it got as far as a full sync.
func (r *redisSource) session(ctx context.Context) (synced bool, err error) {
	sctx, cancel := context.WithCancel(ctx)
	ps := r.client.Subscribe(sctx, r.cfg.Key)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		_ = ps.Close() // ends a receive blocked on the connection
		wg.Wait()
	}()
	// Subscribed before the first read of the set: a write after that
	// read is then always notified.
	if err := r.confirm(sctx, ps); err != nil {
		return false, err
	}
	msgs := make(chan string, 1024)
	recvErr := make(chan error, 1)
	wg.Go(func() { recvErr <- r.receive(sctx, ps, msgs) })
	syncDone := make(chan error, 1)
	var syncing bool
	var lastSync time.Time // wall clock: it schedules timers
	startSync := func() {
		syncing, lastSync = true, time.Now()
		wg.Go(func() { syncDone <- r.fullSync(sctx) })
	}
	startSync()
	tick := time.NewTicker(r.cfg.ResyncInterval)
	defer tick.Stop()
	// A notification that names no entry asks for a resync, at most one
	// per resyncGap; want remembers one asked for during a sync.
	var soon <-chan time.Time
	want := false
	arm := func() {
		if soon == nil {
			soon = time.After(max(0, r.cfg.resyncGap-time.Since(lastSync)))
		}
	}
	for {
		select {
		case <-ctx.Done():
			return synced, ctx.Err()
		case err := <-recvErr:
			return synced, err
		case err := <-syncDone:
			syncing = false
			if err != nil {
				return synced, err
			}
			if !synced {
				synced = true
				r.markUp()
			}
			if want {
				arm()
			}
		case p := <-msgs:
			again, err := r.apply(sctx, p, msgs)
			if err != nil {
				return synced, err
			}
			if again {
				want = true
				arm()
			}
		case <-tick.C:
			if !syncing {
				startSync()
			}
		case <-soon:
			soon = nil
			if !syncing {
				want = false
				startSync()
			}
		}
	}
}

// confirm waits for the subscription's acknowledgement.
func (r *redisSource) confirm(ctx context.Context, ps *redis.PubSub) error {
	msg, err := ps.ReceiveTimeout(ctx, 2*r.cfg.HealthInterval)
	if err != nil {
		return fmt.Errorf("subscribe %s: %w", r.cfg.Key, err)
	}
	if s, ok := msg.(*redis.Subscription); !ok || s.Kind != "subscribe" {
		return fmt.Errorf("subscribe %s: unexpected reply %v", r.cfg.Key, msg)
	}
	return nil
}

// receive passes every notification's payload to msgs until the
// connection fails or ctx ends. A connection silent for HealthInterval is
// pinged; one still silent after another is declared dead.
func (r *redisSource) receive(ctx context.Context, ps *redis.PubSub, msgs chan<- string) error {
	pinged := false
	for {
		msg, err := ps.ReceiveTimeout(ctx, r.cfg.HealthInterval)
		if err != nil {
			switch {
			case ctx.Err() != nil:
				return ctx.Err()
			case !isTimeout(err):
				return fmt.Errorf("receive: %w", err)
			case pinged:
				return fmt.Errorf("no answer to a ping within %v", r.cfg.HealthInterval)
			}
			if err := ps.Ping(ctx); err != nil {
				return fmt.Errorf("ping: %w", err)
			}
			pinged = true
			continue
		}
		pinged = false
		if r.up.Load() {
			r.touch()
		}
		switch msg := msg.(type) {
		case *redis.Message:
			select {
			case msgs <- msg.Payload:
			case <-ctx.Done():
				return ctx.Err()
			}
		case *redis.Subscription:
			if msg.Kind != "subscribe" {
				return fmt.Errorf("subscription ended: %s %s", msg.Kind, msg.Channel)
			}
		}
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func (r *redisSource) touch() { r.heard.Store(r.now().UnixNano()) }

func (r *redisSource) markUp() {
	r.up.Store(true)
	r.touch()
	r.m.setUp(true)
	first := false
	r.readyOnce.Do(func() { close(r.ready); first = true })
	switch {
	case r.down:
		r.down = false
		r.log.Info(msgRedisUp,
			zap.Duration("outage", r.now().Sub(r.downSince)), zap.Int("entries", r.set.len()))
	case first:
		r.log.Info("revocation list synced from redis", zap.Int("entries", r.set.len()))
	}
}

// markDown records a failed session: logged once per outage, counted
// every time.
func (r *redisSource) markDown(err error) {
	r.up.Store(false)
	r.m.setUp(false)
	r.m.count(ResultFailure, 1)
	if r.down {
		r.log.Debug("revocation redis still unreachable", zap.Error(err))
		return
	}
	r.down, r.downSince = true, r.now()
	var age time.Duration
	if h := r.heard.Load(); h != 0 {
		age = r.now().Sub(time.Unix(0, h))
	}
	r.log.Warn(msgRedisDown,
		zap.Error(err), zap.Int("entries", r.set.len()), zap.Bool("synced_before", r.heard.Load() != 0),
		zap.Duration("list_age", age))
}

// stale reports whether the list is older than staleAfter because Redis
// is unreachable, or was never read.
func (r *redisSource) stale(now time.Time, staleAfter time.Duration) bool {
	h := r.heard.Load()
	if h == 0 {
		return true
	}
	if staleAfter <= 0 || r.up.Load() {
		return false
	}
	return now.Sub(time.Unix(0, h)) > staleAfter
}

// redisLog receives go-redis's own log lines, which would otherwise go to
// stderr; go-redis has one logger per process, so the last List's wins.
var (
	redisLog     atomic.Pointer[zap.Logger]
	redisLogOnce sync.Once
)

type redisLogger struct{}

func (redisLogger) Printf(_ context.Context, format string, v ...any) {
	if l := redisLog.Load(); l != nil {
		l.Debug("redis client", zap.String("detail", fmt.Sprintf(format, v...)))
	}
}

func installRedisLogger(l *zap.Logger) {
	redisLog.Store(l.Named("go-redis"))
	redisLogOnce.Do(func() { redis.SetLogger(redisLogger{}) })
}

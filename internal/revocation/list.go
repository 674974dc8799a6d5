package revocation

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/cognito-extauthz/cognito-extauthz/internal/watch"
)

// List is the deny list in force: the entries of the file and of Redis.
// Its lookups are safe for concurrent use with every update; a nil *List
// is a list that revokes nothing and is never stale.
type List struct {
	cfg   Config
	log   *zap.Logger
	file  *fileSource  // nil without a file
	redis *redisSource // nil without Redis
	ready chan struct{}

	mu      sync.Mutex
	state   int // listNew, listStarted, listClosed
	cancel  context.CancelFunc
	bgCtx   context.Context
	wg      sync.WaitGroup
	closeFn func() error
}

const (
	listNew = iota
	listStarted
	listClosed
)

// New checks cfg, loads the file (a load error names file:line) and
// prepares the Redis client without connecting. The list serves the file's
// entries at once; Start follows the file and Redis.
func New(cfg Config) (*List, error) {
	if err := errors.Join(checkConfig(cfg)...); err != nil {
		return nil, err
	}
	c := cfg.withDefaults()
	l := &List{cfg: c, log: c.Logger, ready: make(chan struct{})}
	l.bgCtx, l.cancel = context.WithCancel(context.Background())
	m := newMetrics(c.Registerer, c.Logger)
	if c.File != "" {
		l.file = &fileSource{
			path: c.File, settle: c.FileSettle, now: c.Now,
			log: c.Logger.Named("file"), m: m.source(SourceFile),
		}
		if err := l.file.load(context.Background(), false); err != nil {
			l.cancel()
			return nil, err
		}
	}
	if c.Redis.URL != "" {
		r, err := newRedisSource(c, m.source(SourceRedis))
		if err != nil {
			l.cancel()
			return nil, err
		}
		l.redis = r
		l.closeFn = r.client.Close
	} else {
		close(l.ready)
	}
	return l, nil
}

// Start follows the sources until ctx ends or Close is called: it watches
// the file (reloading it when its content changes and has settled) and
// keeps a connection to Redis (a full sync at start, on every reconnect and
// every ResyncInterval; notifications between). It also drops expired
// entries every minute. It returns at once; the list is ready when Redis
// has been read once (see Ready and Wait).
func (l *List) Start(ctx context.Context) error {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.state != listNew {
		return errors.New("revocation: list already started or closed")
	}
	l.state = listStarted
	bg := l.bgCtx
	stop := context.AfterFunc(ctx, l.cancel)
	l.wg.Go(func() {
		<-bg.Done()
		stop()
	})
	if l.file != nil {
		l.wg.Go(func() { l.watchFile(bg) })
	}
	if l.redis != nil {
		l.wg.Go(func() { l.redis.run(bg) })
		l.wg.Go(func() {
			select {
			case <-l.redis.ready:
				close(l.ready)
			case <-bg.Done():
			}
		})
	}
	l.wg.Go(func() { l.sweepLoop(bg) })
	return nil
}

func (l *List) watchFile(ctx context.Context) {
	reload := func() { _ = l.file.load(ctx, true) }
	var wg sync.WaitGroup
	// The watcher reports changes relative to its own first read; one
	// reload once it is surely up covers a change made before that.
	wg.Go(func() {
		t := time.NewTimer(l.cfg.FilePoll + time.Second)
		defer t.Stop()
		select {
		case <-ctx.Done():
		case <-t.C:
			reload()
		}
	})
	if err := watch.Watch(ctx, l.cfg.File, l.cfg.FilePoll, l.log.Named("watch"), reload); err != nil {
		l.log.Error("revocation list file watch stopped; the list in force stays", zap.Error(err))
	}
	wg.Wait()
}

func (l *List) sweepLoop(ctx context.Context) {
	t := time.NewTicker(l.cfg.sweepEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			l.sweep()
		}
	}
}

// sweep drops the entries no live token can match any more.
func (l *List) sweep() {
	now := l.cfg.Now()
	if l.file != nil {
		if s := l.file.set.Load(); s != nil && s.sweep(now) > 0 {
			l.file.m.entries.Set(float64(s.len()))
		}
	}
	if l.redis != nil && l.redis.set.sweep(now) > 0 {
		l.redis.m.entries.Set(float64(l.redis.set.len()))
	}
}

// Close stops following the sources and waits for that, then closes the
// Redis client. The list keeps answering lookups with what it holds.
func (l *List) Close() error {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	if l.state == listClosed {
		l.mu.Unlock()
		return nil
	}
	l.state = listClosed
	l.mu.Unlock()
	l.cancel()
	l.wg.Wait()
	if l.closeFn != nil {
		return l.closeFn()
	}
	return nil
}

// Ready reports whether every source has been read once: the file at New,
// Redis at its first full sync after Start.
func (l *List) Ready() bool {
	if l == nil {
		return true
	}
	select {
	case <-l.ready:
		return true
	default:
		return false
	}
}

// Wait blocks until Ready or ctx ends.
func (l *List) Wait(ctx context.Context) error {
	if l == nil {
		return nil
	}
	select {
	case <-l.ready:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("revocation list not synced: %w", ctx.Err())
	}
}

// Stale reports whether checks must not rely on the list at now: Redis is
// configured and has never been read, or StaleAfter > 0 and Redis has been
// unreachable for longer than that. The decision answers 503
// revocation_unavailable then (after Revoked, so a token known to be
// revoked still gets its 401). Two atomic loads; false for a nil list.
func (l *List) Stale(now time.Time) bool {
	if l == nil || l.redis == nil {
		return false
	}
	return l.redis.stale(now, l.cfg.StaleAfter)
}

// Revoked reports the entry that revokes a token with these claims at now,
// if any: a jti entry naming its jti or origin_jti (until the entry's time),
// or a sub entry whose time is after its iat. The file is consulted first.
// It never locks or allocates; with an empty list it costs a few loads.
// Match.ID is the token's value of the claim that matched.
func (l *List) Revoked(jti, originJTI, sub string, iat, now time.Time) (Match, bool) {
	if l == nil {
		return Match{}, false
	}
	var fs, rs *set
	if l.file != nil {
		if fs = l.file.set.Load(); fs.len() == 0 {
			fs = nil
		}
	}
	if l.redis != nil {
		if rs = l.redis.set; rs.len() == 0 {
			rs = nil
		}
	}
	if fs == nil && rs == nil {
		return Match{}, false
	}
	var ck claimKeys
	ck.init(jti, originJTI, sub, iat, now)
	if fs != nil {
		if m, ok := fs.lookup(&ck); ok {
			m.Source = SourceFile
			return m, true
		}
	}
	if rs != nil {
		if m, ok := rs.lookup(&ck); ok {
			m.Source = SourceRedis
			return m, true
		}
	}
	return Match{}, false
}

// Len is the number of entries held per source (expired ones not yet
// swept included).
func (l *List) Len() (file, redis int) {
	if l == nil {
		return 0, 0
	}
	if l.file != nil {
		file = l.file.set.Load().len()
	}
	if l.redis != nil {
		redis = l.redis.set.len()
	}
	return file, redis
}

// Write adds an entry where the list lives: Redis when configured (added
// and announced in one transaction; every replica applies it within a
// second), else the file (rewritten through a temporary file and a rename,
// then reloaded here). A jti entry without a time lives DefaultJTILifetime
// from now; a sub entry without a time revokes the tokens issued until
// now. Times are rounded up to the second. It returns the entry written.
// Write needs no Start.
func (l *List) Write(ctx context.Context, e Entry) (Entry, error) {
	if l == nil {
		return Entry{}, errors.New("revocation: no list configured")
	}
	now := l.cfg.Now()
	if e.Time.IsZero() {
		if e.Kind == JTI {
			e.Time = now.Add(DefaultJTILifetime)
		} else {
			e.Time = now
		}
	}
	e.Time = time.Unix(ceilUnix(e.Time), 0).UTC()
	if err := e.Validate(); err != nil {
		return Entry{}, fmt.Errorf("revocation: %w", err)
	}
	if !live(e, now) {
		return Entry{}, fmt.Errorf("revocation: %s no longer matches any live token", e)
	}
	if l.redis != nil {
		return e, l.redis.write(ctx, e, now)
	}
	if err := writeFile(l.cfg.File, e, now); err != nil {
		return Entry{}, err
	}
	return e, l.file.load(ctx, false)
}

// ReloadFile reads the file again now, without waiting for it to settle,
// and applies it if it changed and parses; otherwise the list in force
// stays. Start already reloads on every change; this is for callers that
// know the file was replaced whole.
func (l *List) ReloadFile() error {
	if l == nil || l.file == nil {
		return nil
	}
	return l.file.load(l.bgCtx, false)
}

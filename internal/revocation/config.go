package revocation

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
	"go.uber.org/zap"

	"github.com/cognito-extauthz/cognito-extauthz/pkg/policy"
)

// Environment variables that hold the Redis password. The policy never
// does: a URL with a password is refused.
const (
	PasswordEnv     = "EXTAUTHZ_REVOCATION_REDIS_PASSWORD"
	PasswordFileEnv = "EXTAUTHZ_REVOCATION_REDIS_PASSWORD_FILE"
)

// Defaults of a zero Config.
const (
	DefaultKey            = "extauthz:revoked"
	DefaultFilePoll       = 5 * time.Second
	DefaultResyncInterval = 5 * time.Minute
	DefaultHealthInterval = 5 * time.Second
)

// Config says where the deny list lives. At least one of File and
// Redis.URL is set; with both, entries from both apply and Write goes to
// Redis.
type Config struct {
	// File is the path of the list file, already resolved (the policy
	// names it relative to itself). It is loaded by New and reloaded when
	// it changes.
	File string
	// FilePoll is the poll interval of the file watch, a fallback for
	// filesystems without inotify (0: DefaultFilePoll).
	FilePoll time.Duration
	// FileSettle is how long a changed file must keep its content before
	// it is applied (0: DefaultFileSettle; negative: none).
	FileSettle time.Duration
	// Redis shares one list across a fleet; off unless URL is set.
	Redis RedisConfig
	// StaleAfter > 0 makes Stale report true once Redis has been
	// unreachable for that long. 0 keeps the last known list however old.
	StaleAfter time.Duration
	Logger     *zap.Logger
	// Registerer gets the metrics; nil: none.
	Registerer prometheus.Registerer
	// Now is the clock (nil: time.Now): entry expiry, sweeps and the age
	// of the list.
	Now func() time.Time

	// sweepEvery is how often expired entries are dropped (0: a minute).
	sweepEvery time.Duration
}

// RedisConfig is the Redis source.
type RedisConfig struct {
	// URL is redis://[user@]host[:port][/db] or rediss:// for TLS. It
	// must not carry a password or query parameters.
	URL string
	// Key is the sorted set that holds the list and the pub/sub channel
	// that announces writes (0: DefaultKey).
	Key string
	// CAFile is a PEM bundle that verifies the server's certificate
	// (rediss only); empty: the system roots.
	CAFile string
	// ResyncInterval is how often the whole list is read again, so a
	// missed notification heals (0: DefaultResyncInterval).
	ResyncInterval time.Duration
	// HealthInterval: a subscription silent this long is pinged, and one
	// silent twice this long is given up and reconnected; a command
	// unanswered this long fails (0: DefaultHealthInterval).
	HealthInterval time.Duration
	// Getenv reads PasswordEnv and PasswordFileEnv (nil: os.Getenv).
	Getenv func(string) string

	// minBackoff and maxBackoff bound the reconnect backoff (0: 100 ms and
	// 30 s); resyncGap is the least time between two resyncs asked for by
	// notifications that name no entry (0: 10 s). Tests shorten them.
	minBackoff, maxBackoff, resyncGap time.Duration
}

func (c *Config) withDefaults() Config {
	d := *c
	if d.FilePoll == 0 {
		d.FilePoll = DefaultFilePoll
	}
	if d.FileSettle == 0 {
		d.FileSettle = DefaultFileSettle
	}
	if d.Logger == nil {
		d.Logger = zap.NewNop()
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.sweepEvery == 0 {
		d.sweepEvery = time.Minute
	}
	r := &d.Redis
	if r.Key == "" {
		r.Key = DefaultKey
	}
	if r.ResyncInterval == 0 {
		r.ResyncInterval = DefaultResyncInterval
	}
	if r.HealthInterval == 0 {
		r.HealthInterval = DefaultHealthInterval
	}
	if r.Getenv == nil {
		r.Getenv = os.Getenv
	}
	if r.minBackoff == 0 {
		r.minBackoff = 100 * time.Millisecond
	}
	if r.maxBackoff == 0 {
		r.maxBackoff = 30 * time.Second
	}
	if r.resyncGap == 0 {
		r.resyncGap = 10 * time.Second
	}
	return d
}

// Validate checks a configuration offline, the list file included: every
// problem, each file problem with its file:line. It does not connect to
// Redis or read the password.
func Validate(cfg Config) error {
	errs := checkConfig(cfg)
	if cfg.File != "" {
		if _, err := ParseFile(cfg.File); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// checkConfig reports the problems of cfg but those of the file.
func checkConfig(cfg Config) []error {
	var errs []error
	if cfg.File == "" && cfg.Redis.URL == "" {
		errs = append(errs, errors.New("revocation: neither a file nor a redis url"))
	}
	if cfg.StaleAfter < 0 {
		errs = append(errs, fmt.Errorf("revocation: staleAfter %v is negative", cfg.StaleAfter))
	}
	if cfg.StaleAfter > 0 && cfg.Redis.URL == "" {
		errs = append(errs, errors.New("revocation: staleAfter applies to redis only, and no redis url is set"))
	}
	if cfg.FilePoll < 0 {
		errs = append(errs, fmt.Errorf("revocation: file poll interval %v is negative", cfg.FilePoll))
	}
	if cfg.Redis.URL != "" {
		if _, err := redisOptions(cfg.Redis); err != nil {
			errs = append(errs, err)
		}
	} else if cfg.Redis.Key != "" || cfg.Redis.CAFile != "" {
		errs = append(errs, errors.New("revocation: redis settings without a redis url"))
	}
	return errs
}

// redisOptions checks the Redis settings and turns them into client
// options, without credentials.
func redisOptions(rc RedisConfig) (*redis.Options, error) {
	u, err := url.Parse(rc.URL)
	if err != nil {
		// url.Parse quotes the whole URL, password included: not that.
		return nil, errors.New("revocation: redis url does not parse")
	}
	switch {
	case u.Scheme != "redis" && u.Scheme != "rediss":
		return nil, fmt.Errorf("revocation: redis url scheme %q: want redis:// or rediss://", u.Scheme)
	case u.User != nil && hasPassword(u.User):
		return nil, fmt.Errorf("revocation: the redis url carries a password; remove it and set %s or %s", PasswordEnv, PasswordFileEnv)
	case u.Host == "" || u.Hostname() == "":
		return nil, errors.New("revocation: redis url has no host")
	case u.RawQuery != "" || u.ForceQuery:
		return nil, errors.New("revocation: redis url query parameters are not supported")
	case u.Fragment != "":
		return nil, errors.New("revocation: redis url has a fragment")
	}
	if err := checkKey(rc.Key); err != nil {
		return nil, err
	}
	if rc.ResyncInterval < 0 || rc.HealthInterval < 0 {
		return nil, errors.New("revocation: redis resync and health intervals must not be negative")
	}
	opts, err := redis.ParseURL(rc.URL)
	if err != nil {
		return nil, fmt.Errorf("revocation: redis url: %w", err)
	}
	if rc.CAFile != "" {
		if opts.TLSConfig == nil {
			return nil, errors.New("revocation: a redis CA file needs a rediss:// url")
		}
		pem, err := os.ReadFile(rc.CAFile)
		if err != nil {
			return nil, fmt.Errorf("revocation: redis CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("revocation: redis CA file %q holds no PEM certificate", rc.CAFile)
		}
		opts.TLSConfig.RootCAs = pool
	}
	// A command unanswered for a health interval fails, as a silent
	// subscription does; the session then reconnects and resyncs, so
	// go-redis need not retry on its own.
	health := rc.HealthInterval
	if health == 0 {
		health = DefaultHealthInterval
	}
	opts.DialTimeout = 5 * time.Second
	opts.ReadTimeout = health
	opts.WriteTimeout = health
	opts.ContextTimeoutEnabled = true
	opts.PoolSize = 4
	opts.MaxRetries = -1
	opts.DisableIdentity = true
	opts.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	return opts, nil
}

func hasPassword(u *url.Userinfo) bool {
	_, set := u.Password()
	return set
}

// checkKey reports a key that is empty, long, or not printable ASCII
// without spaces (it is typed into redis-cli commands).
func checkKey(k string) error {
	if k == "" {
		return nil // the default
	}
	if len(k) > 256 {
		return errors.New("revocation: redis key longer than 256 bytes")
	}
	for i := 0; i < len(k); i++ {
		if c := k[i]; c <= ' ' || c > '~' {
			return fmt.Errorf("revocation: redis key %q: printable ASCII without spaces only", k)
		}
	}
	return nil
}

// credentials sets the password from the environment: PasswordEnv, or
// the file PasswordFileEnv names, re-read on every new connection so a
// rotated Secret applies at the next reconnect.
func credentials(opts *redis.Options, getenv func(string) string) error {
	pw, file := getenv(PasswordEnv), getenv(PasswordFileEnv)
	switch {
	case pw != "" && file != "":
		return fmt.Errorf("revocation: both %s and %s are set; set one", PasswordEnv, PasswordFileEnv)
	case pw != "":
		opts.Password = pw
	case file != "":
		if _, err := readPassword(file); err != nil {
			return err
		}
		user := opts.Username
		opts.CredentialsProviderContext = func(context.Context) (string, string, error) {
			p, err := readPassword(file)
			return user, p, err
		}
	}
	return nil
}

// readPassword reads a password file; a trailing newline (echo > file,
// kubectl create secret --from-file) is not part of the password.
func readPassword(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("revocation: redis password file (%s): %w", PasswordFileEnv, err)
	}
	p := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	if p == "" {
		return "", fmt.Errorf("revocation: redis password file %q is empty", path)
	}
	return p, nil
}

// PolicyConfig is the Config of a policy's revocation block, nil for a
// policy without one. The service fills in the rest (logger, registerer,
// the file's poll and settle times).
func PolicyConfig(r *policy.Revocation) *Config {
	if r == nil {
		return nil
	}
	return &Config{
		File:       r.File,
		Redis:      RedisConfig{URL: r.RedisURL, Key: r.RedisKey, CAFile: r.RedisCAFile},
		StaleAfter: r.StaleAfter,
	}
}

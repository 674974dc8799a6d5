// Package tlsfiles serves a TLS certificate, its key and an optional client
// CA bundle from PEM files, and picks up new files without a restart: the
// way cert-manager (through the kubelet's ..data symlink swap of a mounted
// Secret) or an operator rewriting the files in place rotates them.
//
// A listener gets its tls.Config from Config once; every handshake then asks
// for the pair in force (GetConfigForClient), so a rotation applies to the
// next connection and never touches established ones. A new set of files
// that does not load (unreadable, truncated, a key that does not match the
// certificate, an expired certificate, a CA bundle without a certificate)
// is logged and counted, and the last good set stays in force.
package tlsfiles

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/cognito-extauthz/cognito-extauthz/internal/watch"
)

// Files names the PEM files of one listener.
type Files struct {
	Cert string // certificate chain, leaf first
	Key  string // private key of the leaf
	// ClientCA, when set, turns on mutual TLS: a client must present a
	// certificate that chains to one of these CAs.
	ClientCA string
}

// Validate reports a combination of files that cannot work.
func (f Files) Validate() error {
	switch {
	case f.Cert == "" && f.Key == "" && f.ClientCA == "":
		return errors.New("no certificate, key or client CA given")
	case f.Cert == "" && f.Key != "":
		return errors.New("a key without a certificate")
	case f.Cert != "" && f.Key == "":
		return errors.New("a certificate without a key")
	case f.Cert == "" && f.ClientCA != "":
		return errors.New("a client CA without a certificate and key: mutual TLS needs TLS")
	}
	return nil
}

// Options tune a Reloader. The zero value works.
type Options struct {
	// Listener names the listener in logs and in the metrics' listener
	// label ("grpc", "http_authz").
	Listener string
	// NextProtos are the ALPN protocols offered: gRPC needs "h2", an HTTP
	// server "h2" and "http/1.1". They must be set here because the
	// config a handshake uses is the one GetConfigForClient returns, not
	// the one the listener was given (grpc-go and net/http add "h2" only to
	// the latter).
	NextProtos []string
	// Poll is the poll interval of the file watch, a fallback for
	// filesystems without inotify; 0 means 5s.
	Poll   time.Duration
	Logger *zap.Logger
}

// Reloader holds the certificate in force and replaces it when the files
// change. It is a prometheus.Collector: register it to export its metrics.
type Reloader struct {
	files Files
	opts  Options
	log   *zap.Logger

	cur atomic.Pointer[state]
	mu  sync.Mutex // one load at a time

	reloads  *prometheus.CounterVec
	notAfter prometheus.Gauge
}

// state is one loaded set of files.
type state struct {
	cfg    *tls.Config
	leaf   *x509.Certificate
	digest [sha256.Size]byte
}

// New loads the files once and fails when they do not make a working
// configuration: the service must never start on a listener that cannot
// do TLS, or one that would accept any client when mTLS was asked for.
func New(files Files, opts Options) (*Reloader, error) {
	if err := files.Validate(); err != nil {
		return nil, err
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.Poll == 0 {
		opts.Poll = 5 * time.Second
	}
	labels := prometheus.Labels{"listener": opts.Listener}
	r := &Reloader{
		files: files,
		opts:  opts,
		log:   opts.Logger,
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name:        "extauthz_tls_reloads_total",
			Help:        "Reloads of the TLS certificate files by result (success|failure).",
			ConstLabels: labels,
		}, []string{"result"}),
		notAfter: prometheus.NewGauge(prometheus.GaugeOpts{
			Name:        "extauthz_tls_certificate_expiry_timestamp_seconds",
			Help:        "NotAfter of the TLS certificate in force, in Unix seconds.",
			ConstLabels: labels,
		}),
	}
	for _, res := range []string{"success", "failure"} {
		r.reloads.WithLabelValues(res)
	}
	st, err := r.load()
	if err != nil {
		return nil, err
	}
	r.use(st)
	r.log.Info("tls certificate loaded", r.fields(st)...)
	return r, nil
}

// Config returns the configuration to give the listener. It stays valid
// across rotations: each handshake uses the files in force at that moment.
func (r *Reloader) Config() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: slices.Clone(r.opts.NextProtos),
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return r.cur.Load().cfg, nil
		},
	}
}

// Leaf is the certificate in force.
func (r *Reloader) Leaf() *x509.Certificate { return r.cur.Load().leaf }

// MutualTLS reports whether clients must present a certificate.
func (r *Reloader) MutualTLS() bool { return r.files.ClientCA != "" }

// Run watches the files until ctx ends and reloads them when any changes.
// It returns nil when ctx ends, an error when no file can be watched.
func (r *Reloader) Run(ctx context.Context) error {
	paths := []string{r.files.Cert, r.files.Key}
	if r.files.ClientCA != "" {
		paths = append(paths, r.files.ClientCA)
	}
	slices.Sort(paths)
	paths = slices.Compact(paths)
	onChange := func() { _ = r.Reload() }

	var wg sync.WaitGroup
	errs := make([]error, len(paths))
	for i, p := range paths {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = watch.Watch(ctx, p, r.opts.Poll, r.log.Named("watch"), onChange)
		}()
	}
	// Each watcher reports changes relative to its own first read; a
	// rotation between New's load and those reads would go unseen until
	// the next one. One reload once they are surely up closes the gap (a
	// no-op when nothing changed).
	t := time.NewTimer(time.Second)
	select {
	case <-ctx.Done():
	case <-t.C:
		_ = r.Reload()
	}
	t.Stop()
	wg.Wait()
	return errors.Join(errs...)
}

// Reload reads the files again and puts them in force when they load;
// otherwise the set in force stays, and the error is logged, counted and
// returned. Unchanged files are a no-op.
func (r *Reloader) Reload() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	st, err := r.load()
	if err != nil {
		r.reloads.WithLabelValues("failure").Inc()
		r.log.Error("tls reload rejected; keeping the certificate in force",
			append(r.fields(r.cur.Load()), zap.Error(err))...)
		return err
	}
	if st.digest == r.cur.Load().digest {
		return nil
	}
	prev := r.cur.Load()
	r.use(st)
	r.reloads.WithLabelValues("success").Inc()
	r.log.Info("tls certificate reloaded",
		append(r.fields(st), zap.String("previous_serial", prev.leaf.SerialNumber.Text(16)))...)
	return nil
}

func (r *Reloader) use(st *state) {
	r.cur.Store(st)
	r.notAfter.Set(float64(st.leaf.NotAfter.Unix()))
}

func (r *Reloader) fields(st *state) []zap.Field {
	return []zap.Field{
		zap.String("listener", r.opts.Listener),
		zap.String("cert", r.files.Cert),
		zap.String("subject", st.leaf.Subject.String()),
		zap.String("serial", st.leaf.SerialNumber.Text(16)),
		// A string, not zap.Time: the console encoder writes times as the
		// time of day only, and an expiry needs its date in both formats.
		zap.String("not_after", st.leaf.NotAfter.UTC().Format(time.RFC3339)),
		zap.Bool("mutual_tls", r.MutualTLS()),
	}
}

// load reads and checks every file and builds the per-handshake config.
func (r *Reloader) load() (*state, error) {
	certPEM, err := os.ReadFile(r.files.Cert)
	if err != nil {
		return nil, fmt.Errorf("read certificate: %w", err)
	}
	keyPEM, err := os.ReadFile(r.files.Key)
	if err != nil {
		return nil, fmt.Errorf("read key: %w", err)
	}
	// X509KeyPair also proves the key belongs to the certificate, which is
	// what catches a rotation caught half-way (new cert, old key).
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("certificate %q and key %q: %w", r.files.Cert, r.files.Key, err)
	}
	leaf := pair.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
			return nil, fmt.Errorf("certificate %q: %w", r.files.Cert, err)
		}
	}
	if time.Now().After(leaf.NotAfter) {
		return nil, fmt.Errorf("certificate %q expired at %s", r.files.Cert, leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	cfg := &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{pair},
		NextProtos:   slices.Clone(r.opts.NextProtos),
	}
	h := sha256.New()
	h.Write(certPEM)
	h.Write([]byte{0})
	h.Write(keyPEM)
	if r.files.ClientCA != "" {
		caPEM, err := os.ReadFile(r.files.ClientCA)
		if err != nil {
			return nil, fmt.Errorf("read client CA: %w", err)
		}
		pool, err := parseCAs(caPEM)
		if err != nil {
			return nil, fmt.Errorf("client CA %q: %w", r.files.ClientCA, err)
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
		// A resumed session skips client certificate verification, so a
		// ticket issued before a CA was removed from the bundle would keep
		// that CA's clients in. Every connection does a full handshake.
		cfg.SessionTicketsDisabled = true
		h.Write([]byte{0})
		h.Write(caPEM)
	}
	st := &state{cfg: cfg, leaf: leaf}
	h.Sum(st.digest[:0])
	return st, nil
}

// parseCAs accepts a bundle of CERTIFICATE blocks and nothing else: a
// stray key or a truncated block means the file is not what it should be.
func parseCAs(data []byte) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	var n int
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("PEM block %d is %q, want CERTIFICATE", n+1, b.Type)
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %d: %w", n+1, err)
		}
		pool.AddCert(c)
		n++
	}
	// pem.Decode skips text around blocks (bundles carry comments), but a
	// block that starts and does not end is a file caught mid-write.
	if bytes.Contains(data, []byte("-----BEGIN")) {
		return nil, errors.New("a PEM block that does not end (truncated file?)")
	}
	if n == 0 {
		return nil, errors.New("no CERTIFICATE block")
	}
	return pool, nil
}

// Describe implements prometheus.Collector.
func (r *Reloader) Describe(ch chan<- *prometheus.Desc) {
	r.reloads.Describe(ch)
	r.notAfter.Describe(ch)
}

// Collect implements prometheus.Collector.
func (r *Reloader) Collect(ch chan<- prometheus.Metric) {
	r.reloads.Collect(ch)
	r.notAfter.Collect(ch)
}

package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"go.uber.org/zap"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/cognito-extauthz/cognito-extauthz/internal/tlsfiles"
)

// listenerTLSFlags are the TLS files of one listener of serve.
type listenerTLSFlags struct {
	prefix string // "grpc" or "http-authz"
	files  tlsfiles.Files
}

func (f *listenerTLSFlags) register(fs *flag.FlagSet, prefix, what string) {
	f.prefix = prefix
	fs.StringVar(&f.files.Cert, prefix+"-tls-cert", "", "PEM certificate chain: serve "+what+" over TLS (needs --"+prefix+"-tls-key); re-read when the file changes")
	fs.StringVar(&f.files.Key, prefix+"-tls-key", "", "PEM private key of --"+prefix+"-tls-cert")
	fs.StringVar(&f.files.ClientCA, prefix+"-tls-client-ca", "", "PEM CA bundle: require and verify a client certificate from these CAs (mTLS)")
}

// source builds the reloader, or nil when TLS is off. Any error means the
// listener cannot serve as asked: serve must not start in plaintext then.
func (f *listenerTLSFlags) source(poll time.Duration, log *zap.Logger, nextProtos ...string) (*tlsfiles.Reloader, error) {
	if f.files == (tlsfiles.Files{}) {
		return nil, nil
	}
	if err := f.files.Validate(); err != nil {
		return nil, fmt.Errorf("--%s-tls-*: %w", f.prefix, err)
	}
	r, err := tlsfiles.New(f.files, tlsfiles.Options{
		Listener:   f.prefix,
		NextProtos: nextProtos,
		Poll:       poll,
		Logger:     log.Named("tls"),
	})
	if err != nil {
		return nil, fmt.Errorf("--%s-tls-*: %w", f.prefix, err)
	}
	return r, nil
}

// clientTLSFlags let check reach a listener behind TLS or mTLS.
type clientTLSFlags struct {
	enabled    bool
	ca         string
	cert, key  string
	serverName string
}

func (c *clientTLSFlags) register(fs *flag.FlagSet) {
	fs.BoolVar(&c.enabled, "tls", false, "connect over TLS (implied by the other --tls-* flags); trusts the system roots unless --tls-ca")
	fs.StringVar(&c.ca, "tls-ca", "", "PEM CA bundle that signed the server certificate")
	fs.StringVar(&c.cert, "tls-cert", "", "PEM client certificate, for a listener that requires mTLS (needs --tls-key)")
	fs.StringVar(&c.key, "tls-key", "", "PEM private key of --tls-cert")
	fs.StringVar(&c.serverName, "tls-server-name", "", "name to verify the server certificate against (default: the host of --addr)")
}

// credentials returns the transport credentials the flags ask for.
func (c *clientTLSFlags) credentials() (credentials.TransportCredentials, error) {
	if !c.enabled && c.ca == "" && c.cert == "" && c.key == "" && c.serverName == "" {
		return insecure.NewCredentials(), nil
	}
	if (c.cert == "") != (c.key == "") {
		return nil, errors.New("--tls-cert and --tls-key go together")
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.serverName}
	if c.ca != "" {
		pem, err := os.ReadFile(c.ca)
		if err != nil {
			return nil, fmt.Errorf("--tls-ca: %w", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--tls-ca %q: no PEM certificate", c.ca)
		}
	}
	if c.cert != "" {
		kp, err := tls.LoadX509KeyPair(c.cert, c.key)
		if err != nil {
			return nil, fmt.Errorf("--tls-cert/--tls-key: %w", err)
		}
		cfg.Certificates = []tls.Certificate{kp}
	}
	return credentials.NewTLS(cfg), nil
}

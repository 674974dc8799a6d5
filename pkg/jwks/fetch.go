package jwks

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"golang.org/x/net/http/httpproxy"
)

// Fetch results: the result label of extauthz_jwks_fetches_total and the
// result field of the fetch log line.
const (
	resultOK          = "ok"
	resultHTTPStatus  = "http_status"
	resultNetwork     = "network"
	resultTimeout     = "timeout"
	resultTooLarge    = "too_large"
	resultParse       = "parse"
	resultNoKeys      = "no_keys"
	resultRedirect    = "redirect"
	resultURLRejected = "url_rejected"
	resultFile        = "file"
)

const (
	maxRedirects       = 3
	maxResponseHeaders = 64 << 10
	userAgent          = "cognito-extauthz-jwks"
)

// errRedirect marks a redirect the client refused to follow.
var errRedirect = errors.New("redirect refused")

// fetchError is a failed load with its result label.
type fetchError struct {
	result string
	err    error
}

func (e *fetchError) Error() string { return e.err.Error() }
func (e *fetchError) Unwrap() error { return e.err }

func failure(result string, err error) error { return &fetchError{result: result, err: err} }

// resultOf returns the result label for a load error (ok for nil).
func resultOf(err error) string {
	if err == nil {
		return resultOK
	}
	var fe *fetchError
	if errors.As(err, &fe) {
		return fe.result
	}
	return resultNetwork
}

// checkSource says whether src may be loaded at all: a file, or a URL
// that CheckURL accepts.
func checkSource(src Source, allowHTTP bool) error {
	switch {
	case src.URL != "" && src.File != "":
		return errors.New("source names both a URL and a file")
	case src.File != "":
		return nil
	case src.URL == "":
		return errors.New("source names neither a URL nor a file")
	}
	return CheckURL(src.URL, allowHTTP)
}

// sourceLabel is how src appears in logs and metric labels: its String,
// unless a URL carries credentials (such a source is refused, but still
// named in the refusal), which are then masked.
func sourceLabel(src Source) string {
	if src.File == "" && strings.Contains(src.URL, "@") {
		if u, err := url.Parse(src.URL); err == nil && u.User != nil {
			return u.Redacted()
		}
	}
	return src.String()
}

// newHTTPClient builds the hardened client. The proxy settings are read from
// the environment now, not on first use as http.ProxyFromEnvironment does
// (it caches them once per process).
func newHTTPClient(timeout time.Duration) *http.Client {
	proxy := httpproxy.FromEnvironment().ProxyFunc()
	dialer := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
	transport := &http.Transport{
		Proxy:                  func(r *http.Request) (*url.URL, error) { return proxy(r.URL) },
		DialContext:            dialer.DialContext,
		ForceAttemptHTTP2:      true,
		TLSClientConfig:        &tls.Config{MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:    timeout,
		ResponseHeaderTimeout:  timeout,
		MaxResponseHeaderBytes: maxResponseHeaders,
		MaxIdleConns:           16,
		MaxIdleConnsPerHost:    2,
		IdleConnTimeout:        90 * time.Second,
	}
	return &http.Client{
		Transport:     transport,
		Timeout:       timeout,
		CheckRedirect: checkRedirect,
	}
}

// checkRedirect follows at most maxRedirects hops, and only to the scheme and
// host of the original URL: a JWKS endpoint that sends us elsewhere (or from
// https to http) is not trusted to name the keys.
func checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) > maxRedirects {
		return fmt.Errorf("%w: more than %d hops", errRedirect, maxRedirects)
	}
	orig := via[0].URL
	if req.URL.Scheme != orig.Scheme || !strings.EqualFold(req.URL.Host, orig.Host) {
		return fmt.Errorf("%w: from %s://%s to %s://%s", errRedirect, orig.Scheme, orig.Host, req.URL.Scheme, req.URL.Host)
	}
	return nil
}

// fetchURL GETs a JWKS body. ctx bounds the whole exchange, body included.
func fetchURL(ctx context.Context, client *http.Client, rawURL string, maxBody int64) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, failure(resultURLRejected, fmt.Errorf("build request: %w", err))
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", userAgent)
	resp, err := client.Do(req)
	if err != nil {
		return nil, classify("get", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, failure(resultHTTPStatus, fmt.Errorf("unexpected status %d", resp.StatusCode))
	}
	if resp.ContentLength > maxBody {
		return nil, failure(resultTooLarge, fmt.Errorf("body of %d bytes exceeds the %d-byte cap", resp.ContentLength, maxBody))
	}
	body, err := readCapped(resp.Body, maxBody)
	if err != nil {
		return nil, err
	}
	return body, nil
}

// readCapped reads at most limit bytes, reading one more to tell a body of
// exactly limit bytes from a longer one.
func readCapped(r io.Reader, limit int64) ([]byte, error) {
	body, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, classify("read body", err)
	}
	if int64(len(body)) > limit {
		return nil, failure(resultTooLarge, fmt.Errorf("body exceeds the %d-byte cap", limit))
	}
	return body, nil
}

func classify(op string, err error) error {
	var ne net.Error
	switch {
	case errors.Is(err, errRedirect):
		return failure(resultRedirect, fmt.Errorf("%s: %w", op, err))
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return failure(resultTimeout, fmt.Errorf("%s: %w", op, err))
	default:
		return failure(resultNetwork, fmt.Errorf("%s: %w", op, err))
	}
}

// readFile reads a local JWKS file under the same size cap as a fetch. Only
// regular files are read: opening a FIFO blocks until a writer appears and a
// device may never end. The check comes before the open for that reason.
func readFile(path string, maxBody int64) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, failure(resultFile, fmt.Errorf("stat key file: %w", err))
	}
	if !fi.Mode().IsRegular() {
		return nil, failure(resultFile, fmt.Errorf("key file %q is not a regular file", path))
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, failure(resultFile, fmt.Errorf("open key file: %w", err))
	}
	defer f.Close()
	body, err := io.ReadAll(io.LimitReader(f, maxBody+1))
	if err != nil {
		return nil, failure(resultFile, fmt.Errorf("read key file: %w", err))
	}
	if int64(len(body)) > maxBody {
		return nil, failure(resultTooLarge, fmt.Errorf("key file exceeds the %d-byte cap", maxBody))
	}
	return body, nil
}

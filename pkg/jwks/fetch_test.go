package jwks

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cognito-extauthz/cognito-extauthz/internal/wait"
)

func TestCheckSource(t *testing.T) {
	tests := []struct {
		name      string
		src       Source
		allowHTTP bool
		wantErr   string // "" = allowed
	}{
		{name: "https", src: Source{URL: "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_X/.well-known/jwks.json"}},
		{name: "https with port", src: Source{URL: "https://idp.example.com:8443/jwks.json"}},
		{name: "file", src: Source{File: "/etc/extauthz/jwks.json"}},
		{name: "http 127.0.0.1", src: Source{URL: "http://127.0.0.1:9229/local_x/.well-known/jwks.json"}},
		{name: "http 127.8.9.10", src: Source{URL: "http://127.8.9.10/jwks.json"}},
		{name: "http ::1", src: Source{URL: "http://[::1]:9229/jwks.json"}},
		{name: "http mapped loopback", src: Source{URL: "http://[::ffff:127.0.0.1]/jwks.json"}},
		{name: "http localhost", src: Source{URL: "http://localhost:9229/jwks.json"}},
		{name: "http LOCALHOST", src: Source{URL: "http://LOCALHOST/jwks.json"}},
		{name: "http non-loopback allowed explicitly", src: Source{URL: "http://10.0.0.7/jwks.json"}, allowHTTP: true},
		{name: "scheme in upper case", src: Source{URL: "HTTPS://idp.example.com/jwks.json"}},

		{name: "http non-loopback", src: Source{URL: "http://10.0.0.7/jwks.json"}, wantErr: "not loopback"},
		{name: "http public name", src: Source{URL: "http://idp.example.com/jwks.json"}, wantErr: "not loopback"},
		{name: "http name that merely starts with 127", src: Source{URL: "http://127.0.0.1.nip.io/jwks.json"}, wantErr: "not loopback"},
		{name: "http localhost subdomain", src: Source{URL: "http://evil.localhost/jwks.json"}, wantErr: "not loopback"},
		{name: "http hex loopback", src: Source{URL: "http://0x7f.0.0.1/jwks.json"}, wantErr: "not loopback"},
		{name: "http short loopback", src: Source{URL: "http://127.1/jwks.json"}, wantErr: "not loopback"},
		{name: "http unspecified", src: Source{URL: "http://0.0.0.0/jwks.json"}, wantErr: "not loopback"},
		{name: "ftp", src: Source{URL: "ftp://idp.example.com/jwks.json"}, wantErr: "must use https"},
		{name: "file URL", src: Source{URL: "file:///etc/passwd"}, wantErr: "must use https"},
		{name: "no scheme", src: Source{URL: "idp.example.com/jwks.json"}, wantErr: "must be absolute"},
		{name: "no host", src: Source{URL: "https:///jwks.json"}, wantErr: "no host"},
		{name: "opaque", src: Source{URL: "https:idp.example.com"}, wantErr: "must be absolute"},
		{name: "credentials", src: Source{URL: "https://user:secret@idp.example.com/jwks.json"}, wantErr: "must not carry user information"},
		{name: "unparsable", src: Source{URL: "https://idp.example.com/%zz"}, wantErr: "is not a URL"},
		{name: "empty", src: Source{}, wantErr: "neither"},
		{name: "fragment", src: Source{URL: "https://idp.example.com/jwks.json#k"}, wantErr: "fragment"},
		{name: "control character", src: Source{URL: "https://idp.example.com/\x00"}, wantErr: "control characters"},
		{name: "both", src: Source{URL: "https://idp.example.com/jwks.json", File: "/k.json"}, wantErr: "both"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkSource(tt.src, tt.allowHTTP)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("err = %v, want allowed", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Fatalf("err = %v shows the URL's password", err)
			}
		})
	}
}

func TestSourceLabelRedactsCredentials(t *testing.T) {
	got := sourceLabel(Source{URL: "https://user:secret@idp.example.com/jwks.json"})
	if strings.Contains(got, "secret") {
		t.Errorf("label %q leaks the password", got)
	}
	if got := sourceLabel(Source{File: "/k.json"}); got != "file:/k.json" {
		t.Errorf("file label = %q", got)
	}
}

// countDials makes every connection of c's client go to target, counting
// them, so a test can use any host name without DNS and see whether a
// connection was attempted at all.
func countDials(t *testing.T, c *Cache, target string) *atomic.Int64 {
	t.Helper()
	tr, ok := c.client.Transport.(*http.Transport)
	if !ok {
		t.Fatalf("client transport is %T", c.client.Transport)
	}
	var n atomic.Int64
	tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		n.Add(1)
		var d net.Dialer
		return d.DialContext(ctx, network, target)
	}
	return &n
}

func clearProxyEnv(t *testing.T) {
	for _, v := range []string{"HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy"} {
		t.Setenv(v, "")
	}
}

func TestHTTPToNonLoopbackHost(t *testing.T) {
	clearProxyEnv(t)
	srv := newJWKSServer(t, setJSON(t, key(t, kidA)))
	src := Source{URL: "http://203.0.113.1/jwks.json"}

	t.Run("rejected without a connection", func(t *testing.T) {
		tc := newTestCache(t, Options{})
		dials := countDials(t, tc.Cache, srv.Listener.Addr().String())
		tc.Sync([]Source{src})
		wait.For(t, wait.Patient, "the rejection", func() bool { return tc.fetches(t, src, resultURLRejected) == 1 })

		for range 3 {
			if _, err := tc.Key(context.Background(), src, kidA); !errors.Is(err, ErrUnavailable) {
				t.Fatalf("err = %v, want ErrUnavailable", err)
			}
		}
		if got := dials.Load(); got != 0 {
			t.Errorf("%d connections attempted to a rejected URL", got)
		}
		if got := srv.hits.Load(); got != 0 {
			t.Errorf("server hits = %d", got)
		}
		st := tc.status(t, src)
		if st.Loaded || !strings.Contains(st.LastError, "not loopback") {
			t.Errorf("status = %+v", st)
		}
		if tc.Ready() {
			t.Error("Ready = true with a rejected source")
		}
		if n := tc.logs.FilterMessage("key source rejected, never fetched").Len(); n != 1 {
			t.Errorf("%d rejection log lines, want 1", n)
		}
	})

	t.Run("fetched when http is allowed", func(t *testing.T) {
		tc := newTestCache(t, Options{AllowHTTP: true})
		dials := countDials(t, tc.Cache, srv.Listener.Addr().String())
		tc.Sync([]Source{src})
		waitLoaded(t, tc.Cache, src)
		mustKey(t, tc.Cache, src, kidA)
		if dials.Load() == 0 {
			t.Error("no connection observed: the dial hook is not in the path")
		}
	})
}

// connectProxy is an HTTP proxy that only tunnels CONNECT, to target,
// recording the authorities it was asked for.
type connectProxy struct {
	*httptest.Server
	mu       sync.Mutex
	connects []string
}

func newConnectProxy(t *testing.T, target string) *connectProxy {
	t.Helper()
	p := &connectProxy{}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodConnect {
			http.Error(w, "CONNECT only", http.StatusMethodNotAllowed)
			return
		}
		p.mu.Lock()
		p.connects = append(p.connects, r.Host)
		p.mu.Unlock()
		upstream, err := net.Dial("tcp", target)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		client, rw, err := w.(http.Hijacker).Hijack()
		if err != nil {
			upstream.Close()
			return
		}
		_, _ = client.Write([]byte("HTTP/1.1 200 Connection Established\r\n\r\n"))
		done := make(chan struct{}, 2)
		go func() { _, _ = io.Copy(upstream, rw); done <- struct{}{} }()
		go func() { _, _ = io.Copy(client, upstream); done <- struct{}{} }()
		<-done
		client.Close()
		upstream.Close()
	}))
	t.Cleanup(p.Close)
	return p
}

func (p *connectProxy) seen() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.connects...)
}

func TestHTTPSProxy(t *testing.T) {
	clearProxyEnv(t)
	jwksSrv := newTLSJWKSServer(t, setJSON(t, key(t, kidA)))
	// example.com is in the test certificate; the proxy, not DNS, decides
	// where the tunnel goes.
	src := Source{URL: "https://example.com/.well-known/jwks.json"}

	for _, name := range []string{"first", "second"} {
		t.Run(name+" cache reads the proxy at New", func(t *testing.T) {
			proxy := newConnectProxy(t, jwksSrv.Listener.Addr().String())
			t.Setenv("HTTPS_PROXY", proxy.URL)
			hitsBefore := jwksSrv.hits.Load()

			tc := newTestCache(t, Options{})
			trust(t, tc.Cache, jwksSrv.Server)
			tc.Sync([]Source{src})
			waitLoaded(t, tc.Cache, src)
			mustKey(t, tc.Cache, src, kidA)

			if got := proxy.seen(); len(got) != 1 || got[0] != "example.com:443" {
				t.Errorf("proxy saw CONNECT %q, want [example.com:443]", got)
			}
			if got := jwksSrv.hits.Load() - hitsBefore; got != 1 {
				t.Errorf("JWKS server hits through the tunnel = %d, want 1", got)
			}
		})
	}
}

func TestReadFileRefusesNonRegular(t *testing.T) {
	_, err := readFile(t.TempDir(), 1<<20)
	if resultOf(err) != resultFile {
		t.Errorf("directory: result %q (%v), want %q", resultOf(err), err, resultFile)
	}
	_, err = readFile(filepath.Join(t.TempDir(), "absent"), 1<<20)
	if resultOf(err) != resultFile {
		t.Errorf("missing: result %q (%v), want %q", resultOf(err), err, resultFile)
	}
}

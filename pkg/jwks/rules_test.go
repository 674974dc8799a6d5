package jwks

import (
	"context"
	"crypto/rsa"
	"errors"
	"math/big"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestIsLoopback(t *testing.T) {
	for host, want := range map[string]bool{
		"localhost": true, "LocalHost": true, "127.0.0.1": true, "127.200.1.9": true,
		"::1": true, "::ffff:127.0.0.1": true,
		"evil.localhost": false, "127.0.0.1.nip.io": false, "0.0.0.0": false, "10.0.0.1": false,
		"127.1": false, "0x7f.0.0.1": false, "": false, "example.com": false,
	} {
		if got := IsLoopback(host); got != want {
			t.Errorf("IsLoopback(%q) = %v, want %v", host, got, want)
		}
	}
}

func TestCheckKey(t *testing.T) {
	good := modulus(t, key(t, kidA))
	even := new(big.Int).Add(good, big.NewInt(1))
	short := new(big.Int).Rsh(good, 1100)
	short.SetBit(short, 0, 1)
	huge := new(big.Int).Lsh(good, 8192)
	huge.SetBit(huge, 0, 1)
	tests := []struct {
		name string
		pub  *rsa.PublicKey
		want error
	}{
		{"cognito-sized key", &rsa.PublicKey{N: good, E: 65537}, nil},
		{"nil key", nil, errModulus},
		{"nil modulus", &rsa.PublicKey{E: 65537}, errModulus},
		{"even modulus", &rsa.PublicKey{N: even, E: 65537}, errModulus},
		{"short modulus", &rsa.PublicKey{N: short, E: 65537}, errModulusSmall},
		{"huge modulus", &rsa.PublicKey{N: huge, E: 65537}, errModulusLarge},
		{"e=3", &rsa.PublicKey{N: good, E: 3}, errExponent},
		{"e=0", &rsa.PublicKey{N: good, E: 0}, errExponent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := CheckKey(tt.pub); !errors.Is(err, tt.want) {
				t.Errorf("CheckKey = %v, want %v", err, tt.want)
			}
		})
	}
}

// TestPrepare covers the one start-up sequence: the new sources are
// fetched and waited for, the kept ones stay in the cache without being
// waited for, and a source that does not load in time is named.
func TestPrepare(t *testing.T) {
	fast := newJWKSServer(t, setJSON(t, key(t, kidA)))
	slow := newJWKSServer(t, nil)
	slow.handle(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	old := newJWKSServer(t, setJSON(t, key(t, kidA)))
	tc := newTestCache(t, Options{FetchTimeout: time.Minute})

	if err := tc.Prepare(context.Background(), []Source{old.source()}, nil, 10*time.Second); err != nil {
		t.Fatalf("Prepare(old) = %v", err)
	}
	if err := tc.Prepare(context.Background(), []Source{fast.source()}, []Source{old.source()}, 10*time.Second); err != nil {
		t.Fatalf("Prepare(fast, keep old) = %v", err)
	}
	if _, err := tc.Key(context.Background(), old.source(), kidA); err != nil {
		t.Errorf("kept source lost its keys: %v", err)
	}

	err := tc.Prepare(context.Background(), []Source{fast.source(), slow.source()}, nil, 50*time.Millisecond)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), slow.url()) || strings.Contains(err.Error(), fast.url()) {
		t.Errorf("Prepare with a slow source = %v, want a deadline naming only %s", err, slow.url())
	}
	if _, err := tc.Key(context.Background(), old.source(), kidA); !errors.Is(err, ErrUnavailable) {
		t.Errorf("a source neither prepared nor kept is still served: err = %v", err)
	}
}

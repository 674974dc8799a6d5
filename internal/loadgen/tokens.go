// Package loadgen is the load benchmark of `make bench-load`: it mints
// Cognito-shaped tokens, runs a no-op ext_authz server as the gRPC floor,
// drives any ext_authz server with a compiled-proto gRPC client, and reads
// a server process's CPU time and memory from /proc.
package loadgen

import (
	"bufio"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"
)

// Issuer names of the benchmark's user pool. The pool id has the
// emulator form that the policy allows with an explicit issuer and key file.
const (
	PoolID   = "local_bench"
	Issuer   = "https://bench.invalid/" + PoolID
	ClientID = "benchclient"
	kid      = "bench-key"
)

// Tokens is a signing key and ID tokens minted with it.
type Tokens struct {
	Key    *rsa.PrivateKey
	IDs    []string
	Expiry time.Time
}

// JWKS returns the public key set, as a Cognito pool publishes it.
func (t *Tokens) JWKS() []byte {
	pub := t.Key.PublicKey
	set := map[string]any{"keys": []map[string]string{{
		"kty": "RSA", "alg": "RS256", "use": "sig", "kid": kid,
		"n": base64.RawURLEncoding.EncodeToString(pub.N.Bytes()),
		"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(pub.E)).Bytes()),
	}}}
	b, _ := json.Marshal(set)
	return b
}

// LoadOrMint returns n tokens valid for at least another hour, from dir
// when an earlier run left enough there (minting 100,000 RSA signatures
// takes minutes on two cores), else freshly minted and saved to dir.
func LoadOrMint(dir string, n int) (*Tokens, error) {
	if t, err := load(dir, n); err == nil {
		return t, nil
	}
	t, err := Mint(n, 3*time.Hour)
	if err != nil {
		return nil, err
	}
	if err := t.save(dir); err != nil {
		return nil, err
	}
	return t, nil
}

// Mint creates a 2048-bit key and n unique ID tokens that expire after ttl.
// Each carries the claims of a real Cognito ID token of a user with an
// email, two groups and no custom attributes.
func Mint(n int, ttl time.Duration) (*Tokens, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	now := time.Now()
	t := &Tokens{Key: key, IDs: make([]string, n), Expiry: now.Add(ttl).Truncate(time.Second)}
	hdr := b64json(map[string]string{"kid": kid, "alg": "RS256"})
	workers := runtime.GOMAXPROCS(0)
	var wg sync.WaitGroup
	errs := make([]error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += workers {
				if t.IDs[i], errs[w] = mintOne(key, hdr, i, now, t.Expiry); errs[w] != nil {
					return
				}
			}
		}()
	}
	wg.Wait()
	return t, errors.Join(errs...)
}

func mintOne(key *rsa.PrivateKey, hdr string, i int, now, exp time.Time) (string, error) {
	sub := fmt.Sprintf("%08x-4c1e-4a51-9d2f-%012x", i, i)
	claims := map[string]any{
		"sub":              sub,
		"cognito:groups":   []string{"admins", "staff"},
		"email_verified":   true,
		"iss":              Issuer,
		"cognito:username": fmt.Sprintf("user%07d", i),
		"origin_jti":       fmt.Sprintf("%08x-0a1b-4c2d-8e3f-%012x", i, i+1),
		"aud":              ClientID,
		"event_id":         fmt.Sprintf("%08x-1b2c-4d3e-9f40-%012x", i, i+2),
		"token_use":        "id",
		"auth_time":        now.Unix(),
		"exp":              exp.Unix(),
		"iat":              now.Unix(),
		"jti":              fmt.Sprintf("%08x-2c3d-4e4f-a051-%012x", i, i+3),
		"email":            fmt.Sprintf("user%07d@example.com", i),
	}
	input := hdr + "." + b64json(claims)
	sum := sha256.Sum256([]byte(input))
	sig, err := rsa.SignPKCS1v15(nil, key, crypto.SHA256, sum[:])
	if err != nil {
		return "", fmt.Errorf("sign: %w", err)
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig), nil
}

func b64json(v any) string {
	b, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(b)
}

// The cache directory holds key.pem (PKCS#8) and tokens.txt: a first line
// with the expiry in Unix seconds, then one token per line.
func (t *Tokens) save(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("token cache: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(t.Key)
	if err != nil {
		return fmt.Errorf("token cache: %w", err)
	}
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	if err := os.WriteFile(filepath.Join(dir, "key.pem"), pemBytes, 0o600); err != nil {
		return fmt.Errorf("token cache: %w", err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d\n", t.Expiry.Unix())
	for _, id := range t.IDs {
		b.WriteString(id)
		b.WriteByte('\n')
	}
	if err := os.WriteFile(filepath.Join(dir, "tokens.txt"), []byte(b.String()), 0o600); err != nil {
		return fmt.Errorf("token cache: %w", err)
	}
	return nil
}

func load(dir string, n int) (*Tokens, error) {
	pemBytes, err := os.ReadFile(filepath.Join(dir, "key.pem"))
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(pemBytes)
	if blk == nil {
		return nil, errors.New("key.pem: no PEM block")
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, err
	}
	key, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, errors.New("key.pem: not RSA")
	}
	f, err := os.Open(filepath.Join(dir, "tokens.txt"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 64<<10)
	var exp int64
	if !sc.Scan() {
		return nil, errors.New("tokens.txt: empty")
	}
	if _, err := fmt.Sscan(sc.Text(), &exp); err != nil {
		return nil, fmt.Errorf("tokens.txt: %w", err)
	}
	t := &Tokens{Key: key, Expiry: time.Unix(exp, 0)}
	if time.Until(t.Expiry) < time.Hour {
		return nil, errors.New("tokens expire within the hour")
	}
	for len(t.IDs) < n && sc.Scan() {
		t.IDs = append(t.IDs, sc.Text())
	}
	if len(t.IDs) < n {
		return nil, fmt.Errorf("tokens.txt holds %d tokens, want %d", len(t.IDs), n)
	}
	return t, sc.Err()
}

// RS256VerifyCPU measures the CPU cost of one RS256 verification with the
// tokens' key on this machine: the unit of the unique-token row.
func (t *Tokens) RS256VerifyCPU(rounds int) (time.Duration, error) {
	parts := strings.Split(t.IDs[0], ".")
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return 0, err
	}
	input := []byte(parts[0] + "." + parts[1])
	defer lockThread()()
	before, err := SelfCPU()
	if err != nil {
		return 0, err
	}
	for range rounds {
		sum := sha256.Sum256(input)
		if err := rsa.VerifyPKCS1v15(&t.Key.PublicKey, crypto.SHA256, sum[:], sig); err != nil {
			return 0, fmt.Errorf("verify: %w", err)
		}
	}
	after, err := SelfCPU()
	if err != nil {
		return 0, err
	}
	return (after - before) / time.Duration(rounds), nil
}

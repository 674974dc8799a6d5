package rsapkcs1_test

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	_ "crypto/sha1" // crypto.SHA1 in the refusal table
	"crypto/sha256"
	_ "crypto/sha512" // crypto.SHA384 and SHA512
	"errors"
	"math/big"
	"sync"
	"testing"

	"github.com/cognito-extauthz/cognito-extauthz/internal/rsapkcs1"
)

// keyOf returns a private key of the given size, made once per process:
// the large ones take seconds, and each fuzz worker is a process.
var keyOf = func() func(t testing.TB, bits int) *rsa.PrivateKey {
	var mu sync.Mutex
	made := map[int]*rsa.PrivateKey{}
	return func(t testing.TB, bits int) *rsa.PrivateKey {
		t.Helper()
		mu.Lock()
		defer mu.Unlock()
		if k, ok := made[bits]; ok {
			return k
		}
		k, err := rsa.GenerateKey(rand.Reader, bits)
		if err != nil {
			t.Fatalf("%d-bit key: %v", bits, err)
		}
		made[bits] = k
		return k
	}
}()

var sizes = []int{1024, 2048, 3072, 4096}

// testKeys returns one private key per modulus size.
func testKeys(t testing.TB) map[int]*rsa.PrivateKey {
	t.Helper()
	m := map[int]*rsa.PrivateKey{}
	for _, bits := range sizes {
		m[bits] = keyOf(t, bits)
	}
	return m
}

func prepared(t testing.TB, priv *rsa.PrivateKey) *rsapkcs1.PublicKey {
	t.Helper()
	k, err := rsapkcs1.New(&priv.PublicKey)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return k
}

// agree checks that the prepared key and crypto/rsa give the same verdict
// on (h, hashed, sig), and returns it.
func agree(t testing.TB, priv *rsa.PrivateKey, k *rsapkcs1.PublicKey, h crypto.Hash, hashed, sig []byte) bool {
	t.Helper()
	ours := k.Verify(h, hashed, sig)
	std := rsa.VerifyPKCS1v15(&priv.PublicKey, h, hashed, sig)
	if (ours == nil) != (std == nil) {
		t.Fatalf("verdicts differ (%d-bit key, %v, %d-byte sig): rsapkcs1 %v, crypto/rsa %v", priv.N.BitLen(), h, len(sig), ours, std)
	}
	if ours != nil && !errors.Is(ours, rsapkcs1.ErrVerification) {
		t.Fatalf("failure is %v, want ErrVerification", ours)
	}
	return ours == nil
}

func digest(h crypto.Hash, msg string) []byte {
	w := h.New()
	w.Write([]byte(msg))
	return w.Sum(nil)
}

var hashes = []crypto.Hash{crypto.SHA256, crypto.SHA384, crypto.SHA512}

func TestVerifyValidSignatures(t *testing.T) {
	for bits, priv := range testKeys(t) {
		k := prepared(t, priv)
		if k.Size() != priv.Size() {
			t.Errorf("%d bits: Size %d, want %d", bits, k.Size(), priv.Size())
		}
		for _, h := range hashes {
			hashed := digest(h, "header.payload")
			sig, err := rsa.SignPKCS1v15(rand.Reader, priv, h, hashed)
			if err != nil {
				t.Fatal(err)
			}
			if !agree(t, priv, k, h, hashed, sig) {
				t.Errorf("%d bits, %v: a valid signature does not verify", bits, h)
			}
			// The same signature says nothing about another digest, hash
			// or key.
			other := digest(h, "header.payload2")
			if agree(t, priv, k, h, other, sig) {
				t.Errorf("%d bits, %v: verifies another message's digest", bits, h)
			}
			for _, h2 := range hashes {
				if h2 != h && agree(t, priv, k, h2, digest(h2, "header.payload"), sig) {
					t.Errorf("%d bits: a %v signature verifies as %v", bits, h, h2)
				}
			}
		}
	}
	a, b := testKeys(t)[2048], testKeys(t)[3072]
	hashed := digest(crypto.SHA256, "m")
	sig, _ := rsa.SignPKCS1v15(rand.Reader, a, crypto.SHA256, hashed)
	if prepared(t, b).Verify(crypto.SHA256, hashed, sig) == nil {
		t.Error("a signature by one key verifies with another")
	}
}

func TestVerifyRefusesMalformedSignatures(t *testing.T) {
	priv := testKeys(t)[2048]
	k := prepared(t, priv)
	hashed := digest(crypto.SHA256, "m")
	sig, _ := rsa.SignPKCS1v15(rand.Reader, priv, crypto.SHA256, hashed)
	n := priv.N.FillBytes(make([]byte, priv.Size()))
	nPlus1 := new(big.Int).Add(priv.N, big.NewInt(1)).FillBytes(make([]byte, priv.Size()))
	one := big.NewInt(1).FillBytes(make([]byte, priv.Size()))
	cases := map[string]struct {
		h      crypto.Hash
		hashed []byte
		sig    []byte
	}{
		"empty":                   {crypto.SHA256, hashed, nil},
		"one byte short":          {crypto.SHA256, hashed, sig[1:]},
		"one byte long":           {crypto.SHA256, hashed, append([]byte{0}, sig...)},
		"trailing byte":           {crypto.SHA256, hashed, append(bytes.Clone(sig), 0)},
		"the modulus":             {crypto.SHA256, hashed, n},
		"the modulus plus one":    {crypto.SHA256, hashed, nPlus1},
		"all ones":                {crypto.SHA256, hashed, bytes.Repeat([]byte{0xff}, len(sig))},
		"zero":                    {crypto.SHA256, hashed, make([]byte, len(sig))},
		"one":                     {crypto.SHA256, hashed, one},
		"digest one byte short":   {crypto.SHA256, hashed[1:], sig},
		"digest one byte long":    {crypto.SHA256, append(bytes.Clone(hashed), 0), sig},
		"SHA-1, not a JWS hash":   {crypto.SHA1, digest(crypto.SHA1, "m"), sig},
		"no hash (raw PKCS #1)":   {0, hashed, sig},
		"unavailable hash number": {crypto.Hash(99), hashed, sig},
		"signature plus modulus":  {crypto.SHA256, hashed, new(big.Int).Add(new(big.Int).SetBytes(sig), priv.N).Bytes()},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			if err := k.Verify(c.h, c.hashed, c.sig); !errors.Is(err, rsapkcs1.ErrVerification) {
				t.Errorf("Verify = %v, want ErrVerification", err)
			}
			if c.h.Available() && len(c.hashed) == c.h.Size() {
				agree(t, priv, k, c.h, c.hashed, c.sig)
			}
		})
	}
	// Every single-bit change of the signature is refused, as crypto/rsa
	// refuses it.
	for i := range len(sig) * 8 {
		bad := bytes.Clone(sig)
		bad[i/8] ^= 1 << (i % 8)
		if agree(t, priv, k, crypto.SHA256, hashed, bad) {
			t.Fatalf("bit %d flipped: verifies", i)
		}
	}
}

// rawSign returns em^d mod n, left-padded to the key's size: the signature
// whose recovered encoded message is em, whatever em holds.
func rawSign(priv *rsa.PrivateKey, em []byte) []byte {
	s := new(big.Int).Exp(new(big.Int).SetBytes(em), priv.D, priv.N)
	return s.FillBytes(make([]byte, priv.Size()))
}

// encode builds 0x00 0x01 PS 0x00 prefix digest in a k-byte buffer with psLen
// bytes of padding, then lets edit change it.
func encode(k int, prefix, digest []byte, edit func(em []byte)) []byte {
	em := make([]byte, k)
	em[1] = 0x01
	psEnd := k - len(prefix) - len(digest) - 1
	for i := 2; i < psEnd; i++ {
		em[i] = 0xff
	}
	copy(em[psEnd+1:], prefix)
	copy(em[k-len(digest):], digest)
	if edit != nil {
		edit(em)
	}
	return em
}

// TestVerifyRefusesCraftedEncodings signs, with the private key, encoded
// messages that a lax PKCS #1 v1.5 parser would accept: the classic
// signature-forgery shapes. Only the exact encoding verifies.
func TestVerifyRefusesCraftedEncodings(t *testing.T) {
	sha256Prefix := []byte{0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20}
	noNullPrefix := []byte{0x30, 0x2f, 0x30, 0x0b, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x04, 0x20}
	sha1Prefix := []byte{0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00, 0x04, 0x14}
	for bits, priv := range testKeys(t) {
		k := prepared(t, priv)
		size := priv.Size()
		hashed := digest(crypto.SHA256, "m")
		cases := []struct {
			name  string
			em    []byte
			valid bool
		}{
			{"the exact encoding", encode(size, sha256Prefix, hashed, nil), true},
			{"block type 02", encode(size, sha256Prefix, hashed, func(em []byte) { em[1] = 0x02 }), false},
			{"leading byte 01", encode(size, sha256Prefix, hashed, func(em []byte) { em[0] = 0x01 }), false},
			{"a padding byte not ff", encode(size, sha256Prefix, hashed, func(em []byte) { em[10] = 0xfe }), false},
			{"separator not zero", encode(size, sha256Prefix, hashed, func(em []byte) { em[size-len(sha256Prefix)-len(hashed)-1] = 0xff }), false},
			{"DigestInfo without NULL parameters", encode(size, noNullPrefix, hashed, nil), false},
			{"SHA-1 DigestInfo around the SHA-256 digest", encode(size, sha1Prefix, hashed[:20], nil), false},
			{"digest moved left, garbage after (Bleichenbacher 2006)", func() []byte {
				em := encode(size, sha256Prefix, hashed, nil)
				// Shorten the padding by 8 bytes and put garbage at the end.
				body := append(append([]byte{0x00}, sha256Prefix...), hashed...)
				copy(em[size-len(body)-8:], body)
				for i := size - 8; i < size; i++ {
					em[i] = 0xa5
				}
				return em
			}(), false},
			{"short padding, zeros in front", func() []byte {
				em := make([]byte, size)
				body := append(append([]byte{0x00, 0x01, 0xff, 0xff, 0x00}, sha256Prefix...), hashed...)
				copy(em[size-len(body):], body)
				return em
			}(), false},
			{"digest of another message", encode(size, sha256Prefix, digest(crypto.SHA256, "n"), nil), false},
		}
		for _, c := range cases {
			sig := rawSign(priv, c.em)
			if got := agree(t, priv, k, crypto.SHA256, hashed, sig); got != c.valid {
				t.Errorf("%d bits, %s: verifies = %v, want %v", bits, c.name, got, c.valid)
			}
		}
	}
}

func TestNewRefusesWeakKeys(t *testing.T) {
	good := testKeys(t)[2048].PublicKey
	with := func(edit func(p *rsa.PublicKey)) *rsa.PublicKey {
		p := &rsa.PublicKey{N: new(big.Int).Set(good.N), E: good.E}
		edit(p)
		return p
	}
	small, err := rsa.GenerateKey(rand.Reader, 512) //nolint:gosec // a weak key New must refuse
	if err != nil {
		// Go may refuse to make one at all; build an odd 512-bit modulus.
		small = &rsa.PrivateKey{PublicKey: rsa.PublicKey{N: new(big.Int).Add(new(big.Int).Lsh(big.NewInt(1), 511), big.NewInt(1)), E: 65537}}
	}
	cases := map[string]*rsa.PublicKey{
		"nil":              nil,
		"no modulus":       {E: 65537},
		"even modulus":     with(func(p *rsa.PublicKey) { p.N.SetBit(p.N, 0, 0) }),
		"negative modulus": with(func(p *rsa.PublicKey) { p.N.Neg(p.N) }),
		"512-bit modulus":  &small.PublicKey,
		"exponent 1":       with(func(p *rsa.PublicKey) { p.E = 1 }),
		"even exponent":    with(func(p *rsa.PublicKey) { p.E = 65536 }),
		"exponent 2^31":    with(func(p *rsa.PublicKey) { p.E = 1 << 31 }),
		"exponent 2^31+1":  with(func(p *rsa.PublicKey) { p.E = 1<<31 + 1 }),
		"zero modulus":     {N: new(big.Int), E: 65537},
	}
	for name, pub := range cases {
		if _, err := rsapkcs1.New(pub); err == nil {
			t.Errorf("%s: New accepted it", name)
		}
	}
	for name, pub := range map[string]*rsa.PublicKey{
		"a 2048-bit key, e=65537": &good,
		"e=3":                     with(func(p *rsa.PublicKey) { p.E = 3 }),
		"e=2^31-1":                with(func(p *rsa.PublicKey) { p.E = 1<<31 - 1 }),
		"a 1024-bit modulus":      &keyOf(t, 1024).PublicKey,
	} {
		if _, err := rsapkcs1.New(pub); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	// The smallest modulus refused: 1023 bits, odd.
	n1023 := new(big.Int).Add(new(big.Int).Lsh(big.NewInt(1), 1022), big.NewInt(1))
	if _, err := rsapkcs1.New(&rsa.PublicKey{N: n1023, E: 65537}); err == nil {
		t.Error("a 1023-bit modulus: New accepted it")
	}
}

// TestVerifyConcurrent shares one prepared key between goroutines, as the
// service does; -race watches the shared modulus.
func TestVerifyConcurrent(t *testing.T) {
	priv := testKeys(t)[2048]
	k := prepared(t, priv)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			hashed := sha256.Sum256([]byte{byte(g)})
			sig, _ := rsa.SignPKCS1v15(rand.Reader, priv, crypto.SHA256, hashed[:])
			for range 20 {
				if err := k.Verify(crypto.SHA256, hashed[:], sig); err != nil {
					t.Errorf("goroutine %d: %v", g, err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// FuzzVerify holds the prepared key to crypto/rsa on fuzzer-chosen
// signatures, and on signatures of fuzzer-chosen encoded messages (which
// reach the encoding comparison, where forgeries live).
func FuzzVerify(f *testing.F) {
	priv := keyOf(f, 2048)
	k := prepared(f, priv)
	hashed := digest(crypto.SHA256, "m")
	valid, _ := rsa.SignPKCS1v15(rand.Reader, priv, crypto.SHA256, hashed)
	f.Add(valid, false)
	f.Add(encode(priv.Size(), nil, hashed, nil), true)
	f.Add([]byte{0x00, 0x01, 0xff, 0x00}, true)
	f.Add(priv.N.Bytes(), false)
	f.Fuzz(func(t *testing.T, b []byte, asMessage bool) {
		sig := b
		if asMessage {
			if len(b) > priv.Size() || new(big.Int).SetBytes(b).Cmp(priv.N) >= 0 {
				return
			}
			sig = rawSign(priv, b)
		}
		agree(t, priv, k, crypto.SHA256, hashed, sig)
	})
}

func BenchmarkVerify(b *testing.B) {
	priv := keyOf(b, 2048)
	k := prepared(b, priv)
	hashed := digest(crypto.SHA256, "m")
	sig, _ := rsa.SignPKCS1v15(rand.Reader, priv, crypto.SHA256, hashed)
	b.Run("rsapkcs1", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if k.Verify(crypto.SHA256, hashed, sig) != nil {
				b.Fatal("does not verify")
			}
		}
	})
	b.Run("crypto-rsa", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if rsa.VerifyPKCS1v15(&priv.PublicKey, crypto.SHA256, hashed, sig) != nil {
				b.Fatal("does not verify")
			}
		}
	})
}

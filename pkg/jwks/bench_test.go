package jwks

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/cognito-extauthz/cognito-extauthz/internal/wait"
)

// BenchmarkKeyHit is the hot path: every verified token asks for its key.
// It must not allocate.
func BenchmarkKeyHit(b *testing.B) {
	c, src := loadedFileCache(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if k, err := c.Key(ctx, src, kidA); err != nil || k == nil {
			b.Fatalf("Key: %v", err)
		}
	}
}

// BenchmarkKeyHitParallel checks that concurrent hits do not contend.
func BenchmarkKeyHitParallel(b *testing.B) {
	c, src := loadedFileCache(b)
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if k, err := c.Key(ctx, src, kidB); err != nil || k == nil {
				b.Errorf("Key: %v", err)
				return
			}
		}
	})
}

// BenchmarkKeyMissRateLimited is a flood of forged kids inside the refetch
// window: answered from the cache, no I/O.
func BenchmarkKeyMissRateLimited(b *testing.B) {
	c, src := loadedFileCache(b)
	ctx := context.Background()
	if _, err := c.Key(ctx, src, "forged"); err != ErrKidUnknown { // opens the window
		b.Fatalf("err = %v", err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := c.Key(ctx, src, "forged"); err != ErrKidUnknown {
				b.Errorf("err = %v", err)
				return
			}
		}
	})
}

// BenchmarkKeyMissWaitersFull is a spray of made-up kids while a refetch
// hangs and the waiting slots are taken: each is answered at once.
func BenchmarkKeyMissWaitersFull(b *testing.B) {
	hc := newHeldCache(b, Options{MissWait: time.Hour, MaxMissWaiters: 1})
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = hc.Key(context.Background(), hc.src, kidB)
	}()
	wait.For(b, wait.Patient, "the one waiter", func() bool { return hc.waiting(hc.src) == 1 })
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := hc.Key(ctx, hc.src, "made-up"); err != errMissWaitersFull {
				b.Errorf("err = %v", err)
				return
			}
		}
	})
	b.StopTimer()
	hc.srv.release(nil)
	<-done
}

func loadedFileCache(b *testing.B) (*Cache, Source) {
	b.Helper()
	c := New(Options{})
	b.Cleanup(c.Close)
	src := Source{File: filepath.Join("testdata", "keys.json")}
	c.Sync([]Source{src})
	waitLoaded(b, c, src)
	return c, src
}

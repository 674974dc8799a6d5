package wait

import (
	"errors"
	"testing"
	"time"
)

// fakeT records a failure instead of stopping the test.
type fakeT struct {
	testing.TB
	failed bool
}

func (f *fakeT) Helper()               {}
func (f *fakeT) Fatalf(string, ...any) { f.failed = true; panic(f) }

func TestFor(t *testing.T) {
	n := 0
	For(t, Patient, "third try", func() bool { n++; return n == 3 })
	if n != 3 {
		t.Fatalf("cond called %d times, want 3", n)
	}
	f := &fakeT{TB: t}
	func() {
		defer func() { _ = recover() }()
		For(f, 20*time.Millisecond, "never", func() bool { return false })
	}()
	if !f.failed {
		t.Fatal("For did not fail on a condition that never holds")
	}
}

func TestUntil(t *testing.T) {
	n := 0
	if err := Until(Patient, func() (bool, error) { n++; return n == 2, errors.New("not yet") }); err != nil || n != 2 {
		t.Fatalf("Until = %v after %d calls", err, n)
	}
	boom := errors.New("boom")
	if err := Until(20*time.Millisecond, func() (bool, error) { return false, boom }); !errors.Is(err, boom) {
		t.Fatalf("Until past its deadline = %v, want the last error", err)
	}
	start := time.Now()
	if err := Until(Patient, func() (bool, error) { return false, ErrGiveUp }); !errors.Is(err, ErrGiveUp) {
		t.Fatalf("Until = %v, want ErrGiveUp", err)
	}
	if time.Since(start) > Patient/2 {
		t.Fatal("Until kept polling after ErrGiveUp")
	}
}

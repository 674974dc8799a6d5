// Package wait is the one polling helper of the tests: wait for a
// condition with a generous deadline, never for a fixed time. The
// machines tests run on are shared and loaded, so a test asserts that
// something happens, never how fast (speed is for benchmarks).
package wait

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

// Patient is the deadline for something that will happen unless the code
// is wrong: long enough that a loaded machine never trips it.
const Patient = 20 * time.Second

// poll is how often a condition is tried.
const poll = 5 * time.Millisecond

// For polls cond until it holds, and fails t naming what when within has
// passed first.
func For(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not true within %v: %s", within, what)
		}
		time.Sleep(poll)
	}
}

// ErrGiveUp, wrapped in an error cond returns, stops Until at once: what
// is being waited for can no longer happen (the process exited, say).
var ErrGiveUp = errors.New("giving up")

// Until polls cond until it reports true, and returns nil; or, once within
// has passed or cond returned ErrGiveUp, the last error cond reported.
// It is For for code that reports rather than fails a test.
func Until(within time.Duration, cond func() (bool, error)) error {
	deadline := time.Now().Add(within)
	var last error
	for {
		ok, err := cond()
		if ok {
			return nil
		}
		if errors.Is(err, ErrGiveUp) {
			return err
		}
		if err != nil {
			last = err
		}
		if time.Now().After(deadline) {
			if last == nil {
				last = errors.New("condition not met")
			}
			return fmt.Errorf("after %v: %w", within, last)
		}
		time.Sleep(poll)
	}
}

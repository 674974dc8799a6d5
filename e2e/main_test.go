package e2e

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// workDir holds what the whole test binary shares: the extauthz binary and
// the emulator's data directory. TestMain removes it.
var workDir string

var build struct {
	once sync.Once
	path string
	err  error
}

func TestMain(m *testing.M) {
	flag.Parse()
	dir, err := os.MkdirTemp("", "extauthz-e2e-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
		os.Exit(1)
	}
	workDir = dir
	code := m.Run()
	stopEmulator()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// requireE2E skips end-to-end tests under -short.
func requireE2E(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test: skipped with -short")
	}
}

// binary returns the extauthz binary built from this checkout. It is built
// once per test run, the first time a test needs it, so that -list, -short
// and -run filters that select no end-to-end test build nothing.
func binary(t *testing.T) string {
	t.Helper()
	requireE2E(t)
	build.once.Do(func() {
		out := filepath.Join(workDir, "extauthz")
		cmd := exec.Command("go", "build", "-o", out, "./cmd/extauthz")
		cmd.Dir = ".." // the module root
		// The environment's own settings (cgo included) so that the build
		// shares the cache that compiled this test.
		start := time.Now()
		b, err := cmd.CombinedOutput()
		if err != nil {
			build.err = fmt.Errorf("go build ./cmd/extauthz: %w\n%s", err, b)
			return
		}
		build.path = out
		fmt.Fprintf(os.Stderr, "e2e: built %s in %v\n", out, time.Since(start).Round(time.Millisecond))
	})
	if build.err != nil {
		t.Fatal(build.err)
	}
	return build.path
}

// inCI reports whether the tests run in CI, where a missing dependency is
// a failure rather than a skip.
func inCI() bool {
	switch os.Getenv("CI") {
	case "", "0", "false", "FALSE", "False":
		return false
	}
	return true
}

// missing skips the test, or fails it in CI.
func missing(t *testing.T, what, fix string) {
	t.Helper()
	if inCI() {
		t.Fatalf("%s is not installed, and CI is set so this test may not skip: %s", what, fix)
	}
	t.Skipf("%s is not installed (%s); skipping", what, fix)
}

//go:build unix

package jwks

import (
	"path/filepath"
	"syscall"
	"testing"
)

// A FIFO in place of the key file must fail the load, not block it (and
// with it Close) until some writer opens the pipe.
func TestReadFileRefusesFIFO(t *testing.T) {
	path := filepath.Join(t.TempDir(), "jwks.json")
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	_, err := readFile(path, 1<<20)
	if resultOf(err) != resultFile {
		t.Errorf("fifo: result %q (%v), want %q", resultOf(err), err, resultFile)
	}
}

//go:build unix

package revocation

import (
	"fmt"
	"os"
	"syscall"
)

// lockDir takes an exclusive flock on dir, the directory of the list file,
// and returns its release. Writers of the list (concurrent `extauthz
// revoke` runs, a sign-out handler calling it per request) each read the
// file, add a line and rename a new file over it; without the lock two of
// them could read the same old file and one entry would be lost. The lock
// is on the directory because the file itself is replaced by every write,
// so a lock on it would be on an inode the next writer no longer opens;
// a directory lock also leaves no lock file behind. Readers (the service)
// never lock: the rename keeps what they read whole.
func lockDir(dir string) (func(), error) {
	d, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("lock revocation list directory: %w", err)
	}
	for {
		err = syscall.Flock(int(d.Fd()), syscall.LOCK_EX)
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		_ = d.Close()
		return nil, fmt.Errorf("lock revocation list directory %s: %w", dir, err)
	}
	return func() {
		_ = syscall.Flock(int(d.Fd()), syscall.LOCK_UN)
		_ = d.Close()
	}, nil
}

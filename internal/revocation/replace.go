package revocation

import (
	"fmt"
	"os"
	"path/filepath"
)

var evalSymlinks = filepath.EvalSymlinks

// replaceFile writes data to a temporary file in path's directory, syncs
// it, and renames it over path: readers see the old content or the new,
// never a part.
func replaceFile(path string, data []byte, mode os.FileMode) (err error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write revocation list: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	if _, err = tmp.Write(data); err != nil {
		return fmt.Errorf("write revocation list: %w", err)
	}
	if err = tmp.Chmod(mode); err != nil {
		return fmt.Errorf("write revocation list: %w", err)
	}
	if err = tmp.Sync(); err != nil {
		return fmt.Errorf("write revocation list: %w", err)
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("write revocation list: %w", err)
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write revocation list: %w", err)
	}
	// Make the rename itself durable; a failure here leaves a valid file.
	if d, derr := os.Open(dir); derr == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}

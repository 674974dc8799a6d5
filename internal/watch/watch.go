// Package watch reports when the content of one file may have changed, for
// every way a configuration file changes in practice: the kubelet swapping the
// ..data symlink of a mounted ConfigMap, an editor renaming a new file over the
// old one, a plain write, and delete-then-create.
//
// It watches directories, never the file itself: an inotify watch on a file
// follows the inode, and every one of the cases above except the plain write
// replaces the inode, after which a file watch goes silent for good.
package watch

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/fsnotify/fsnotify"
	"go.uber.org/zap"
)

const (
	// debounce is how long the directory must be quiet after an event before
	// the file is read: the kubelet's swap is four directory operations, an
	// editor's save two or three, and a large write several events.
	debounce = 100 * time.Millisecond
	// maxDelay bounds how long a steady stream of events (a busy directory)
	// can postpone a read: the debounce timer is never pushed past it.
	maxDelay = time.Second
)

// hooks lets tests observe the loop and simulate a system without inotify.
// The zero value is what Watch uses.
type hooks struct {
	noNotify bool   // behave as if fsnotify could not be started
	ready    func() // called once, after the first read and the first watches
	checked  func() // called after every read of the file
}

// Watch calls onChange (serially, debounced ~100ms) whenever the content at
// path may have changed: fsnotify on the parent DIRECTORY (catches kubelet's
// ..data symlink swap, editors' rename-over, plain writes, create after
// delete), plus a poll every `poll` that compares a digest of the file content
// (fallback for filesystems without inotify). Blocks until ctx ends; returns
// nil then. An error only if nothing can be watched at all (poll still works
// if fsnotify fails: log and continue with polling).
//
// Every trigger, event or poll, leads to a read of the file; onChange runs only
// when the SHA-256 of what was read differs from the previous read, so
// unrelated files in the directory, touch and chmod, or rewriting identical
// bytes never call it. A missing or unreadable file does not call onChange
// (there is nothing new to load); the next successful read with new content
// does. The first read happens when Watch starts and is not reported (the
// caller has loaded the file itself): a change that lands between the
// caller's own load and that first read is only seen with the next change.
//
// When path is a symlink, the directory of its final target is watched as
// well, so an in-place write to the target is seen without waiting for a poll.
// A zero poll turns polling off (a negative one is an error). onChange is
// called from Watch's goroutine: Watch returns only after a running onChange
// has returned.
func Watch(ctx context.Context, path string, poll time.Duration, logger *zap.Logger, onChange func()) error {
	return run(ctx, path, poll, logger, onChange, hooks{})
}

func run(ctx context.Context, path string, poll time.Duration, logger *zap.Logger, onChange func(), h hooks) error {
	switch {
	case path == "":
		return errors.New("watch: empty path")
	case poll < 0:
		return fmt.Errorf("watch %q: negative poll interval %v", path, poll)
	case onChange == nil:
		return fmt.Errorf("watch %q: nil onChange", path)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return fmt.Errorf("watch %q: %w", path, err)
	}
	if logger == nil {
		logger = zap.NewNop()
	}
	w := &watcher{path: abs, logger: logger, onChange: onChange, addErrs: map[string]string{}}

	if !h.noNotify {
		fsw, err := fsnotify.NewWatcher()
		if err != nil {
			logger.Warn("file notifications unavailable, polling only", zap.String("path", abs), zap.Error(err))
		} else {
			defer fsw.Close() //nolint:errcheck // nothing useful to do with a close error on the way out
			w.fsw = fsw
		}
	}
	w.reconcile()
	if poll == 0 && (w.fsw == nil || len(w.fsw.WatchList()) == 0) {
		return fmt.Errorf("watch %q: directory %q cannot be watched and polling is off", abs, filepath.Dir(abs))
	}
	w.sum, w.have = w.read()
	logger.Info("watching file", zap.String("path", abs), zap.Bool("notify", w.fsw != nil), zap.Duration("poll", poll))
	if h.ready != nil {
		h.ready()
	}
	return w.loop(ctx, poll, h)
}

// loop reacts to notifications (debounced) and poll ticks until ctx ends.
func (w *watcher) loop(ctx context.Context, poll time.Duration, h hooks) error {
	abs, logger := w.path, w.logger
	var events <-chan fsnotify.Event
	var notifyErrs <-chan error
	if w.fsw != nil {
		events, notifyErrs = w.fsw.Events, w.fsw.Errors
	}
	var tick <-chan time.Time
	if poll > 0 {
		t := time.NewTicker(poll)
		defer t.Stop()
		tick = t.C
	}
	// Go >= 1.23 timers: Reset and Stop never leave a stale value in C.
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	var pending bool
	var pendingSince time.Time
	schedule := func() {
		now := time.Now()
		if !pending {
			pending, pendingSince = true, now
			timer.Reset(debounce)
			return
		}
		if left := maxDelay - now.Sub(pendingSince); left > 0 {
			timer.Reset(min(debounce, left))
		}
	}
	check := func() {
		w.check()
		if h.checked != nil {
			h.checked()
		}
	}

	for {
		select {
		case <-ctx.Done():
			return nil
		case _, ok := <-events:
			if !ok {
				events = nil
				logger.Warn("file notifications stopped, polling only", zap.String("path", abs))
				if tick == nil {
					return fmt.Errorf("watch %q: file notifications stopped and polling is off", abs)
				}
				continue
			}
			schedule()
		case err, ok := <-notifyErrs:
			if !ok {
				notifyErrs = nil
				continue
			}
			// An overflow means events were lost: read the file to be sure.
			logger.Warn("file notification error", zap.String("path", abs), zap.Error(err))
			schedule()
		case <-timer.C:
			pending = false
			check()
		case <-tick:
			check()
		}
	}
}

// watcher is the state of one Watch call. It is used from Watch's goroutine
// only.
type watcher struct {
	path     string
	logger   *zap.Logger
	onChange func()
	fsw      *fsnotify.Watcher // nil when notifications are unavailable

	sum     [sha256.Size]byte // digest of the last successful read
	have    bool              // sum is valid
	readErr string            // last read error, to log a failure once, not every poll
	addErrs map[string]string // last watch error per directory, same reason
}

// read returns the digest of the file's content, following symlinks.
func (w *watcher) read() ([sha256.Size]byte, bool) {
	b, err := os.ReadFile(w.path)
	if err != nil {
		if msg := err.Error(); msg != w.readErr {
			w.readErr = msg
			if errors.Is(err, fs.ErrNotExist) {
				w.logger.Info("watched file missing", zap.String("path", w.path))
			} else {
				w.logger.Warn("cannot read watched file", zap.String("path", w.path), zap.Error(err))
			}
		}
		return [sha256.Size]byte{}, false
	}
	w.readErr = ""
	return sha256.Sum256(b), true
}

// check reads the file, re-aims the directory watches (the symlink target may
// have moved), and calls onChange when the content differs from the last read.
func (w *watcher) check() {
	sum, ok := w.read()
	w.reconcile()
	if !ok || (w.have && sum == w.sum) {
		return
	}
	w.sum, w.have = sum, true
	w.logger.Debug("watched file changed", zap.String("path", w.path))
	w.onChange()
}

// reconcile makes the watched directories the parent of path and, when path
// is a symlink, the parent of its final target. Directories that do not exist
// yet are retried on every check; inotify drops the watch of a deleted
// directory by itself.
func (w *watcher) reconcile() {
	if w.fsw == nil {
		return
	}
	want := []string{filepath.Dir(w.path)}
	if real, err := filepath.EvalSymlinks(w.path); err == nil {
		if d := filepath.Dir(real); d != want[0] {
			want = append(want, d)
		}
	}
	have := w.fsw.WatchList()
	for _, d := range want {
		if slices.Contains(have, d) {
			continue
		}
		err := w.fsw.Add(d)
		switch {
		case err == nil:
			if w.addErrs[d] != "" {
				w.logger.Info("watching directory again", zap.String("dir", d))
			}
			delete(w.addErrs, d)
		case err.Error() != w.addErrs[d]:
			w.addErrs[d] = err.Error()
			w.logger.Warn("cannot watch directory", zap.String("dir", d), zap.Error(err))
		}
	}
	for d := range w.addErrs {
		if !slices.Contains(want, d) {
			delete(w.addErrs, d)
		}
	}
	for _, d := range have {
		if !slices.Contains(want, d) {
			// Already gone when inotify dropped it first; nothing to do then.
			_ = w.fsw.Remove(d)
		}
	}
}

package revocation

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// DefaultFileSettle is how long a changed list file must keep the same
// content before it is applied, as for the policy file: a writer that
// rewrites the file in place exposes every prefix of it, and a prefix is a
// valid list that lacks the entries further down.
const DefaultFileSettle = 2 * time.Second

const (
	// MaxLineLen bounds one line of a list file.
	MaxLineLen = 1024
	// maxFileRead bounds one read of a list file (a million entries take
	// about 80 MiB).
	maxFileRead = 256 << 20
	// maxProblems bounds the problems one error lists.
	maxProblems = 20
)

// Parse reads a list in the file format. name is how problems name the
// file ("revoked.txt:12: ..."). Any problem rejects the whole list: the
// error lists every problem (up to 20) with its line. A jti entry written
// without a time has a zero Time.
func Parse(r io.Reader, name string) ([]Entry, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), MaxLineLen+2)
	var entries []Entry
	var problems []error
	more := 0
	problem := func(line int, err error) {
		if len(problems) < maxProblems {
			problems = append(problems, fmt.Errorf("%s:%d: %w", name, line, err))
		} else {
			more++
		}
	}
	line := 0
	for sc.Scan() {
		line++
		text := sc.Text()
		if len(text) > MaxLineLen {
			problem(line, fmt.Errorf("line longer than %d bytes", MaxLineLen))
			continue
		}
		e, ok, err := ParseLine(text)
		switch {
		case err != nil:
			problem(line, err)
		case ok:
			entries = append(entries, e)
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			problem(line+1, fmt.Errorf("line longer than %d bytes", MaxLineLen))
		} else {
			return nil, fmt.Errorf("read %s: %w", name, err)
		}
	}
	if more > 0 {
		problems = append(problems, fmt.Errorf("%s: and %d more problems", name, more))
	}
	if len(problems) > 0 {
		return nil, errors.Join(problems...)
	}
	return entries, nil
}

// ParseFile reads and parses a list file; see Parse. Problems name the
// file by path.
func ParseFile(path string) ([]Entry, error) {
	data, err := readList(path)
	if err != nil {
		return nil, err
	}
	return Parse(bytes.NewReader(data), path)
}

func readList(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read revocation list: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileRead+1))
	if err != nil {
		return nil, fmt.Errorf("read revocation list %q: %w", path, err)
	}
	if len(data) > maxFileRead {
		return nil, fmt.Errorf("read revocation list %q: larger than %d MiB", path, maxFileRead>>20)
	}
	return data, nil
}

// fileSource is the list file: loaded whole, replaced whole.
type fileSource struct {
	path   string
	settle time.Duration
	now    func() time.Time
	log    *zap.Logger
	m      *sourceMetrics

	mu  sync.Mutex // serialises loads
	set atomic.Pointer[set]
	// digest is the SHA-256 of the content in force.
	digest [sha256.Size]byte
	// timeless maps the ID of each jti entry the file has without a time
	// to the end it was given when first seen (Unix seconds), so a reload
	// does not extend it.
	timeless map[string]int64
}

// load reads, parses and applies the file. On any error the list in force
// stays. settle waits for the content to stop changing first (reloads, not
// the start-up load).
func (f *fileSource) load(ctx context.Context, settle bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	data, err := readList(f.path)
	if err != nil {
		return f.failed(err)
	}
	sum := sha256.Sum256(data)
	if f.set.Load() != nil && sum == f.digest {
		f.m.count(ResultUnchanged, 1)
		return nil
	}
	if settle && f.settle > 0 {
		if data, err = f.waitSettled(ctx, sum); err != nil || data == nil {
			if err != nil {
				return f.failed(err)
			}
			return nil // ctx ended
		}
		sum = sha256.Sum256(data)
	}
	entries, err := Parse(bytes.NewReader(data), f.path)
	if err != nil {
		return f.failed(err)
	}
	now := f.now()
	timeless := map[string]int64{}
	kept := entries[:0]
	for _, e := range entries {
		if e.Kind == JTI && e.Time.IsZero() {
			end, ok := f.timeless[e.ID]
			if !ok {
				end = ceilUnix(now.Add(DefaultJTILifetime))
			}
			timeless[e.ID] = end
			e.Time = time.Unix(end, 0).UTC()
		}
		if live(e, now) {
			kept = append(kept, e)
		}
	}
	s := newSet()
	s.put(kept)
	f.set.Store(s)
	f.digest, f.timeless = sum, timeless
	f.m.count(ResultSuccess, 1)
	f.m.entries.Set(float64(s.len()))
	f.m.setUp(true)
	f.log.Info("revocation list file loaded",
		zap.String("path", f.path), zap.Int("entries", s.len()),
		zap.Int("expired", len(entries)-len(kept)), zap.String("digest", hex.EncodeToString(sum[:8])))
	return nil
}

func (f *fileSource) failed(err error) error {
	f.m.count(ResultFailure, 1)
	f.m.setUp(false)
	if f.set.Load() != nil {
		f.log.Error("revocation list file rejected; keeping the last good list",
			zap.String("path", f.path), zap.Error(err))
	}
	return err
}

// waitSettled waits until the file has held the same content for the
// settle interval and returns that content; nil when ctx ends first.
func (f *fileSource) waitSettled(ctx context.Context, sum [sha256.Size]byte) ([]byte, error) {
	t := time.NewTimer(f.settle)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil, nil
		case <-t.C:
		}
		data, err := readList(f.path)
		if err != nil {
			return nil, err
		}
		next := sha256.Sum256(data)
		if next == sum {
			return data, nil
		}
		f.m.count(ResultUnsettled, 1)
		f.log.Warn("revocation list file still changing; waiting for it to settle",
			zap.String("path", f.path), zap.Duration("settle", f.settle))
		sum = next
		t.Reset(f.settle)
	}
}

// writeFile adds e to the list file at path (creating it if missing) by
// writing a new file beside it and renaming it over the old one, so a
// reader sees the old list or the new one, never a mix. Writers take turns
// (lockDir), so concurrent ones never lose each other's entries. Entries that no
// longer matter at now are left out; comments and other lines are kept. A
// file with a bad line is not touched: it would be rejected whole anyway.
func writeFile(path string, e Entry, now time.Time) error {
	real, err := resolve(path)
	if err != nil {
		return err
	}
	unlock, err := lockDir(filepath.Dir(real))
	if err != nil {
		return err
	}
	defer unlock()
	old, err := os.ReadFile(real)
	mode := os.FileMode(0o644)
	switch {
	case errors.Is(err, os.ErrNotExist):
		old = nil
	case err != nil:
		return fmt.Errorf("write revocation list: %w", err)
	default:
		if st, err := os.Stat(real); err == nil {
			mode = st.Mode().Perm()
		}
		if _, err := Parse(bytes.NewReader(old), path); err != nil {
			return fmt.Errorf("write revocation list: the file has problems; fix them first: %w", err)
		}
	}
	var b strings.Builder
	for line := range strings.Lines(string(old)) {
		if x, ok, _ := ParseLine(strings.TrimRight(line, "\n")); ok && !x.Time.IsZero() && !live(x, now) {
			continue
		}
		b.WriteString(line)
		if !strings.HasSuffix(line, "\n") {
			b.WriteByte('\n')
		}
	}
	b.WriteString(e.String())
	b.WriteByte('\n')
	return replaceFile(real, []byte(b.String()), mode)
}

// resolve follows symlinks to the file to replace (a rename over a symlink
// would replace the link, not the list); a missing file resolves to itself.
func resolve(path string) (string, error) {
	real, err := evalSymlinks(path)
	if errors.Is(err, os.ErrNotExist) {
		return path, nil
	}
	if err != nil {
		return "", fmt.Errorf("write revocation list: %w", err)
	}
	return real, nil
}

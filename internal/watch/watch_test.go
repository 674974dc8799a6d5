package watch

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/cognito-extauthz/cognito-extauthz/internal/wait"
)

// detectWithin is the promise made to operators: a kubelet update is live
// within 2 s of the symlink swap (the debounce is 100 ms of it).
const detectWithin = 2 * time.Second

// waitDeadline bounds waits that have no latency promise behind them.
const waitDeadline = 20 * time.Second

// recorder is an onChange that keeps what the file held at each call.
type recorder struct {
	path string
	gate chan struct{} // when non-nil, the first call blocks until it is closed

	mu       sync.Mutex
	contents []string
	inFlight atomic.Int32
	maxIn    atomic.Int32
}

func (r *recorder) onChange() {
	n := r.inFlight.Add(1)
	defer r.inFlight.Add(-1)
	for {
		m := r.maxIn.Load()
		if n <= m || r.maxIn.CompareAndSwap(m, n) {
			break
		}
	}
	b, err := os.ReadFile(r.path)
	r.mu.Lock()
	first := len(r.contents) == 0
	if err != nil {
		r.contents = append(r.contents, "<error: "+err.Error()+">")
	} else {
		r.contents = append(r.contents, string(b))
	}
	r.mu.Unlock()
	if first && r.gate != nil {
		<-r.gate
	}
}

func (r *recorder) seen() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.contents...)
}

func (r *recorder) last() string {
	s := r.seen()
	if len(s) == 0 {
		return ""
	}
	return s[len(s)-1]
}

// running is one Watch call under test.
type running struct {
	rec    *recorder
	checks atomic.Int64
	cancel context.CancelFunc
	done   chan error
}

// start runs Watch on path until the test ends and returns once the baseline
// is taken, so every later change is a change Watch must report.
func start(t *testing.T, path string, poll time.Duration, h hooks, rec *recorder) *running {
	t.Helper()
	if rec == nil {
		rec = &recorder{}
	}
	rec.path = path
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{rec: rec, cancel: cancel, done: make(chan error, 1)}
	ready := make(chan struct{})
	h.ready = func() { close(ready) }
	h.checked = func() { r.checks.Add(1) }
	go func() { r.done <- run(ctx, path, poll, zaptest.NewLogger(t), rec.onChange, h) }()
	t.Cleanup(func() {
		cancel()
		if rec.gate != nil {
			select {
			case <-rec.gate:
			default:
				close(rec.gate)
			}
		}
		select {
		case err := <-r.done:
			if err != nil {
				t.Errorf("Watch returned %v after cancel, want nil", err)
			}
		case <-time.After(waitDeadline):
			t.Errorf("Watch did not return within %v of cancel", waitDeadline)
		}
	})
	select {
	case <-ready:
	case err := <-r.done:
		t.Fatalf("Watch returned before it was ready: %v", err)
	case <-time.After(waitDeadline):
		t.Fatal("Watch not ready")
	}
	return r
}

// waitChecks waits until Watch has read the file n more times. Tests use it
// to measure a quiet window by counting reads instead of by time.
func (r *running) waitChecks(t *testing.T, n int64) {
	t.Helper()
	target := r.checks.Load() + n
	wait.For(t, waitDeadline, fmt.Sprintf("%d more checks", n), func() bool { return r.checks.Load() >= target })
}

// settle returns once every event caused before the call has been handled:
// it makes an unrelated change in dir (twice, each time waiting for the read
// it triggers), and events are handled in order. In poll-only mode the ticks
// provide the reads.
func (r *running) settle(t *testing.T, dir string) {
	t.Helper()
	for i := range 2 {
		c := r.checks.Load()
		must(t, os.WriteFile(filepath.Join(dir, fmt.Sprintf(".settle%d", i)), nil, 0o644))
		wait.For(t, waitDeadline, "a read after the settle event", func() bool { return r.checks.Load() > c })
	}
}

// kubeletDir lays a directory out the way the kubelet's atomic writer does
// for a ConfigMap volume: a timestamped directory with the data, a ..data
// symlink to it, and one symlink per key to ..data/<key>.
type kubeletDir struct {
	dir string
	cur string // current timestamped directory name
	seq int
}

func newKubeletDir(t *testing.T, dir string, files map[string]string) *kubeletDir {
	t.Helper()
	k := &kubeletDir{dir: dir}
	k.cur = k.writeVersion(t, files)
	must(t, os.Symlink(k.cur, filepath.Join(dir, "..data")))
	for name := range files {
		must(t, os.Symlink(filepath.Join("..data", name), filepath.Join(dir, name)))
	}
	return k
}

func (k *kubeletDir) writeVersion(t *testing.T, files map[string]string) string {
	t.Helper()
	k.seq++
	name := fmt.Sprintf("..2026_11_25_17_24_%02d.%09d", k.seq, k.seq)
	must(t, os.Mkdir(filepath.Join(k.dir, name), 0o755))
	for f, content := range files {
		must(t, os.WriteFile(filepath.Join(k.dir, name, f), []byte(content), 0o644))
	}
	return name
}

// update is the kubelet's swap: new timestamped dir, ..data_tmp symlink to
// it, rename over ..data (the one atomic step), remove the old dir.
func (k *kubeletDir) update(t *testing.T, files map[string]string) {
	t.Helper()
	next := k.writeVersion(t, files)
	tmp := filepath.Join(k.dir, "..data_tmp")
	must(t, os.Symlink(next, tmp))
	must(t, os.Rename(tmp, filepath.Join(k.dir, "..data")))
	must(t, os.RemoveAll(filepath.Join(k.dir, k.cur)))
	k.cur = next
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

const (
	oldPolicy = "apiVersion: cognito-extauthz/v1\nroutes: [old]\n"
	newPolicy = "apiVersion: cognito-extauthz/v1\nroutes: [new, and, longer]\n"
)

// layout prepares a directory holding path with oldPolicy, and returns a
// function that changes it to newPolicy in one particular way.
type layout struct {
	name string
	// atomic: readers can only ever see the old or the new bytes, so exactly
	// one call is expected. Otherwise a read may catch a half-written file and
	// every call must see a prefix of the new content.
	atomic bool
	setup  func(t *testing.T, dir string) (path string, update func())
}

var layouts = []layout{
	{
		name:   "kubelet symlink swap",
		atomic: true,
		setup: func(t *testing.T, dir string) (string, func()) {
			k := newKubeletDir(t, dir, map[string]string{"policy.yaml": oldPolicy, "other.txt": "x"})
			return filepath.Join(dir, "policy.yaml"), func() {
				k.update(t, map[string]string{"policy.yaml": newPolicy, "other.txt": "x"})
			}
		},
	},
	{
		name: "plain write",
		setup: func(t *testing.T, dir string) (string, func()) {
			p := filepath.Join(dir, "policy.yaml")
			must(t, os.WriteFile(p, []byte(oldPolicy), 0o644))
			return p, func() { must(t, os.WriteFile(p, []byte(newPolicy), 0o644)) }
		},
	},
	{
		name:   "editor rename over",
		atomic: true,
		setup: func(t *testing.T, dir string) (string, func()) {
			p := filepath.Join(dir, "policy.yaml")
			must(t, os.WriteFile(p, []byte(oldPolicy), 0o644))
			return p, func() {
				tmp := filepath.Join(dir, ".policy.yaml.swp")
				must(t, os.WriteFile(tmp, []byte(newPolicy), 0o644))
				must(t, os.Rename(tmp, p))
			}
		},
	},
	{
		name: "delete then recreate",
		setup: func(t *testing.T, dir string) (string, func()) {
			p := filepath.Join(dir, "policy.yaml")
			must(t, os.WriteFile(p, []byte(oldPolicy), 0o644))
			return p, func() {
				must(t, os.Remove(p))
				must(t, os.WriteFile(p, []byte(newPolicy), 0o644))
			}
		},
	},
	{
		// Only the watch on the symlink target's directory sees this when
		// polling is off: nothing happens in the symlink's own directory.
		name: "in-place write to symlink target elsewhere",
		setup: func(t *testing.T, dir string) (string, func()) {
			other := filepath.Join(dir, "elsewhere")
			conf := filepath.Join(dir, "conf")
			must(t, os.Mkdir(other, 0o755))
			must(t, os.Mkdir(conf, 0o755))
			target := filepath.Join(other, "current.yaml")
			must(t, os.WriteFile(target, []byte(oldPolicy), 0o644))
			p := filepath.Join(conf, "policy.yaml")
			must(t, os.Symlink(target, p))
			return p, func() { must(t, os.WriteFile(target, []byte(newPolicy), 0o644)) }
		},
	},
}

func TestWatchDetectsEveryKindOfUpdate(t *testing.T) {
	modes := []struct {
		name string
		poll time.Duration
		h    hooks
	}{
		// Polling off: only fsnotify can report the change.
		{name: "fsnotify", poll: 0},
		// fsnotify unavailable: only the digest poll can report it.
		{name: "poll only", poll: 20 * time.Millisecond, h: hooks{noNotify: true}},
	}
	for _, m := range modes {
		for _, l := range layouts {
			t.Run(m.name+"/"+l.name, func(t *testing.T) {
				path, update := l.setup(t, t.TempDir())
				r := start(t, path, m.poll, m.h, nil)
				update()
				wait.For(t, detectWithin, "new content reported", func() bool { return r.rec.last() == newPolicy })
				r.settle(t, filepath.Dir(path))
				seen := r.rec.seen()
				if l.atomic {
					if len(seen) != 1 {
						t.Fatalf("onChange saw %q, want exactly one call with the new content", seen)
					}
				}
				for _, s := range seen {
					if !strings.HasPrefix(newPolicy, s) {
						t.Errorf("onChange saw %q, which is neither the new content nor part of it", s)
					}
				}
				if got := r.rec.maxIn.Load(); got != 1 {
					t.Errorf("max concurrent onChange = %d, want 1", got)
				}
			})
		}
	}
}

func TestWatchFollowsSeveralKubeletUpdates(t *testing.T) {
	dir := t.TempDir()
	k := newKubeletDir(t, dir, map[string]string{"policy.yaml": oldPolicy})
	r := start(t, filepath.Join(dir, "policy.yaml"), 0, hooks{}, nil)
	for i := range 5 {
		want := fmt.Sprintf("%sversion: %d\n", newPolicy, i)
		k.update(t, map[string]string{"policy.yaml": want})
		wait.For(t, detectWithin, fmt.Sprintf("update %d reported", i), func() bool { return r.rec.last() == want })
	}
	if got := len(r.rec.seen()); got != 5 {
		t.Errorf("onChange called %d times for 5 atomic updates, want 5: %q", got, r.rec.seen())
	}
}

func TestWatchNoCallWhenNothingChanged(t *testing.T) {
	t.Run("idle", func(t *testing.T) {
		dir := t.TempDir()
		newKubeletDir(t, dir, map[string]string{"policy.yaml": oldPolicy})
		r := start(t, filepath.Join(dir, "policy.yaml"), time.Millisecond, hooks{}, nil)
		r.waitChecks(t, 200)
		if seen := r.rec.seen(); len(seen) != 0 {
			t.Fatalf("onChange called %d times with nothing changed: %q", len(seen), seen)
		}
	})
	t.Run("noise in the directory", func(t *testing.T) {
		dir := t.TempDir()
		k := newKubeletDir(t, dir, map[string]string{"policy.yaml": oldPolicy, "jwks.json": "{}"})
		path := filepath.Join(dir, "policy.yaml")
		r := start(t, path, 2*time.Millisecond, hooks{}, nil)

		// Things that fire events or change metadata but not path's content.
		k.update(t, map[string]string{"policy.yaml": oldPolicy, "jwks.json": "{}"}) // same bytes, new inode
		k.update(t, map[string]string{"policy.yaml": oldPolicy, "jwks.json": `{"keys":[]}`})
		must(t, os.WriteFile(filepath.Join(dir, "unrelated"), []byte("a"), 0o644))
		must(t, os.Remove(filepath.Join(dir, "unrelated")))
		now := time.Now()
		must(t, os.Chtimes(filepath.Join(dir, k.cur, "policy.yaml"), now, now))
		must(t, os.Chmod(filepath.Join(dir, k.cur, "policy.yaml"), 0o600))
		r.waitChecks(t, 50)

		// A sentinel change: events are handled in order, so if the noise
		// above had caused a call it would be in the list before this one.
		k.update(t, map[string]string{"policy.yaml": newPolicy, "jwks.json": `{"keys":[]}`})
		wait.For(t, detectWithin, "sentinel reported", func() bool { return r.rec.last() == newPolicy })
		r.waitChecks(t, 50)
		if seen := r.rec.seen(); len(seen) != 1 {
			t.Fatalf("onChange saw %q, want only the sentinel change", seen)
		}
	})
}

func TestWatchCoalescesBursts(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "policy.yaml")
	must(t, os.WriteFile(path, []byte(oldPolicy), 0o644))
	rec := &recorder{gate: make(chan struct{})}
	r := start(t, path, 0, hooks{}, rec)

	// Hold the loop in the first onChange while a burst of writes queues up,
	// so the burst reaches the debouncer at full speed whatever the machine's
	// load: it must collapse into one read and one call.
	must(t, os.WriteFile(path, []byte("first"), 0o644))
	wait.For(t, waitDeadline, "first call in flight", func() bool { return rec.inFlight.Load() == 1 })
	const writes = 40
	var final string
	for i := range writes {
		final = fmt.Sprintf("%s# %d\n", newPolicy, i)
		tmp := filepath.Join(dir, fmt.Sprintf(".tmp%d", i))
		must(t, os.WriteFile(tmp, []byte(final), 0o644))
		must(t, os.Rename(tmp, path))
	}
	c0 := r.checks.Load()
	close(rec.gate)
	wait.For(t, detectWithin, "last write reported", func() bool { return r.rec.last() == final })
	r.settle(t, dir)
	// The burst is well over a hundred events. Expected reads: the one that
	// was blocked, one for the whole burst, two for settle; a little slack
	// for a scheduler stall longer than the 100 ms window while events drain.
	if got := r.checks.Load() - c0; got > 6 {
		t.Errorf("%d reads of the file for one burst of %d writes, want debouncing", got, writes)
	}
	if got := len(r.rec.seen()); got != 2 {
		t.Errorf("onChange saw %q, want the first change and the end of the burst", r.rec.seen())
	}
}

func TestWatchSerialCalls(t *testing.T) {
	dir := t.TempDir()
	k := newKubeletDir(t, dir, map[string]string{"policy.yaml": oldPolicy})
	rec := &recorder{gate: make(chan struct{})}
	r := start(t, filepath.Join(dir, "policy.yaml"), 5*time.Millisecond, hooks{}, rec)

	k.update(t, map[string]string{"policy.yaml": "v1"})
	wait.For(t, waitDeadline, "first call in flight", func() bool { return rec.inFlight.Load() == 1 })
	// The first onChange is blocked; these updates must wait for it.
	k.update(t, map[string]string{"policy.yaml": "v2"})
	k.update(t, map[string]string{"policy.yaml": newPolicy})
	close(rec.gate)
	wait.For(t, detectWithin, "last update reported", func() bool { return r.rec.last() == newPolicy })
	if got := rec.maxIn.Load(); got != 1 {
		t.Fatalf("max concurrent onChange = %d, want 1", got)
	}
}

func TestWatchDirectoryCreatedLater(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "extauthz")
	path := filepath.Join(dir, "policy.yaml")
	r := start(t, path, 20*time.Millisecond, hooks{}, nil)
	must(t, os.Mkdir(dir, 0o755))
	newKubeletDir(t, dir, map[string]string{"policy.yaml": newPolicy})
	wait.For(t, detectWithin, "file in new directory reported", func() bool { return r.rec.last() == newPolicy })
}

func TestWatchCancelReturnsPromptly(t *testing.T) {
	for _, m := range []struct {
		name string
		poll time.Duration
		h    hooks
	}{
		{name: "fsnotify and poll", poll: time.Hour},
		{name: "fsnotify only", poll: 0},
		{name: "poll only", poll: time.Hour, h: hooks{noNotify: true}},
	} {
		t.Run(m.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "policy.yaml")
			must(t, os.WriteFile(path, []byte(oldPolicy), 0o644))
			ctx, cancel := context.WithCancel(context.Background())
			ready := make(chan struct{})
			m.h.ready = func() { close(ready) }
			done := make(chan error, 1)
			go func() { done <- run(ctx, path, m.poll, zaptest.NewLogger(t), func() {}, m.h) }()
			<-ready
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("Watch = %v after cancel, want nil", err)
				}
			case <-time.After(waitDeadline):
				t.Fatal("Watch did not return after cancel")
			}
		})
	}
}

func TestWatchErrors(t *testing.T) {
	dir := t.TempDir()
	existing := filepath.Join(dir, "policy.yaml")
	must(t, os.WriteFile(existing, []byte(oldPolicy), 0o644))
	missingDir := filepath.Join(dir, "nope", "policy.yaml")
	tests := []struct {
		name     string
		path     string
		poll     time.Duration
		h        hooks
		onChange func()
		want     string
	}{
		{name: "empty path", path: "", poll: time.Second, onChange: func() {}, want: "empty path"},
		{name: "negative poll", path: existing, poll: -time.Second, onChange: func() {}, want: "negative poll"},
		{name: "nil onChange", path: existing, poll: time.Second, want: "nil onChange"},
		{name: "no fsnotify and no poll", path: existing, poll: 0, h: hooks{noNotify: true}, onChange: func() {}, want: "cannot be watched"},
		{name: "missing directory and no poll", path: missingDir, poll: 0, onChange: func() {}, want: "cannot be watched"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), waitDeadline)
			defer cancel()
			err := run(ctx, tt.path, tt.poll, zaptest.NewLogger(t), tt.onChange, tt.h)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Watch = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

// The exported entry point is the same loop with no hooks: a smoke test that
// it reports a kubelet update and stops on cancel.
func TestWatchExported(t *testing.T) {
	dir := t.TempDir()
	k := newKubeletDir(t, dir, map[string]string{"policy.yaml": oldPolicy})
	path := filepath.Join(dir, "policy.yaml")
	var calls atomic.Int32
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Watch(ctx, path, 10*time.Millisecond, zaptest.NewLogger(t), func() { calls.Add(1) }) }()
	stopped := false
	t.Cleanup(func() {
		if !stopped { // a failure below: stop Watch before the logger goes away
			cancel()
			<-done
		}
	})
	// Without the ready hook, keep updating until one is seen: an update
	// before the baseline read is, correctly, not a change.
	deadline := time.Now().Add(waitDeadline)
	for i := 0; calls.Load() == 0; i++ {
		if time.Now().After(deadline) {
			t.Fatal("no update reported")
		}
		k.update(t, map[string]string{"policy.yaml": fmt.Sprintf("v%d", i)})
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		stopped = true
		if err != nil {
			t.Fatalf("Watch = %v, want nil", err)
		}
	case <-time.After(waitDeadline):
		t.Fatal("Watch did not return after cancel")
	}
}

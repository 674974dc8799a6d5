package revocation

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cognito-extauthz/cognito-extauthz/internal/wait"
)

// fileList makes a List over a file holding lines, on clock c.
func fileList(t *testing.T, c *clock, lines ...string) (*List, string, *prometheus.Registry) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "revoked.txt")
	writeList(t, path, lines...)
	reg := prometheus.NewRegistry()
	l, err := New(Config{File: path, Now: c.Now, Registerer: reg, FileSettle: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l, path, reg
}

func TestRevoked(t *testing.T) {
	c := newClock(t0)
	l, _, _ := fileList(t, c,
		"# revoked on sign-out",
		"jti "+uuidA+" 2026-11-26T11:00:00Z",
		"jti opaque-origin 2026-11-26T11:00:00Z",
		"sub "+uuidB+" 2026-11-26T09:30:00.5Z # global sign-out",
		"jti "+strings.ToUpper(uuidC)+" 2026-11-26T11:00:00Z",
	)
	iatBefore := t0.Add(-time.Hour)
	tests := []struct {
		name              string
		jti, origin, sub  string
		iat, now          time.Time
		want              bool
		wantClaim, wantID string
	}{
		{name: "jti listed", jti: uuidA, origin: uuidN(1), sub: uuidN(2), iat: iatBefore, now: t0,
			want: true, wantClaim: ClaimJTI, wantID: uuidA},
		{name: "origin_jti listed", jti: uuidN(1), origin: "opaque-origin", sub: uuidN(2), iat: iatBefore, now: t0,
			want: true, wantClaim: ClaimOriginJTI, wantID: "opaque-origin"},
		{name: "origin_jti listed, no jti", origin: uuidA, now: t0, want: true, wantClaim: ClaimOriginJTI},
		{name: "jti listed, until passed", jti: uuidA, now: mustTime(t, "2026-11-26T11:00:00Z")},
		{name: "jti listed, second before until", jti: uuidA, now: mustTime(t, "2026-11-26T10:59:59.999Z"),
			want: true, wantClaim: ClaimJTI},
		{name: "upper-case entry, lower-case claim", jti: uuidC, now: t0, want: true, wantClaim: ClaimJTI, wantID: uuidC},
		{name: "sub, issued before", sub: uuidB, iat: mustTime(t, "2026-11-26T09:00:00Z"), now: t0,
			want: true, wantClaim: ClaimSub, wantID: uuidB},
		{name: "sub, issued in the second of the time", sub: uuidB, iat: mustTime(t, "2026-11-26T09:30:00Z"), now: t0,
			want: true, wantClaim: ClaimSub},
		{name: "sub, issued after", sub: uuidB, iat: mustTime(t, "2026-11-26T09:30:01Z"), now: t0},
		{name: "unlisted", jti: uuidN(7), origin: uuidN(8), sub: uuidN(9), iat: iatBefore, now: t0},
		{name: "no claims", now: t0},
		{name: "jti prefix only", jti: uuidA[:35], now: t0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, ok := l.Revoked(tc.jti, tc.origin, tc.sub, tc.iat, tc.now)
			if ok != tc.want {
				t.Fatalf("Revoked = %v (%v), want %v", ok, m, tc.want)
			}
			if !ok {
				return
			}
			if m.Claim != tc.wantClaim || m.Source != SourceFile || (tc.wantID != "" && m.ID != tc.wantID) {
				t.Fatalf("match = %+v, want claim %s id %s from file", m, tc.wantClaim, tc.wantID)
			}
		})
	}
	m, _ := l.Revoked("", "", uuidB, iatBefore, t0)
	if got, want := m.String(), "sub "+uuidB+" 2026-11-26T09:30:01Z (file, token sub)"; got != want {
		t.Errorf("Match.String() = %q, want %q", got, want)
	}
}

func TestNilList(t *testing.T) {
	var l *List
	if _, ok := l.Revoked(uuidA, uuidA, uuidB, t0, t0); ok {
		t.Error("nil list revoked a token")
	}
	if l.Stale(t0) || !l.Ready() || l.Wait(context.Background()) != nil {
		t.Error("nil list is stale or not ready")
	}
	if l.Start(context.Background()) != nil || l.Close() != nil || l.ReloadFile() != nil {
		t.Error("nil list lifecycle failed")
	}
	if _, err := l.Write(context.Background(), Entry{Kind: JTI, ID: uuidA}); err == nil {
		t.Error("nil list accepted a write")
	}
}

func TestFileLoadErrors(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "revoked.txt")
	writeList(t, path,
		"jti "+uuidA+" 2026-11-26T11:00:00Z",
		"",
		"sub "+uuidB,
		"# fine",
		"jti x 2026-13-01T00:00:00Z",
		"ban "+uuidA,
	)
	_, err := New(Config{File: path})
	if err == nil {
		t.Fatal("a file with bad lines loaded")
	}
	for _, want := range []string{path + ":3: want \"sub SUB TIME\"", path + ":5: time", path + ":6: unknown entry kind"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if strings.Contains(err.Error(), ":1:") {
		t.Errorf("error names a good line: %v", err)
	}
	if _, err := New(Config{File: filepath.Join(dir, "missing.txt")}); err == nil {
		t.Error("a missing file loaded")
	}
	// Many problems: the first 20 are listed, then a count.
	var lines []string
	for range 25 {
		lines = append(lines, "bad")
	}
	writeList(t, path, lines...)
	_, err = New(Config{File: path})
	if err == nil || !strings.Contains(err.Error(), ":20: ") || strings.Contains(err.Error(), ":21: ") ||
		!strings.Contains(err.Error(), "and 5 more problems") {
		t.Errorf("25 problems reported as %v", err)
	}
	writeList(t, path, "jti "+strings.Repeat("a", MaxLineLen+10))
	if _, err := New(Config{File: path}); err == nil || !strings.Contains(err.Error(), path+":1: line longer") {
		t.Errorf("long line: %v", err)
	}
}

// TestFileBadEditKeepsLastGood: a bad edit is rejected whole and counted;
// the last good list stays, and a fixed file applies.
func TestFileBadEditKeepsLastGood(t *testing.T) {
	c := newClock(t0)
	logger, logs := observed()
	path := filepath.Join(t.TempDir(), "revoked.txt")
	writeList(t, path, "jti "+uuidA+" 2026-11-27T00:00:00Z")
	reg := prometheus.NewRegistry()
	l, err := New(Config{File: path, Now: c.Now, Registerer: reg, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	// One good new entry, one bad line: nothing of it applies.
	writeList(t, path, "jti "+uuidA+" 2026-11-27T00:00:00Z", "jti "+uuidB+" 2026-11-27T00:00:00Z", "sub "+uuidC)
	if err := l.ReloadFile(); err == nil || !strings.Contains(err.Error(), ":3:") {
		t.Fatalf("bad edit: %v", err)
	}
	if _, ok := l.Revoked(uuidA, "", "", t0, t0); !ok {
		t.Error("last good entry gone after a bad edit")
	}
	if _, ok := l.Revoked(uuidB, "", "", t0, t0); ok {
		t.Error("an entry of a rejected file applied")
	}
	if got := metric(t, reg, "extauthz_revocation_updates_total", "source", "file", "result", "failure"); got != 1 {
		t.Errorf("failure count %v, want 1", got)
	}
	if got := metric(t, reg, "extauthz_revocation_source_up", "source", "file"); got != 0 {
		t.Errorf("source_up %v after a bad edit, want 0", got)
	}
	if logCount(logs, "revocation list file rejected; keeping the last good list") != 1 {
		t.Errorf("rejection not logged once: %v", logs.All())
	}
	writeList(t, path, "jti "+uuidB+" 2026-11-27T00:00:00Z")
	if err := l.ReloadFile(); err != nil {
		t.Fatal(err)
	}
	if _, ok := l.Revoked(uuidA, "", "", t0, t0); ok {
		t.Error("entry removed from the file still applies")
	}
	if _, ok := l.Revoked(uuidB, "", "", t0, t0); !ok {
		t.Error("fixed file not applied")
	}
	if got := metric(t, reg, "extauthz_revocation_source_up", "source", "file"); got != 1 {
		t.Errorf("source_up %v after a good load, want 1", got)
	}
	if err := l.ReloadFile(); err != nil {
		t.Fatal(err)
	}
	if got := metric(t, reg, "extauthz_revocation_updates_total", "source", "file", "result", "unchanged"); got != 1 {
		t.Errorf("unchanged count %v, want 1", got)
	}
}

// TestFileExpiry: entries past their time are dropped at load and by the
// sweep; a jti entry without a time lives 24 h from when it was first
// seen, across reloads; a sub entry lives SubGrace past its time.
func TestFileExpiry(t *testing.T) {
	c := newClock(t0)
	l, path, reg := fileList(t, c,
		"jti "+uuidA,
		"jti gone 2026-11-26T09:00:00Z",
		"jti "+uuidB+" 2026-11-26T12:00:00Z",
		"sub "+uuidC+" 2026-11-26T10:00:00Z",
		"sub old 2026-11-25T08:59:59Z",
	)
	if f, _ := l.Len(); f != 3 {
		t.Fatalf("%d entries held, want 3 (two expired at load)", f)
	}
	if got := metric(t, reg, "extauthz_revocation_entries", "source", "file"); got != 3 {
		t.Errorf("entries gauge %v, want 3", got)
	}
	// A reload 23 h later keeps the timeless entry's first-seen time.
	c.Add(23 * time.Hour)
	writeList(t, path, "jti "+uuidA, "sub "+uuidC+" 2026-11-26T10:00:00Z", "# edited")
	if err := l.ReloadFile(); err != nil {
		t.Fatal(err)
	}
	if m, ok := l.Revoked(uuidA, "", "", t0, c.Now()); !ok || !m.Time.Equal(t0.Add(24*time.Hour)) {
		t.Fatalf("timeless entry after 23 h: %v %v", m, ok)
	}
	c.Add(time.Hour)
	if _, ok := l.Revoked(uuidA, "", "", t0, c.Now()); ok {
		t.Fatal("timeless entry applies 24 h after it was first seen")
	}
	l.sweep()
	if f, _ := l.Len(); f != 1 {
		t.Fatalf("%d entries after the sweep at +24h, want 1 (the sub entry)", f)
	}
	// The sub entry (10:00) goes once 25 h have passed since its time.
	c.Set(mustTime(t, "2026-11-27T10:59:59Z"))
	l.sweep()
	if f, _ := l.Len(); f != 1 {
		t.Fatal("sub entry dropped before its grace ended")
	}
	c.Set(mustTime(t, "2026-11-27T11:00:00Z"))
	l.sweep()
	if f, _ := l.Len(); f != 0 {
		t.Fatal("sub entry kept past its grace")
	}
	if got := metric(t, reg, "extauthz_revocation_entries", "source", "file"); got != 0 {
		t.Errorf("entries gauge %v after the sweeps, want 0", got)
	}
}

// TestFileHotReload: with Start, a file replaced by a rename (an editor,
// the kubelet) is live after the settle time, and a rejected one is not.
func TestFileHotReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "revoked.txt")
	writeList(t, path, "# empty")
	l, err := New(Config{File: path, FilePoll: 100 * time.Millisecond, FileSettle: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := l.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !l.Ready() {
		t.Fatal("a file-only list is not ready after Start")
	}
	now := time.Now()
	until := now.Add(time.Hour).UTC().Format(time.RFC3339)
	replaceList(t, path, "jti "+uuidA+" "+until)
	wait.For(t, 10*time.Second, "new entry applied", func() bool {
		_, ok := l.Revoked(uuidA, "", "", now, time.Now())
		return ok
	})
	replaceList(t, path, "jti "+uuidA+" "+until, "garbage")
	replaceList(t, path, "jti "+uuidB+" "+until)
	wait.For(t, 10*time.Second, "second entry applied", func() bool {
		_, ok := l.Revoked(uuidB, "", "", now, time.Now())
		return ok
	})
}

func TestFileWrite(t *testing.T) {
	c := newClock(t0)
	l, path, _ := fileList(t, c,
		"# sign-outs",
		"jti old 2026-11-26T09:00:00Z   # expired: pruned on write",
		"jti "+uuidB+" 2026-11-27T00:00:00Z",
	)
	e, err := l.Write(context.Background(), Entry{Kind: JTI, ID: uuidA})
	if err != nil {
		t.Fatal(err)
	}
	if !e.Time.Equal(t0.Add(24 * time.Hour)) {
		t.Errorf("written time %v, want now + 24 h", e.Time)
	}
	if _, err := l.Write(context.Background(), Entry{Kind: Sub, ID: uuidC, Time: t0.Add(-500 * time.Millisecond)}); err != nil {
		t.Fatal(err)
	}
	got := string(mustRead(t, path))
	want := "# sign-outs\njti " + uuidB + " 2026-11-27T00:00:00Z\njti " + uuidA + " 2026-11-27T10:00:00Z\nsub " + uuidC + " 2026-11-26T10:00:00Z\n"
	if got != want {
		t.Errorf("file after writes:\n%s\nwant:\n%s", got, want)
	}
	// Applied at once, without waiting for the watcher.
	if _, ok := l.Revoked(uuidA, "", "", t0, t0); !ok {
		t.Error("written jti entry not applied")
	}
	if _, ok := l.Revoked("", "", uuidC, t0.Add(-time.Second), t0); !ok {
		t.Error("written sub entry not applied")
	}
	for _, bad := range []Entry{
		{Kind: JTI, ID: "has space"},
		{Kind: Kind(9), ID: uuidA},
		{Kind: JTI, ID: uuidA, Time: t0.Add(-time.Minute)},
		{Kind: Sub, ID: uuidA, Time: t0.Add(-26 * time.Hour)},
	} {
		if _, err := l.Write(context.Background(), bad); err == nil {
			t.Errorf("Write(%+v) accepted", bad)
		}
	}
	// A file with problems is not touched.
	writeList(t, path, "nonsense")
	if _, err := l.Write(context.Background(), Entry{Kind: JTI, ID: uuidC}); err == nil || !strings.Contains(err.Error(), "fix them first") {
		t.Errorf("write over a bad file: %v", err)
	}
	if got := string(mustRead(t, path)); got != "nonsense\n" {
		t.Errorf("bad file changed to %q", got)
	}
}

func TestFileWriteCreatesAndFollowsSymlink(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "real.txt")
	writeList(t, target, "# real")
	link := filepath.Join(dir, "revoked.txt")
	mustSymlink(t, "real.txt", link)
	c := newClock(t0)
	l, err := New(Config{File: link, Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if _, err := l.Write(context.Background(), Entry{Kind: JTI, ID: uuidA}); err != nil {
		t.Fatal(err)
	}
	if !isSymlink(t, link) {
		t.Error("the write replaced the symlink")
	}
	if got := string(mustRead(t, target)); !strings.Contains(got, "jti "+uuidA) {
		t.Errorf("target not written: %q", got)
	}
	fresh := filepath.Join(dir, "new.txt")
	if err := writeFile(fresh, Entry{Kind: JTI, ID: uuidB, Time: t0.Add(time.Hour)}, t0); err != nil {
		t.Fatal(err)
	}
	if got := string(mustRead(t, fresh)); got != "jti "+uuidB+" 2026-11-26T11:00:00Z\n" {
		t.Errorf("new file %q", got)
	}
}

// TestConcurrentWritersLoseNothing: writers adding entries to one list file
// at once (parallel `extauthz revoke` runs, a sign-out handler per request)
// each keep their entry: every write reads, adds and renames under the
// directory's lock, so none overwrites another's new file with an old copy.
func TestConcurrentWritersLoseNothing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "revoked.txt")
	writeList(t, path, "# revoked sign-ins")
	const writers, each = 8, 10
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				id := fmt.Sprintf("%08x-0000-4000-8000-%012x", w, i)
				errs <- writeFile(path, Entry{Kind: JTI, ID: id, Time: t0.Add(time.Hour)}, t0)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	entries, err := Parse(bytes.NewReader(mustRead(t, path)), path)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != writers*each {
		t.Fatalf("%d entries in the file after %d concurrent writes: writes were lost", len(entries), writers*each)
	}
}

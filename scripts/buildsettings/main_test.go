package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// build compiles a small program for goos/goarch with env and args added
// to `go build`, and returns the binary's path.
func build(t *testing.T, src, goos, goarch string, env []string, args ...string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "bin")
	cmd := exec.Command("go", append(append([]string{"build", "-o", out}, args...), ".")...)
	cmd.Dir = src
	// GOFLAGS from the environment (make exports -tags) would blur what
	// each case sets.
	cmd.Env = append(os.Environ(), "GOFLAGS=-buildvcs=false", "GOOS="+goos, "GOARCH="+goarch, "CGO_ENABLED=0")
	cmd.Env = append(cmd.Env, env...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %v: %v\n%s", args, err, b)
	}
	return out
}

func TestSettings(t *testing.T) {
	if testing.Short() {
		t.Skip("builds binaries")
	}
	src := t.TempDir()
	for name, content := range map[string]string{
		"go.mod":  "module example.com/hello\n\ngo 1.24\n",
		"main.go": "package main\n\nvar version = \"dev\"\n\nfunc main() { println(version) }\n",
	} {
		if err := os.WriteFile(filepath.Join(src, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	release := []string{"-tags=vtprotobuf", "-trimpath", "-ldflags=-s -w -X main.version=v1.2.3"}
	ref := build(t, src, "linux", "amd64", nil, release...)
	want, err := settings(ref)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{"-tags=vtprotobuf", "-trimpath=true", "CGO_ENABLED=0", "symbol table=false", "dwarf=false"} {
		if !slices.Contains(want, line) {
			t.Fatalf("settings lack %q:\n%s", line, strings.Join(want, "\n"))
		}
	}
	tests := []struct {
		name          string
		goos, goarch  string
		env           []string
		args          []string
		same          bool
		differingLine string // in the output of this case, not in the reference's
	}{
		{"another platform", "darwin", "arm64", nil, release, true, ""},
		{"another -X value", "linux", "arm64", nil, []string{"-tags=vtprotobuf", "-trimpath", "-ldflags=-s -w -X main.version=v9.9.9-snapshot"}, true, ""},
		{"no tag", "linux", "amd64", nil, []string{"-trimpath", "-ldflags=-s -w -X main.version=v1.2.3"}, false, ""},
		{"another tag", "darwin", "amd64", nil, []string{"-tags=other", "-trimpath", "-ldflags=-s -w -X main.version=v1.2.3"}, false, "-tags=other"},
		{"no -trimpath", "linux", "amd64", nil, []string{"-tags=vtprotobuf", "-ldflags=-s -w -X main.version=v1.2.3"}, false, ""},
		{"cgo", "linux", "amd64", []string{"CGO_ENABLED=1"}, release, false, "CGO_ENABLED=1"},
		{"no -s", "darwin", "arm64", nil, []string{"-tags=vtprotobuf", "-trimpath", "-ldflags=-w -X main.version=v1.2.3"}, false, "symbol table=true"},
		{"no -w", "linux", "arm64", nil, []string{"-tags=vtprotobuf", "-trimpath", "-ldflags=-s -X main.version=v1.2.3"}, true, ""}, // -s implies -w
		{"neither -s nor -w", "linux", "amd64", nil, []string{"-tags=vtprotobuf", "-trimpath", "-ldflags=-X main.version=v1.2.3"}, false, "dwarf=true"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := settings(build(t, src, tt.goos, tt.goarch, tt.env, tt.args...))
			if err != nil {
				t.Fatal(err)
			}
			if same := slices.Equal(got, want); same != tt.same {
				t.Fatalf("equal to the reference: %v, want %v\ngot:\n%s\nreference:\n%s", same, tt.same, strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			if tt.differingLine != "" && !slices.Contains(got, tt.differingLine) {
				t.Fatalf("settings lack %q:\n%s", tt.differingLine, strings.Join(got, "\n"))
			}
		})
	}
}

func TestSettingsRefusesWhatIsNoGoBinary(t *testing.T) {
	p := filepath.Join(t.TempDir(), "not-a-binary")
	if err := os.WriteFile(p, []byte("#!/bin/sh\necho hi\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := settings(p); err == nil {
		t.Fatal("settings of a shell script: no error")
	}
}

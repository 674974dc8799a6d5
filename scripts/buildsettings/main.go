// Command buildsettings prints what of a Go binary's build must not depend
// on the platform it was built for, one item a line, so that the outputs
// for two binaries of one release compare equal when they were built
// alike: the toolchain; the build settings the binary records (what `go
// version -m` shows: -tags, -trimpath, CGO_ENABLED, ...) without the
// platform (GOOS, GOARCH, GOAMD64 and the like), the vcs stamps or the
// values given with -X; and whether it carries a symbol table and DWARF,
// which is how -ldflags "-s -w" shows when -trimpath keeps -ldflags out of
// the recorded settings.
//
//	usage: go run ./scripts/buildsettings BINARY
//
// make release-check (scripts/check-dist.sh) compares its output for each
// GoReleaser binary with the output for `make build`'s.
package main

import (
	"debug/buildinfo"
	"debug/elf"
	"debug/macho"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: buildsettings BINARY")
		os.Exit(2)
	}
	if err := run(os.Stdout, os.Args[1]); err != nil {
		fmt.Fprintf(os.Stderr, "buildsettings: %v\n", err)
		os.Exit(1)
	}
}

func run(w io.Writer, path string) error {
	lines, err := settings(path)
	if err != nil {
		return err
	}
	_, err = io.WriteString(w, strings.Join(lines, "\n")+"\n")
	return err
}

// platformKeys are the build settings that name the target platform.
var platformKeys = map[string]bool{
	"GOOS": true, "GOARCH": true, "GOAMD64": true, "GOARM64": true, "GOARM": true, "GO386": true,
	"GOMIPS": true, "GOMIPS64": true, "GOPPC64": true, "GORISCV64": true, "GOWASM": true,
}

// xValue matches the value of an -X flag inside -ldflags.
var xValue = regexp.MustCompile(`(-X[= ]+[^= "']+=)[^ "']*`)

// settings returns the lines buildsettings prints for the binary at path.
func settings(path string) ([]string, error) {
	bi, err := buildinfo.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read build information: %w", err)
	}
	out := []string{"toolchain " + bi.GoVersion}
	for _, s := range bi.Settings {
		if platformKeys[s.Key] || strings.HasPrefix(s.Key, "vcs") {
			continue
		}
		v := s.Value
		if s.Key == "-ldflags" {
			v = xValue.ReplaceAllString(v, "${1}X")
		}
		out = append(out, s.Key+"="+v)
	}
	syms, dwarf, err := debugData(path)
	if err != nil {
		return nil, err
	}
	return append(out, fmt.Sprintf("symbol table=%t", syms), fmt.Sprintf("dwarf=%t", dwarf)), nil
}

// debugData reports whether the ELF or Mach-O binary at path carries a
// symbol table of its own (-ldflags -s removes it; a Mach-O binary keeps
// the undefined symbols it imports) and DWARF (-ldflags -w removes it).
func debugData(path string) (syms, dwarf bool, err error) {
	if f, err := elf.Open(path); err == nil {
		defer f.Close()
		s, err := f.Symbols()
		if err != nil && !errors.Is(err, elf.ErrNoSymbols) {
			return false, false, fmt.Errorf("read symbols: %w", err)
		}
		return len(s) > 0, hasDebugSection(f.Sections, func(s *elf.Section) string { return s.Name }, ".debug_", ".zdebug_"), nil
	}
	f, err := macho.Open(path)
	if err != nil {
		return false, false, fmt.Errorf("%s is neither ELF nor Mach-O: %w", path, err)
	}
	defer f.Close()
	if f.Symtab != nil {
		for _, s := range f.Symtab.Syms {
			if s.Sect != 0 {
				syms = true
				break
			}
		}
	}
	return syms, hasDebugSection(f.Sections, func(s *macho.Section) string { return s.Name }, "__debug_", "__zdebug_"), nil
}

func hasDebugSection[S any](sections []S, name func(S) string, prefixes ...string) bool {
	for _, s := range sections {
		for _, p := range prefixes {
			if strings.HasPrefix(name(s), p) {
				return true
			}
		}
	}
	return false
}

package main

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

// runVersion prints the release version, the commit and the Go version.
// `make build` stamps version (the git tag, or "dev" without one) and
// commit; a plain `go build` or `go install` leaves them unset, and the
// toolchain's build information fills in what it recorded: the module
// version for go install, the VCS revision for a build in a checkout.
func runVersion(_ context.Context, _ []string, stdout, _ io.Writer) int {
	v, c := version, commit
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v = bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && c == "unknown" {
				c = s.Value
			}
		}
	}
	fmt.Fprintf(stdout, "extauthz %s\ncommit %s\n%s %s/%s\n", v, c, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return exitOK
}

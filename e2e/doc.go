// Package e2e holds the end-to-end tests: the extauthz binary, built from
// this checkout and driven only through its command line and gRPC as an
// operator or Envoy would, against real tokens minted by cognito-local (a
// Cognito emulator installed from npm into this directory by
// `make e2e-deps`), and, when tinyproxy is installed, a JWKS fetch over https
// through a real forward proxy. The HTTP authorization mode runs behind the
// real nginx and Caddy (Debian packages) with the shipped examples/ configs.
//
// Without cognito-local, nginx or caddy the tests that need them skip,
// unless CI is set, where they fail: CI must never pass by silently
// skipping them. `go test -short` skips them.
package e2e

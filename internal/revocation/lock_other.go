//go:build !unix

package revocation

// lockDir does nothing where flock(2) does not exist (the service is built
// and released for Linux and macOS only): concurrent writers of one list
// file there can lose an entry.
func lockDir(string) (func(), error) { return func() {}, nil }

//go:build !unix

package gate

// lockFile is a no-op where flock is missing: run one service per queue.
func lockFile(string) (func(), error) { return func() {}, nil }
